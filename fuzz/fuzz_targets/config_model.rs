//! The configuration model: no configuration text or `.htaccess` makes `load_parsed` or
//! `load_htaccess` panic, and a configuration that loads without errors has a usable
//! virtual host table (routing any Host to a server in range).
#![no_main]

use std::net::IpAddr;
use std::path::Path;

use itkd_config::vhost::Route;
use itkd_config::{load_htaccess, load_parsed, Overrides, System};
use libfuzzer_sys::fuzz_target;

/// Fixed answers, so nothing depends on the fuzzing machine's user database or DNS.
struct FuzzSystem;

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

fuzz_target!(|data: &[u8]| {
    // Includes would read the fuzzing machine's files: forbidden here.
    let options = apacheconf::Options {
        server_root: "/nonexistent".into(),
        defines: vec!["FUZZ".into()],
        forbid_includes: true,
    };
    let host = itkd_config::modules::ItkdHost;
    let parsed = apacheconf::parse_bytes(data, Path::new("fuzz.conf"), &options, &host);
    let loaded = load_parsed(parsed, &FuzzSystem);
    if let Some(config) = &loaded.config {
        for host_header in [None, Some("a.test"), Some("www.a.test:80"), Some("[::1]")] {
            for ip in [IpAddr::from([127, 0, 0, 1]), IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])] {
                for port in [80, 443, 8080] {
                    if let Route::Vhost(i) = config.vhost_table.route(&config.vhosts, ip, port, host_header) {
                        assert!(i < config.vhosts.len());
                    }
                }
            }
        }
    }
    let all = Overrides {
        classes: itkd_config::directives::Override::ALL.into_iter().collect(),
        options: None,
        list: vec!["redirect".into()],
    };
    let _ = load_htaccess(data, Path::new("/w/.htaccess"), &loaded.parsed, &all, &FuzzSystem);
});
