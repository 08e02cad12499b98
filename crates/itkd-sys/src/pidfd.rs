//! A process descriptor (`pidfd_open(2)`, Linux 5.3): a descriptor for a child that
//! becomes readable when the child exits, so a worker learns of its CGI script's end in
//! its event loop, like any socket, and reaps it at once, without SIGCHLD (a handler and
//! tokio's signal driver in every worker) and without polling.
//!
//! [`AsyncPidFd`] registers it with tokio's reactor (the registration is `unsafe`, hence
//! here); the worker's current-thread runtime then wakes the waiting task.
//!
//! What this module deliberately does not do: reap. The caller still collects the exit
//! status with `waitpid` (std's `Child::try_wait`), which keeps the pid from being reused
//! until then, so signalling the pid before that is safe.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A descriptor for the process `pid`, close-on-exec (the kernel always sets it).
/// `ENOSYS` on kernels before 5.3 (or where a seccomp policy forbids the call), `ESRCH`
/// for no such process.
pub fn open(pid: u32) -> Result<OwnedFd, Errno> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| Errno::ESRCH)?;
    // SAFETY: pidfd_open takes a pid and a flags word (0) by value and touches no memory
    // of ours; it returns a new descriptor or -1 with errno set.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just created `fd` for this call; nothing else owns or closes it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A process descriptor watched by the reactor of the tokio runtime it was made in.
#[derive(Debug)]
pub struct AsyncPidFd(AsyncFd<OwnedFd>);

impl AsyncPidFd {
    /// [`open`], registered for readability with the current runtime (panics outside
    /// one, as tokio's registration does).
    pub fn open(pid: u32) -> std::io::Result<AsyncPidFd> {
        let fd = open(pid)?;
        // SAFETY: registration needs the descriptor to stay open and the same until the
        // `AsyncFd` lets go of it. An `OwnedFd` owns its descriptor: it is closed only when
        // the `OwnedFd` is dropped, which is when the `AsyncFd` (and so the registration)
        // is, and its `as_raw_fd` always returns that one descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(AsyncPidFd(fd))
    }

    /// Resolves once the process has exited (a pidfd is readable from then on, so this
    /// resolves at once every later time). Collect the status with `waitpid`.
    pub async fn exited(&self) -> std::io::Result<()> {
        let mut ready = self.0.readable().await?;
        ready.retain_ready();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    fn readable(fd: &OwnedFd, ms: u16) -> bool {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(ms)).unwrap() == 1
    }

    #[test]
    fn becomes_readable_when_the_child_exits_and_not_before() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.3")
            .spawn()
            .unwrap();
        let fd = open(child.id()).unwrap();
        assert!(!readable(&fd, 50), "readable while the child runs");
        assert!(readable(&fd, 5000), "not readable after the child exited");
        // The exit status is still there to collect: the pidfd does not reap.
        assert!(child.try_wait().unwrap().is_some());
    }

    #[test]
    fn the_reactor_wakes_a_task_when_the_child_exits() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut child = std::process::Command::new("sleep")
                .arg("0.2")
                .spawn()
                .unwrap();
            let started = std::time::Instant::now();
            let fd = AsyncPidFd::open(child.id()).unwrap();
            let not_yet = tokio::time::timeout(std::time::Duration::from_millis(50), fd.exited());
            assert!(not_yet.await.is_err(), "resolved while the child runs");
            tokio::time::timeout(std::time::Duration::from_secs(5), fd.exited())
                .await
                .expect("no wake-up within 5 s")
                .unwrap();
            assert!(started.elapsed() >= std::time::Duration::from_millis(150));
            assert!(child.try_wait().unwrap().is_some());
            // Readable for good: a second wait resolves at once.
            fd.exited().await.unwrap();
        });
    }

    #[test]
    fn no_such_process() {
        // Above PID_MAX_LIMIT (2^22): no process can have it.
        assert_eq!(open(4_194_305).unwrap_err(), Errno::ESRCH);
    }
}
