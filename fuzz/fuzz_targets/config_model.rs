//! The configuration model: no configuration text or `.htaccess` makes `load_parsed` or
//! `load_htaccess` panic, and a configuration that loads without errors has a usable
//! virtual host table (routing any Host to a server in range).
#![no_main]

use std::net::IpAddr;
use std::path::Path;

use itkd_config::vhost::Route;
use itkd_config::{load_htaccess, load_parsed, Overrides};
use libfuzzer_sys::fuzz_target;

#[path = "common/system.rs"]
mod system;
use system::FuzzSystem;

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
