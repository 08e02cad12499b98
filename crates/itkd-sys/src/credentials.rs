//! The credential switch: the one irreversible step from "may become anyone in range" to
//! "is this tenant", done once per worker.
//!
//! Order (mpm-itk's, tightened): nice → setgroups → setresgid → setresuid → every
//! capability set cleared → checked with getresuid/getresgid/getgroups. The bounding set
//! cannot be emptied here (that needs CAP_SETPCAP, which a pool child no longer has); the
//! pool child empties it before it drops to User/Group, see [`drop_bounding_set`].

use nix::errno::Errno;
use nix::unistd::{self, Gid, Uid};

/// A niceness, -20 (most favoured) to 19.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nice(i8);

impl Nice {
    /// `None` outside -20..=19 (the configuration clamps before it gets here).
    pub fn new(n: i32) -> Option<Nice> {
        i8::try_from(n)
            .ok()
            .filter(|n| (-20..=19).contains(n))
            .map(Nice)
    }

    pub fn get(self) -> i32 {
        i32::from(self.0)
    }
}

/// Who a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, as `initgroups` would set them; at least `gid`.
    pub groups: Vec<u32>,
}

impl Credentials {
    /// `initgroups(name, gid)` semantics: the user's groups from the group database plus
    /// `gid`; for a `#n` user without passwd entry (`name` is `None`), only `gid`.
    pub fn for_user(uid: u32, gid: u32, name: Option<&str>) -> Credentials {
        let mut groups = vec![gid];
        if let Some(name) = name.and_then(|n| std::ffi::CString::new(n).ok()) {
            if let Ok(list) = unistd::getgrouplist(&name, Gid::from_raw(gid)) {
                for g in list {
                    if !groups.contains(&g.as_raw()) {
                        groups.push(g.as_raw());
                    }
                }
            }
        }
        Credentials { uid, gid, groups }
    }
}

/// Which step of the switch failed, with the errno (mpm-itk logs the same steps).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwitchError {
    #[error("setpriority({0}): {1}")]
    Nice(i32, Errno),
    #[error("setgroups: {0}")]
    SetGroups(Errno),
    #[error("setgid({0}): {1}")]
    SetGid(u32, Errno),
    #[error("setuid({0}): {1}")]
    SetUid(u32, Errno),
    #[error("clearing capabilities: {0}")]
    Capabilities(String),
    #[error("after the switch the kernel reports {0}")]
    Verify(String),
}

/// Sets this process's niceness (`setpriority(PRIO_PROCESS, 0, n)`).
pub fn set_nice(nice: Nice) -> Result<(), SwitchError> {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice.get()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(SwitchError::Nice(nice.get(), Errno::last()))
    }
}

/// The proof that this process completed [`switch_to`]: every open or stat of a
/// tenant's file (static files, `.htaccess`, password files, scripts) takes one, so no
/// path through the code can touch a tenant's file before the switch (rustls's
/// proof-value pattern). Only [`switch_to`] makes one.
#[derive(Debug, Clone, Copy)]
pub struct AsTenant {
    _only_switch_to: (),
}

/// Becomes `target`, irreversibly: nice (if any, first, while CAP_SYS_NICE still allows a
/// negative value), groups, gid, uid, then no capability in any set, then a check that
/// the kernel agrees. On error the process must not serve: its identity is unknown.
pub fn switch_to(target: &Credentials, nice: Option<Nice>) -> Result<AsTenant, SwitchError> {
    if let Some(n) = nice {
        set_nice(n)?;
    }
    let groups: Vec<Gid> = target.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    unistd::setgroups(&groups).map_err(SwitchError::SetGroups)?;
    let gid = Gid::from_raw(target.gid);
    unistd::setresgid(gid, gid, gid).map_err(|e| SwitchError::SetGid(target.gid, e))?;
    let uid = Uid::from_raw(target.uid);
    unistd::setresuid(uid, uid, uid).map_err(|e| SwitchError::SetUid(target.uid, e))?;
    clear_capabilities()?;
    // Not dumpable, whatever fs.suid_dumpable says (the kernel applies it at the uid
    // change; at 1 the tenant's scripts could ptrace this process and read what it
    // inherited from the master: TLS keys, ticket keys).
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| SwitchError::Verify(format!("prctl(PR_SET_DUMPABLE, 0): {e}")))?;
    verify(target)?;
    Ok(AsTenant {
        _only_switch_to: (),
    })
}

/// Empties the effective, permitted, inheritable and ambient sets.
fn clear_capabilities() -> Result<(), SwitchError> {
    use caps::CapSet;
    // Ambient first: it may only hold what permitted and inheritable hold.
    for set in [
        CapSet::Ambient,
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
    ] {
        caps::clear(None, set).map_err(|e| SwitchError::Capabilities(e.to_string()))?;
    }
    Ok(())
}

fn verify(target: &Credentials) -> Result<(), SwitchError> {
    let ids =
        unistd::getresuid().map_err(|e| SwitchError::Verify(format!("getresuid failed: {e}")))?;
    let gids =
        unistd::getresgid().map_err(|e| SwitchError::Verify(format!("getresgid failed: {e}")))?;
    let uids = [ids.real, ids.effective, ids.saved].map(Uid::as_raw);
    let gids = [gids.real, gids.effective, gids.saved].map(Gid::as_raw);
    if uids != [target.uid; 3] || gids != [target.gid; 3] {
        return Err(SwitchError::Verify(format!("uids {uids:?}, gids {gids:?}")));
    }
    let mut groups: Vec<u32> = unistd::getgroups()
        .map_err(|e| SwitchError::Verify(format!("getgroups failed: {e}")))?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    let mut want = target.groups.clone();
    groups.sort_unstable();
    want.sort_unstable();
    if groups != want {
        return Err(SwitchError::Verify(format!(
            "groups {groups:?}, not {want:?}"
        )));
    }
    for set in [caps::CapSet::Effective, caps::CapSet::Permitted] {
        let held = caps::read(None, set).map_err(|e| SwitchError::Verify(e.to_string()))?;
        if !held.is_empty() {
            return Err(SwitchError::Verify(format!(
                "{set:?} capabilities {held:?}"
            )));
        }
    }
    Ok(())
}

/// Empties the capability bounding set, so nothing this process or its children execute
/// can ever gain a capability. Needs CAP_SETPCAP: the pool child calls it while it is
/// still root, before it drops to User/Group.
pub fn drop_bounding_set() -> Result<(), String> {
    for cap in caps::all() {
        if caps::has_cap(None, caps::CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, caps::CapSet::Bounding, cap)
                .map_err(|e| format!("dropping {cap} from the bounding set: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_range() {
        assert_eq!(Nice::new(-20).map(Nice::get), Some(-20));
        assert_eq!(Nice::new(19).map(Nice::get), Some(19));
        assert_eq!(Nice::new(20), None);
        assert_eq!(Nice::new(-21), None);
    }

    #[test]
    fn numeric_users_get_only_their_gid() {
        assert_eq!(
            Credentials::for_user(20001, 21001, None).groups,
            vec![21001]
        );
    }

    #[test]
    fn named_users_get_their_group_list() {
        // root is in group 0 on every system.
        let c = Credentials::for_user(0, 0, Some("root"));
        assert_eq!(c.groups[0], 0);
    }
}
