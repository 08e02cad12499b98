//! Property tests: printed trees read back as the same tree on the lines they were printed
//! on, and no input, however broken, makes the parser panic.

use std::path::Path;

use apacheconf::{
    parse_bytes, parse_htaccess, write_tree, Directive, Host, ModuleLoad, Options, Parsed, Span,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Fixed answers, so that nothing depends on the environment of the test process.
struct FixedHost;

impl Host for FixedHost {
    fn env_var(&self, name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/fixed".to_owned()),
            "SPACED" => Some("a  b".to_owned()),
            "EMPTY_ENV" => Some(String::new()),
            _ => None,
        }
    }
    fn builtin_module(&self, id: &str) -> bool {
        id == "core" || id == "alias"
    }
    fn load_module(&self, id: &str, _path: &str) -> ModuleLoad {
        match id {
            "ssl" => ModuleLoad::Provided,
            other => ModuleLoad::Skipped(format!("{other}_module is not built in")),
        }
    }
    fn known_directive(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("Listen")
    }
    fn known_section(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("VirtualHost")
    }
}

fn options() -> Options {
    Options {
        server_root: "/nonexistent".into(),
        defines: vec!["CLI".into(), "SSL".into()],
        forbid_includes: true,
    }
}

fn parse(text: &[u8]) -> Parsed {
    parse_bytes(text, Path::new("rt.conf"), &options(), &FixedHost)
}

/// A main configuration whose variables the `.htaccess` properties expand.
fn htaccess_main() -> Parsed {
    parse(
        b"Define V value\nDefine EMPTY \"\"\nDefine BLANK \"  \"\nDefine LT \"<x\"\n\
          Define CLOSE \"</x>\"\nDefine HASH \"#h\"\nDefine Q \"\\\"\"\nDefine DOLLAR $\n",
    )
}

/// The names httpd executes while reading (or whose sections it evaluates): they do not
/// stay in the tree as written, so generated trees do not use them.
const READ_TIME: &[&str] = &[
    "Define",
    "UnDefine",
    "Include",
    "IncludeOptional",
    "ServerRoot",
    "LoadModule",
    "IfDefine",
    "IfModule",
    "IfDirective",
    "IfSection",
    "IfFile",
];

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9_]{0,12}".prop_filter("executed on read", |n| {
        !READ_TIME.iter().any(|r| r.eq_ignore_ascii_case(n))
    })
}

/// Any character but control characters (tab aside), with httpd.conf's special ones often.
fn arg_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            ' ', '\t', '"', '\'', '\\', '#', '<', '>', '$', '{', '}', '/', '*', '!', '\u{a0}',
            '\u{2028}', '\u{feff}', '\u{3000}', 'é', '€',
        ]),
        4 => prop::char::range(' ', '~'),
        2 => any::<char>().prop_filter("control character", |c| !c.is_control()),
    ]
}

/// Any argument httpd can carry through a configuration file: everything but `${`, which
/// httpd expands before it splits words.
fn arg() -> impl Strategy<Value = String> {
    prop::collection::vec(arg_char(), 0..12)
        .prop_map(|chars| chars.into_iter().collect::<String>())
        .prop_filter("${ cannot be written", |a| !a.contains("${"))
}

fn directive(name: String, args: Vec<String>, children: Option<Vec<Directive>>) -> Directive {
    Directive {
        name,
        args,
        span: Span {
            file: Path::new("generated").into(),
            line: 0,
        },
        children,
    }
}

/// Directives and sections nested up to three deep.
fn tree() -> impl Strategy<Value = Vec<Directive>> {
    let leaf = prop_oneof![
        3 => (name(), prop::collection::vec(arg(), 0..5))
            .prop_map(|(n, a)| directive(n, a, None)),
        1 => (name(), prop::collection::vec(arg(), 0..3))
            .prop_map(|(n, a)| directive(n, a, Some(Vec::new()))),
    ];
    let node = leaf.prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            1 => (name(), prop::collection::vec(arg(), 0..5))
                .prop_map(|(n, a)| directive(n, a, None)),
            2 => (
                name(),
                prop::collection::vec(arg(), 0..3),
                prop::collection::vec(inner, 0..6),
            )
                .prop_map(|(n, a, c)| directive(n, a, Some(c))),
        ]
    });
    prop::collection::vec(node, 0..8)
}

/// What a tree says, without where it was read.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    name: String,
    args: Vec<String>,
    children: Option<Vec<Shape>>,
}

fn shape(dirs: &[Directive]) -> Vec<Shape> {
    dirs.iter()
        .map(|d| Shape {
            name: d.name.clone(),
            args: d.args.clone(),
            children: d.children.as_deref().map(shape),
        })
        .collect()
}

