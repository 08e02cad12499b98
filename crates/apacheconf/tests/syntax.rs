//! The syntax rules and error kinds, one table or test each, on real files.

use std::path::{Path, PathBuf};

use apacheconf::{
    parse_bytes, parse_file, parse_htaccess, Directive, Host, ModuleLoad, Options, Parsed, Severity,
};

/// A host that knows `alias` as built in, provides `ssl` on LoadModule and skips others.
struct TestHost;

impl Host for TestHost {
    fn env_var(&self, name: &str) -> Option<String> {
        (name == "APACHE_LOG_DIR").then(|| "/var/log/apache2".to_owned())
    }
    fn builtin_module(&self, id: &str) -> bool {
        id == "alias" || id == "core"
    }
    fn load_module(&self, id: &str, _path: &str) -> ModuleLoad {
        match id {
            "ssl" => ModuleLoad::Provided,
            other => ModuleLoad::Skipped(format!("{other}_module is not built into this host")),
        }
    }
    fn known_directive(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("Listen")
    }
    fn known_section(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("VirtualHost")
    }
}

fn parse(text: &str) -> Parsed {
    let options = Options {
        server_root: "/nonexistent".into(),
        defines: vec!["CLI".into()],
        forbid_includes: true,
    };
    parse_bytes(text.as_bytes(), Path::new("t.conf"), &options, &TestHost)
}

/// `Name arg|arg` lines of the tree, sections as `<Name args>` followed by their children.
fn flat(dirs: &[Directive]) -> Vec<String> {
    let mut out = Vec::new();
    for d in dirs {
        match &d.children {
            Some(children) => {
                out.push(format!("<{} {}>", d.name, d.args.join("|")));
                out.extend(flat(children).into_iter().map(|l| format!("  {l}")));
            }
            None => out.push(format!("{} {}", d.name, d.args.join("|"))),
        }
    }
    out
}

fn messages(p: &Parsed) -> Vec<String> {
    p.diagnostics.iter().map(|d| d.to_string()).collect()
}

#[test]
fn directives_with_lines_and_quoted_arguments() {
    let p = parse("# comment\nListen 80\n  ServerName \"a b\"   'c d'\nFoo a\\\\b \"x\\\"y\" # not a comment\n");
    assert!(p.diagnostics.is_empty(), "{:?}", messages(&p));
    assert_eq!(
        flat(&p.directives),
        [
            "Listen 80",
            "ServerName a b|c d",
            "Foo a\\b|x\"y|#|not|a|comment"
        ]
    );
    let lines: Vec<u32> = p.directives.iter().map(|d| d.span.line).collect();
    assert_eq!(lines, [2, 3, 4]);
}

#[test]
fn continuation_lines_keep_the_first_line_number() {
    let p = parse("\nAlias /a \\\n   /b\nUser x\n");
    assert_eq!(flat(&p.directives), ["Alias /a|/b", "User x"]);
    assert_eq!(p.directives[0].span.line, 2);
    assert_eq!(p.directives[1].span.line, 4);
}

#[test]
fn names_are_case_insensitive_and_kept_as_written() {
    let p = parse("<virtualhost *:80>\ndocumentroot /x\n</VIRTUALHOST>\n");
    assert!(p.diagnostics.is_empty(), "{:?}", messages(&p));
    assert!(p.directives[0].is("VirtualHost"));
    assert_eq!(p.directives[0].name, "virtualhost");
}

#[test]
fn nested_sections() {
    let p = parse("<VirtualHost *:80 [::1]:80>\n<Directory \"/var/www\">\nOptions None\n</Directory>\n</VirtualHost>\n");
    assert!(p.diagnostics.is_empty(), "{:?}", messages(&p));
    assert_eq!(
        flat(&p.directives),
        [
            "<VirtualHost *:80|[::1]:80>",
            "  <Directory /var/www>",
            "    Options None"
        ]
    );
}

