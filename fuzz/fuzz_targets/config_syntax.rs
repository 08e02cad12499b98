//! httpd.conf syntax: no input makes the reader panic, and a tree read without errors
//! prints (`write_tree`) to text that reads back as the same tree, on the printed lines.
#![no_main]

use std::path::Path;

use apacheconf::{
    parse_bytes, parse_htaccess, write_tree, Directive, Host, ModuleLoad, Options, Parsed,
};
use libfuzzer_sys::fuzz_target;

/// Fixed answers: nothing depends on the environment of the fuzzing process.
struct FuzzHost;

impl Host for FuzzHost {
    fn env_var(&self, name: &str) -> Option<String> {
        match name {
            "APACHE_LOG_DIR" => Some("/var/log/apache2".to_owned()),
            "APACHE_RUN_USER" | "APACHE_RUN_GROUP" => Some("www-data".to_owned()),
            "SPACED" => Some("a  b".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }
    fn builtin_module(&self, id: &str) -> bool {
        matches!(id, "core" | "http" | "so" | "alias" | "mime")
    }
    fn load_module(&self, id: &str, _path: &str) -> ModuleLoad {
        match id {
            "ssl" | "mpm_itk" | "rewrite" | "headers" => ModuleLoad::Provided,
            other => ModuleLoad::Skipped(format!("{other}_module is not built in")),
        }
    }
    fn known_directive(&self, name: &str) -> bool {
        ["Listen", "ServerName", "AssignUserID"]
            .iter()
            .any(|d| d.eq_ignore_ascii_case(name))
    }
    fn known_section(&self, name: &str) -> bool {
        ["VirtualHost", "Directory", "Files"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
    }
}

fn options() -> Options {
    Options {
        server_root: "/nonexistent".into(),
        defines: vec!["CLI".into(), "SSL".into(), "DEFAULT_VHOST".into()],
        forbid_includes: true,
    }
}

fn has_var(dirs: &[Directive]) -> bool {
    dirs.iter().any(|d| {
        d.name.contains("${")
            || d.args.iter().any(|a| a.contains("${"))
            || d.children.as_deref().is_some_and(has_var)
    })
}

/// A directive in tree order: line, name, arguments and, for a section, how many children
/// (which together give the whole tree).
type Entry = (u32, String, Vec<String>, Option<usize>);

fn entry(line: u32, d: &Directive) -> Entry {
    let children = d.children.as_ref().map(Vec::len);
    (line, d.name.clone(), d.args.clone(), children)
}

/// The tree with the line `write_tree` prints each directive on: one a line, and a
/// section's `</Name>` after its children.
fn printed(dirs: &[Directive], next: &mut u32, out: &mut Vec<Entry>) {
    for d in dirs {
        out.push(entry(*next, d));
        *next += 1;
        if let Some(children) = &d.children {
            printed(children, next, out);
            *next += 1;
        }
    }
}

/// The tree with the line each directive was read on.
fn read(dirs: &[Directive], out: &mut Vec<Entry>) {
    for d in dirs {
        out.push(entry(d.span.line, d));
        if let Some(children) = &d.children {
            read(children, out);
        }
    }
}

/// No error and no `${` left in the tree: then its printed text reads back the same.
fn check_reprint(first: &Parsed, reparse: impl Fn(&[u8]) -> Parsed) {
    if first.has_errors() || has_var(&first.directives) {
        return;
    }
    let text = write_tree(&first.directives);
    let again = reparse(text.as_bytes());
    let errors: Vec<String> = again.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(!again.has_errors(), "reprint {text:?} gives {errors:?}");
    let mut want = Vec::new();
    printed(&first.directives, &mut 1, &mut want);
    let mut got = Vec::new();
    read(&again.directives, &mut got);
    assert_eq!(got, want, "reprint {text:?}");
}

fuzz_target!(|data: &[u8]| {
    let main = parse_bytes(data, Path::new("fuzz.conf"), &options(), &FuzzHost);
    for d in &main.diagnostics {
        let _ = d.to_string();
    }
    check_reprint(&main, |text| {
        parse_bytes(text, Path::new("reprint.conf"), &options(), &FuzzHost)
    });

    let htaccess = parse_htaccess(data, Path::new("/srv/www/.htaccess"), &main, &FuzzHost);
    check_reprint(&htaccess, |text| {
        parse_htaccess(text, Path::new("/srv/www/.htaccess"), &main, &FuzzHost)
    });
});
