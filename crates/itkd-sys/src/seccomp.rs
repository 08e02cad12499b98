//! `LimitUIDRange` / `LimitGIDRange`: a seccomp filter that makes every uid/gid-changing
//! system call fail with EPERM when it names an id outside the configured range, so that a
//! pool child or worker, which holds CAP_SETUID and CAP_SETGID until the switch, can never
//! become root (or any system user) whatever code it is tricked into running.
//!
//! The pool child installs it once, while still root; it is inherited by every worker and
//! every CGI (`Seccomp: 2` in their /proc status, as with mpm-itk), and cannot be removed.
//! The filter's default action is Allow: it only restricts the calls below.
//!
//! | call | EPERM when |
//! |---|---|
//! | setuid, setgid | the id is outside the range (-1 included: it is no id) |
//! | setreuid, setregid, setresuid, setresgid | any argument other than -1 ("unchanged") is outside the range |
//! | setfsuid, setfsgid | the id is outside the range and not -1 (`setfsuid(-1)` is the documented way to read the fsuid; it changes nothing) — as mpm-itk |
//! | setgroups | the list is empty (see below) |
//!
//! Decisions, written down where they are made:
//! - **setgroups.** Its list is behind a pointer, which a seccomp filter cannot read, so
//!   its content cannot be range-checked; mpm-itk leaves setgroups unfiltered. itkd checks
//!   what a filter can see soundly, the size: `setgroups(0, …)` fails. Nothing of itkd
//!   needs an empty list (a request always keeps at least its primary group, initgroups
//!   semantics, see [`crate::credentials::Credentials`]; the pool child sets `[gid]`), so
//!   the rule costs nothing and also makes a `Credentials` with no group fail loudly at
//!   the switch. Its security value is small, and this filter does NOT close the real gap:
//!   a pre-switch worker running injected code could still `setgroups([0, 6, …])` and keep
//!   those groups under a tenant uid. What stands against that is elsewhere: before the
//!   switch a worker runs only itkd's own memory-safe code (TLS handshake, request head),
//!   and after the switch no capability is left in any set, bounding set included, so the
//!   kernel refuses every setgroups. A real check of the list would need
//!   SECCOMP_RET_USER_NOTIF and a supervisor reading the worker's memory, which a second
//!   thread started by the attacker can change after the check; not done.
//! - **NO_NEW_PRIVS stays 0.** The kernel accepts a filter without NO_NEW_PRIVS from a
//!   process with CAP_SYS_ADMIN. `seccompiler::apply_filter` sets NO_NEW_PRIVS
//!   unconditionally, so the compiled program is installed here with `seccomp(2)`
//!   directly. A tenant's CGI may then still run setuid helpers (sendmail's `postdrop`),
//!   as under mpm-itk (`NoNewPrivs: 0` in itk-reference.md). Without CAP_SYS_ADMIN the call
//!   fails with [`Error::NeedsSysAdmin`]; it never falls back to setting NO_NEW_PRIVS.
//! - **Other ABIs.** x86_64 and aarch64 have no separate 32-bit-id calls (`setuid32` …
//!   exist only in the i386 and arm ABIs). A process can still enter the kernel through a
//!   compat ABI (`int 0x80` on x86_64, AArch32 on arm64): seccompiler's arch check kills
//!   such a call (SIGSYS) before any rule, as mpm-itk's filter does, so the 32-bit
//!   variants cannot be used to get around it — and 32-bit CGI binaries do not run under
//!   itkd, as they do not under mpm-itk. On x86_64, the x32 ABI shares the arch value
//!   with x86_64 and numbers its calls with bit 30 set; the same rules are added for those
//!   numbers (mpm-itk misses them; on kernels without x32 they fail with ENOSYS anyway).
//! - Arguments are compared as 32 bits (`uid_t`): the kernel ignores the upper half.

use std::collections::BTreeMap;

use nix::errno::Errno;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

/// -1 as an id argument: "leave this id unchanged".
const UNCHANGED: u32 = u32::MAX;

/// x32 system call numbers are the x86_64 ones with this bit set (asm/unistd.h).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ids {
    User,
    Group,
}

/// An id-changing call: its number, how many id arguments it takes, and whether -1 may
/// stand for "unchanged" in them.
struct IdCall {
    nr: i64, // libc::c_long: seccompiler supports 64-bit architectures only
    args: u8,
    minus_one_unchanged: bool,
    ids: Ids,
}

