//! Every directive itkd knows: its module, where it may appear, and how far itkd supports
//! it. This table is the one source for the context checks, `<IfDirective>`, and
//! `docs/directives.md`.
//!
//! Contexts follow httpd's: `RSRC_CONF` is the main server and `<VirtualHost>`;
//! `ACCESS_CONF` is `<Directory>`, `<Location>` and `<Files>` (and their `Match` forms);
//! an `OR_*` override class makes a directive allowed in `.htaccess` when `AllowOverride`
//! grants that class. As in httpd, `AuthConfig` and `Limit` directives are not allowed at
//! server level outside a section.

use std::fmt;

/// Places a directive may appear (besides `.htaccess`, see [`Spec::htaccess`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contexts(u8);

impl Contexts {
    pub const MAIN: Contexts = Contexts(1);
    pub const VHOST: Contexts = Contexts(2);
    pub const DIRECTORY: Contexts = Contexts(4);
    pub const LOCATION: Contexts = Contexts(8);
    pub const FILES: Contexts = Contexts(16);
    /// httpd's `RSRC_CONF`.
    pub const SERVER: Contexts = Contexts(1 | 2);
    /// httpd's `ACCESS_CONF`.
    pub const SECTIONS: Contexts = Contexts(4 | 8 | 16);
    pub const ANY: Contexts = Contexts(1 | 2 | 4 | 8 | 16);

    pub const fn with(self, other: Contexts) -> Contexts {
        Contexts(self.0 | other.0)
    }

    pub fn contains(self, other: Contexts) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The `AllowOverride` classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Override {
    AuthConfig,
    FileInfo,
    Indexes,
    Limit,
    Options,
    /// httpd's `OR_LIMIT|OR_AUTHCFG` (`<Limit>`, `<LimitExcept>`): either class allows it.
    AuthConfigOrLimit,
    /// httpd's `OR_ALL`: allowed under any class `AllowOverride` grants.
    Any,
}

impl Override {
    pub const ALL: [Override; 5] = [
        Override::AuthConfig,
        Override::FileInfo,
        Override::Indexes,
        Override::Limit,
        Override::Options,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Override::AuthConfig => "AuthConfig",
            Override::FileInfo => "FileInfo",
            Override::Indexes => "Indexes",
            Override::Limit => "Limit",
            Override::Options => "Options",
            Override::AuthConfigOrLimit => "AuthConfig, Limit",
            Override::Any => "any",
        }
    }
}

/// How far itkd carries a directive out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Read, validated, and part of the model.
    Model,
    /// Accepted so that existing configurations load, validated, and without effect in
    /// itkd; the reason is written in `docs/directives.md`.
    NoEffect(&'static str),
}

/// One directive (or section, named with its `<`).
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    /// The httpd module that defines it (`core` for httpd's core).
    pub module: &'static str,
    pub contexts: Contexts,
    /// The `AllowOverride` class that allows it in `.htaccess`; `None`: never there.
    pub htaccess: Option<Override>,
    pub support: Support,
    /// Argument syntax, as httpd's documentation writes it.
    pub syntax: &'static str,
}

impl fmt::Display for Contexts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Contexts::MAIN, "server config"),
            (Contexts::VHOST, "virtual host"),
            (Contexts::DIRECTORY, "directory"),
            (Contexts::LOCATION, "location"),
            (Contexts::FILES, "files"),
        ];
        let parts: Vec<&str> = names
            .iter()
            .filter(|(c, _)| self.contains(*c))
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&parts.join(", "))
    }
}

const fn spec(
    name: &'static str,
    module: &'static str,
    contexts: Contexts,
    htaccess: Option<Override>,
    syntax: &'static str,
) -> Spec {
    Spec {
        name,
        module,
        contexts,
        htaccess,
        support: Support::Model,
        syntax,
    }
}

const fn no_effect(
    name: &'static str,
    module: &'static str,
    contexts: Contexts,
    htaccess: Option<Override>,
    why: &'static str,
) -> Spec {
    Spec {
        name,
        module,
        contexts,
        htaccess,
        support: Support::NoEffect(why),
        syntax: "…",
    }
}

