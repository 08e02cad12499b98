//! Process-level operations of the itk model: `fork`, the parent-death signal, keeping
//! capabilities across setuid, and the pool child's one-time drop from root to
//! `User`/`Group` with only CAP_SETUID, CAP_SETGID and CAP_SYS_NICE left.
//!
//! What this module deliberately does not do:
//! - no `PR_SET_NO_NEW_PRIVS`: a tenant's CGI may legitimately exec setuid helpers
//!   (sendmail's `postdrop`, …) exactly as under Apache + mpm-itk, where NoNewPrivs is 0;
//! - no threads, no runtime: every function here is meant for the single-threaded master
//!   and pool children (ARCHITECTURE.md, "Invariants").

use std::collections::HashSet;

use caps::{CapSet, Capability};
use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::unistd::{self, Gid, Pid, Uid};

use crate::credentials::drop_bounding_set;
use crate::error::{Error, Result};

/// What [`fork`] returned, in the process that sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    /// In the parent: the child's pid.
    Parent(Pid),
    /// In the child.
    Child,
}

/// Creates a child process.
///
/// A debug assertion checks that the caller has exactly one thread.
///
/// # Safety
///
/// Single-threaded callers only. In the child of a multi-threaded process only
/// async-signal-safe functions may be called until `exec`: a lock (the allocator's,
/// stdio's, the environment's) held by another thread at the moment of the fork stays
/// locked forever in the child. itkd forks only from the master and the pool children,
/// which never start a thread (ARCHITECTURE.md, "Invariants").
pub unsafe fn fork() -> Result<Fork, Errno> {
    debug_assert_eq!(
        thread_count(),
        1,
        "fork() called by a process with more than one thread"
    );
    // SAFETY: the caller guarantees this process has one thread, so the child inherits
    // no lock another thread holds and may run any code.
    match unsafe { unistd::fork() }? {
        unistd::ForkResult::Parent { child } => Ok(Fork::Parent(child)),
        unistd::ForkResult::Child => Ok(Fork::Child),
    }
}

/// [`fork`] for callers that cannot prove single-threadedness in the type system: it
/// checks at run time that this process has exactly one thread (from /proc) and refuses
/// with `EDEADLK` otherwise (or `ENOSYS` when /proc cannot tell).
pub fn fork_single_threaded() -> Result<Fork, Errno> {
    match thread_count() {
        // SAFETY: exactly one thread, and it is the caller: no other thread can start
        // between this check and the fork, so `fork`'s contract holds.
        1 => unsafe { fork() },
        0 => Err(Errno::ENOSYS),
        _ => Err(Errno::EDEADLK),
    }
}

/// Proof, checked once, that this process has one thread and will not start another:
/// what a pool child holds to fork a worker per connection without reading `/proc`
/// before every fork (the check costs an open/read/close per connection).
///
/// The holder promises not to start a thread for as long as it keeps the value; the
/// value is neither `Send` nor `Sync`, so it stays in the thread that made it.
#[derive(Debug)]
pub struct SingleThreaded {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl SingleThreaded {
    /// `Some` when `/proc/self/status` says this process has exactly one thread.
    pub fn check() -> Option<SingleThreaded> {
        (thread_count() == 1).then_some(SingleThreaded {
            _not_send: std::marker::PhantomData,
        })
    }

    /// [`fork`], relying on the check made by [`SingleThreaded::check`].
    pub fn fork(&self) -> Result<Fork, Errno> {
        // SAFETY: `check` saw one thread, and the holder of this !Send value promised
        // to start none since: `fork`'s contract holds.
        unsafe { fork() }
    }
}

/// How many threads this process has, as `/proc/self/status` (`Threads:`) says; 0 when
/// that cannot be read (no /proc).
pub fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| threads_line(&status))
        .unwrap_or(0)
}

fn threads_line(status: &str) -> Option<usize> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Tunes glibc's allocator for a process tree that forks a short-lived worker per
/// connection; call it in the master before the first fork, the children inherit it.
///
/// - Allocations up to 4 MiB come from the heap, not from a fresh `mmap` each (a file
///   read buffer would otherwise be mapped, faulted in and unmapped per request).
/// - Freed memory at the top of the heap is kept (up to 16 MiB) instead of being handed
///   back with `brk` on every free and faulted in again on the next request.
/// - The heap grows in 256 KiB steps (fewer `brk` calls).
///
/// Without glibc this does nothing. Returns whether every setting was accepted.
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        [
            (libc::M_MMAP_THRESHOLD, 4 << 20),
            (libc::M_TRIM_THRESHOLD, 16 << 20),
            (libc::M_TOP_PAD, 256 << 10),
        ]
        .into_iter()
        // SAFETY: mallopt takes two integers and changes allocator parameters under the
        // allocator's own lock; any value is accepted or refused (returns 0).
        .all(|(param, value)| unsafe { libc::mallopt(param, value) } == 1)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        true
    }
}

