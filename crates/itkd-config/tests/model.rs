//! The configuration model on real configuration text and the real user database:
//! every error kind with its file:line and httpd's wording, and what the model builds.

use std::net::IpAddr;
use std::path::Path;

use itkd_config::dirconf::{ErrorDocument, OptionSet};
use itkd_config::model::ServerConfig;
use itkd_config::vhost::Route;
use itkd_config::{load_htaccess, load_parsed, Loaded, Overrides, Severity, System};

/// The machine's own user database (no test doubles: `#n` ids need no entry, and
/// `root`, `nobody`, `nogroup` exist on Debian).
struct RealUsers;

impl System for RealUsers {
    fn user_by_name(&self, name: &str) -> Option<(u32, u32)> {
        itkd_sys::users::user_by_name(name).map(|u| (u.uid, u.gid))
    }
    fn group_by_name(&self, name: &str) -> Option<u32> {
        itkd_sys::users::group_by_name(name)
    }
    fn user_name(&self, uid: u32) -> Option<String> {
        itkd_sys::users::user_by_uid(uid).map(|u| u.name)
    }
    fn group_name(&self, gid: u32) -> Option<String> {
        itkd_sys::users::group_name(gid)
    }
    fn resolve_host(&self, name: &str) -> Vec<IpAddr> {
        match name {
            "localhost" => vec!["127.0.0.1".parse().unwrap()],
            _ => Vec::new(),
        }
    }
    fn default_server_name(&self) -> String {
        "host.test".to_owned()
    }
}

/// Lines 1-4 are this header, so a snippet's first line is line 5.
const HEADER: &str = "User #20000\nGroup #21000\nDocumentRoot /tmp\nServerName main.test\n";

fn load(snippet: &str) -> Loaded {
    let text = format!("{HEADER}{snippet}");
    let options = apacheconf::Options {
        server_root: "/tmp".into(),
        forbid_includes: true,
        ..Default::default()
    };
    let parsed = apacheconf::parse_bytes(
        text.as_bytes(),
        Path::new("t.conf"),
        &options,
        &itkd_config::modules::ItkdHost,
    );
    load_parsed(parsed, &RealUsers)
}

fn errors(l: &Loaded) -> Vec<String> {
    l.errors().map(ToString::to_string).collect()
}

fn warnings(l: &Loaded) -> Vec<String> {
    l.warnings().map(ToString::to_string).collect()
}

fn config(snippet: &str) -> ServerConfig {
    let l = load(snippet);
    assert_eq!(errors(&l), Vec::<String>::new(), "for {snippet:?}");
    l.config.expect("no errors, so a config")
}