#[test]
fn structural_errors_carry_file_and_line() {
    let table: &[(&str, &[&str])] = &[
        (
            "<VirtualHost *:80>\n<Directory /x>\n</VirtualHost>\n",
            &["t.conf:3: Expected </Directory> but saw </VirtualHost>"],
        ),
        (
            "<Directory /x>\nOptions None\n",
            &["t.conf:1: Directory: <Directory> was not closed"],
        ),
        (
            "Listen 80\n</Directory>\n",
            &["t.conf:2: </Directory> without matching <Directory> section"],
        ),
        (
            "<Directory /x\n</Directory>\n",
            &["t.conf:1: Directory: <Directory> directive missing closing '>'"],
        ),
        (
            "ServerName \"abc\n",
            &["t.conf:1: ServerName: unterminated \" quote"],
        ),
        (
            "<Directory '/x>\n</Directory>\n",
            &["t.conf:1: Directory: unterminated ' quote"],
        ),
        (
            "<IfModule>\n</IfModule>\n",
            &["t.conf:1: IfModule: <IfModule> takes one argument"],
        ),
        (
            "Define a:b x\n",
            &["t.conf:1: Define: Variable name must not contain ':'"],
        ),
        (
            "<A>\n<B>\n<C>\n</A>\nX\n</B>\n",
            &[
                "t.conf:4: Expected </C> but saw </A>",
                "t.conf:6: </B> without matching <B> section",
            ],
        ),
    ];
    for (text, want) in table {
        let p = parse(text);
        assert_eq!(&messages(&p), want, "for {text:?}");
        assert!(p.diagnostics.iter().all(|d| d.severity == Severity::Error));
    }
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let p = parse("A \"x\nB 'y\n<C>\n");
    assert_eq!(messages(&p).len(), 3, "{:?}", messages(&p));
}

#[test]
fn define_and_variables() {
    let p = parse(
        "Define ROOT /srv/www\nDefine FLAG\nDocumentRoot ${ROOT}/a\nErrorLog ${APACHE_LOG_DIR}/e.log\n\
         Foo ${NOPE}\nUnDefine ROOT\nBar ${ROOT}\nDefine TWO \"a b\"\nBaz ${TWO}\n",
    );
    assert_eq!(
        flat(&p.directives),
        [
            "DocumentRoot /srv/www/a",
            "ErrorLog /var/log/apache2/e.log",
            "Foo ${NOPE}",
            "Bar ${ROOT}",
            "Baz a|b"
        ]
    );
    assert_eq!(
        messages(&p),
        [
            "t.conf:5: warning: config variable ${NOPE} is not defined",
            "t.conf:7: warning: config variable ${ROOT} is not defined",
        ]
    );
    assert_eq!(p.defines, ["CLI", "FLAG", "TWO"]);
}

#[test]
fn conditional_sections() {
    let text = "\
<IfDefine CLI>\nA\n</IfDefine>\n<IfDefine !CLI>\nB\n</IfDefine>\n<IfDefine NOPE>\nDefine SECRET\n</IfDefine>\n\
<IfDefine SECRET>\nC\n</IfDefine>\n\
<IfModule mod_alias.c>\nD\n</IfModule>\n<IfModule alias_module>\nE\n</IfModule>\n\
<IfModule !mod_ssl.c>\nF\n</IfModule>\nLoadModule ssl_module /x/mod_ssl.so\n<IfModule ssl_module>\nG\n</IfModule>\n\
LoadModule php_module /x/libphp.so\n<IfModule mod_php.c>\nH\n</IfModule>\n\
<IfDirective Listen>\nI\n</IfDirective>\n<IfDirective !Frob>\nJ\n</IfDirective>\n\
<IfSection VirtualHost>\nK\n</IfSection>\n<IfFile />\nL\n</IfFile>\n<IfFile !/no/such/file>\nM\n</IfFile>\n\
<IfDefine CLI>\n<IfModule !mod_alias.c>\nN\n</IfModule>\n<Directory />\nO\n</Directory>\n</IfDefine>\n";
    let p = parse(text);
    let names: Vec<&str> = p.directives.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "A",
            "D",
            "E",
            "F",
            "LoadModule",
            "G",
            "LoadModule",
            "I",
            "J",
            "K",
            "L",
            "M",
            "Directory"
        ]
    );
    assert_eq!(
        messages(&p),
        ["t.conf:26: warning: LoadModule: php_module is not built into this host"]
    );
}

#[test]
fn false_conditionals_still_check_nesting_but_execute_nothing() {
    let p = parse("<IfDefine NOPE>\nInclude /etc\n<Directory /x>\n</IfDefine>\n");
    assert_eq!(
        messages(&p),
        ["t.conf:4: Expected </Directory> but saw </IfDefine>"]
    );
    assert!(p.directives.is_empty());
}