/// Ends this process now with `code` (`_exit(2)`): no atexit handlers, no destructors,
/// no unloading of shared objects. For a worker, whose logs are written with write(2)
/// and which holds nothing buffered: the normal exit path costs more than the rest of a
/// small request.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer, never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// `PR_SET_KEEPCAPS`: whether the permitted capabilities survive a change of every uid
/// away from 0. Reset to `false` by the kernel at `execve`.
pub fn set_keep_caps(keep: bool) -> Result<()> {
    prctl::set_keepcaps(keep).map_err(|e| Error::sys(format!("prctl(PR_SET_KEEPCAPS, {keep})"), e))
}

/// `PR_SET_PDEATHSIG`: `signal` is sent to this process when the thread that forked it
/// exits, so a pool child dies with the master and a worker with its pool child.
///
/// Two kernel rules the caller must respect:
/// - the setting is cleared when the effective or filesystem uid or gid changes: a
///   worker that set it before [`crate::credentials::switch_to`] must set it again after;
/// - the parent may have died before this call: afterwards compare [`unistd::getppid`]
///   with the parent's pid recorded before the fork, and exit if they differ.
pub fn set_pdeathsig(signal: Signal) -> Result<()> {
    prctl::set_pdeathsig(signal)
        .map_err(|e| Error::sys(format!("prctl(PR_SET_PDEATHSIG, {signal})"), e))
}

/// `PR_SET_CHILD_SUBREAPER`: orphaned descendants (a worker whose pool child was
/// SIGKILLed) are reparented to this process instead of init, so the master reaps them
/// and can clear their scoreboard slot ([`crate::scoreboard::Scoreboard::release_by_pid`]).
pub fn set_child_subreaper(on: bool) -> Result<()> {
    prctl::set_child_subreaper(on)
        .map_err(|e| Error::sys(format!("prctl(PR_SET_CHILD_SUBREAPER, {on})"), e))
}

/// The capabilities a pool child keeps until its worker switches: setuid/setgid for the
/// switch, sys_nice for a negative `NiceValue`. mpm-itk keeps CAP_DAC_READ_SEARCH too,
/// to read `.htaccess` before the switch; itkd reads it after, as the tenant.
pub const POOL_CAPABILITIES: [Capability; 3] = [
    Capability::CAP_SETUID,
    Capability::CAP_SETGID,
    Capability::CAP_SYS_NICE,
];

/// What an itkd pool child does once at start, while it is still root:
///
/// 1. empties the capability bounding set (nothing it or a CGI executes can regain one);
/// 2. with `keep_capabilities` (`EnableCapabilities On`, the default): becomes
///    `uid`/`gid` (groups exactly `[gid]`) keeping only [`POOL_CAPABILITIES`] in the
///    permitted and effective sets;
/// 3. without (`EnableCapabilities Off`): stays uid 0 and gid 0, with supplementary
///    groups reduced to `[0]`, and only [`POOL_CAPABILITIES`] too. `uid`/`gid` are then
///    only checked: the worker switches to them later when no AssignUserID applies.
///
/// Inheritable and ambient sets end empty. The result is checked with getresuid,
/// getresgid, getgroups and the capability sets. Needs CAP_SETPCAP (step 1), so it runs
/// before any other privilege is given up; call [`crate::seccomp::confine_id_changes`]
/// first (it needs CAP_SYS_ADMIN), which means `uid`/`gid` must lie inside
/// LimitUIDRange/LimitGIDRange, as with mpm-itk.
///
/// The process must be single-threaded: capability sets are per thread.
pub fn drop_to_pool_identity(uid: u32, gid: u32, keep_capabilities: bool) -> Result<()> {
    // ARCHITECTURE.md: never run a request as uid 0 or gid 0; the pool identity is the
    // default request identity.
    if uid == 0 || gid == 0 {
        return Err(Error::RootIdentity { uid, gid });
    }
    debug_assert_eq!(thread_count(), 1, "capability sets are per thread");
    drop_bounding_set().map_err(Error::Capabilities)?;
    let keep: HashSet<Capability> = POOL_CAPABILITIES.into_iter().collect();
    if keep_capabilities {
        set_keep_caps(true)?;
        let gid = Gid::from_raw(gid);
        let uid = Uid::from_raw(uid);
        unistd::setgroups(&[gid]).map_err(|e| Error::sys(format!("setgroups([{gid}])"), e))?;
        unistd::setresgid(gid, gid, gid).map_err(|e| Error::sys(format!("setresgid({gid})"), e))?;
        unistd::setresuid(uid, uid, uid).map_err(|e| Error::sys(format!("setresuid({uid})"), e))?;
        // The uid change from 0 emptied the effective set; permitted survived (KEEPCAPS).
        set_capabilities(&keep)?;
        set_keep_caps(false)?;
        verify(uid.as_raw(), gid.as_raw(), &keep)
    } else {
        let root = Gid::from_raw(0);
        unistd::setgroups(&[root]).map_err(|e| Error::sys("setgroups([0])", e))?;
        set_capabilities(&keep)?;
        verify(0, 0, &keep)
    }
}