use Contexts as C;
use Override as O;

const MAIN: Contexts = C::MAIN;
const SERVER: Contexts = C::SERVER;
const SECTIONS: Contexts = C::SECTIONS;
const ANY: Contexts = C::ANY;
/// Directives httpd registers with `RSRC_CONF|ACCESS_CONF`.
const NOT_HTACCESS: Contexts = C::ANY;
/// `<Directory>` and `<Files>` hold it; `<Location>` does not.
const DIR_FILES: Contexts = C::DIRECTORY.with(C::FILES);

const INDEX_DECORATION: &str =
    "itkd's directory listing is plain; icons, headers and readme files are not shown";
const NO_NEGOTIATION: &str = "itkd does no content negotiation";
const NO_SETENVIF: &str = "itkd does not set request variables from SetEnvIf/BrowserMatch yet";
const NO_ACCEPT_MUTEX: &str = "itkd's pool children need no accept mutex";
const SSL_TICKETS: &str =
    "sessions resume by tickets whose keys the master makes and shares with every worker";
const NO_STAPLING: &str = "itkd does no OCSP stapling";

/// Every directive and section itkd knows, sorted by module then name.
pub static DIRECTIVES: &[Spec] = &[
    // httpd core
    spec("AcceptFilter", "core", MAIN, None, "protocol accept_filter"),
    spec(
        "AccessFileName",
        "core",
        SERVER,
        None,
        "filename [filename] ...",
    ),
    spec(
        "AddDefaultCharset",
        "core",
        ANY,
        Some(O::FileInfo),
        "On|Off|charset",
    ),
    spec(
        "AllowEncodedSlashes",
        "core",
        SERVER,
        None,
        "On|Off|NoDecode",
    ),
    spec(
        "AllowOverride",
        "core",
        C::DIRECTORY,
        None,
        "All|None|directive-type[=option,...] ...",
    ),
    spec(
        "AllowOverrideList",
        "core",
        C::DIRECTORY,
        None,
        "None|directive [directive] ...",
    ),
    spec("CGIPassAuth", "core", SECTIONS, Some(O::AuthConfig), "On|Off"),
    spec("Define", "core", ANY, None, "name [value]"),
    no_effect(
        "DefaultRuntimeDir",
        "core",
        MAIN,
        None,
        "itkd keeps no runtime files besides PidFile",
    ),
    spec(
        "<Directory>",
        "core",
        SERVER,
        None,
        "directory-path|~ regex",
    ),
    spec("<DirectoryMatch>", "core", SERVER, None, "regex"),
    spec("DocumentRoot", "core", SERVER, None, "directory-path"),
    spec(
        "ErrorDocument",
        "core",
        ANY,
        Some(O::FileInfo),
        "error-code document",
    ),
    spec(
        "ErrorLog",
        "core",
        SERVER,
        None,
        "file-path|syslog[:facility]",
    ),
    spec(
        "<Files>",
        "core",
        SERVER.with(DIR_FILES),
        Some(O::Any),
        "filename",
    ),
    spec(
        "<FilesMatch>",
        "core",
        SERVER.with(DIR_FILES),
        Some(O::Any),
        "regex",
    ),
    spec(
        "ForceType",
        "core",
        ANY,
        Some(O::FileInfo),
        "media-type|None",
    ),
    spec("HostnameLookups", "core", NOT_HTACCESS, None, "Off"),
    spec(
        "Include",
        "core",
        ANY,
        None,
        "file-path|directory-path|wildcard",
    ),
    spec(
        "IncludeOptional",
        "core",
        ANY,
        None,
        "file-path|directory-path|wildcard",
    ),
    spec("KeepAlive", "core", SERVER, None, "On|Off"),
    spec("KeepAliveTimeout", "core", SERVER, None, "num[ms]"),
    spec(
        "<Limit>",
        "core",
        ANY,
        Some(O::AuthConfigOrLimit),
        "method [method] ...",
    ),
    spec(
        "<LimitExcept>",
        "core",
        ANY,
        Some(O::AuthConfigOrLimit),
        "method [method] ...",
    ),
    spec("LimitRequestBody", "core", ANY, Some(O::Any), "bytes"),
    spec("LimitRequestFields", "core", SERVER, None, "number"),
    spec("LimitRequestFieldSize", "core", SERVER, None, "bytes"),
    spec("LimitRequestLine", "core", SERVER, None, "bytes"),
    spec(
        "Listen",
        "core",
        MAIN,
        None,
        "[IP-address:]portnumber [protocol]",
    ),
    spec("<Location>", "core", SERVER, None, "URL-path|URL"),
    spec("<LocationMatch>", "core", SERVER, None, "regex"),
    spec(
        "LogLevel",
        "core",
        NOT_HTACCESS,
        None,
        "[module:]level [module:level] ...",
    ),
    spec("MaxKeepAliveRequests", "core", SERVER, None, "number"),
    no_effect("Mutex", "core", MAIN, None, NO_ACCEPT_MUTEX),
    spec(
        "Options",
        "core",
        ANY,
        Some(O::Options),
        "[+|-]option [[+|-]option] ...",
    ),
    spec("PidFile", "core", MAIN, None, "filename"),
    // httpd's OR_ALL: any context, and .htaccess under any AllowOverride class.
    spec(
        "RLimitCPU",
        "core",
        ANY,
        Some(O::Any),
        "seconds|max [seconds|max]",
    ),
    spec(
        "RLimitMEM",
        "core",
        ANY,
        Some(O::Any),
        "bytes|max [bytes|max]",
    ),
    spec(
        "RLimitNPROC",
        "core",
        ANY,
        Some(O::Any),
        "number|max [number|max]",
    ),
    spec("ServerAdmin", "core", SERVER, None, "email-address|URL"),
    spec(
        "ServerAlias",
        "core",
        C::VHOST,
        None,
        "hostname [hostname] ...",
    ),
    spec(
        "ServerName",
        "core",
        SERVER,
        None,
        "[scheme://]domain-name|ip-address[:port]",
    ),
    spec("ServerRoot", "core", MAIN, None, "directory-path"),
    spec("ServerSignature", "core", ANY, Some(O::Any), "On|Off|EMail"),
    spec(
        "ServerTokens",
        "core",
        MAIN,
        None,
        "Major|Minor|Min[imal]|Prod[uctOnly]|OS|Full",
    ),
    spec(
        "SetHandler",
        "core",
        ANY,
        Some(O::FileInfo),
        "handler-name|none",
    ),
    spec("Timeout", "core", SERVER, None, "seconds"),
    spec("UnDefine", "core", ANY, None, "name"),
    spec("TraceEnable", "core", SERVER, None, "On|Off|extended"),
    spec(
        "<VirtualHost>",
        "core",
        MAIN,
        None,
        "addr[:port] [addr[:port]] ...",
    ),
    // mod_so
    spec("LoadModule", "so", MAIN, None, "module filename"),
    // mod_unixd
    spec("Group", "unixd", MAIN, None, "unix-group"),
    spec("User", "unixd", MAIN, None, "unix-userid"),
    // prefork (the pool of accepting children)
    spec("MaxClients", "mpm_prefork", MAIN, None, "number"),
    spec(
        "MaxConnectionsPerChild",
        "mpm_prefork",
        MAIN,
        None,
        "number",
    ),
    spec("MaxRequestsPerChild", "mpm_prefork", MAIN, None, "number"),
    spec("MaxRequestWorkers", "mpm_prefork", MAIN, None, "number"),
    spec("MaxSpareServers", "mpm_prefork", MAIN, None, "number"),
    spec("MinSpareServers", "mpm_prefork", MAIN, None, "number"),
    spec("ServerLimit", "mpm_prefork", MAIN, None, "number"),
    spec("StartServers", "mpm_prefork", MAIN, None, "number"),
    // mpm-itk
    spec(
        "AssignGroupIDExpr",
        "mpm_itk",
        NOT_HTACCESS,
        None,
        "expression",
    ),
    spec(
        "AssignUserID",
        "mpm_itk",
        NOT_HTACCESS,
        None,
        "user-id group-id",
    ),
    spec(
        "AssignUserIDExpr",
        "mpm_itk",
        NOT_HTACCESS,
        None,
        "expression",
    ),
    spec("EnableCapabilities", "mpm_itk", MAIN, None, "On|Off"),
    spec("LimitGIDRange", "mpm_itk", MAIN, None, "min-gid max-gid"),
    spec("LimitUIDRange", "mpm_itk", MAIN, None, "min-uid max-uid"),
    spec("MaxClientsVHost", "mpm_itk", SERVER, None, "number"),
    spec("NiceValue", "mpm_itk", NOT_HTACCESS, None, "-20..19"),
    // mod_access_compat (httpd 2.2's host-based access control)
    spec(
        "Allow",
        "access_compat",
        SECTIONS,
        Some(O::Limit),
        "from all|host|ip|env=[!]env-variable [...]",
    ),
    spec(
        "Deny",
        "access_compat",
        SECTIONS,
        Some(O::Limit),
        "from all|host|ip|env=[!]env-variable [...]",
    ),
    spec(
        "Order",
        "access_compat",
        SECTIONS,
        Some(O::Limit),
        "deny,allow|allow,deny|mutual-failure",
    ),
    spec(
        "Satisfy",
        "access_compat",
        SECTIONS,
        Some(O::AuthConfig),
        "Any|All",
    ),
    // mod_actions
    spec(
        "Action",
        "actions",
        ANY,
        Some(O::FileInfo),
        "action-type cgi-script [virtual]",
    ),
    // mod_alias
    spec(
        "Alias",
        "alias",
        SERVER,
        None,
        "URL-path file-path|directory-path",
    ),
    spec(
        "AliasMatch",
        "alias",
        SERVER,
        None,
        "regex file-path|directory-path",
    ),
    spec(
        "Redirect",
        "alias",
        ANY,
        Some(O::FileInfo),
        "[status] URL-path [URL]",
    ),
    spec(
        "RedirectMatch",
        "alias",
        ANY,
        Some(O::FileInfo),
        "[status] regex [URL]",
    ),
    spec(
        "RedirectPermanent",
        "alias",
        ANY,
        Some(O::FileInfo),
        "URL-path URL",
    ),
    spec(
        "RedirectTemp",
        "alias",
        ANY,
        Some(O::FileInfo),
        "URL-path URL",
    ),
    spec(
        "ScriptAlias",
        "alias",
        SERVER,
        None,
        "URL-path file-path|directory-path",
    ),
    spec(
        "ScriptAliasMatch",
        "alias",
        SERVER,
        None,
        "regex file-path|directory-path",
    ),
    // mod_auth_basic, mod_authn_core, mod_authn_file, mod_authz_groupfile
    spec(
        "AuthBasicProvider",
        "auth_basic",
        SECTIONS,
        Some(O::AuthConfig),
        "file",
    ),
    spec(
        "AuthGroupFile",
        "authz_groupfile",
        SECTIONS,
        Some(O::AuthConfig),
        "file-path",
    ),
    spec(
        "AuthName",
        "authn_core",
        SECTIONS,
        Some(O::AuthConfig),
        "auth-domain",
    ),
    spec(
        "AuthType",
        "authn_core",
        SECTIONS,
        Some(O::AuthConfig),
        "None|Basic",
    ),
    spec(
        "AuthUserFile",
        "authn_file",
        SECTIONS,
        Some(O::AuthConfig),
        "file-path",
    ),
    // mod_authz_core
    spec(
        "Require",
        "authz_core",
        SECTIONS,
        Some(O::AuthConfig),
        "[not] entity-name [entity-name] ...",
    ),
    spec(
        "<RequireAll>",
        "authz_core",
        SECTIONS,
        Some(O::AuthConfig),
        "",
    ),
    spec(
        "<RequireAny>",
        "authz_core",
        SECTIONS,
        Some(O::AuthConfig),
        "",
    ),
    spec(
        "<RequireNone>",
        "authz_core",
        SECTIONS,
        Some(O::AuthConfig),
        "",
    ),
    // mod_autoindex: the listing itself is `Options Indexes`
    no_effect(
        "AddAlt",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "AddAltByEncoding",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "AddAltByType",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "AddDescription",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "AddIcon",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "AddIconByEncoding",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "AddIconByType",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "DefaultIcon",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "HeaderName",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "IndexIgnore",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "IndexOptions",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "IndexOrderDefault",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "IndexStyleSheet",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    no_effect(
        "ReadmeName",
        "autoindex",
        ANY,
        Some(O::Indexes),
        INDEX_DECORATION,
    ),
    // mod_cgid: scripts run from the worker, there is no cgid daemon
    no_effect(
        "ScriptSock",
        "cgid",
        MAIN,
        None,
        "itkd runs scripts from the worker that serves the request; there is no cgid daemon and no socket",
    ),
    // mod_dir
    spec(
        "DirectoryIndex",
        "dir",
        ANY,
        Some(O::Indexes),
        "disabled | local-url [local-url] ...",
    ),
    // mod_env
    spec(
        "PassEnv",
        "env",
        ANY,
        Some(O::FileInfo),
        "env-variable [env-variable] ...",
    ),
    spec(
        "SetEnv",
        "env",
        ANY,
        Some(O::FileInfo),
        "env-variable [value]",
    ),
    spec(
        "UnsetEnv",
        "env",
        ANY,
        Some(O::FileInfo),
        "env-variable [env-variable] ...",
    ),
    // mod_headers (response headers; RequestHeader is not provided)
    spec(
        "Header",
        "headers",
        ANY,
        Some(O::FileInfo),
        "[always|onsuccess] set|append|add|merge|setifempty|unset header [value] [env=[!]variable]",
    ),
    // mod_ssl (TLS by rustls, in the worker)
    spec("SSLEngine", "ssl", SERVER, None, "on|off|optional"),
    spec("SSLCertificateFile", "ssl", SERVER, None, "file-path"),
    spec("SSLCertificateKeyFile", "ssl", SERVER, None, "file-path"),
    spec("SSLCertificateChainFile", "ssl", SERVER, None, "file-path"),
    spec("SSLProtocol", "ssl", SERVER, None, "[+|-]protocol ..."),
    spec(
        "SSLCipherSuite",
        "ssl",
        SERVER,
        None,
        "[protocol] cipher-spec",
    ),
    spec("SSLHonorCipherOrder", "ssl", SERVER, None, "on|off"),
    spec("SSLSessionTickets", "ssl", SERVER, None, "on|off"),
    no_effect("SSLSessionCache", "ssl", MAIN, None, SSL_TICKETS),
    no_effect("SSLSessionCacheTimeout", "ssl", SERVER, None, SSL_TICKETS),
    no_effect(
        "SSLRandomSeed",
        "ssl",
        MAIN,
        None,
        "rustls takes its randomness from the kernel (getrandom)",
    ),
    no_effect(
        "SSLPassPhraseDialog",
        "ssl",
        MAIN,
        None,
        "private keys are read unencrypted, by the master as root",
    ),
    no_effect(
        "SSLOptions",
        "ssl",
        ANY,
        Some(O::Options),
        "CGI always gets HTTPS, SSL_PROTOCOL, SSL_CIPHER and the other SSL_* variables itkd sets",
    ),
    no_effect("SSLStaplingCache", "ssl", MAIN, None, NO_STAPLING),
    no_effect("SSLUseStapling", "ssl", SERVER, None, NO_STAPLING),
    no_effect(
        "SSLCompression",
        "ssl",
        SERVER,
        None,
        "TLS compression is never used",
    ),
    // mod_log_config
    spec(
        "CustomLog",
        "log_config",
        SERVER,
        None,
        "file|pipe format|nickname [env=[!]var|expr=expr]",
    ),
    spec(
        "LogFormat",
        "log_config",
        SERVER,
        None,
        "format|nickname [nickname]",
    ),
    spec("TransferLog", "log_config", SERVER, None, "file|pipe"),
    // mod_mime
    no_effect("AddCharset", "mime", ANY, Some(O::FileInfo), NO_NEGOTIATION),
    no_effect(
        "AddEncoding",
        "mime",
        ANY,
        Some(O::FileInfo),
        NO_NEGOTIATION,
    ),
    spec(
        "AddHandler",
        "mime",
        ANY,
        Some(O::FileInfo),
        "handler-name extension [extension] ...",
    ),
    no_effect(
        "AddLanguage",
        "mime",
        ANY,
        Some(O::FileInfo),
        NO_NEGOTIATION,
    ),
    spec(
        "AddType",
        "mime",
        ANY,
        Some(O::FileInfo),
        "media-type extension [extension] ...",
    ),
    spec(
        "RemoveHandler",
        "mime",
        ANY,
        Some(O::FileInfo),
        "extension [extension] ...",
    ),
    spec(
        "RemoveType",
        "mime",
        ANY,
        Some(O::FileInfo),
        "extension [extension] ...",
    ),
    spec("TypesConfig", "mime", MAIN, None, "file-path"),
    // Tolerated (see modules::TOLERATED): Debian's stock .conf files use these unguarded.
    no_effect(
        "CacheNegotiatedDocs",
        "negotiation",
        SERVER,
        None,
        NO_NEGOTIATION,
    ),
    no_effect(
        "ForceLanguagePriority",
        "negotiation",
        ANY,
        Some(O::FileInfo),
        NO_NEGOTIATION,
    ),
    no_effect(
        "LanguagePriority",
        "negotiation",
        ANY,
        Some(O::FileInfo),
        NO_NEGOTIATION,
    ),
    spec(
        "RequestReadTimeout",
        "reqtimeout",
        SERVER,
        None,
        "[handshake=timeout[-maxtimeout][,MinRate=rate] [header=...] [body=...]",
    ),
    no_effect(
        "BrowserMatch",
        "setenvif",
        ANY,
        Some(O::FileInfo),
        NO_SETENVIF,
    ),
    no_effect(
        "BrowserMatchNoCase",
        "setenvif",
        ANY,
        Some(O::FileInfo),
        NO_SETENVIF,
    ),
    no_effect("SetEnvIf", "setenvif", ANY, Some(O::FileInfo), NO_SETENVIF),
    no_effect(
        "SetEnvIfExpr",
        "setenvif",
        ANY,
        Some(O::FileInfo),
        NO_SETENVIF,
    ),
    no_effect(
        "SetEnvIfNoCase",
        "setenvif",
        ANY,
        Some(O::FileInfo),
        NO_SETENVIF,
    ),
    no_effect(
        "ExtendedStatus",
        "status",
        MAIN,
        None,
        "MaxClientsVHost counts without it; itkd has no server-status page",
    ),
];

/// The directive or section of this name (sections as `<Name>`), case-insensitively.
pub fn lookup(name: &str) -> Option<&'static Spec> {
    DIRECTIVES
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
}

/// The section of this name (without `<`), case-insensitively.
pub fn lookup_section(name: &str) -> Option<&'static Spec> {
    DIRECTIVES.iter().find(|s| {
        s.name.len() == name.len() + 2
            && s.name.starts_with('<')
            && s.name[1..s.name.len() - 1].eq_ignore_ascii_case(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, a) in DIRECTIVES.iter().enumerate() {
            for b in &DIRECTIVES[i + 1..] {
                assert!(!a.name.eq_ignore_ascii_case(b.name), "{} twice", a.name);
            }
        }
    }

    #[test]
    fn mpm_itk_directives_never_in_htaccess() {
        for s in DIRECTIVES.iter().filter(|s| s.module == "mpm_itk") {
            assert_eq!(s.htaccess, None, "{}", s.name);
        }
    }

    #[test]
    fn lookups_are_case_insensitive() {
        assert_eq!(lookup("documentroot").map(|s| s.name), Some("DocumentRoot"));
        assert_eq!(
            lookup_section("virtualhost").map(|s| s.name),
            Some("<VirtualHost>")
        );
        assert!(lookup("Frobnicate").is_none());
        assert!(lookup_section("If").is_none());
    }
}