#[test]
fn binary_garbage_and_long_lines_give_errors_not_panics() {
    let mut bytes = b"Listen 80\n".to_vec();
    bytes.extend_from_slice(&[0xff, 0x00, 0xfe, b'\n']);
    bytes.extend(std::iter::repeat_n(b'x', 1 << 20));
    bytes.extend_from_slice(b"\n<\n<>\n</>\n\"\n");
    let options = Options {
        forbid_includes: true,
        ..Options::default()
    };
    let p = parse_bytes(&bytes, Path::new("g.conf"), &options, &TestHost);
    let m = messages(&p);
    assert!(
        m.contains(&"g.conf:2: line is not valid UTF-8".to_owned()),
        "{m:?}"
    );
    assert_eq!(
        m[1..],
        [
            "g.conf:4: section without a name",
            "g.conf:5: section without a name",
            "g.conf:6: </> without matching <> section",
            "g.conf:7: \": unterminated \" quote",
        ]
    );
    // The 1 MB line is one directive named x…x; the model rejects it with file:line.
    assert_eq!(p.directives[1].name.len(), 1 << 20);
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn parse_at(root: &Path, main: &Path) -> Parsed {
    let options = Options {
        server_root: root.to_path_buf(),
        ..Options::default()
    };
    parse_file(main, &options, &TestHost)
}

#[test]
fn include_files_wildcards_and_directories_relative_to_server_root() {
    let dir = tempdir();
    let root = dir.path();
    let main = write(
        root,
        "main.conf",
        "A\nInclude mods/*.load\nInclude conf.d\nIncludeOptional nothing/*.conf\nIncludeOptional sites/*.conf\nZ\n",
    );
    write(root, "mods/b.load", "B1\n");
    write(root, "mods/a.load", "A1\n");
    write(root, "mods/a.conf", "NOTME\n");
    write(root, "mods/.hidden.load", "NOTME\n");
    write(root, "conf.d/2.conf", "C2\n");
    write(root, "conf.d/1.conf", "C1\n");
    write(root, "conf.d/sub/3.conf", "C3\n");
    write(
        root,
        "sites/x.conf",
        "<VirtualHost *:80>\nS\n</VirtualHost>\n",
    );
    let p = parse_at(root, &main);
    assert!(p.diagnostics.is_empty(), "{:?}", messages(&p));
    assert_eq!(
        flat(&p.directives),
        [
            "A ",
            "A1 ",
            "B1 ",
            "C1 ",
            "C2 ",
            "C3 ",
            "<VirtualHost *:80>",
            "  S ",
            "Z "
        ]
    );
    let site = &p.directives[6];
    assert_eq!(site.span.file.as_ref(), root.join("sites/x.conf"));
    assert_eq!(site.span.line, 1);
}

#[test]
fn include_errors() {
    let dir = tempdir();
    let root = dir.path();
    let main = write(
        root,
        "main.conf",
        "Include missing.conf\nInclude none/*.conf\nInclude loop.conf\n",
    );
    write(root, "loop.conf", "X\nInclude main.conf\n");
    let p = parse_at(root, &main);
    let m = messages(&p);
    assert_eq!(m.len(), 3, "{m:?}");
    let main_s = main.display();
    assert!(
        m[0].starts_with(&format!(
            "{main_s}:1: Include: Could not open configuration file "
        )),
        "{m:?}"
    );
    assert!(
        m[1].starts_with(&format!("{main_s}:2: Include: No matches for the wildcard")),
        "{m:?}"
    );
    assert!(
        m[2].contains("loop.conf:2: Include: Include loop: "),
        "{m:?}"
    );
    assert_eq!(flat(&p.directives), ["X "]);
}

#[test]
fn a_section_cannot_span_files() {
    let dir = tempdir();
    let root = dir.path();
    let main = write(
        root,
        "main.conf",
        "<VirtualHost *:80>\nInclude inner.conf\n</VirtualHost>\n",
    );
    write(root, "inner.conf", "</VirtualHost>\n<Directory /x>\n");
    let p = parse_at(root, &main);
    let m = messages(&p);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(
        m[0].ends_with("inner.conf:1: </VirtualHost> without matching <VirtualHost> section"),
        "{m:?}"
    );
    assert!(
        m[1].ends_with("inner.conf:2: Directory: <Directory> was not closed"),
        "{m:?}"
    );
}

#[test]
fn server_root_directive_moves_later_includes() {
    let dir = tempdir();
    let root = dir.path();
    write(root, "other/x.conf", "FromOther\n");
    let main = write(
        root,
        "main.conf",
        &format!(
            "ServerRoot {}\nInclude x.conf\n",
            root.join("other").display()
        ),
    );
    let p = parse_at(Path::new("/"), &main);
    assert!(p.diagnostics.is_empty(), "{:?}", messages(&p));
    assert_eq!(p.directives[1].name, "FromOther");
    assert_eq!(p.server_root, root.join("other"));
}

#[test]
fn htaccess_refuses_read_time_directives_and_sees_main_defines() {
    let main = parse("Define SITE a.test\n");
    let text = b"ErrorDocument 404 /${SITE}.html\nInclude /etc/passwd\nDefine X\n<IfDefine CLI>\nRequire all denied\n</IfDefine>\n";
    let p = parse_htaccess(text, Path::new("/w/.htaccess"), &main, &TestHost);
    assert_eq!(
        flat(&p.directives),
        ["ErrorDocument 404|/a.test.html", "Require all|denied"]
    );
    assert_eq!(
        messages(&p),
        [
            "/w/.htaccess:2: Include: not allowed here",
            "/w/.htaccess:3: Define: not allowed here"
        ]
    );
}

#[test]
fn a_line_that_variables_expand_to_blanks_is_skipped_not_a_panic() {
    // Found by tests/roundtrip.rs: the reader took the first word of a line that had none.
    let p = parse("Define EMPTY \"\"\nDefine BLANK \" \"\n${EMPTY}\n  ${BLANK}  \nListen 80\n");
    assert!(p.diagnostics.is_empty(), "{:?}", messages(&p));
    assert_eq!(flat(&p.directives), ["Listen 80"]);
    let h = parse_htaccess(
        b"${EMPTY}\nRequire all granted\n",
        Path::new("/w/.htaccess"),
        &p,
        &TestHost,
    );
    assert!(h.diagnostics.is_empty(), "{:?}", messages(&h));
    assert_eq!(flat(&h.directives), ["Require all|granted"]);
}

#[test]
fn directive_names_that_need_quotes_are_printed_quoted() {
    // Found by tests/roundtrip.rs: a name is a word like an argument, so `"#x"`, `""` or
    // `"a b"` name a directive, and write_tree printed them bare (a comment, nothing, two words).
    let text = "Define HASH #h\n${HASH} 1\n\"\" 2\n\"a b\" 3\n\"<x\" 4\n'</x>' 5\n";
    let p = parse(text);
    assert!(p.diagnostics.is_empty(), "{:?}", messages(&p));
    let want = ["#h 1", " 2", "a b 3", "<x 4", "</x> 5"];
    assert_eq!(flat(&p.directives), want);
    let printed = apacheconf::write_tree(&p.directives);
    assert_eq!(
        printed,
        "\"#h\" 1\n\"\" 2\n\"a b\" 3\n\"<x\" 4\n\"</x>\" 5\n"
    );
    let again = parse(&printed);
    assert!(again.diagnostics.is_empty(), "{:?}", messages(&again));
    assert_eq!(flat(&again.directives), want);
}

#[test]
fn deeply_nested_sections_are_an_error_not_a_stack_overflow() {
    // The reader recurses once per open section: 100 000 of them overflowed the stack.
    let deep = 100_000;
    let text = format!(
        "<a>\n{}Inner\n{}</a>\nAfter\n",
        "<b>\n".repeat(deep),
        "</b>\n".repeat(deep)
    );
    let p = parse(&text);
    assert_eq!(
        messages(&p),
        ["t.conf:129: b: sections nested deeper than 128"]
    );
    let mut depth = 0;
    let mut level = &p.directives;
    while let Some(children) = level.first().and_then(|d| d.children.as_ref()) {
        depth += 1;
        level = children;
    }
    assert_eq!(depth, 128);
    assert_eq!(p.directives.last().map(|d| d.name.as_str()), Some("After"));

    // Nesting within the limit is read whole, and so is the rest of a file too deep.
    let ok = format!("{}X\n{}", "<b>\n".repeat(128), "</b>\n".repeat(128));
    assert!(parse(&ok).diagnostics.is_empty());
    let unclosed = "<b>\n".repeat(deep);
    let m = messages(&parse(&unclosed));
    assert_eq!(m.len(), 130, "{:?}", &m[..3]);
    assert_eq!(m[0], "t.conf:129: b: sections nested deeper than 128");
}

#[test]
fn doubling_defines_stop_at_the_line_limit_instead_of_eating_memory() {
    let mut text = String::from("Define A xxxxxxxxxxxxxxxx\n");
    for _ in 0..40 {
        text.push_str("Define A ${A}${A}\n");
    }
    text.push_str("Listen ${A}\n");
    let p = parse(&text);
    let m = messages(&p);
    assert!(
        m.iter()
            .any(|l| l.ends_with("line longer than 16777216 bytes after variable expansion")),
        "{:?}",
        &m[..m.len().min(3)]
    );
}
