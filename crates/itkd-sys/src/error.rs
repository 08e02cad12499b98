//! The error of every itkd-sys module written after [`crate::credentials`] (which keeps
//! its own [`crate::credentials::SwitchError`], one variant per step of the switch).
//!
//! Each variant says which call failed and carries the kernel's errno where there is one,
//! so the binary can log it the way mpm-itk does (`setgid(0): Operation not permitted`).

use nix::errno::Errno;

/// What went wrong talking to the kernel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed; `call` names it with its arguments where they help.
    #[error("{call}: {errno}")]
    Sys { call: String, errno: Errno },
    /// Reading or changing a capability set failed (the `caps` crate's message).
    #[error("capabilities: {0}")]
    Capabilities(String),
    /// After a change, the kernel reports a state other than the one asked for.
    #[error("after the change the kernel reports {0}")]
    Verify(String),
    /// uid 0 or gid 0 was asked for where itkd never runs as root.
    #[error("refusing to run as uid {uid} / gid {gid}: root is never a pool identity")]
    RootIdentity { uid: u32, gid: u32 },
    /// A LimitUIDRange/LimitGIDRange pair whose minimum is above its maximum.
    #[error("empty id range {min}..={max}")]
    EmptyRange { min: u32, max: u32 },
    /// seccompiler could not build the filter.
    #[error("building the seccomp filter: {0}")]
    Filter(String),
    /// Installing a seccomp filter without NO_NEW_PRIVS needs CAP_SYS_ADMIN, which this
    /// process does not have in its effective set.
    #[error("installing the seccomp filter needs CAP_SYS_ADMIN (itkd never sets NO_NEW_PRIVS)")]
    NeedsSysAdmin,
    /// A scoreboard of zero slots, or one too large to map.
    #[error("a scoreboard of {0} slots is not possible")]
    ScoreboardSize(usize),
}

impl Error {
    pub(crate) fn sys(call: impl Into<String>, errno: Errno) -> Error {
        Error::Sys {
            call: call.into(),
            errno,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