fn has_var(dirs: &[Directive]) -> bool {
    dirs.iter().any(|d| {
        d.name.contains("${")
            || d.args.iter().any(|a| a.contains("${"))
            || d.children.as_deref().is_some_and(has_var)
    })
}

/// The line each directive of `dirs` is printed on, in tree order: one line per directive,
/// a section's children after its header and its `</Name>` after them.
fn printed_lines(dirs: &[Directive], next: &mut u32, out: &mut Vec<u32>) {
    for d in dirs {
        out.push(*next);
        *next += 1;
        if let Some(children) = &d.children {
            printed_lines(children, next, out);
            *next += 1;
        }
    }
}

fn read_lines(dirs: &[Directive], out: &mut Vec<(u32, String)>) {
    for d in dirs {
        out.push((d.span.line, d.name.clone()));
        if let Some(children) = &d.children {
            read_lines(children, out);
        }
    }
}

fn messages(p: &Parsed) -> Vec<String> {
    p.diagnostics.iter().map(|d| d.to_string()).collect()
}

fn pieces(pieces: Vec<&'static str>) -> BoxedStrategy<String> {
    prop::sample::select(pieces).prop_map(str::to_owned).boxed()
}

/// A word of a directive line: mostly well formed, sometimes not.
fn soup_word() -> BoxedStrategy<String> {
    prop_oneof![
        4 => pieces(vec![
            "#", "}", "!", ">", "<", "$", "\"\"", "''", "\"a b\"", "'a \\' b'", "\\\\",
            "a\\b", "\"x\\\"y\"", "${V}", "${EMPTY}", "${BLANK}", "${LT}", "${CLOSE}",
            "${HASH}", "${Q}", "${DOLLAR}", "${HOME}", "${SPACED}", "${EMPTY_ENV}", "${NOPE}",
            "x${V}y", "\u{feff}", "\u{a0}", "é", "\u{b}", "\u{c}", "\u{0}", "*:80",
        ]),
        3 => name(),
        2 => arg().prop_map(|a| apacheconf::quote_arg(&a).into_owned()),
        1 => arg(),
        1 => pieces(vec!["\"", "'", "\\", "${", "\\\n", "\\\r\n", "\r"]),
    ]
    .boxed()
}

/// One line of httpd.conf, usually almost valid, without its end.
fn soup_line() -> BoxedStrategy<String> {
    let first = prop_oneof![
        6 => name(),
        1 => pieces(vec![
            "${V}", "${EMPTY}", "${BLANK}", "${LT}", "${CLOSE}", "${HASH}", "${Q}",
            "\"a b\"", "\"\"", "\"#x\"", "\"<x\"", "'</x>'", "#", "Define", "UnDefine",
        ]),
    ];
    prop_oneof![
        5 => (first, prop::collection::vec(soup_word(), 0..4), pieces(vec![" ", "  ", "\t"]))
            .prop_map(|(first, words, sep)| {
                std::iter::once(first).chain(words).collect::<Vec<_>>().join(&sep)
            }),
        2 => pieces(vec![
            "Define V value", "Define V", "Define EMPTY \"\"", "Define BLANK \" \"",
            "Define LT <x", "Define CLOSE </x>", "Define HASH #h", "Define Q \\\"",
            "Define DOLLAR $", "Define V ${V}${V}", "UnDefine V", "ServerRoot /",
            "LoadModule ssl_module x.so", "LoadModule foo_module x.so", "Listen 80",
            "# comment ${NOPE} \"", "Include /x", "IncludeOptional /x/*.conf", "</x>", "<x>",
        ]),
        1 => prop::collection::vec(soup_word(), 0..6).prop_map(|w| w.concat()),
    ]
    .boxed()
}

/// Lines and sections, nested, mostly balanced, with bits of broken syntax mixed in.
fn soup_block() -> BoxedStrategy<Vec<u8>> {
    let end = pieces(vec!["\n", "\n", "\n", "\n", "\r\n", "\\\n", ""]);
    let line = (soup_line(), end)
        .prop_map(|(line, end)| (line + &end).into_bytes())
        .boxed();
    let section = prop_oneof![
        4 => prop::sample::select(vec![
            ("<IfDefine CLI>", "</IfDefine>"),
            ("<IfDefine !CLI>", "</ifdefine>"),
            ("<IfDefine V>", "</IfDefine>"),
            ("<IfModule ssl>", "</IfModule>"),
            ("<IfModule !mod_alias.c>", "</IfModule>"),
            ("<IfFile />", "</IfFile>"),
            ("<IfDirective Listen>", "</IfDirective>"),
            ("<IfSection !VirtualHost>", "</IfSection>"),
            ("<VirtualHost *:80>", "</VirtualHost>"),
            ("<Directory \"/a b\">", "</Directory>"),
            ("<a>", "</A>"),
            ("<${LT}>", "</x>"),
        ])
        .prop_map(|(open, close)| (open.to_owned(), close.to_owned())),
        3 => (name(), prop::collection::vec(soup_word(), 0..3))
            .prop_map(|(n, args)| (format!("<{n} {}>", args.join(" ")), format!("</{n}>"))),
        1 => (soup_line(), soup_line()),
    ];
    line.clone().prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            2 => line.clone(),
            1 => (section.clone(), prop::collection::vec(inner, 0..6)).prop_map(
                |((open, close), body)| {
                    [format!("{open}\n").into_bytes(), body.concat(), format!("{close}\n").into_bytes()]
                        .concat()
                },
            ),
        ]
    })
    .boxed()
}