#[test]
fn every_error_kind_has_file_line_and_httpds_wording() {
    let table: &[(&str, &str)] = &[
        ("FooBar x", "t.conf:5: FooBar: Invalid command 'FooBar', perhaps misspelled or defined by a module not included in the server configuration"),
        ("<VirtualHost *:80>\nFooBar\n</VirtualHost>", "t.conf:6: FooBar: Invalid command 'FooBar', perhaps misspelled or defined by a module not included in the server configuration"),
        ("<If \"true\">\n</If>", "t.conf:5: If: Invalid command '<If', perhaps misspelled or defined by a module not included in the server configuration"),
        ("<Directory /x>\nMaxClientsVHost 5\n</Directory>", "t.conf:6: MaxClientsVHost: not allowed in <Directory> context"),
        ("AssignUserID #20001", "t.conf:5: AssignUserID: AssignUserID takes two arguments, Tie a virtual host to a specific child process."),
        ("AssignUserID a b c", "t.conf:5: AssignUserID: AssignUserID takes two arguments, Tie a virtual host to a specific child process."),
        ("AssignUserID nosuchuser-itk #21001", "t.conf:5: AssignUserID: bad user name nosuchuser-itk"),
        ("AssignUserID #20001 nosuchgroup-itk", "t.conf:5: AssignUserID: bad group name nosuchgroup-itk"),
        ("<VirtualHost *:80>\nLimitUIDRange 1 2\n</VirtualHost>", "t.conf:6: LimitUIDRange: cannot occur within <VirtualHost> section"),
        ("<VirtualHost *:80>\nEnableCapabilities Off\n</VirtualHost>", "t.conf:6: EnableCapabilities: cannot occur within <VirtualHost> section"),
        ("<VirtualHost *:80>\nListen 81\n</VirtualHost>", "t.conf:6: Listen: cannot occur within <VirtualHost> section"),
        ("NiceValue abc", "t.conf:5: NiceValue: NiceValue must be a number, not 'abc'"),
        ("<VirtualHost *:80>\nMaxClientsVHost abc\n</VirtualHost>", "t.conf:6: MaxClientsVHost: MaxClientsVHost must be a number, not 'abc'"),
        ("Timeout abc", "t.conf:5: Timeout: Timeout must be a number of seconds (or with ms, s, mi, h), not 'abc'"),
        ("ServerAlias x.test", "t.conf:5: ServerAlias: only used in <VirtualHost>"),
        ("Require all granted", "t.conf:5: Require: not allowed here"),
        ("Options +Indexes FollowSymLinks", "t.conf:5: Options: Either all Options must start with + or -, or no Option may."),
        ("Options Bogus", "t.conf:5: Options: Illegal option Bogus"),
        ("KeepAlive maybe", "t.conf:5: KeepAlive: KeepAlive must be On or Off"),
        ("Redirect gone /x http://y", "t.conf:5: Redirect: Redirect URL not valid for this status"),
        ("Redirect /x", "t.conf:5: Redirect: URL to redirect to is missing"),
        ("ErrorDocument 999 /x", "t.conf:5: ErrorDocument: Unsupported HTTP response code 999"),
        ("Listen 99999", "t.conf:5: Listen: Invalid address or port"),
        ("Listen abc", "t.conf:5: Listen: Port must be specified"),
        ("Listen 80\nListen 80", "t.conf:6: Listen: Cannot define multiple Listeners on the same IP:port"),
        ("<VirtualHost>\n</VirtualHost>", "t.conf:5: VirtualHost: <VirtualHost> directive requires additional arguments"),
        ("<VirtualHost *:http>\n</VirtualHost>", "t.conf:5: VirtualHost: The port number \"http\" is outside the appropriate range (i.e., 1..65535)."),
        ("LogFormat \"%Z\" bad", "t.conf:5: LogFormat: Unrecognized LogFormat directive %Z"),
        ("ServerTokens Bogus", "t.conf:5: ServerTokens: ServerTokens takes 1 argument: 'Prod(uctOnly)', 'Major', 'Minor', 'Min(imal)', 'OS', or 'Full'"),
        ("LimitRequestBody -1", "t.conf:5: LimitRequestBody: LimitRequestBody requires a non-negative integer."),
        ("<Directory />\nAllowOverride Bogus\n</Directory>", "t.conf:6: AllowOverride: Illegal override option Bogus"),
        ("<Directory />\nRequire ip 300.1.1.1\n</Directory>", "t.conf:6: Require: ip address '300.1.1.1' appears to be invalid"),
        ("<Directory />\nRequire not ip 10.0.0.1\n</Directory>", "t.conf:6: Require: negative Require directive has no effect in <RequireAny> directive"),
        ("<Directory />\n<RequireAll>\nOptions None\nRequire all granted\n</RequireAll>\n</Directory>", "t.conf:7: Options: not allowed in <RequireAll> context"),
        ("HostnameLookups On", "t.conf:5: HostnameLookups: HostnameLookups On/Double is not supported by itkd: a DNS lookup per request would stall workers; use Off and resolve names in log analysis"),
        ("<DirectoryMatch \"(\">\n</DirectoryMatch>", "t.conf:5: DirectoryMatch: Regular expression could not be compiled: regex parse error:\n    (\n    ^\nerror: unclosed group"),
        ("AssignUserIDExpr %{REMOTE_ADDR}", "t.conf:5: AssignUserIDExpr: Cannot parse expression '%{REMOTE_ADDR}': unsupported variable %{REMOTE_ADDR} in expression (itkd supports HTTP_HOST, SERVER_NAME, REQUEST_URI, reqenv:NAME, ENV:NAME)"),
        ("<Directory /x>\n<Directory /y>\n</Directory>\n</Directory>", "t.conf:6: Directory: not allowed in <Directory> context"),
        ("TypesConfig /nonexistent/mime.types", "t.conf:5: TypesConfig: could not open mime types config file /nonexistent/mime.types: No such file or directory (os error 2)"),
        ("TypesConfig /dev/zero", "t.conf:5: TypesConfig: could not open mime types config file /dev/zero: not a regular file"),
        ("DocumentRoot /nonexistent-itkd", "t.conf:5: DocumentRoot: DocumentRoot '/nonexistent-itkd' is not a directory, or is not readable"),
        ("RequestReadTimeout header=20-10", "t.conf:5: RequestReadTimeout: RequestReadTimeout: maximum timeout below the timeout in 'header=20-10'"),
    ];
    for (snippet, want) in table {
        let l = load(snippet);
        assert_eq!(errors(&l), [*want], "for {snippet:?}");
        assert!(
            l.config.is_none(),
            "an error means no config, for {snippet:?}"
        );
    }
}

