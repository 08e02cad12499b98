//! `.htaccess` files: no input makes `parse_htaccess` or `load_htaccess` panic under any
//! AllowOverride set, what a file sets stays inside what its set allows (never an
//! identity, a nice value or an AllowOverride of its own), and its `Header` actions apply
//! to a response without panicking and without touching the framing headers.
#![no_main]

use std::path::Path;
use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, HeaderValue, CONNECTION, CONTENT_LENGTH};
use itkd_config::dirconf::{OptionSet, OptionsSetting};
use itkd_config::directives::Override;
use itkd_config::{load_htaccess, DirConfig, Htaccess, Overrides, Parsed};
use itkd_http::headers::{self, Produced};
use libfuzzer_sys::fuzz_target;

#[path = "common/system.rs"]
mod system;
use system::FuzzSystem;

/// The main configuration `.htaccess` files are read against: defines and variables
/// (`${APACHE_RUN_USER}`) and the modules `<IfModule>` sees.
fn main_config() -> Parsed {
    let options = apacheconf::Options {
        server_root: "/nonexistent".into(),
        defines: vec!["FUZZ".into()],
        forbid_includes: true,
    };
    let text = b"Define APACHE_RUN_USER www-data\nLoadModule headers_module mod_headers.so\n";
    apacheconf::parse_bytes(
        text,
        Path::new("fuzz.conf"),
        &options,
        &itkd_config::modules::ItkdHost,
    )
}

fn overrides(classes: &[Override], options: Option<OptionSet>, list: &[&str]) -> Overrides {
    Overrides {
        classes: classes.iter().copied().collect(),
        options,
        list: list.iter().map(|s| s.to_ascii_lowercase()).collect(),
    }
}

/// What no `.htaccess` may ever set, whatever AllowOverride says.
fn check_never(dir: &DirConfig) {
    assert!(dir.assign.is_none(), "AssignUserID from .htaccess");
    assert!(dir.user_expr.is_none() && dir.group_expr.is_none(), "AssignUserIDExpr from .htaccess");
    assert!(dir.nice.is_none(), "NiceValue from .htaccess");
    assert!(dir.allow_override.is_none(), "AllowOverride from .htaccess");
}

/// Every DirConfig the file produced: its own and its `<Files>` sections'.
fn configs(h: &Htaccess) -> Vec<&DirConfig> {
    let mut out = vec![&h.dir];
    out.extend(h.files.iter().map(|s| &s.config));
    out
}

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static MAIN: Parsed = main_config();
    }
    MAIN.with(|main| {
        let path = Path::new("/srv/www/.htaccess");
        let parsed =
            apacheconf::parse_htaccess(data, path, main, &itkd_config::modules::ItkdHost);
        for d in &parsed.diagnostics {
            let _ = d.to_string();
        }
        let sets = [
            overrides(&Override::ALL, None, &[]),
            overrides(&[Override::FileInfo], None, &["Require", "AssignUserID"]),
            overrides(&[Override::AuthConfig], None, &[]),
            overrides(&[Override::Limit], None, &[]),
            overrides(&[Override::Options], Some(OptionSet::INDEXES), &[]),
            overrides(&[], None, &["Header", "Redirect"]),
        ];
        for set in &sets {
            let (h, diags) = load_htaccess(data, path, main, set, &FuzzSystem);
            for d in &diags {
                let _ = d.to_string();
            }
            let fileinfo = set.classes.contains(&Override::FileInfo)
                || set.list.iter().any(|n| n == "header");
            let auth = set.classes.contains(&Override::AuthConfig)
                || set.list.iter().any(|n| n == "require");
            for dir in configs(&h) {
                check_never(dir);
                if !fileinfo {
                    assert!(dir.headers.is_empty(), "Header without FileInfo");
                }
                if !auth {
                    assert!(dir.require.is_none(), "Require without AuthConfig");
                }
                if let (Some(allowed), Some(setting)) = (set.options, dir.options) {
                    // Options=…: only the listed options may be named (an absolute
                    // `Options Indexes` still turns the others off, as in httpd).
                    let named = match setting {
                        OptionsSetting::Set(set) => set,
                        OptionsSetting::Change { add, remove } => add.union(remove),
                    };
                    assert!(allowed.contains(named), "Options beyond Options=…: {setting:?}");
                }
                apply_headers(dir);
            }
        }
    });
});

/// The file's `Header` actions on a sample response, for each way it can be produced.
fn apply_headers(dir: &DirConfig) {
    if dir.headers.is_empty() {
        return;
    }
    let env = [("V".to_owned(), "v".to_owned())];
    let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let req = headers::Request {
        env: &env,
        received,
        now: received + Duration::from_millis(3),
    };
    for produced in [Produced::Handler, Produced::Cgi, Produced::ErrorPath] {
        let mut map = HeaderMap::new();
        map.insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
        map.insert(CONNECTION, HeaderValue::from_static("close"));
        map.append("x-a", HeaderValue::from_static("1"));
        map.append("x-a", HeaderValue::from_static("\"q, r\", s"));
        headers::apply(&dir.headers, produced, &mut map, &req);
        let lengths: Vec<&HeaderValue> = map.get_all(CONTENT_LENGTH).iter().collect();
        assert_eq!(lengths, [&HeaderValue::from_static("5")], "Content-Length changed");
        let connection: Vec<&HeaderValue> = map.get_all(CONNECTION).iter().collect();
        assert_eq!(connection, [&HeaderValue::from_static("close")], "Connection changed");
    }
}