#[rustfmt::skip]
const ID_CALLS: [IdCall; 8] = [
    IdCall { nr: libc::SYS_setuid,    args: 1, minus_one_unchanged: false, ids: Ids::User },
    IdCall { nr: libc::SYS_setreuid,  args: 2, minus_one_unchanged: true,  ids: Ids::User },
    IdCall { nr: libc::SYS_setresuid, args: 3, minus_one_unchanged: true,  ids: Ids::User },
    IdCall { nr: libc::SYS_setfsuid,  args: 1, minus_one_unchanged: true,  ids: Ids::User },
    IdCall { nr: libc::SYS_setgid,    args: 1, minus_one_unchanged: false, ids: Ids::Group },
    IdCall { nr: libc::SYS_setregid,  args: 2, minus_one_unchanged: true,  ids: Ids::Group },
    IdCall { nr: libc::SYS_setresgid, args: 3, minus_one_unchanged: true,  ids: Ids::Group },
    IdCall { nr: libc::SYS_setfsgid,  args: 1, minus_one_unchanged: true,  ids: Ids::Group },
];

/// Installs the filter described in the module documentation for this process and all
/// its threads, and for everything it forks or executes from now on. `uid_range` and
/// `gid_range` are inclusive (`LimitUIDRange min max`).
///
/// Needs CAP_SYS_ADMIN in the effective set (NO_NEW_PRIVS is never set): the pool child
/// calls it while still root, before [`crate::process::drop_to_pool_identity`].
pub fn confine_id_changes(uid_range: (u32, u32), gid_range: (u32, u32)) -> Result<()> {
    let program = build(uid_range, gid_range)?;
    install(&program)
}

/// Compiles the filter for the architecture this crate is built for.
fn build(uid_range: (u32, u32), gid_range: (u32, u32)) -> Result<BpfProgram> {
    for (min, max) in [uid_range, gid_range] {
        if min > max {
            return Err(Error::EmptyRange { min, max });
        }
    }
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for call in &ID_CALLS {
        let range = match call.ids {
            Ids::User => uid_range,
            Ids::Group => gid_range,
        };
        let chain = out_of_range_rules(call, range)?;
        // An empty chain would mean "always EPERM" to seccompiler: a range of every id
        // needs no rule at all.
        if !chain.is_empty() {
            add(&mut rules, call.nr, chain);
        }
    }
    // setgroups(0, …): see the module documentation.
    let empty_list = vec![rule(vec![condition(0, SeccompCmpOp::Eq, 0)?])?];
    add(&mut rules, libc::SYS_setgroups, empty_list);

    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| Error::Filter(format!("{}: {e}", std::env::consts::ARCH)))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        // `as u32`: EPERM is 1; the cast cannot lose anything.
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| Error::Filter(e.to_string()))?;
    BpfProgram::try_from(filter).map_err(|e| Error::Filter(e.to_string()))
}

/// Adds `chain` for `nr` and, on x86_64, for its x32 twin.
fn add(rules: &mut BTreeMap<i64, Vec<SeccompRule>>, nr: i64, chain: Vec<SeccompRule>) {
    #[cfg(target_arch = "x86_64")]
    rules.insert(nr | X32_SYSCALL_BIT, chain.clone());
    rules.insert(nr, chain);
}

/// The rules (any one matching means EPERM) for one call: per argument, "below min", and
/// "above max but not the -1 that means unchanged".
fn out_of_range_rules(call: &IdCall, (min, max): (u32, u32)) -> Result<Vec<SeccompRule>> {
    let mut chain = Vec::new();
    for arg in 0..call.args {
        if min > 0 {
            // -1 is never below min: no exception needed here.
            chain.push(rule(vec![condition(arg, SeccompCmpOp::Lt, min)?])?);
        }
        if max < u32::MAX {
            let mut above = vec![condition(arg, SeccompCmpOp::Gt, max)?];
            if call.minus_one_unchanged {
                above.push(condition(arg, SeccompCmpOp::Ne, UNCHANGED)?);
            }
            chain.push(rule(above)?);
        }
    }
    Ok(chain)
}