#[test]
fn static_ids_outside_the_ranges_are_load_errors() {
    let l = load(
        "<VirtualHost *:80>\nAssignUserID root root\n</VirtualHost>\nAssignUserID #20001 #0\n",
    );
    assert_eq!(
        errors(&l),
        [
            "t.conf:6: AssignUserID: uid 0 is outside LimitUIDRange 1-4294967294: requests would run as (or fail on) it; itkd refuses it at load",
            "t.conf:6: AssignUserID: gid 0 is outside LimitGIDRange 1-4294967294: requests would run as (or fail on) it; itkd refuses it at load",
            "t.conf:8: AssignUserID: gid 0 is outside LimitGIDRange 1-4294967294: requests would run as (or fail on) it; itkd refuses it at load",
        ]
    );
    let l = load("User root\nLimitUIDRange 20000 30000\nLimitGIDRange 21000 31000\nAssignUserID #19999 #21000\n");
    assert_eq!(
        errors(&l),
        [
            "t.conf:5: User: uid 0 is outside LimitUIDRange 20000-30000: requests would run as (or fail on) it; itkd refuses it at load",
            "t.conf:8: AssignUserID: uid 19999 is outside LimitUIDRange 20000-30000: requests would run as (or fail on) it; itkd refuses it at load",
        ]
    );
    // Without User/Group the defaults (nobody/nogroup) are checked like written ones.
    let l = apacheconf::parse_bytes(
        b"LimitGIDRange 1 10\nDocumentRoot /tmp\nServerName t\n",
        Path::new("d.conf"),
        &apacheconf::Options {
            forbid_includes: true,
            ..Default::default()
        },
        &itkd_config::modules::ItkdHost,
    );
    let l = load_parsed(l, &RealUsers);
    let nogroup = itkd_sys::users::group_by_name("nogroup").unwrap();
    assert_eq!(
        errors(&l),
        [format!("d.conf: Group: gid {nogroup} is outside LimitGIDRange 1-10: requests would run as (or fail on) it; itkd refuses it at load")]
    );
    // A range that admits 0 admits root, as mpm-itk's does.
    config("LimitUIDRange 0 30000\nLimitGIDRange 0 31000\nAssignUserID root root\n");
}

#[test]
fn all_errors_are_reported_not_only_the_first() {
    let l = load(
        "FooBar\nNiceValue x\n<Directory /x>\nMaxClientsVHost 2\n</Directory>\nKeepAlive maybe\n",
    );
    let lines: Vec<u32> = l.errors().map(|d| d.span.line).collect();
    assert_eq!(lines, [5, 6, 8, 10]);
}

#[test]
fn a_relative_directory_path_warns_that_it_never_matches() {
    let l = load("<Directory www>\n</Directory>\n");
    assert_eq!(
        warnings(&l),
        ["t.conf:5: warning: Directory: <Directory> path 'www' is not absolute: like httpd, itkd never matches it"]
    );
}

#[test]
fn nice_value_is_clamped_with_httpds_warning() {
    let l = load("NiceValue 99\n<Directory /x>\nNiceValue -25\n</Directory>\n");
    assert_eq!(
        warnings(&l),
        [
            "t.conf:5: warning: NiceValue: NiceValue of 99 is above 19, lowering NiceValue to 19.",
            "t.conf:7: warning: NiceValue: NiceValue of -25 is below -20, increasing NiceValue to -20.",
        ]
    );
    let c = l.config.unwrap();
    assert_eq!(c.main.dir.nice, Some(19));
    assert_eq!(c.main.sections[0].config.nice, Some(-20));
}

#[test]
fn users_and_groups_resolve_by_name_and_number() {
    let c = config("<VirtualHost *:80>\nServerName a.test\nAssignUserID #20001 #21001\n</VirtualHost>\n<VirtualHost *:80>\nServerName n.test\nAssignUserID nobody nogroup\n</VirtualHost>\n");
    let a = c.vhosts[0].dir.assign.as_ref().unwrap();
    assert_eq!((a.user.uid, a.group.gid), (20001, 21001));
    assert_eq!(a.span.line, 7);
    let nobody = itkd_sys::users::user_by_name("nobody").unwrap();
    let n = c.vhosts[1].dir.assign.as_ref().unwrap();
    assert_eq!(
        (n.user.uid, n.user.name.as_deref()),
        (nobody.uid, Some("nobody"))
    );
    assert_eq!(
        n.group.gid,
        itkd_sys::users::group_by_name("nogroup").unwrap()
    );
    assert_eq!((c.user.uid, c.group.gid), (20000, 21000));
}