/// Effective = permitted = `keep`; inheritable and ambient empty. The order keeps every
/// intermediate state valid (ambient ⊆ permitted ∩ inheritable, effective ⊆ permitted).
fn set_capabilities(keep: &HashSet<Capability>) -> Result<()> {
    let fail = |set: CapSet, e: caps::errors::CapsError| {
        Error::Capabilities(format!("setting {set:?}: {e}"))
    };
    for set in [CapSet::Ambient, CapSet::Inheritable] {
        caps::clear(None, set).map_err(|e| fail(set, e))?;
    }
    for set in [CapSet::Effective, CapSet::Permitted] {
        let now = caps::read(None, set).map_err(|e| fail(set, e))?;
        // Effective first: it may only shrink to what permitted will keep.
        caps::set(None, set, &now.intersection(keep).copied().collect())
            .map_err(|e| fail(set, e))?;
    }
    // Raise effective to all of `keep` now that permitted is exactly `keep` (after the
    // setresuid from root the effective set is empty).
    caps::set(None, CapSet::Effective, keep).map_err(|e| fail(CapSet::Effective, e))
}

fn verify(uid: u32, gid: u32, keep: &HashSet<Capability>) -> Result<()> {
    let ids = unistd::getresuid().map_err(|e| Error::sys("getresuid", e))?;
    let gids = unistd::getresgid().map_err(|e| Error::sys("getresgid", e))?;
    let uids = [ids.real, ids.effective, ids.saved].map(Uid::as_raw);
    let gids = [gids.real, gids.effective, gids.saved].map(Gid::as_raw);
    if uids != [uid; 3] || gids != [gid; 3] {
        return Err(Error::Verify(format!("uids {uids:?}, gids {gids:?}")));
    }
    let groups: Vec<u32> = unistd::getgroups()
        .map_err(|e| Error::sys("getgroups", e))?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    if groups != [gid] {
        return Err(Error::Verify(format!("groups {groups:?}")));
    }
    let empty = HashSet::new();
    for (set, want) in [
        (CapSet::Effective, keep),
        (CapSet::Permitted, keep),
        (CapSet::Inheritable, &empty),
        (CapSet::Ambient, &empty),
    ] {
        let held = caps::read(None, set).map_err(|e| Error::Verify(e.to_string()))?;
        if &held != want {
            return Err(Error::Verify(format!("{set:?} capabilities {held:?}")));
        }
    }
    if prctl::get_keepcaps().map_err(|e| Error::sys("prctl(PR_GET_KEEPCAPS)", e))? {
        return Err(Error::Verify("PR_SET_KEEPCAPS still set".to_owned()));
    }
    Ok(())
}

/// Closes every descriptor above 2 this process inherited, so nothing its starter left
/// open (a shell's pipe, a test harness's sockets) reaches a pool child, a worker or a
/// CGI script. Call first thing in the master, before anything of its own is opened.
/// Returns how many were closed.
pub fn close_inherited_fds() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    // Collect first: the listing holds a descriptor of its own, gone once it is dropped.
    let fds: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|&fd| fd > 2)
        .collect();
    fds.into_iter()
        .filter(|&fd| nix::unistd::close(fd).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_line_parses_proc_status() {
        for (status, want) in [
            ("Name:\tx\nThreads:\t1\nSigQ:\t0/1\n", Some(1)),
            ("Threads:\t17\n", Some(17)),
            ("Name:\tx\n", None),
            ("Threads:\tmany\n", None),
        ] {
            assert_eq!(threads_line(status), want, "{status:?}");
        }
    }

    #[test]
    fn thread_count_sees_a_new_thread() {
        let before = thread_count();
        assert!(before >= 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv().ok());
        // Other tests run in parallel threads, so only "more than before" is certain.
        let during = thread_count();
        tx.send(()).ok();
        t.join().ok();
        assert!(during >= 2, "{during}");
    }

    #[test]
    fn no_single_threaded_token_beside_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv().ok());
        let token = SingleThreaded::check();
        tx.send(()).ok();
        t.join().ok();
        assert!(token.is_none());
    }

    #[test]
    fn allocator_settings_are_accepted() {
        assert!(tune_allocator());
    }

    #[test]
    fn keep_caps_round_trips() {
        // PR_SET_KEEPCAPS is per thread: this touches the test's own thread only.
        set_keep_caps(true).unwrap();
        assert!(prctl::get_keepcaps().unwrap());
        set_keep_caps(false).unwrap();
        assert!(!prctl::get_keepcaps().unwrap());
    }

    #[test]
    fn root_is_never_a_pool_identity() {
        // Refused before anything is changed, so this is safe in the test process.
        for (uid, gid) in [(0, 33), (33, 0), (0, 0)] {
            for keep in [true, false] {
                assert_eq!(
                    drop_to_pool_identity(uid, gid, keep),
                    Err(Error::RootIdentity { uid, gid })
                );
            }
        }
    }
}
