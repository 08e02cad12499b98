//! The user and group database (NSS: `/etc/passwd`, `/etc/group` and whatever
//! `nsswitch.conf` adds), read through nix's safe wrappers.
//!
//! Lookups happen at configuration load, in the master, never per request.

use nix::unistd::{Gid, Group, Uid, User};

/// A user's entry: what `initgroups` needs later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    pub uid: u32,
    /// The primary group from the passwd entry.
    pub gid: u32,
}

/// Looks a user up by name; `None` when the name is unknown or the lookup failed.
pub fn user_by_name(name: &str) -> Option<UserEntry> {
    let user = User::from_name(name).ok()??;
    Some(UserEntry {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

/// Looks a user up by uid; `None` when there is no passwd entry (numeric `#n` tenants).
pub fn user_by_uid(uid: u32) -> Option<UserEntry> {
    let user = User::from_uid(Uid::from_raw(uid)).ok()??;
    Some(UserEntry {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

/// A group's gid by name.
pub fn group_by_name(name: &str) -> Option<u32> {
    Some(Group::from_name(name).ok()??.gid.as_raw())
}

/// A group's name by gid; `None` when there is no group entry.
pub fn group_name(gid: u32) -> Option<String> {
    Some(Group::from_gid(Gid::from_raw(gid)).ok()??.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_zero() {
        let root = user_by_name("root").expect("every system has root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(user_by_uid(0).map(|u| u.name), Some("root".to_owned()));
        assert_eq!(group_by_name("root"), Some(0));
    }

    #[test]
    fn unknown_names_are_none() {
        assert_eq!(user_by_name("no-such-user-itkd"), None);
        assert_eq!(group_by_name("no-such-group-itkd"), None);
    }
}