#[test]
fn max_clients_vhost_at_server_level_is_the_default() {
    let c = config("MaxClientsVHost 7\n<VirtualHost *:80>\nServerName a.test\n</VirtualHost>\n<VirtualHost *:80>\nServerName b.test\nMaxClientsVHost 0\n</VirtualHost>\n<VirtualHost *:80>\nServerName c.test\nMaxClientsVHost 3\n</VirtualHost>\n");
    let limits: Vec<Option<u32>> = c.vhosts.iter().map(|v| v.max_clients_vhost).collect();
    assert_eq!(limits, [Some(7), None, Some(3)]);
}

#[test]
fn vhost_routing_by_address_then_name() {
    let c = config(
        "<VirtualHost *:80>\nServerName first.test\n</VirtualHost>\n\
         <VirtualHost *:80>\nServerName a.test\nServerAlias www.a.test *.a.test\n</VirtualHost>\n\
         <VirtualHost 127.0.0.1:80>\nServerName local.test\n</VirtualHost>\n\
         <VirtualHost 127.0.0.1:80>\nServerName local2.test\n</VirtualHost>\n\
         <VirtualHost [::1]:8081 localhost:8082>\nServerName six.test\n</VirtualHost>\n",
    );
    let route = |ip: &str, port, host| {
        c.vhost_table
            .route(&c.vhosts, ip.parse().unwrap(), port, host)
    };
    assert_eq!(route("10.0.0.1", 80, Some("a.test")), Route::Vhost(1));
    assert_eq!(
        route("10.0.0.1", 80, Some("WWW.A.TEST:80")),
        Route::Vhost(1)
    );
    assert_eq!(
        route("10.0.0.1", 80, Some("deep.sub.a.test")),
        Route::Vhost(1)
    );
    assert_eq!(route("10.0.0.1", 80, Some("nosuch.test")), Route::Vhost(0));
    assert_eq!(route("10.0.0.1", 80, None), Route::Vhost(0));
    // A specific address is chosen before *, and has its own default.
    assert_eq!(route("127.0.0.1", 80, Some("local2.test")), Route::Vhost(3));
    assert_eq!(route("127.0.0.1", 80, Some("a.test")), Route::Vhost(2));
    assert_eq!(
        route("::ffff:127.0.0.1", 80, Some("local2.test")),
        Route::Vhost(3)
    );
    assert_eq!(route("::1", 8081, Some("x")), Route::Vhost(4));
    assert_eq!(route("127.0.0.1", 8082, Some("x")), Route::Vhost(4));
    // No <VirtualHost> for the address: the main server.
    assert_eq!(route("10.0.0.1", 9999, Some("a.test")), Route::Main);
}

#[test]
fn vhosts_inherit_the_main_server() {
    let c = config(
        "Timeout 7\nKeepAliveTimeout 250ms\nCustomLog /tmp/main.log \"%h %r\"\nAlias /icons/ /usr/share/icons/\n\
         <Directory /srv>\nOptions -FollowSymLinks +ExecCGI\n</Directory>\n\
         <VirtualHost *:80>\nServerName a.test\nTimeout 9\nAlias /a/ /srv/a/\n<Location /x>\nRequire all denied\n</Location>\n</VirtualHost>\n\
         <VirtualHost *:80>\nServerName b.test\nCustomLog /tmp/b.log common\nLogFormat \"%h\" common\n</VirtualHost>\n",
    );
    let (a, b) = (&c.vhosts[0], &c.vhosts[1]);
    assert_eq!(a.timeout.as_secs(), 9);
    assert_eq!(b.timeout.as_secs(), 7);
    assert_eq!(a.keep_alive_timeout.as_millis(), 250);
    assert_eq!(a.custom_logs.len(), 1, "a inherits the main server's log");
    assert_eq!(
        b.custom_logs[0].format.source, "%h",
        "nicknames resolve after every LogFormat is read"
    );
    let aliases: Vec<u32> = a.aliases_map.iter().map(|r| r.span.line).collect();
    assert_eq!(
        aliases,
        [15, 8],
        "the vhost's aliases come before the main server's"
    );
    assert_eq!(a.sections.len(), 2, "main's sections, then the vhost's");
    assert_eq!(
        a.sections[0].config.effective_options(),
        OptionSet::EXEC_CGI,
        "FollowSymLinks (httpd's default) removed, ExecCGI added"
    );
}

#[test]
fn debian_style_tolerated_directives_load() {
    config(
        "LanguagePriority en de\nForceLanguagePriority Prefer Fallback\nRequestReadTimeout header=20-40,minrate=500\n\
         RequestReadTimeout body=10,minrate=500\nBrowserMatch \"Mozilla/2\" nokeepalive\nExtendedStatus On\n\
         Mutex file:/var/lock default\nDefaultRuntimeDir /tmp\nIndexOptions FancyIndexing\nAddIcon /icons/a.gif .a\n\
         AddLanguage en .en\nAddCharset UTF-8 .utf8\nRemoveType es\nAddHandler type-map var\n",
    );
}