fn condition(arg: u8, op: SeccompCmpOp, value: u32) -> Result<SeccompCondition> {
    // Dword: uid_t and gid_t are 32 bits; the kernel ignores the upper half of the register.
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value.into())
        .map_err(|e| Error::Filter(e.to_string()))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule> {
    SeccompRule::new(conditions).map_err(|e| Error::Filter(e.to_string()))
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, prog)` without touching
/// NO_NEW_PRIVS (what `seccompiler::apply_filter` would do first).
fn install(program: &[seccompiler::sock_filter]) -> Result<()> {
    let mut filter: Vec<libc::sock_filter> = program
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let len = u16::try_from(filter.len())
        .map_err(|_| Error::Filter(format!("{} instructions", filter.len())))?;
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_mut_ptr(),
    };
    // TSYNC: every thread gets the filter (itkd's callers have one thread; this keeps a
    // stray one from escaping it).
    // SAFETY: `prog` points to `len` initialised instructions in `filter`, both alive for
    // the whole call; the kernel copies the program and keeps no pointer to our memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        )
    };
    match rc {
        0 => Ok(()),
        // seccomp(2): without NO_NEW_PRIVS, a caller lacking CAP_SYS_ADMIN gets EACCES.
        -1 if Errno::last() == Errno::EACCES => Err(Error::NeedsSysAdmin),
        -1 => Err(Error::sys(
            "seccomp(SECCOMP_SET_MODE_FILTER)",
            Errno::last(),
        )),
        thread => Err(Error::Verify(format!(
            "thread {thread} could not be synchronised to the seccomp filter"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const RET_EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const RET_KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

    #[cfg(target_arch = "x86_64")]
    const NATIVE: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const NATIVE: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    #[cfg(target_arch = "x86_64")]
    const COMPAT: u32 = 0x4000_0003; // AUDIT_ARCH_I386
    #[cfg(target_arch = "aarch64")]
    const COMPAT: u32 = 0x4000_0028; // AUDIT_ARCH_ARM

    /// Runs a classic-BPF seccomp program on `struct seccomp_data { nr, arch, ip, args }`:
    /// the instructions seccompiler emits (ld abs, jeq/jgt/jge/ja, and, ret).
    fn run(program: &[seccompiler::sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        let word = |offset: u32| -> u32 {
            match offset {
                0 => nr as u32,
                4 => arch,
                16..=63 => {
                    let arg = args[(offset as usize - 16) / 8];
                    if offset & 7 == 0 {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                _ => panic!("load from offset {offset}"),
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = &program[pc];
            pc += 1;
            match i.code {
                0x20 => acc = word(i.k),                                         // ld w abs
                0x54 => acc &= i.k,                                              // and k
                0x05 => pc += i.k as usize,                                      // ja
                0x15 => pc += usize::from(if acc == i.k { i.jt } else { i.jf }), // jeq k
                0x25 => pc += usize::from(if acc > i.k { i.jt } else { i.jf }),  // jgt k
                0x35 => pc += usize::from(if acc >= i.k { i.jt } else { i.jf }), // jge k
                0x06 => return i.k,                                              // ret k
                code => panic!("instruction {code:#x} not modelled"),
            }
        }
    }

    fn id_args(a: u32, b: u32, c: u32) -> [u64; 6] {
        [a.into(), b.into(), c.into(), 0, 0, 0]
    }

    const M1: u32 = u32::MAX;

    #[test]
    fn ids_outside_the_range_are_eperm_and_minus_one_only_means_unchanged() {
        let p = build((1000, 60000), (1000, 60000)).unwrap();
        use libc::*;
        for (nr, (a, b, c), want) in [
            (SYS_setresuid, (20001, 20001, 20001), RET_ALLOW),
            (SYS_setresuid, (0, 0, 0), RET_EPERM),
            (SYS_setresuid, (20001, 20001, 0), RET_EPERM),
            (SYS_setresuid, (M1, M1, M1), RET_ALLOW),
            (SYS_setresuid, (M1, 999, M1), RET_EPERM),
            (SYS_setresuid, (M1, 60001, M1), RET_EPERM),
            (SYS_setresuid, (1000, 60000, M1), RET_ALLOW),
            (SYS_setreuid, (M1, 0, 0), RET_EPERM),
            (SYS_setreuid, (M1, 1000, 0), RET_ALLOW), // setreuid has two id arguments
            (SYS_setuid, (0, 0, 0), RET_EPERM),
            (SYS_setuid, (M1, 0, 0), RET_EPERM), // setuid(-1) is no "unchanged"
            (SYS_setuid, (30000, 0, 0), RET_ALLOW),
            (SYS_setfsuid, (0, 0, 0), RET_EPERM),
            (SYS_setfsuid, (M1, 0, 0), RET_ALLOW),
            (SYS_setresgid, (70000, 70000, 70000), RET_EPERM),
            (SYS_setresgid, (21001, 21001, 21001), RET_ALLOW),
            (SYS_setregid, (0, M1, 0), RET_EPERM),
            (SYS_setgid, (0, 0, 0), RET_EPERM),
            (SYS_setfsgid, (60001, 0, 0), RET_EPERM),
            (SYS_setgroups, (0, 0, 0), RET_EPERM),
            (SYS_setgroups, (1, 0, 0), RET_ALLOW),
            (SYS_setgroups, (3, 0, 0), RET_ALLOW),
            (SYS_getuid, (0, 0, 0), RET_ALLOW),
            (SYS_write, (1, 0, 0), RET_ALLOW),
        ] {
            assert_eq!(
                run(&p, NATIVE, nr, id_args(a, b, c)),
                want,
                "syscall {nr} ({a}, {b}, {c})"
            );
        }
    }

    #[test]
    fn the_upper_half_of_an_argument_is_ignored_like_the_kernel_does() {
        let p = build((1000, 60000), (1000, 60000)).unwrap();
        let root_in_disguise = [1 << 32, 1 << 32, 1 << 32, 0, 0, 0];
        assert_eq!(
            run(&p, NATIVE, libc::SYS_setresuid, root_in_disguise),
            RET_EPERM
        );
        let fine = [(1 << 32) | 20001, 20001, 20001, 0, 0, 0];
        assert_eq!(run(&p, NATIVE, libc::SYS_setresuid, fine), RET_ALLOW);
    }

    #[test]
    fn the_default_ranges_refuse_only_root() {
        // LimitUIDRange / LimitGIDRange default: 1 .. 2^32-1.
        let p = build((1, u32::MAX), (1, u32::MAX)).unwrap();
        for (nr, a, want) in [
            (libc::SYS_setuid, 0, RET_EPERM),
            (libc::SYS_setuid, 33, RET_ALLOW),
            (libc::SYS_setresgid, 0, RET_EPERM),
            (libc::SYS_setresgid, M1, RET_ALLOW),
            (libc::SYS_setresgid, 4_000_000_000, RET_ALLOW),
        ] {
            assert_eq!(run(&p, NATIVE, nr, id_args(a, a, a)), want, "{nr} {a}");
        }
    }

    #[test]
    fn a_range_of_every_id_restricts_nothing_but_empty_setgroups() {
        let p = build((0, u32::MAX), (0, u32::MAX)).unwrap();
        assert_eq!(
            run(&p, NATIVE, libc::SYS_setuid, id_args(0, 0, 0)),
            RET_ALLOW
        );
        assert_eq!(
            run(&p, NATIVE, libc::SYS_setresgid, id_args(0, 0, 0)),
            RET_ALLOW
        );
        assert_eq!(
            run(&p, NATIVE, libc::SYS_setgroups, id_args(0, 0, 0)),
            RET_EPERM
        );
    }

    #[test]
    fn another_abi_is_killed_before_any_rule() {
        let p = build((1000, 60000), (1000, 60000)).unwrap();
        // i386 setuid32(0) is 213; AArch32 setuid32 is 213 too.
        assert_eq!(run(&p, COMPAT, 213, id_args(0, 0, 0)), RET_KILL);
        assert_eq!(
            run(&p, COMPAT, libc::SYS_getuid, id_args(0, 0, 0)),
            RET_KILL
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_numbers_get_the_same_rules() {
        let p = build((1000, 60000), (1000, 60000)).unwrap();
        let x32 = |nr: i64| nr | X32_SYSCALL_BIT;
        assert_eq!(
            run(&p, NATIVE, x32(libc::SYS_setresuid), id_args(0, 0, 0)),
            RET_EPERM
        );
        assert_eq!(
            run(
                &p,
                NATIVE,
                x32(libc::SYS_setresuid),
                id_args(1000, 1000, 1000)
            ),
            RET_ALLOW
        );
        assert_eq!(
            run(&p, NATIVE, x32(libc::SYS_setgroups), id_args(0, 0, 0)),
            RET_EPERM
        );
    }

    #[test]
    fn an_empty_range_is_refused() {
        assert_eq!(
            build((5, 4), (1, 2)).unwrap_err(),
            Error::EmptyRange { min: 5, max: 4 }
        );
        assert_eq!(
            build((1, 2), (9, 3)).unwrap_err(),
            Error::EmptyRange { min: 9, max: 3 }
        );
    }
}
