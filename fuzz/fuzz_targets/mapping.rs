//! Request routing and path mapping: any request target, once `normalize` accepts it, maps
//! to a path that stays lexically under its root (DocumentRoot, an `Alias`/`ScriptAlias`
//! target, or the directory an `AliasMatch` result names), with no `..` left in it; and
//! any Host header routes to a server that exists, the same way whatever its case.
//!
//! Input: the request target, then optionally `\n` and a Host header value. The first
//! byte also picks the virtual host (and with it the AllowEncodedSlashes mode).
#![no_main]

use std::net::IpAddr;
use std::path::{Component, Path};
use std::sync::OnceLock;

use itkd_config::load_parsed;
use itkd_config::model::{ServerConfig, UrlMatcher};
use itkd_config::vhost::Route;
use itkd_http::mapping::{map, normalize};
use libfuzzer_sys::fuzz_target;

/// Every kind of mapping rule, in each AllowEncodedSlashes mode. The main server's
/// DocumentRoot must exist (the loader checks, as httpd does): `/tmp` is on every machine. `^/glued(.*)$` puts a
/// capture that need not start a segment after a `/` in the target: the one way a
/// normalized URI could spell `..` into a path.
const CONFIG: &str = r#"
ServerName main.test
DocumentRoot /tmp
Alias /icons/ /usr/share/apache2/icons/
Alias /file /srv/one/file.txt
Alias /top /
ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/
AliasMatch ^/am/([^/]+)/(.*)$ /srv/am/$1/files/$2
AliasMatch ^/glued(.*)$ /srv/glued/$1
ScriptAliasMatch ^/sm/(.*)$ /srv/sm/$1
<VirtualHost *:80>
    ServerName a.test
    ServerAlias *.a.test w?w.a-alias.test
    DocumentRoot /srv/a/
    AllowEncodedSlashes On
    Alias /x/ /srv/x/
</VirtualHost>
<VirtualHost *:80>
    ServerName b.test
    DocumentRoot /srv/b
    AllowEncodedSlashes NoDecode
    AliasMatch (.*)\.php$ /srv/php/$1.php
</VirtualHost>
<VirtualHost 127.0.0.1:8080 [::1]:8080>
    ServerName c.test
    ServerAlias *
    DocumentRoot /
</VirtualHost>
"#;

/// The AliasMatch whose capture need not start a segment.
const UNALIGNED: &str = "^/glued(.*)$";

#[path = "common/system.rs"]
mod system;
use system::FuzzSystem;

fn config() -> &'static ServerConfig {
    static CONFIG_MODEL: OnceLock<ServerConfig> = OnceLock::new();
    CONFIG_MODEL.get_or_init(|| {
        let options = apacheconf::Options {
            server_root: "/nonexistent".into(),
            defines: Vec::new(),
            forbid_includes: true,
        };
        let host = itkd_config::modules::ItkdHost;
        let parsed = apacheconf::parse_bytes(
            CONFIG.as_bytes(),
            Path::new("mapping.conf"),
            &options,
            &host,
        );
        let loaded = load_parsed(parsed, &FuzzSystem);
        match loaded.config {
            Some(config) => config,
            None => panic!(
                "the fixed configuration does not load: {:?}",
                loaded.diagnostics
            ),
        }
    })
}

fn no_parent(path: &Path) -> bool {
    !path.components().any(|c| c == Component::ParentDir)
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    let (target, host) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let target = String::from_utf8_lossy(target);
    let pick = data.first().map_or(0, |&b| usize::from(b)) % (config.vhosts.len() + 1);
    let server = if pick == 0 {
        &config.main
    } else {
        &config.vhosts[pick - 1]
    };

    if let Ok(uri) = normalize(&target, server.allow_encoded_slashes) {
        assert!(uri.starts_with('/'), "{target:?} → {uri:?}");
        assert!(
            !uri.split('/').any(|s| s == ".." || s == ".") && !uri.contains('\0'),
            "{target:?} → {uri:?}"
        );
        let mapped = map(server, &uri);
        let path = &mapped.path;
        assert!(no_parent(path), "{uri:?} → {path:?}");
        assert!(
            path.starts_with(&mapped.root),
            "{uri:?} → {path:?} outside {:?}",
            mapped.root
        );
        // The root is the DocumentRoot or a prefix alias's target; an AliasMatch result
        // lies under the target's text before its first `$` (except through UNALIGNED,
        // whose `..` resolves above it, as httpd resolves it).
        let known_root = mapped.root == server.document_root
            || server.aliases_map.iter().any(|rule| match &rule.matcher {
                UrlMatcher::Prefix(_) => {
                    let t = rule.target.trim_end_matches('/');
                    mapped.root == Path::new(if t.is_empty() { "/" } else { t })
                }
                UrlMatcher::Regex(re) if re.as_str() == UNALIGNED => true,
                UrlMatcher::Regex(_) => {
                    let fixed = &rule.target[..rule.target.find('$').unwrap_or(rule.target.len())];
                    let fixed = &fixed[..fixed.rfind('/').map_or(0, |i| i + 1)];
                    path.starts_with(fixed)
                }
            });
        assert!(
            known_root,
            "{uri:?} → {path:?} under unknown root {:?}",
            mapped.root
        );
    }

    // Routing: any Host (as text, the way the worker has it) picks an existing server,
    // and names are compared without case.
    let host = host.map(String::from_utf8_lossy);
    let upper = host.as_deref().map(str::to_ascii_uppercase);
    for ip in [
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([10, 0, 0, 1]),
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    ] {
        for port in [80, 443, 8080] {
            let route = config
                .vhost_table
                .route(&config.vhosts, ip, port, host.as_deref());
            if let Route::Vhost(i) = route {
                assert!(i < config.vhosts.len());
            }
            let shouted = config
                .vhost_table
                .route(&config.vhosts, ip, port, upper.as_deref());
            assert_eq!(route, shouted, "{host:?} on {ip}:{port}");
        }
    }
});