#[test]
fn if_module_follows_load_module() {
    let c = config(
        "<IfModule mod_alias.c>\nAlias /before/ /x/\n</IfModule>\nLoadModule alias_module /x/mod_alias.so\n\
         <IfModule alias_module>\nAlias /after/ /x/\n</IfModule>\n<IfModule mod_log_config.c>\nAlias /static/ /x/\n</IfModule>\n",
    );
    let froms: Vec<String> = c
        .main
        .aliases_map
        .iter()
        .map(|r| match &r.matcher {
            itkd_config::model::UrlMatcher::Prefix(p) => p.clone(),
            itkd_config::model::UrlMatcher::Regex(r) => r.to_string(),
        })
        .collect();
    assert_eq!(froms, ["/after/", "/static/"]);
    let l =
        load("LoadModule php_module /x/libphp.so\nLoadModule rewrite_module /x/mod_rewrite.so\n");
    let w = warnings(&l);
    assert!(w[0].starts_with("t.conf:5: warning: LoadModule: php_module is not loaded: itkd runs PHP as the tenant through php-cgi"), "{w:?}");
    assert!(
        w[1].starts_with("t.conf:6: warning: LoadModule: rewrite_module is not supported by itkd"),
        "{w:?}"
    );
}

fn htaccess(text: &str, allow: &str) -> (itkd_config::Htaccess, Vec<String>) {
    // The AllowOverride set comes from a real <Directory> section.
    let c = load(&format!("<Directory /w>\n{allow}\n</Directory>\n"));
    let overrides: Overrides = c.config.as_ref().unwrap().main.sections[0]
        .config
        .allow_override
        .clone()
        .unwrap();
    let (h, diags) = load_htaccess(
        text.as_bytes(),
        Path::new("/w/.htaccess"),
        &c.parsed,
        &overrides,
        &RealUsers,
    );
    let shown = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    (h, shown)
}

#[test]
fn htaccess_honours_allow_override_and_never_allows_mpm_itk() {
    let (h, errs) = htaccess(
        "ErrorDocument 404 /missing.html\nAddType text/plain .conf\n",
        "AllowOverride FileInfo",
    );
    assert_eq!(errs, Vec::<String>::new());
    assert_eq!(
        h.dir.error_documents,
        [(404, ErrorDocument::Local("/missing.html".into()))]
    );

    for (text, allow, want) in [
        ("AssignUserID #1 #1", "AllowOverride All", "/w/.htaccess:1: AssignUserID: not allowed here"),
        ("NiceValue 5", "AllowOverride All", "/w/.htaccess:1: NiceValue: not allowed here"),
        ("MaxClientsVHost 5", "AllowOverride All", "/w/.htaccess:1: MaxClientsVHost: not allowed here"),
        ("AssignUserIDExpr x", "AllowOverride All\nAllowOverrideList AssignUserIDExpr", "/w/.htaccess:1: AssignUserIDExpr: not allowed here"),
        ("Listen 80", "AllowOverride All", "/w/.htaccess:1: Listen: not allowed here"),
        ("Options +Indexes", "AllowOverride FileInfo", "/w/.htaccess:1: Options: not allowed here"),
        ("Options +ExecCGI", "AllowOverride Options=Indexes,MultiViews", "/w/.htaccess:1: Options: Option ExecCGI not allowed here"),
        ("Require all denied", "AllowOverride FileInfo", "/w/.htaccess:1: Require: not allowed here"),
        ("<RequireAll>\nRequire all denied\n</RequireAll>", "AllowOverride FileInfo", "/w/.htaccess:1: RequireAll: not allowed here"),
        ("<Files x>\nErrorDocument 404 /x\n</Files>", "AllowOverride FileInfo", ""),
        // httpd's OR_ALL: allowed under whatever class AllowOverride grants.
        ("ServerSignature Off\nLimitRequestBody 10", "AllowOverride Indexes", ""),
        ("<Limit GET>\nRequire all denied\n</Limit>", "AllowOverride AuthConfig", ""),
        ("ServerSignature Off", "AllowOverride None\nAllowOverrideList DirectoryIndex", "/w/.htaccess:1: ServerSignature: not allowed here"),
        ("Include /etc/passwd", "AllowOverride All", "/w/.htaccess:1: Include: not allowed here"),
        ("Redirect /a http://x/", "AllowOverride None\nAllowOverrideList Redirect", ""),
        ("Frob", "AllowOverride All", "/w/.htaccess:1: Frob: Invalid command 'Frob', perhaps misspelled or defined by a module not included in the server configuration"),
    ] {
        let (_, errs) = htaccess(text, allow);
        let want: Vec<&str> = if want.is_empty() { vec![] } else { vec![want] };
        assert_eq!(errs, want, "{text} under {allow}");
    }

    let (h, errs) = htaccess(
        "<Files secret.txt>\nRequire all denied\n</Files>\nOptions -Indexes\n",
        "AllowOverride AuthConfig Options",
    );
    assert_eq!(errs, Vec::<String>::new());
    assert_eq!(h.files.len(), 1);
    assert!(h.files[0].config.require.is_some());
}

