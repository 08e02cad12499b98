//! The configuration model's view of this machine: the user database through itkd-sys,
//! names through the resolver.

use std::net::{IpAddr, ToSocketAddrs};

use itkd_sys::users;

/// The real system, as the master sees it at load.
pub struct RealSystem;

impl itkd_config::System for RealSystem {
    fn user_by_name(&self, name: &str) -> Option<(u32, u32)> {
        users::user_by_name(name).map(|u| (u.uid, u.gid))
    }

    fn group_by_name(&self, name: &str) -> Option<u32> {
        users::group_by_name(name)
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        users::user_by_uid(uid).map(|u| u.name)
    }

    fn group_name(&self, gid: u32) -> Option<String> {
        users::group_name(gid)
    }

    fn resolve_host(&self, name: &str) -> Vec<IpAddr> {
        (name, 0)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .unwrap_or_default()
    }

    /// httpd's `ap_get_local_host`, simplified: the host name when it is fully qualified,
    /// else the address it resolves to, else 127.0.0.1.
    fn default_server_name(&self) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host = host.trim();
        if host.contains('.') {
            return host.to_owned();
        }
        self.resolve_host(host)
            .into_iter()
            .find(IpAddr::is_ipv4)
            .map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string())
    }
}
