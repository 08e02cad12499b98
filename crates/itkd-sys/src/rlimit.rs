//! Resource limits for the programs a worker starts (httpd's `RLimitCPU`, `RLimitMEM`,
//! `RLimitNPROC`): read the worker's own limits, then set new ones in the child between
//! `fork` and `exec`, as APR's `apr_proc_create` does (`limit_proc`).
//!
//! What this module deliberately does not do:
//! - decide the values: the binary turns the directives into a [`Limit`] per resource;
//! - limit the worker itself: a limit is set in the child only, so a tenant's CGI cannot
//!   lower (or use up) the limits of the process that serves its connection.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::errno::Errno;
use nix::sys::resource::{self, Resource as NixResource};

use crate::error::{Error, Result};

/// The resources httpd's `RLimit*` directives set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `RLIMIT_CPU`, seconds of CPU time (`RLimitCPU`).
    Cpu,
    /// `RLIMIT_AS`, bytes of address space (`RLimitMEM`: httpd and APR use RLIMIT_AS where
    /// the system has it, as Linux does, and RLIMIT_DATA only where it does not).
    AddressSpace,
    /// `RLIMIT_NPROC`, processes of the real uid (`RLimitNPROC`).
    Processes,
}

impl Resource {
    fn nix(self) -> NixResource {
        match self {
            Resource::Cpu => NixResource::RLIMIT_CPU,
            Resource::AddressSpace => NixResource::RLIMIT_AS,
            Resource::Processes => NixResource::RLIMIT_NPROC,
        }
    }

    /// The kernel's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "RLIMIT_CPU",
            Resource::AddressSpace => "RLIMIT_AS",
            Resource::Processes => "RLIMIT_NPROC",
        }
    }
}

/// A soft and a hard limit; [`Limit::INFINITY`] is "unlimited".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub soft: u64,
    pub hard: u64,
}

impl Limit {
    /// `RLIM_INFINITY`.
    pub const INFINITY: u64 = libc::RLIM_INFINITY;

    /// Why `setrlimit` would refuse `self` in a process whose current limit is `now` and
    /// which holds no CAP_SYS_RESOURCE (a worker after the switch): `EINVAL` for a soft
    /// limit above the hard one, `EPERM` for a hard limit raised above `now`'s.
    pub fn refusal(self, now: Limit) -> Option<Errno> {
        if self.soft > self.hard {
            Some(Errno::EINVAL)
        } else if self.hard > now.hard {
            Some(Errno::EPERM)
        } else {
            None
        }
    }
}

/// This process's current limit of `resource` (`getrlimit`).
pub fn current(resource: Resource) -> Result<Limit> {
    resource::getrlimit(resource.nix())
        .map(|(soft, hard)| Limit { soft, hard })
        .map_err(|e| Error::sys(format!("getrlimit({})", resource.name()), e))
}

/// Makes the child that `command` starts set `limits`, in order, after the fork and
/// before the exec. A limit the kernel refuses makes the spawn fail with its errno (check
/// with [`Limit::refusal`] first to say which one).
pub fn set_in_child(command: &mut Command, limits: Vec<(Resource, Limit)>) {
    if limits.is_empty() {
        return;
    }
    let hook = move || -> std::io::Result<()> {
        for &(resource, limit) in &limits {
            resource::setrlimit(resource.nix(), limit.soft, limit.hard)?;
        }
        Ok(())
    };
    // SAFETY: `pre_exec` runs the hook in the child between fork and exec, where only
    // async-signal-safe work is sound (the parent may have had other threads). The hook
    // only iterates a vector built before the fork (no allocation, no lock) and calls
    // setrlimit(2), a plain system call; an error becomes an `io::Error` from its raw
    // errno, which does not allocate either.
    unsafe {
        command.pre_exec(hook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_the_kernels() {
        let now = Limit {
            soft: 10,
            hard: 100,
        };
        for (soft, hard, want) in [
            (5, 100, None),
            (100, 100, None),
            (5, 50, None),
            (50, 5, Some(Errno::EINVAL)),
            (5, 200, Some(Errno::EPERM)),
            (Limit::INFINITY, 100, Some(Errno::EINVAL)),
            (5, Limit::INFINITY, Some(Errno::EPERM)),
        ] {
            assert_eq!(Limit { soft, hard }.refusal(now), want, "{soft} {hard}");
        }
        let unlimited = Limit {
            soft: Limit::INFINITY,
            hard: Limit::INFINITY,
        };
        assert_eq!(unlimited.refusal(unlimited), None);
    }

    #[test]
    fn a_child_gets_the_limits_and_the_parent_keeps_its_own() {
        let before = current(Resource::Cpu).unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "ulimit -S -t; ulimit -H -t"]);
        let hard = before.hard.min(7200);
        let soft = hard.min(3600);
        set_in_child(&mut command, vec![(Resource::Cpu, Limit { soft, hard })]);
        let out = command.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(text, format!("{soft}\n{hard}\n"));
        assert_eq!(current(Resource::Cpu).unwrap(), before);
    }

    #[test]
    fn a_refused_limit_fails_the_spawn_with_its_errno() {
        let mut command = Command::new("true");
        set_in_child(
            &mut command,
            vec![(Resource::Processes, Limit { soft: 20, hard: 10 })],
        );
        let err = command.spawn().map(|_| ()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }
}