#[test]
fn header_directives_parse_with_httpds_messages() {
    use itkd_config::dirconf::{HeaderOp, HeaderPiece, HeaderTable};
    let c = config(
        "Header set X-A \"1 2\"\n<Directory /w>\nHeader always append X-B: b env=!NOPE\nHeader onsuccess unset ETag\nHeader merge Cache-Control \"100%% %{V}e %t %D%\"\n</Directory>\n<IfModule headers_module>\nHeader add X-Mod 1\n</IfModule>\n",
    );
    let top = &c.main.dir.headers;
    assert_eq!(
        top.len(),
        1,
        "<IfModule headers_module> is false without LoadModule"
    );
    assert_eq!(
        (top[0].table, top[0].op, top[0].name.as_str()),
        (HeaderTable::OnSuccess, HeaderOp::Set, "X-A")
    );
    assert_eq!(top[0].value, [HeaderPiece::Text("1 2".into())]);
    let inner = &c.main.sections[0].config.headers;
    assert_eq!(
        (inner[0].table, inner[0].op, inner[0].name.as_str()),
        (HeaderTable::Always, HeaderOp::Append, "X-B")
    );
    assert_eq!(inner[0].condition, Some((false, "NOPE".to_owned())));
    assert_eq!(
        (inner[1].table, inner[1].op, inner[1].value.len()),
        (HeaderTable::OnSuccess, HeaderOp::Unset, 0)
    );
    assert_eq!(
        inner[2].value,
        [
            HeaderPiece::Text("100% ".into()),
            HeaderPiece::Env("V".into()),
            HeaderPiece::Text(" ".into()),
            HeaderPiece::Time,
            HeaderPiece::Text(" ".into()),
            HeaderPiece::Duration,
            HeaderPiece::Text("%".into()),
        ]
    );
    // Outer actions first, then the inner section's.
    let merged = c.main.dir.merge(&c.main.sections[0].config);
    let names: Vec<&str> = merged.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["X-A", "X-B", "ETag", "Cache-Control"]);
    let loaded = config("LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so\n<IfModule headers_module>\nHeader add X-Mod 1\n</IfModule>\n");
    assert_eq!(
        loaded.main.dir.headers.len(),
        1,
        "LoadModule headers_module makes <IfModule> true"
    );

    for (line, want) in [
        ("Header set X-A", "t.conf:5: Header: Header requires three arguments"),
        ("Header always", "t.conf:5: Header: Header requires three arguments"),
        ("Header unset X-A b c", "t.conf:5: Header: header unset takes two arguments"),
        ("Header set X-A 1 env=V extra", "t.conf:5: Header: Too many arguments to directive"),
        ("Header frob X-A 1", "t.conf:5: Header: first argument must be 'add', 'set', 'setifempty', 'append', 'merge', 'unset', 'echo', 'note', 'edit', or 'edit*'."),
        ("Header edit X-A a b", "t.conf:5: Header: edit is not supported by itkd (set, append, add, merge, setifempty and unset are)"),
        ("Header set X-A 1 expr=%{REQUEST_URI}", "t.conf:5: Header: condition 'expr=%{REQUEST_URI}' is not supported by itkd: use env=VAR or env=!VAR (expr= is not supported)"),
        ("Header set X-A expr=%{REQUEST_URI}", "t.conf:5: Header: values of the form expr=… are not supported by itkd"),
        ("Header set X-A 1 early", "t.conf:5: Header: early is not supported by itkd (a debugging aid in httpd)"),
        ("Header set X-A %x", "t.conf:5: Header: Unrecognized header format %x"),
        ("Header set X-A %{V}s", "t.conf:5: Header: Header format %s is not supported by itkd (%t, %D, %{VAR}e and %% are)"),
        ("Header set X-A %{V", "t.conf:5: Header: Header format %{ without its closing }"),
        ("Header set \"X A\" 1", "t.conf:5: Header: 'X A' is not a valid HTTP field name"),
    ] {
        assert_eq!(errors(&load(&format!("{line}\n"))), [want], "{line}");
    }
    let w = warnings(&load("Header set Content-Length 5\n"));
    assert!(
        w.iter()
            .any(|w| w.starts_with("t.conf:5: warning: Header: Content-Length has no effect")),
        "{w:?}"
    );
}