/// Pieces of httpd.conf syntax, glued at random into files that are mostly almost valid.
fn config_soup() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(soup_block(), 0..10).prop_map(|blocks| blocks.concat()),
        1 => prop::collection::vec(soup_word(), 0..40).prop_map(|w| w.concat().into_bytes()),
    ]
}

/// No error, no variable left in the tree: then printing it reads back the same.
fn check_reprint(first: &Parsed, reparse: impl Fn(&[u8]) -> Parsed) -> Result<(), TestCaseError> {
    if first.has_errors() || has_var(&first.directives) {
        return Ok(());
    }
    let text = write_tree(&first.directives);
    let again = reparse(text.as_bytes());
    prop_assert!(
        !again.has_errors(),
        "reprint {text:?} gives {:?}",
        messages(&again)
    );
    prop_assert_eq!(
        shape(&again.directives),
        shape(&first.directives),
        "reprint {:?}",
        text
    );
    Ok(())
}

proptest! {
    #![proptest_config(Config {
        cases: 512,
        // Failures are turned into named regression tests in syntax.rs instead.
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn printed_trees_read_back_the_same_on_their_lines(tree in tree()) {
        let text = write_tree(&tree);
        let p = parse(text.as_bytes());
        prop_assert!(p.diagnostics.is_empty(), "{:?} for {:?}", messages(&p), text);
        prop_assert_eq!(shape(&p.directives), shape(&tree), "for {:?}", text);

        let mut want = Vec::new();
        printed_lines(&tree, &mut 1, &mut want);
        let mut got = Vec::new();
        read_lines(&p.directives, &mut got);
        let got_lines: Vec<u32> = got.iter().map(|(l, _)| *l).collect();
        prop_assert_eq!(&got_lines, &want, "for {:?}", text);
        // And that line is the directive's own (the printer puts one directive a line).
        let printed: Vec<&str> = text.lines().collect();
        for (line, name) in &got {
            let at = printed[*line as usize - 1].trim_start();
            prop_assert!(
                at.strip_prefix('<').unwrap_or(at).starts_with(name.as_str()),
                "line {} is {:?}, not {}", line, at, name
            );
        }
        prop_assert!(p.directives.iter().all(|d| d.span.file.as_ref() == Path::new("rt.conf")));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let p = parse(&bytes);
        let _ = parse_htaccess(&bytes, Path::new("/w/.htaccess"), &p, &FixedHost);
        let _ = parse_htaccess(&bytes, Path::new("/w/.htaccess"), &htaccess_main(), &FixedHost);
    }

    #[test]
    fn config_soup_never_panics_and_reprints_the_same(bytes in config_soup()) {
        let p = parse(&bytes);
        check_reprint(&p, parse)?;

        let main = htaccess_main();
        let h = parse_htaccess(&bytes, Path::new("/w/.htaccess"), &main, &FixedHost);
        check_reprint(&h, |text| {
            parse_htaccess(text, Path::new("/w/.htaccess"), &main, &FixedHost)
        })?;
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn sections_nested_to_any_depth_never_overflow_the_stack(
        depth in 0usize..20_000,
        opener in prop::sample::select(vec!["<a>", "<IfDefine CLI>", "<IfDefine !CLI>"]),
        closed in any::<bool>(),
    ) {
        let closer = if opener.starts_with("<a") { "</a>\n" } else { "</IfDefine>\n" };
        let mut text = format!("{opener}\n").repeat(depth);
        text.push_str("X\n");
        if closed {
            text.push_str(&closer.repeat(depth));
        }
        let p = parse(text.as_bytes());
        let _ = parse_htaccess(text.as_bytes(), Path::new("/w/.htaccess"), &p, &FixedHost);
        // httpd has no nesting limit; this reader refuses a 129th open section.
        let fine = depth <= 128 && (closed || depth == 0);
        prop_assert_eq!(p.has_errors(), !fine, "{:?}", messages(&p).first());
    }
}
