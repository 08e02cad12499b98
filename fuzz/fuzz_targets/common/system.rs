//! What the targets that load a configuration share (included with `#[path]`: cargo-fuzz
//! builds each file in fuzz_targets/ named in Cargo.toml as its own binary).

use std::net::IpAddr;

use itkd_config::System;

/// Fixed answers, so nothing depends on the fuzzing machine's user database or DNS.
pub struct FuzzSystem;

impl System for FuzzSystem {
    fn user_by_name(&self, name: &str) -> Option<(u32, u32)> {
        match name {
            "root" => Some((0, 0)),
            "www-data" => Some((33, 33)),
            "nobody" => Some((65534, 65534)),
            _ => None,
        }
    }
    fn group_by_name(&self, name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "www-data" => Some(33),
            "nogroup" => Some(65534),
            _ => None,
        }
    }
    fn user_name(&self, uid: u32) -> Option<String> {
        (uid == 33).then(|| "www-data".to_owned())
    }
    fn group_name(&self, gid: u32) -> Option<String> {
        (gid == 33).then(|| "www-data".to_owned())
    }
    fn resolve_host(&self, name: &str) -> Vec<IpAddr> {
        match name {
            "localhost" => vec![IpAddr::from([127, 0, 0, 1])],
            _ => Vec::new(),
        }
    }
    fn default_server_name(&self) -> String {
        "fuzz.test".to_owned()
    }
}