#[test]
fn limit_sections_in_htaccess_need_auth_config_or_limit() {
    for (text, allow, want) in [
        (
            "<Limit GET>\nRequire all denied\n</Limit>",
            "AllowOverride AuthConfig",
            "",
        ),
        (
            "<LimitExcept GET>\nRequire all denied\n</LimitExcept>",
            "AllowOverride AuthConfig",
            "",
        ),
        ("<Limit GET>\n</Limit>", "AllowOverride Limit", ""),
        // Require itself is AuthConfig's.
        (
            "<Limit GET>\nRequire all denied\n</Limit>",
            "AllowOverride Limit",
            "/w/.htaccess:2: Require: not allowed here",
        ),
        (
            "<Limit GET>\nRequire all denied\n</Limit>",
            "AllowOverride Indexes FileInfo",
            "/w/.htaccess:1: Limit: not allowed here",
        ),
        (
            "<LimitExcept GET>\n</LimitExcept>",
            "AllowOverride Options",
            "/w/.htaccess:1: LimitExcept: not allowed here",
        ),
        (
            "Header set X 1",
            "AllowOverride AuthConfig",
            "/w/.htaccess:1: Header: not allowed here",
        ),
        ("Header set X 1", "AllowOverride FileInfo", ""),
    ] {
        let (_, errs) = htaccess(text, allow);
        let want: Vec<&str> = if want.is_empty() { vec![] } else { vec![want] };
        assert_eq!(errs, want, "{text} under {allow}");
    }
}

#[test]
fn relative_options_lines_in_one_htaccess_add_up() {
    let base = OptionSet::SYM_LINKS;
    for (text, want) in [
        (
            "Options +Indexes\nOptions +ExecCGI\n",
            base.union(OptionSet::INDEXES).union(OptionSet::EXEC_CGI),
        ),
        ("Options +Indexes\nOptions -Indexes\n", base),
        (
            "Options +Indexes -FollowSymLinks\nOptions +ExecCGI\n",
            OptionSet::INDEXES.union(OptionSet::EXEC_CGI),
        ),
        (
            "Options Indexes\nOptions +ExecCGI\n",
            OptionSet::INDEXES.union(OptionSet::EXEC_CGI),
        ),
        ("Options +ExecCGI\nOptions Indexes\n", OptionSet::INDEXES),
    ] {
        let (h, errs) = htaccess(text, "AllowOverride Options");
        assert_eq!(errs, Vec::<String>::new(), "{text}");
        assert_eq!(h.dir.effective_options(), want, "{text}");
    }
}

#[test]
fn ssl_directives_merge_and_report_with_file_and_line() {
    let c = config(
        "LoadModule ssl_module mods/mod_ssl.so\n<IfModule ssl_module>\nSSLProtocol all -SSLv3\nSSLCipherSuite HIGH:!aNULL\nSSLCertificateFile /etc/x/main.pem\n</IfModule>\n<VirtualHost *:443>\nServerName a.test\nSSLEngine on\nSSLCertificateFile a.pem\nSSLCertificateKeyFile a.key\nSSLProtocol -all +TLSv1.3\nSSLSessionTickets off\n</VirtualHost>\n<VirtualHost *:443>\nServerName b.test\nSSLEngine on\n</VirtualHost>\n<VirtualHost *:80>\nServerName c.test\n</VirtualHost>\n",
    );
    let a = &c.vhosts[0].ssl;
    assert!(a.engine);
    assert_eq!(
        a.certificate_files[0].0,
        Path::new("/tmp/a.pem"),
        "relative to ServerRoot"
    );
    assert_eq!(a.key_files[0].0, Path::new("/tmp/a.key"));
    assert!(!a.protocols.tls12 && a.protocols.tls13);
    assert!(!a.session_tickets);
    let b = &c.vhosts[1].ssl;
    assert_eq!(
        b.certificate_files[0].0,
        Path::new("/etc/x/main.pem"),
        "inherited"
    );
    assert!(b.protocols.tls12 && b.protocols.tls13 && b.session_tickets);
    assert_eq!(
        b.cipher_suite.as_ref().map(|(s, _)| s.as_str()),
        Some("HIGH:!aNULL")
    );
    assert!(!c.vhosts[2].ssl.engine);

    let l = load("SSLProtocol TLSv9\nSSLCipherSuite RC4-SHA\nSSLEngine optional\nSSLProtocol +TLSv1.1 +TLSv1.2\n");
    let e = errors(&l);
    assert!(
        e.iter()
            .any(|m| m.contains(":5: SSLProtocol: Illegal protocol 'TLSv9'")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|m| m.contains(":6: SSLCipherSuite:")
            && m.contains("selects no cipher suite rustls offers")),
        "{e:?}"
    );
    assert!(e.iter().any(|m| m.contains(":7: SSLEngine:")), "{e:?}");
    let w = warnings(&l);
    assert!(
        w.iter()
            .any(|m| m.contains(":8: warning: SSLProtocol:")
                && m.contains("TLSv1.1 is not supported")),
        "{w:?}"
    );
}

/// mod_access_compat's and CGIPassAuth's errors and contexts, with httpd's wording
/// (checked against `apache2 -t`).
#[test]
fn access_compat_and_cgi_pass_auth_errors_as_httpd() {
    let in_dir = |line: &str| format!("<Directory /x>\n{line}\n</Directory>");
    let table: &[(String, &str)] = &[
        ("Order deny,allow".into(), "t.conf:5: Order: not allowed here"),
        ("Satisfy any".into(), "t.conf:5: Satisfy: not allowed here"),
        ("CGIPassAuth On".into(), "t.conf:5: CGIPassAuth: not allowed here"),
        (in_dir("Order allow, deny"), "t.conf:6: Order: order takes one argument, 'allow,deny', 'deny,allow', or 'mutual-failure'"),
        (in_dir("Order foo"), "t.conf:6: Order: unknown order"),
        (in_dir("Allow 1.2.3.4"), "t.conf:6: Allow: allow requires at least two arguments, 'from' followed by hostnames or IP-address wildcards"),
        (in_dir("Deny from"), "t.conf:6: Deny: deny requires at least two arguments, 'from' followed by hostnames or IP-address wildcards"),
        (in_dir("Allow to 1.2.3.4"), "t.conf:6: Allow: allow and deny must be followed by 'from'"),
        (in_dir("Deny from 300.1.1.1"), "t.conf:6: Deny: The specified IP address is invalid."),
        (in_dir("Deny from 1.2.3.4/0"), "t.conf:6: Deny: The specified network mask is invalid."),
        (in_dir("Deny from foo/24"), "t.conf:6: Deny: An IP address was expected"),
        (in_dir("Satisfy some"), "t.conf:6: Satisfy: Satisfy either 'any' or 'all'."),
        (in_dir("CGIPassAuth maybe"), "t.conf:6: CGIPassAuth: CGIPassAuth must be On or Off"),
    ];
    for (snippet, want) in table {
        let l = load(snippet);
        assert_eq!(errors(&l), [*want], "for {snippet:?}");
    }
    // What httpd accepts, itkd accepts (apache2 -t: Syntax OK).
    for ok in [
        in_dir("Order Deny,Allow\nDeny from all\nAllow from 10.1 10.2.0.0/16 10.3.0.0/255.255.0.0 ::1 2001:db8::/32 localhost .example.com env=A env=!B\nSatisfy Any\nCGIPassAuth On"),
        "<Location />\nOrder mutual-failure\nAllow from all\n<Limit POST>\nDeny from all\n</Limit>\n</Location>".into(),
        "<Files x>\norder allow,deny\nallow from all\n</Files>".into(),
    ] {
        config(&ok);
    }
}

/// `.htaccess`: Order/Allow/Deny need `AllowOverride Limit`, Satisfy and CGIPassAuth need
/// `AuthConfig` (httpd's OR_LIMIT and OR_AUTHCFG).
#[test]
fn access_compat_in_htaccess_follows_allow_override() {
    let text = "Order deny,allow\nDeny from all\nSatisfy All\nCGIPassAuth On\n";
    for (allow, want) in [
        (
            "AllowOverride Limit",
            vec![
                "/w/.htaccess:3: Satisfy: not allowed here",
                "/w/.htaccess:4: CGIPassAuth: not allowed here",
            ],
        ),
        (
            "AllowOverride AuthConfig",
            vec![
                "/w/.htaccess:1: Order: not allowed here",
                "/w/.htaccess:2: Deny: not allowed here",
            ],
        ),
        ("AllowOverride Limit AuthConfig", vec![]),
        (
            "AllowOverride None\nAllowOverrideList Order Deny",
            vec![
                "/w/.htaccess:3: Satisfy: not allowed here",
                "/w/.htaccess:4: CGIPassAuth: not allowed here",
            ],
        ),
    ] {
        let (h, errs) = htaccess(text, allow);
        assert_eq!(errs, want, "{allow}");
        if want.is_empty() {
            assert_eq!(h.dir.cgi_pass_auth, Some(true));
            let access = h.dir.access_compat.expect("Order/Deny/Satisfy are kept");
            assert_eq!((access.deny.len(), access.satisfy.len()), (1, 1));
        }
    }
}
