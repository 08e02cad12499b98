//! Directive tree → [`ServerConfig`], in one pass that reports every problem.
//!
//! Each directive is looked up in the table (`directives`), checked against the place it
//! stands (main server, `<VirtualHost>`, a section, `.htaccess` with its AllowOverride),
//! then its arguments are parsed into the model. Messages follow httpd's wording.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apacheconf::{Diagnostic, Directive, Parsed, Span};

use crate::access::{AccessCompat, HostRule, Limited, Methods, Order, Satisfy};
use crate::dirconf::{
    Action, DirConfig, EnvOp, ErrorDocument, HeaderAction, HeaderOp, HeaderPiece, HeaderTable,
    OptionSet, OptionsSetting, Overrides, Redirect, Section, SectionKind, SectionPattern,
    ServerSignature,
};
use crate::directives::{self, Contexts, Override, Spec, Support};
use crate::expr::StringExpr;
use crate::logformat::{LogFormat, DEFAULT_FORMAT};
use crate::mime::MimeTypes;
use crate::model::{
    AliasRule, Assign, CustomLog, EncodedSlashes, GroupId, ItkGlobal, Listen, LogTarget,
    PoolLimits, ReadTimeout, ReadTimeouts, RequestLimits, Server, ServerConfig, ServerTokens,
    SslSettings, TlsVersions, TraceEnable, UrlMatcher, UserId,
};
use crate::require::Require;
use crate::vhost::{parse_port, split_host_port, VhostAddr, VhostTable};
use crate::{resolve, System};

/// Where a directive stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place<'o> {
    Main,
    VirtualHost,
    Section(SectionKind, &'static str),
    Htaccess(&'o Overrides),
}

/// Server-level settings as read; `None` where the directive was not given.
#[derive(Debug, Default)]
struct ServerFields {
    server_name: Option<(String, Option<u16>)>,
    aliases: Vec<String>,
    server_admin: Option<String>,
    document_root: Option<(PathBuf, Span)>,
    error_log: Option<LogTarget>,
    log_level: Option<crate::loglevel::LogLevel>,
    timeout: Option<Duration>,
    keep_alive: Option<bool>,
    keep_alive_timeout: Option<Duration>,
    max_keep_alive_requests: Option<u32>,
    logs: Vec<PendingLog>,
    access_file_names: Option<Vec<String>>,
    aliases_map: Vec<AliasRule>,
    limit_fields: Option<u32>,
    limit_field_size: Option<u32>,
    limit_line: Option<u32>,
    allow_encoded_slashes: Option<EncodedSlashes>,
    trace_enable: Option<TraceEnable>,
    max_clients_vhost: Option<Option<u32>>,
    ssl: SslFields,
    read_timeouts: Option<ReadTimeouts>,
}

/// mod_ssl's directives as one server wrote them (unset ones come from the main server).
#[derive(Debug, Default)]
struct SslFields {
    engine: Option<(bool, Span)>,
    certificate_files: Vec<(PathBuf, Span)>,
    key_files: Vec<(PathBuf, Span)>,
    chain_file: Option<(PathBuf, Span)>,
    protocols: Option<TlsVersions>,
    cipher_suite: Option<(String, Span)>,
    honor_cipher_order: Option<bool>,
    session_tickets: Option<bool>,
}

/// A `CustomLog` whose format nickname is looked up once every `LogFormat` is read
/// (httpd resolves them when it opens the logs, so order does not matter).
#[derive(Debug)]
struct PendingLog {
    target: LogTarget,
    format: String,
    condition: Option<(bool, String)>,
    span: Span,
}

#[derive(Debug, Default)]
struct ServerScope {
    fields: ServerFields,
    dir: DirConfig,
    sections: Vec<Section>,
}

struct VhostScope {
    span: Span,
    addrs: Vec<VhostAddr>,
    scope: ServerScope,
}

/// A uid or gid named statically, checked against LimitUIDRange/LimitGIDRange at the end.
struct StaticId {
    id: u32,
    is_uid: bool,
    span: Span,
    directive: &'static str,
}

struct Loader<'a> {
    system: &'a dyn System,
    server_root: PathBuf,
    diags: Vec<Diagnostic>,
    listen: Vec<Listen>,
    user: Option<UserId>,
    group: Option<GroupId>,
    pid_file: Option<PathBuf>,
    pool: PoolLimits,
    itk: ItkGlobal,
    server_tokens: ServerTokens,
    types_config: Option<(PathBuf, Span)>,
    log_formats: HashMap<String, LogFormat>,
    /// The last `LogFormat` without nickname: `TransferLog`'s format.
    transfer_format: Option<String>,
    static_ids: Vec<StaticId>,
    /// The main configuration file, for problems that belong to no line.
    main_span: Span,
    /// Every handler named by SetHandler/AddHandler (and mod_php's `AddType
    /// application/x-httpd-php`) that only an `Action` could run, for one warning each.
    handler_uses: Vec<(Span, String, String)>,
    /// Every `Action` trigger of the configuration.
    action_triggers: Vec<String>,
}

/// Builds the model from a parsed tree. The returned config is only meaningful when no
/// error diagnostic was returned.
pub(crate) fn build(parsed: &Parsed, system: &dyn System) -> (ServerConfig, Vec<Diagnostic>) {
    let mut loader = Loader::new(system, &parsed.server_root, &parsed.file, Vec::new());
    let mut main = ServerScope::default();
    let mut vhosts = Vec::new();
    loader.server_block(
        &parsed.directives,
        Place::Main,
        &mut main,
        Some(&mut vhosts),
    );
    let config = loader.finish(parsed, main, vhosts);
    (config, loader.diags)
}

/// One `.htaccess` file's settings.
#[derive(Debug, Clone, Default)]
pub struct Htaccess {
    pub dir: DirConfig,
    /// Its `<Files>`/`<FilesMatch>` sections.
    pub files: Vec<Section>,
}

/// Reads one `.htaccess` file against the `AllowOverride`/`AllowOverrideList` in force;
/// `main` is the main configuration's tree (for defines and variables). The mpm-itk
/// directives and every server-only directive are never allowed.
pub fn load_htaccess(
    bytes: &[u8],
    path: &Path,
    main: &Parsed,
    overrides: &Overrides,
    system: &dyn System,
) -> (Htaccess, Vec<Diagnostic>) {
    let parsed = apacheconf::parse_htaccess(bytes, path, main, &crate::modules::ItkdHost);
    let mut loader = Loader::new(system, &main.server_root, path, parsed.diagnostics.clone());
    let mut out = Htaccess::default();
    loader.dir_block(
        &parsed.directives,
        Place::Htaccess(overrides),
        &mut out.dir,
        &mut out.files,
    );
    (out, loader.diags)
}

impl<'a> Loader<'a> {
    /// A loader with httpd's defaults; `file` names the problems of no particular line.
    fn new(
        system: &'a dyn System,
        server_root: &Path,
        file: &Path,
        diags: Vec<Diagnostic>,
    ) -> Self {
        Loader {
            system,
            server_root: server_root.to_path_buf(),
            diags,
            listen: Vec::new(),
            user: None,
            group: None,
            pid_file: None,
            pool: PoolLimits::default(),
            itk: ItkGlobal::default(),
            server_tokens: ServerTokens::Full,
            types_config: None,
            log_formats: HashMap::new(),
            transfer_format: None,
            static_ids: Vec::new(),
            handler_uses: Vec::new(),
            action_triggers: Vec::new(),
            main_span: Span {
                file: file.into(),
                line: 0,
            },
        }
    }

    fn error(&mut self, d: &Directive, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(&d.span, Some(&d.name), message));
    }

    /// A handler named by `d`: where it was set (for the worker's refusal line), and, if
    /// itkd runs it only through an `Action`, remembered for [`Loader::warn_handlers`].
    fn note_handler(&mut self, d: &Directive, handler: &str, dir: &mut DirConfig) {
        dir.handler_origins
            .push((handler.to_owned(), format!("{} at {}", d.name, d.span)));
        if !crate::dirconf::runs_itself(handler) {
            self.handler_uses
                .push((d.span.clone(), d.name.clone(), handler.to_owned()));
        }
    }

    /// `itkd -t`: one warning per directive naming a handler that no `Action` of the
    /// configuration runs: its files are refused (500), never sent as they are.
    fn warn_handlers(&mut self) {
        for (span, name, handler) in std::mem::take(&mut self.handler_uses) {
            if self.action_triggers.contains(&handler) {
                continue;
            }
            self.diags.push(Diagnostic::warning(
                &span,
                Some(&name),
                format!(
                    "itkd cannot run the handler {handler}{}: files it applies to are refused with 500 and an error-log line, never sent as they are (httpd would send them)",
                    crate::dirconf::handler_hint(&handler)
                ),
            ));
        }
    }

    fn warn(&mut self, d: &Directive, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::warning(&d.span, Some(&d.name), message));
    }

    /// The directive's table entry, if it exists and may stand here; reports otherwise.
    fn admit(&mut self, d: &Directive, place: Place<'_>) -> Option<&'static Spec> {
        let spec = if d.is_section() {
            directives::lookup_section(&d.name)
        } else {
            directives::lookup(&d.name)
        };
        let Some(spec) = spec else {
            let shown = if d.is_section() {
                format!("<{}", d.name)
            } else {
                d.name.clone()
            };
            self.error(
                d,
                format!(
                    "Invalid command '{shown}', perhaps misspelled or defined by a module not included in the server configuration"
                ),
            );
            return None;
        };
        let here = match place {
            Place::Main => Contexts::MAIN,
            Place::VirtualHost => Contexts::VHOST,
            Place::Section(SectionKind::Directory, _) => Contexts::DIRECTORY,
            Place::Section(SectionKind::Location, _) => Contexts::LOCATION,
            Place::Section(SectionKind::Files, _) => Contexts::FILES,
            Place::Htaccess(overrides) => {
                let by_class = match spec.htaccess {
                    Some(Override::Any) => !overrides.classes.is_empty(),
                    Some(Override::AuthConfigOrLimit) => {
                        overrides.classes.contains(&Override::AuthConfig)
                            || overrides.classes.contains(&Override::Limit)
                    }
                    Some(class) => overrides.classes.contains(&class),
                    None => false,
                };
                let listed = overrides
                    .list
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&d.name));
                if by_class || (listed && spec.htaccess.is_some()) {
                    return Some(spec);
                }
                self.error(d, "not allowed here");
                return None;
            }
        };
        if spec.contexts.contains(here) {
            return Some(spec);
        }
        let message = match place {
            Place::VirtualHost if spec.contexts.contains(Contexts::MAIN) => {
                "cannot occur within <VirtualHost> section".to_owned()
            }
            Place::Main
                if spec.contexts.contains(Contexts::VHOST)
                    && !spec.contexts.contains(Contexts::SECTIONS) =>
            {
                "only used in <VirtualHost>".to_owned()
            }
            Place::Section(_, name) if spec.module == "mpm_itk" || d.is_section() => {
                format!("not allowed in {name} context")
            }
            _ => "not allowed here".to_owned(),
        };
        self.error(d, message);
        None
    }

    /// Directives at the main server or in a `<VirtualHost>`.
    fn server_block(
        &mut self,
        dirs: &[Directive],
        place: Place<'_>,
        scope: &mut ServerScope,
        mut vhosts: Option<&mut Vec<VhostScope>>,
    ) {
        for d in dirs {
            let Some(spec) = self.admit(d, place) else {
                continue;
            };
            if d.is_section() {
                if d.is("VirtualHost") {
                    if let Some(list) = vhosts.as_deref_mut() {
                        if let Some(vhost) = self.virtual_host(d) {
                            list.push(vhost);
                        }
                    }
                } else {
                    self.section(d, place, &mut scope.dir, &mut scope.sections);
                }
            } else if !self.global(d, spec) && !self.server(d, &mut scope.fields) {
                self.per_dir(d, spec, place, &mut scope.dir);
            }
        }
    }

    fn virtual_host(&mut self, d: &Directive) -> Option<VhostScope> {
        if d.args.is_empty() {
            self.error(d, "<VirtualHost> directive requires additional arguments");
            return None;
        }
        let mut addrs = Vec::new();
        let system = self.system;
        for arg in &d.args {
            match VhostAddr::parse(arg, &|name| system.resolve_host(name)) {
                Ok(list) => addrs.extend(list),
                Err(e) => self.error(d, e),
            }
        }
        let mut scope = ServerScope::default();
        let children = d.children.as_deref().unwrap_or_default();
        self.server_block(children, Place::VirtualHost, &mut scope, None);
        Some(VhostScope {
            span: d.span.clone(),
            addrs,
            scope,
        })
    }

    /// Directives in sections and `.htaccess`: everything lands in one `DirConfig`.
    fn dir_block(
        &mut self,
        dirs: &[Directive],
        place: Place<'_>,
        dir: &mut DirConfig,
        files: &mut Vec<Section>,
    ) {
        for d in dirs {
            let Some(spec) = self.admit(d, place) else {
                continue;
            };
            if d.is_section() {
                self.section(d, place, dir, files);
            } else {
                self.per_dir(d, spec, place, dir);
            }
        }
    }

    fn section(
        &mut self,
        d: &Directive,
        place: Place<'_>,
        dir: &mut DirConfig,
        sections: &mut Vec<Section>,
    ) {
        let children = d.children.as_deref().unwrap_or_default();
        let lower = d.name.to_ascii_lowercase();
        let (kind, name, regex_form) = match lower.as_str() {
            "directory" => (SectionKind::Directory, "<Directory>", false),
            "directorymatch" => (SectionKind::Directory, "<DirectoryMatch>", true),
            "location" => (SectionKind::Location, "<Location>", false),
            "locationmatch" => (SectionKind::Location, "<LocationMatch>", true),
            "files" => (SectionKind::Files, "<Files>", false),
            "filesmatch" => (SectionKind::Files, "<FilesMatch>", true),
            "limit" | "limitexcept" => return self.limit(d, place, dir, sections),
            _ => {
                // <RequireAll>/<RequireAny>/<RequireNone>
                if let Some(rule) = self.require_container(d) {
                    add_require(dir, rule);
                }
                return;
            }
        };
        let pattern = match (regex_form, d.args.as_slice()) {
            (false, [tilde, re]) if tilde == "~" => self.regex(d, re).map(SectionPattern::Regex),
            (true, [re]) => self.regex(d, re).map(SectionPattern::Regex),
            (false, [path]) => {
                if kind == SectionKind::Directory && !path.starts_with('/') {
                    self.warn(
                        d,
                        format!("{name} path '{path}' is not absolute: like httpd, itkd never matches it"),
                    );
                }
                Some(SectionPattern::Path(section_path(kind, path)))
            }
            _ => {
                self.error(d, format!("{name} directive requires additional arguments"));
                None
            }
        };
        let inner_place = match place {
            // Inside .htaccess a <Files> section keeps the file's override set.
            Place::Htaccess(_) => place,
            _ => Place::Section(kind, name),
        };
        let mut section = Section {
            kind,
            pattern: pattern.unwrap_or(SectionPattern::Path(String::new())),
            config: DirConfig::default(),
            files: Vec::new(),
            span: d.span.clone(),
        };
        self.dir_block(
            children,
            inner_place,
            &mut section.config,
            &mut section.files,
        );
        sections.push(section);
    }

    /// `<Limit>`/`<LimitExcept>`: authorization inside applies to those methods only.
    fn limit(
        &mut self,
        d: &Directive,
        place: Place<'_>,
        dir: &mut DirConfig,
        sections: &mut Vec<Section>,
    ) {
        if d.args.is_empty() {
            self.error(
                d,
                format!("<{}> directive requires additional arguments", d.name),
            );
            return;
        }
        let mut inner = DirConfig::default();
        self.dir_block(
            d.children.as_deref().unwrap_or_default(),
            place,
            &mut inner,
            sections,
        );
        let methods: Vec<String> = d.args.iter().map(|m| m.to_ascii_uppercase()).collect();
        let except = d.is("LimitExcept");
        // Order/Allow/Deny/Satisfy inside stand in the enclosing section, for these
        // methods only (httpd's cmd->limited).
        if let Some(inner_access) = inner.access_compat.take() {
            let scope = Methods {
                listed: Some(methods.clone()),
                except,
            };
            access_compat(dir).extend(inner_access.limited_to(&scope));
        }
        if let Some(rule) = inner.require.take() {
            let limited = Require::Methods {
                methods,
                except,
                rule: Box::new(rule),
            };
            match &mut dir.require {
                Some(Require::Any(items)) => items.push(limited),
                _ => dir.require = Some(Require::Any(vec![limited])),
            }
        }
        *dir = dir.merge(&inner);
    }

    fn require_container(&mut self, d: &Directive) -> Option<Require> {
        if !d.args.is_empty() {
            self.error(d, format!("<{}> does not take an argument", d.name));
        }
        let mut items = Vec::new();
        for child in d.children.as_deref().unwrap_or_default() {
            if child.is_section()
                && ["RequireAll", "RequireAny", "RequireNone"]
                    .iter()
                    .any(|n| child.is(n))
            {
                items.extend(self.require_container(child));
            } else if !child.is_section() && child.is("Require") {
                match Require::parse_line(&child.args) {
                    Ok(rule) => {
                        if rule.is_negated() && d.is("RequireAny") {
                            self.error(child, "negative Require directive has no effect in <RequireAny> directive");
                        }
                        items.push(rule);
                    }
                    Err(e) => self.error(child, e),
                }
            } else {
                self.error(child, format!("not allowed in <{}> context", d.name));
            }
        }
        if items.is_empty() {
            self.error(
                d,
                format!(
                    "<{}> directive contains no authorization directives",
                    d.name
                ),
            );
            return None;
        }
        Some(if d.is("RequireAll") {
            Require::All(items)
        } else if d.is("RequireNone") {
            Require::None(items)
        } else {
            Require::Any(items)
        })
    }

    fn regex(&mut self, d: &Directive, pattern: &str) -> Option<regex::Regex> {
        match regex::Regex::new(pattern) {
            Ok(re) => Some(re),
            Err(e) => {
                self.error(d, format!("Regular expression could not be compiled: {e}"));
                None
            }
        }
    }

    /// Server-wide directives (main server only). Returns false when `d` is not one.
    fn global(&mut self, d: &Directive, spec: &Spec) -> bool {
        if spec.contexts != Contexts::MAIN {
            return false;
        }
        let lower = d.name.to_ascii_lowercase();
        match lower.as_str() {
            "listen" => self.listen(d),
            "user" => {
                if let Some(arg) = self.one_arg(d) {
                    self.user = self.resolve_user(d, arg, "User");
                }
            }
            "group" => {
                if let Some(arg) = self.one_arg(d) {
                    self.group = self.resolve_group(d, arg, "Group");
                }
            }
            "pidfile" => {
                if let Some(arg) = self.one_arg(d) {
                    self.pid_file = Some(resolve(&self.server_root, Path::new(arg)));
                }
            }
            "startservers" => {
                self.pool.start_servers = self.count(d).unwrap_or(self.pool.start_servers)
            }
            "minspareservers" => {
                self.pool.min_spare_servers = self.count(d).unwrap_or(self.pool.min_spare_servers)
            }
            "maxspareservers" => {
                self.pool.max_spare_servers = self.count(d).unwrap_or(self.pool.max_spare_servers)
            }
            "maxrequestworkers" | "maxclients" => {
                self.pool.max_request_workers =
                    self.count(d).unwrap_or(self.pool.max_request_workers)
            }
            "serverlimit" => {
                self.pool.server_limit = self.count(d).unwrap_or(self.pool.server_limit)
            }
            "maxconnectionsperchild" | "maxrequestsperchild" => {
                self.pool.max_connections_per_child =
                    self.count(d).unwrap_or(self.pool.max_connections_per_child)
            }
            "limituidrange" => {
                if let Some(range) = self.id_range(d) {
                    self.itk.limit_uid = range;
                }
            }
            "limitgidrange" => {
                if let Some(range) = self.id_range(d) {
                    self.itk.limit_gid = range;
                }
            }
            "enablecapabilities" => {
                if let Some(on) = self.flag(d) {
                    self.itk.enable_capabilities = on;
                }
            }
            "servertokens" => {
                if let Some(arg) = self.one_arg(d) {
                    let tokens = match arg.to_ascii_lowercase().as_str() {
                        "major" => Some(ServerTokens::Major),
                        "minor" => Some(ServerTokens::Minor),
                        "min" | "minimal" => Some(ServerTokens::Minimal),
                        "prod" | "productonly" => Some(ServerTokens::ProductOnly),
                        "os" => Some(ServerTokens::Os),
                        "full" => Some(ServerTokens::Full),
                        _ => None,
                    };
                    match tokens {
                        Some(t) => self.server_tokens = t,
                        None => self.error(
                            d,
                            "ServerTokens takes 1 argument: 'Prod(uctOnly)', 'Major', 'Minor', 'Min(imal)', 'OS', or 'Full'",
                        ),
                    }
                }
            }
            "typesconfig" => {
                if let Some(arg) = self.one_arg(d) {
                    self.types_config =
                        Some((resolve(&self.server_root, Path::new(arg)), d.span.clone()));
                }
            }
            "serverroot" => {
                // Carried out by the parser while reading; only the argument count is left.
                let _ = self.one_arg(d);
            }
            "loadmodule" | "acceptfilter" => {
                if d.args.len() != 2 {
                    self.error(d, format!("{} takes two arguments", d.name));
                }
            }
            "defaultruntimedir" => {
                let _ = self.one_arg(d);
            }
            "mutex" => {
                if d.args.is_empty() || d.args.len() > 2 {
                    self.error(d, "Mutex takes one or two arguments");
                }
            }
            _ => return false,
        }
        true
    }

    fn listen(&mut self, d: &Directive) {
        let (addr_port, protocol) = match d.args.as_slice() {
            [a] => (a, None),
            [a, p] => (a, Some(p.to_ascii_lowercase())),
            _ => return self.error(d, "Listen requires 1 or 2 arguments."),
        };
        let (host, port) = match split_host_port(addr_port) {
            // `Listen 80`: a bare number is a port.
            Ok((host, None)) if host.bytes().all(|b| b.is_ascii_digit()) => ("", Some(host)),
            Ok(pair) => pair,
            Err(_) => return self.error(d, "Invalid address or port"),
        };
        let Some(port) = port else {
            return self.error(d, "Port must be specified");
        };
        let Some(port) = parse_port(port) else {
            return self.error(d, "Invalid address or port");
        };
        let addr = match host {
            "" | "*" => None,
            h => match h.parse() {
                Ok(ip) => Some(ip),
                Err(_) => match self.system.resolve_host(h).first() {
                    Some(ip) => Some(*ip),
                    None => return self.error(d, format!("Could not resolve host name {h}")),
                },
            },
        };
        if self.listen.iter().any(|l| l.addr == addr && l.port == port) {
            return self.error(d, "Cannot define multiple Listeners on the same IP:port");
        }
        self.listen.push(Listen {
            addr,
            port,
            protocol,
            span: d.span.clone(),
        });
    }

    /// Server-level directives (main server or `<VirtualHost>`). False when `d` is not one.
    fn server(&mut self, d: &Directive, f: &mut ServerFields) -> bool {
        let lower = d.name.to_ascii_lowercase();
        match lower.as_str() {
            "servername" => {
                if let Some(arg) = self.one_arg(d) {
                    let without_scheme =
                        arg.split_once("://").map_or(arg.as_str(), |(_, rest)| rest);
                    match split_host_port(without_scheme) {
                        Ok((host, port)) if !host.is_empty() => {
                            let port = match port {
                                None => None,
                                Some(p) => match parse_port(p) {
                                    Some(p) => Some(p),
                                    None => {
                                        return self.error_true(
                                            d,
                                            format!("Invalid ServerName port \"{p}\""),
                                        )
                                    }
                                },
                            };
                            f.server_name = Some((host.to_ascii_lowercase(), port));
                        }
                        _ => self.error(d, format!("Invalid ServerName \"{arg}\"")),
                    }
                }
            }
            "serveralias" => {
                if d.args.is_empty() {
                    self.error(d, "ServerAlias requires at least one argument");
                }
                f.aliases
                    .extend(d.args.iter().map(|a| a.to_ascii_lowercase()));
            }
            "serveradmin" => f.server_admin = self.one_arg(d).cloned().or(f.server_admin.take()),
            "documentroot" => {
                if let Some(arg) = self.one_arg(d) {
                    let root = resolve(&self.server_root, Path::new(arg));
                    f.document_root = Some((root, d.span.clone()));
                }
            }
            "errorlog" => {
                if let Some(arg) = self.one_arg(d) {
                    f.error_log = Some(self.log_target(arg, true));
                }
            }
            "loglevel" => {
                if let Some(level) = self.log_level(d) {
                    f.log_level = Some(level);
                }
            }
            "timeout" => f.timeout = self.duration(d).or(f.timeout),
            "keepalive" => f.keep_alive = self.flag(d).or(f.keep_alive),
            "keepalivetimeout" => f.keep_alive_timeout = self.duration(d).or(f.keep_alive_timeout),
            "maxkeepaliverequests" => {
                f.max_keep_alive_requests = self.count(d).or(f.max_keep_alive_requests)
            }
            "logformat" => self.log_format(d),
            "customlog" => {
                if d.args.len() < 2 || d.args.len() > 3 {
                    self.error(d, "CustomLog takes two or three arguments");
                } else {
                    let condition = match d.args.get(2) {
                        None => None,
                        Some(c) => match c.strip_prefix("env=") {
                            Some(var) => Some(match var.strip_prefix('!') {
                                Some(v) => (false, v.to_owned()),
                                None => (true, var.to_owned()),
                            }),
                            None => {
                                self.error(
                                    d,
                                    "error in condition clause (itkd supports env=[!]VAR)",
                                );
                                None
                            }
                        },
                    };
                    f.logs.push(PendingLog {
                        target: self.log_target(&d.args[0], false),
                        format: d.args[1].clone(),
                        condition,
                        span: d.span.clone(),
                    });
                }
            }
            "transferlog" => {
                if let Some(arg) = self.one_arg(d) {
                    let format = self
                        .transfer_format
                        .clone()
                        .unwrap_or_else(|| DEFAULT_FORMAT.to_owned());
                    f.logs.push(PendingLog {
                        target: self.log_target(arg, false),
                        format,
                        condition: None,
                        span: d.span.clone(),
                    });
                }
            }
            "accessfilename" => {
                if d.args.is_empty() {
                    self.error(d, "AccessFileName requires at least one argument");
                } else {
                    f.access_file_names = Some(d.args.clone());
                }
            }
            "alias" | "scriptalias" | "aliasmatch" | "scriptaliasmatch" => {
                let [from, to] = d.args.as_slice() else {
                    return self.error_true(d, format!("{} takes two arguments", d.name));
                };
                let matcher = if lower.ends_with("match") {
                    match self.regex(d, from) {
                        Some(re) => UrlMatcher::Regex(re),
                        None => return true,
                    }
                } else {
                    UrlMatcher::Prefix(from.clone())
                };
                f.aliases_map.push(AliasRule {
                    matcher,
                    target: to.clone(),
                    script: lower.starts_with("script"),
                    span: d.span.clone(),
                });
            }
            "limitrequestfields" => f.limit_fields = self.count(d).or(f.limit_fields),
            "limitrequestfieldsize" => f.limit_field_size = self.count(d).or(f.limit_field_size),
            "limitrequestline" => f.limit_line = self.count(d).or(f.limit_line),
            "allowencodedslashes" => {
                if let Some(arg) = self.one_arg(d) {
                    match arg.to_ascii_lowercase().as_str() {
                        "on" => f.allow_encoded_slashes = Some(EncodedSlashes::On),
                        "off" => f.allow_encoded_slashes = Some(EncodedSlashes::Off),
                        "nodecode" => f.allow_encoded_slashes = Some(EncodedSlashes::NoDecode),
                        _ => self.error(d, "AllowEncodedSlashes must be On, Off, or NoDecode"),
                    }
                }
            }
            "traceenable" => {
                if let Some(arg) = self.one_arg(d) {
                    match arg.to_ascii_lowercase().as_str() {
                        "on" => f.trace_enable = Some(TraceEnable::On),
                        "off" => f.trace_enable = Some(TraceEnable::Off),
                        "extended" => f.trace_enable = Some(TraceEnable::Extended),
                        _ => self.error(d, "TraceEnable must be one of 'on', 'off', or 'extended'"),
                    }
                }
            }
            "maxclientsvhost" => {
                if let Some(arg) = self.one_arg(d) {
                    match arg.parse::<i64>() {
                        // mpm-itk: zero or less disables the limit.
                        Ok(n) if n <= 0 => f.max_clients_vhost = Some(None),
                        Ok(n) => {
                            f.max_clients_vhost = Some(Some(u32::try_from(n).unwrap_or(u32::MAX)))
                        }
                        Err(_) => {
                            self.error(d, format!("MaxClientsVHost must be a number, not '{arg}'"))
                        }
                    }
                }
            }
            "sslengine" => {
                if let Some(arg) = self.one_arg(d) {
                    match arg.to_ascii_lowercase().as_str() {
                        "on" => f.ssl.engine = Some((true, d.span.clone())),
                        "off" => f.ssl.engine = Some((false, d.span.clone())),
                        "optional" => self.error(
                            d,
                            "SSLEngine optional (a TLS upgrade on a plain connection) is not supported",
                        ),
                        _ => self.error(d, "Argument must be On, Off, or Optional"),
                    }
                }
            }
            "sslcertificatefile" | "sslcertificatekeyfile" | "sslcertificatechainfile" => {
                if let Some(arg) = self.one_arg(d) {
                    let path = resolve(&self.server_root, Path::new(arg));
                    let entry = (path, d.span.clone());
                    match lower.as_str() {
                        "sslcertificatefile" => f.ssl.certificate_files.push(entry),
                        "sslcertificatekeyfile" => f.ssl.key_files.push(entry),
                        _ => f.ssl.chain_file = Some(entry),
                    }
                }
            }
            "sslprotocol" => match crate::ssl::protocols(&d.args) {
                Ok((versions, warnings)) => {
                    for w in warnings {
                        self.warn(d, w);
                    }
                    f.ssl.protocols = Some(versions);
                }
                Err(e) => self.error(d, e),
            },
            "sslciphersuite" => {
                if d.args.is_empty() || d.args.len() > 2 {
                    self.error(d, "SSLCipherSuite takes one or two arguments");
                } else {
                    let spec = d.args.join(" ");
                    match crate::ssl::cipher_suites(&spec) {
                        Ok((_, warnings)) => {
                            for w in warnings {
                                self.warn(d, w);
                            }
                            f.ssl.cipher_suite = Some((spec, d.span.clone()));
                        }
                        Err(e) => self.error(d, e),
                    }
                }
            }
            "requestreadtimeout" => {
                for arg in &d.args {
                    match parse_request_read_timeout(arg) {
                        Ok((stage, limit)) => {
                            let stages = f.read_timeouts.get_or_insert_with(ReadTimeouts::default);
                            match stage.as_str() {
                                "handshake" => stages.handshake = limit,
                                "header" => stages.header = limit,
                                _ => stages.body = limit,
                            }
                        }
                        Err(e) => self.error(d, e),
                    }
                }
            }
            "sslhonorcipherorder" => f.ssl.honor_cipher_order = self.flag(d),
            "sslsessiontickets" => f.ssl.session_tickets = self.flag(d),
            _ => return false,
        }
        true
    }

    fn error_true(&mut self, d: &Directive, message: impl Into<String>) -> bool {
        self.error(d, message);
        true
    }

    /// Per-directory directives: in sections, `.htaccess`, or at server level.
    fn per_dir(&mut self, d: &Directive, spec: &Spec, place: Place<'_>, dir: &mut DirConfig) {
        let lower = d.name.to_ascii_lowercase();
        match lower.as_str() {
            "options" => {
                let allowed = match place {
                    Place::Htaccess(o) => o.options,
                    _ => None,
                };
                if let Some(setting) = self.options(d, allowed) {
                    // httpd's set_options: `+x`/`-y` lines in one section add up.
                    dir.options = Some(match dir.options {
                        Some(before) => before.then(setting),
                        None => setting,
                    });
                }
            }
            "allowoverride" => {
                if let Place::Section(SectionKind::Location | SectionKind::Files, name) = place {
                    self.warn(d, format!("Useless use of AllowOverride in {name}"));
                }
                if let Some(o) = self.allow_override(d) {
                    let list = dir
                        .allow_override
                        .as_ref()
                        .map(|p| p.list.clone())
                        .unwrap_or_default();
                    dir.allow_override = Some(Overrides { list, ..o });
                }
            }
            "allowoverridelist" => {
                if d.args.is_empty() {
                    return self.error(d, "AllowOverrideList requires at least one argument");
                }
                let list = if d.args.len() == 1 && d.args[0].eq_ignore_ascii_case("none") {
                    Vec::new()
                } else {
                    d.args.iter().map(|a| a.to_ascii_lowercase()).collect()
                };
                let mut o = dir.allow_override.clone().unwrap_or_default();
                o.list = list;
                dir.allow_override = Some(o);
            }
            "directoryindex" => {
                if d.args.is_empty() {
                    return self.error(d, "DirectoryIndex requires at least one argument");
                }
                dir.directory_index = Some(
                    if d.args.len() == 1 && d.args[0].eq_ignore_ascii_case("disabled") {
                        Vec::new()
                    } else {
                        d.args.clone()
                    },
                );
            }
            "addhandler" | "addtype" => {
                let Some((value, exts)) = d.args.split_first().filter(|(_, e)| !e.is_empty())
                else {
                    return self.error(d, format!("{} requires at least two arguments", d.name));
                };
                let value = value.to_ascii_lowercase();
                if lower == "addhandler" || crate::dirconf::names_a_handler(&value) {
                    self.note_handler(d, &value, dir);
                }
                let pairs = exts.iter().map(|e| (normalize_ext(e), value.clone()));
                if lower == "addhandler" {
                    dir.handlers.extend(pairs);
                } else {
                    dir.types.extend(pairs);
                }
            }
            "removehandler" | "removetype" => {
                if d.args.is_empty() {
                    return self.error(d, format!("{} requires at least one argument", d.name));
                }
                let exts = d.args.iter().map(|e| normalize_ext(e));
                if lower == "removehandler" {
                    dir.removed_handlers.extend(exts);
                } else {
                    dir.removed_types.extend(exts);
                }
            }
            "sethandler" | "forcetype" => {
                if let Some(arg) = self.one_arg(d) {
                    let value =
                        (!arg.eq_ignore_ascii_case("none")).then(|| arg.to_ascii_lowercase());
                    if lower == "sethandler" {
                        if let Some(handler) = &value {
                            self.note_handler(d, handler, dir);
                        }
                        dir.set_handler = Some(value);
                    } else {
                        dir.force_type = Some(value);
                    }
                }
            }
            "action" => {
                // Remembered for the warning about handlers no Action runs.
                if let Some(trigger) = d.args.first() {
                    self.action_triggers.push(trigger.to_ascii_lowercase());
                }
                match d.args.as_slice() {
                    [trigger, script] => dir.actions.push(Action {
                        trigger: trigger.to_ascii_lowercase(),
                        script: script.clone(),
                        is_virtual: false,
                    }),
                    [trigger, script, v] if v.eq_ignore_ascii_case("virtual") => dir.actions.push(Action {
                        trigger: trigger.to_ascii_lowercase(),
                        script: script.clone(),
                        is_virtual: true,
                    }),
                    [_, _, _] => self.error(d, "Action: third argument must be 'virtual'"),
                    _ => self.error(d, "Action takes two or three arguments, a handler name or media type, a script and optionally 'virtual'"),
                }
            }
            "adddefaultcharset" => {
                if let Some(arg) = self.one_arg(d) {
                    dir.default_charset = Some(match arg.to_ascii_lowercase().as_str() {
                        "off" => None,
                        // httpd's AP_DEFAULT_CHARSET_NAME
                        "on" => Some("iso-8859-1".to_owned()),
                        _ => Some(arg.clone()),
                    });
                }
            }
            "errordocument" => self.error_document(d, dir),
            "redirect" | "redirectmatch" | "redirectpermanent" | "redirecttemp" => {
                self.redirect(d, place, dir)
            }
            "require" => {
                match Require::parse_line(&d.args) {
                    Ok(rule) => {
                        if rule.is_negated() {
                            self.error(d, "negative Require directive has no effect in <RequireAny> directive");
                        }
                        add_require(dir, rule);
                    }
                    Err(e) => self.error(d, e),
                }
            }
            "order" => match d.args.as_slice() {
                [arg] => match Order::parse(arg) {
                    Ok(value) => access_compat(dir).order.push(Limited {
                        value,
                        methods: Methods::default(),
                    }),
                    Err(e) => self.error(d, e),
                },
                _ => self.error(
                    d,
                    "order takes one argument, 'allow,deny', 'deny,allow', or 'mutual-failure'",
                ),
            },
            "allow" | "deny" => {
                let Some((from, hosts)) = d.args.split_first().filter(|(_, h)| !h.is_empty())
                else {
                    return self.error(d, format!("{lower} requires at least two arguments, 'from' followed by hostnames or IP-address wildcards"));
                };
                if !from.eq_ignore_ascii_case("from") {
                    return self.error(d, "allow and deny must be followed by 'from'");
                }
                for host in hosts {
                    match HostRule::parse(host) {
                        Ok(value) => {
                            let rule = Limited {
                                value,
                                methods: Methods::default(),
                            };
                            let list = access_compat(dir);
                            if lower == "allow" {
                                list.allow.push(rule)
                            } else {
                                list.deny.push(rule)
                            }
                        }
                        Err(e) => self.error(d, e),
                    }
                }
            }
            "satisfy" => {
                if let Some(arg) = self.one_arg(d) {
                    match Satisfy::parse(arg) {
                        Ok(value) => access_compat(dir).satisfy.push(Limited {
                            value,
                            methods: Methods::default(),
                        }),
                        Err(e) => self.error(d, e),
                    }
                }
            }
            "cgipassauth" => {
                if let Some(on) = self.flag(d) {
                    dir.cgi_pass_auth = Some(on);
                }
            }
            "limitrequestbody" => {
                if let Some(arg) = self.one_arg(d) {
                    // httpd 2.4: 0 (unlimited) to 2^31 - 1 bytes.
                    match arg.parse::<u64>() {
                        Ok(n) if n <= 2_147_483_647 => dir.limit_request_body = Some(n),
                        _ => self.error(d, "LimitRequestBody requires a non-negative integer."),
                    }
                }
            }
            "rlimitcpu" | "rlimitmem" | "rlimitnproc" => {
                match crate::rlimit::RLimit::parse(&d.name, &d.args) {
                    Ok(limit) if lower == "rlimitcpu" => dir.rlimits.cpu = Some(limit),
                    Ok(limit) if lower == "rlimitmem" => dir.rlimits.mem = Some(limit),
                    Ok(limit) => dir.rlimits.nproc = Some(limit),
                    Err(e) => self.error(d, e),
                }
            }
            "serversignature" => {
                if let Some(arg) = self.one_arg(d) {
                    dir.server_signature = match arg.to_ascii_lowercase().as_str() {
                        "on" => Some(ServerSignature::On),
                        "off" => Some(ServerSignature::Off),
                        "email" => Some(ServerSignature::Email),
                        _ => return self.error(d, "ServerSignature: use one of: off | on | email"),
                    };
                }
            }
            "hostnamelookups" => {
                if let Some(arg) = self.one_arg(d) {
                    match arg.to_ascii_lowercase().as_str() {
                        "off" => dir.hostname_lookups = Some(false),
                        "on" | "double" => self.error(
                            d,
                            "HostnameLookups On/Double is not supported by itkd: a DNS lookup per request would stall workers; use Off and resolve names in log analysis",
                        ),
                        _ => self.error(d, "parameter must be 'on', 'off', or 'double'"),
                    }
                }
            }
            "loglevel" => {
                // Per-directory LogLevel is validated; itkd logs at the server's level.
                let _ = self.log_level(d);
            }
            "assignuserid" => {
                let [user, group] = d.args.as_slice() else {
                    return self.error(d, "AssignUserID takes two arguments, Tie a virtual host to a specific child process.");
                };
                let user = self.resolve_user(d, user, "AssignUserID");
                let group = self.resolve_group(d, group, "AssignUserID");
                if let (Some(user), Some(group)) = (user, group) {
                    dir.assign = Some(Assign {
                        user,
                        group,
                        span: d.span.clone(),
                    });
                }
            }
            "assignuseridexpr" | "assigngroupidexpr" => {
                if let Some(arg) = self.one_arg(d) {
                    match StringExpr::parse(arg) {
                        Ok(e) if lower == "assignuseridexpr" => dir.user_expr = Some(e),
                        Ok(e) => dir.group_expr = Some(e),
                        Err(e) => self.error(d, format!("Cannot parse expression '{arg}': {e}")),
                    }
                }
            }
            "nicevalue" => {
                if let Some(arg) = self.one_arg(d) {
                    match arg.parse::<i64>() {
                        Ok(n) if n > 19 => {
                            self.warn(
                                d,
                                format!("NiceValue of {n} is above 19, lowering NiceValue to 19."),
                            );
                            dir.nice = Some(19);
                        }
                        Ok(n) if n < -20 => {
                            self.warn(
                                d,
                                format!(
                                    "NiceValue of {n} is below -20, increasing NiceValue to -20."
                                ),
                            );
                            dir.nice = Some(-20);
                        }
                        // In -20..=19 by the arms above.
                        Ok(n) => dir.nice = i32::try_from(n).ok(),
                        Err(_) => self.error(d, format!("NiceValue must be a number, not '{arg}'")),
                    }
                }
            }
            "authtype" => {
                if let Some(arg) = self.one_arg(d) {
                    match arg.to_ascii_lowercase().as_str() {
                        "basic" => dir.auth_basic = Some(true),
                        "none" => dir.auth_basic = Some(false),
                        "digest" => self.error(
                            d,
                            "AuthType Digest is not supported by itkd (use Basic over HTTPS)",
                        ),
                        _ => self.error(
                            d,
                            format!("Unknown AuthType '{arg}': itkd knows Basic and None"),
                        ),
                    }
                }
            }
            "authname" => {
                if let Some(arg) = self.one_arg(d) {
                    dir.auth_name = Some(arg.clone());
                }
            }
            "authuserfile" | "authgroupfile" => {
                if let Some(arg) = self.one_arg(d) {
                    let path = resolve(&self.server_root, Path::new(arg));
                    if lower == "authuserfile" {
                        dir.auth_user_file = Some(path);
                    } else {
                        dir.auth_group_file = Some(path);
                    }
                }
            }
            "authbasicprovider" => {
                if d.args.iter().any(|p| !p.eq_ignore_ascii_case("file")) {
                    self.error(d, "itkd's only AuthBasicProvider is 'file'");
                }
            }
            "setenv" => match d.args.as_slice() {
                [k] => dir.env.push(EnvOp::Set(k.clone(), String::new())),
                [k, v] => dir.env.push(EnvOp::Set(k.clone(), v.clone())),
                _ => self.error(d, "SetEnv takes one or two arguments"),
            },
            "passenv" | "unsetenv" => {
                if d.args.is_empty() {
                    return self.error(d, format!("{} requires at least one argument", d.name));
                }
                for k in &d.args {
                    dir.env.push(if lower == "passenv" {
                        EnvOp::Pass(k.clone())
                    } else {
                        EnvOp::Unset(k.clone())
                    });
                }
            }
            "header" => {
                if let Some(action) = self.header(d) {
                    dir.headers.push(action);
                }
            }
            "extendedstatus" => {
                let _ = self.flag(d);
            }
            _ => match spec.support {
                Support::NoEffect(_) => {
                    if d.args.is_empty() {
                        self.error(d, format!("{} requires at least one argument", d.name));
                    }
                }
                Support::Model => {
                    // Every Model directive has an arm above; the table test keeps it so.
                    self.error(d, "is known but not handled: this is a bug in itkd");
                }
            },
        }
    }

    /// mod_headers' `Header [always|onsuccess] action header [value] [env=[!]VAR]`, with
    /// httpd's messages; what itkd does not carry out (edit, echo, note, early, expr=) is
    /// refused by name rather than ignored.
    fn header(&mut self, d: &Directive) -> Option<HeaderAction> {
        let mut args = d.args.iter().map(String::as_str);
        let mut first = args.next();
        let table = match first.map(str::to_ascii_lowercase).as_deref() {
            Some("always") => {
                first = args.next();
                HeaderTable::Always
            }
            Some("onsuccess") => {
                first = args.next();
                HeaderTable::OnSuccess
            }
            _ => HeaderTable::OnSuccess,
        };
        let rest: Vec<&str> = args.collect();
        let Some(action) = first else {
            self.error(d, "Header requires three arguments");
            return None;
        };
        let op = match action.to_ascii_lowercase().as_str() {
            "set" => HeaderOp::Set,
            "append" => HeaderOp::Append,
            "add" => HeaderOp::Add,
            "merge" => HeaderOp::Merge,
            "setifempty" => HeaderOp::SetIfEmpty,
            "unset" => HeaderOp::Unset,
            "echo" | "edit" | "edit*" | "note" => {
                self.error(
                    d,
                    format!("{action} is not supported by itkd (set, append, add, merge, setifempty and unset are)"),
                );
                return None;
            }
            _ => {
                self.error(d, "first argument must be 'add', 'set', 'setifempty', 'append', 'merge', 'unset', 'echo', 'note', 'edit', or 'edit*'.");
                return None;
            }
        };
        let (name, value, clause) = match (op, rest.as_slice()) {
            (_, []) => {
                self.error(d, "Header requires three arguments");
                return None;
            }
            (HeaderOp::Unset, [name]) => (*name, None, None),
            (HeaderOp::Unset, [name, clause]) => (*name, None, Some(*clause)),
            (HeaderOp::Unset, _) => {
                self.error(d, "header unset takes two arguments");
                return None;
            }
            (_, [_]) => {
                self.error(d, "Header requires three arguments");
                return None;
            }
            (_, [name, value]) => (*name, Some(*value), None),
            (_, [name, value, clause]) => (*name, Some(*value), Some(*clause)),
            _ => {
                self.error(d, "Too many arguments to directive");
                return None;
            }
        };
        // httpd accepts the name with its final colon.
        let name = name.strip_suffix(':').unwrap_or(name);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            self.error(d, format!("'{name}' is not a valid HTTP field name"));
            return None;
        }
        if FRAMING_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            self.warn(
                d,
                format!("{name} has no effect: itkd sets the framing headers (Content-Length, Transfer-Encoding, Connection, Keep-Alive, Date, Server) itself, after mod_headers' work, as httpd does"),
            );
        }
        let condition = match clause {
            None => None,
            Some(c) => match c.strip_prefix("env=") {
                Some(var) => Some(match var.strip_prefix('!') {
                    Some(v) => (false, v.to_owned()),
                    None => (true, var.to_owned()),
                }),
                None if c.eq_ignore_ascii_case("early") => {
                    self.error(
                        d,
                        "early is not supported by itkd (a debugging aid in httpd)",
                    );
                    return None;
                }
                None => {
                    self.error(
                        d,
                        format!("condition '{c}' is not supported by itkd: use env=VAR or env=!VAR (expr= is not supported)"),
                    );
                    return None;
                }
            },
        };
        let value = match value {
            None => Vec::new(),
            Some(v) if v.starts_with("expr=") => {
                self.error(d, "values of the form expr=… are not supported by itkd");
                return None;
            }
            Some(v) => match header_value(v) {
                Ok(pieces) => pieces,
                Err(e) => {
                    self.error(d, e);
                    return None;
                }
            },
        };
        Some(HeaderAction {
            table,
            op,
            name: name.to_owned(),
            value,
            condition,
        })
    }

    fn options(&mut self, d: &Directive, allowed: Option<OptionSet>) -> Option<OptionsSetting> {
        if d.args.is_empty() {
            self.error(d, "Options requires at least one argument");
            return None;
        }
        let (mut set, mut add, mut remove) = (OptionSet::NONE, OptionSet::NONE, OptionSet::NONE);
        let (mut relative, mut absolute) = (false, false);
        for arg in &d.args {
            let (sign, name) = match arg.as_bytes().first() {
                Some(b'+') => (Some(true), &arg[1..]),
                Some(b'-') => (Some(false), &arg[1..]),
                _ => (None, arg.as_str()),
            };
            if sign.is_some() {
                relative = true;
            } else {
                absolute = true;
            }
            if relative && absolute {
                self.error(
                    d,
                    "Either all Options must start with + or -, or no Option may.",
                );
                return None;
            }
            let option = if name.eq_ignore_ascii_case("None") && sign.is_none() {
                OptionSet::NONE
            } else if let Some(o) = OptionSet::by_name(name) {
                o
            } else {
                self.error(d, format!("Illegal option {name}"));
                return None;
            };
            if let Some(allowed) = allowed {
                if !allowed.contains(option) {
                    self.error(d, format!("Option {name} not allowed here"));
                    return None;
                }
            }
            match sign {
                Some(true) => add = add.union(option),
                Some(false) => remove = remove.union(option),
                None => set = set.union(option),
            }
        }
        Some(if relative {
            OptionsSetting::Change { add, remove }
        } else {
            OptionsSetting::Set(set)
        })
    }

    fn allow_override(&mut self, d: &Directive) -> Option<Overrides> {
        if d.args.is_empty() {
            self.error(d, "AllowOverride requires at least one argument");
            return None;
        }
        let mut o = Overrides::default();
        for arg in &d.args {
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (arg.as_str(), None),
            };
            match name.to_ascii_lowercase().as_str() {
                "none" => o.classes.clear(),
                "all" => {
                    o.classes.extend(Override::ALL);
                    o.options = None;
                }
                // Nonfatal= only softens how .htaccess errors are reported.
                "nonfatal" => {}
                "options" => {
                    o.classes.insert(Override::Options);
                    if let Some(list) = value {
                        let mut allowed = OptionSet::NONE;
                        for opt in list.split(',') {
                            match OptionSet::by_name(opt) {
                                Some(x) => allowed = allowed.union(x),
                                None => {
                                    self.error(d, format!("Illegal option {opt}"));
                                    return None;
                                }
                            }
                        }
                        o.options = Some(allowed);
                    }
                }
                other => match Override::ALL
                    .iter()
                    .find(|c| c.name().eq_ignore_ascii_case(other))
                {
                    Some(c) => {
                        o.classes.insert(*c);
                    }
                    None => {
                        self.error(d, format!("Illegal override option {arg}"));
                        return None;
                    }
                },
            }
        }
        Some(o)
    }

    fn error_document(&mut self, d: &Directive, dir: &mut DirConfig) {
        let [code, doc] = d.args.as_slice() else {
            return self.error(
                d,
                "ErrorDocument takes two arguments, Change responses for HTTP errors",
            );
        };
        let code = match code.parse::<u16>() {
            Ok(c) if (400..=599).contains(&c) => c,
            _ => return self.error(d, format!("Unsupported HTTP response code {code}")),
        };
        // httpd's heuristic (core.c set_error_document).
        let document = if doc.eq_ignore_ascii_case("default") {
            ErrorDocument::Default
        } else if doc.contains(' ') {
            ErrorDocument::Text(doc.clone())
        } else if doc.starts_with('/') {
            ErrorDocument::Local(doc.clone())
        } else if is_url(doc) {
            if code == 401 {
                return self.warn(
                    d,
                    "cannot use a full URL in a 401 ErrorDocument directive --- ignoring!",
                );
            }
            ErrorDocument::Remote(doc.clone())
        } else {
            ErrorDocument::Text(doc.clone())
        };
        dir.error_documents.retain(|(c, _)| *c != code);
        dir.error_documents.push((code, document));
    }

    fn redirect(&mut self, d: &Directive, place: Place<'_>, dir: &mut DirConfig) {
        let lower = d.name.to_ascii_lowercase();
        let mut args: &[String] = &d.args;
        let status = match lower.as_str() {
            "redirectpermanent" => 301,
            "redirecttemp" => 302,
            _ => {
                let status = args
                    .first()
                    .and_then(|s| match s.to_ascii_lowercase().as_str() {
                        "permanent" => Some(301),
                        "temp" => Some(302),
                        "seeother" => Some(303),
                        "gone" => Some(410),
                        n if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
                            n.parse().ok()
                        }
                        _ => None,
                    });
                match status {
                    Some(s) => {
                        args = &args[1..];
                        s
                    }
                    None => 302,
                }
            }
        };
        if !(300..=599).contains(&status) && status != 410 {
            return self.error(d, format!("{} takes an invalid status {status}", d.name));
        }
        let needs_url = (300..400).contains(&status);
        let (from, to) = match args {
            [from, to] => (Some(from.clone()), Some(to.clone())),
            // In <Location> the section's path is the one redirected (httpd 2.4.x).
            [one] if matches!(place, Place::Section(SectionKind::Location, _)) && needs_url => (None, Some(one.clone())),
            [from] => (Some(from.clone()), None),
            _ => return self.error(d, format!("{} takes two or three arguments, an optional status, then document to be redirected and destination URL", d.name)),
        };
        if needs_url && to.is_none() {
            return self.error(d, "URL to redirect to is missing");
        }
        if !needs_url && to.is_some() {
            return self.error(d, "Redirect URL not valid for this status");
        }
        if let Some(to) = &to {
            if !is_url(to) && !to.starts_with('/') && !lower.ends_with("match") {
                return self.error(d, "Redirect to non-URL");
            }
        }
        let matcher = match from {
            None => UrlMatcher::Prefix(String::new()),
            Some(f) if lower == "redirectmatch" => match self.regex(d, &f) {
                Some(re) => UrlMatcher::Regex(re),
                None => return,
            },
            Some(f) => UrlMatcher::Prefix(f),
        };
        dir.redirects.push(Redirect {
            status,
            matcher,
            target: to,
            span: d.span.clone(),
        });
    }

    fn one_arg<'d>(&mut self, d: &'d Directive) -> Option<&'d String> {
        match d.args.as_slice() {
            [arg] => Some(arg),
            _ => {
                self.error(d, format!("{} takes one argument", d.name));
                None
            }
        }
    }

    fn count(&mut self, d: &Directive) -> Option<u32> {
        let arg = self.one_arg(d)?;
        match arg.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    d,
                    format!("{} must be a non-negative number, not '{arg}'", d.name),
                );
                None
            }
        }
    }

    fn flag(&mut self, d: &Directive) -> Option<bool> {
        let arg = self.one_arg(d)?;
        match arg.to_ascii_lowercase().as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => {
                self.error(d, format!("{} must be On or Off", d.name));
                None
            }
        }
    }

    /// httpd's `ap_timeout_parameter_parse`: seconds, or a number with ms/s/mi/h.
    fn duration(&mut self, d: &Directive) -> Option<Duration> {
        let arg = self.one_arg(d)?;
        let digits = arg.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = arg.split_at(digits);
        let value = number.parse::<u64>().ok();
        let parsed = value.and_then(|n| match unit.to_ascii_lowercase().as_str() {
            "" | "s" => Some(Duration::from_secs(n)),
            "ms" => Some(Duration::from_millis(n)),
            "mi" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            _ => None,
        });
        if parsed.is_none() {
            self.error(
                d,
                format!(
                    "{} must be a number of seconds (or with ms, s, mi, h), not '{arg}'",
                    d.name
                ),
            );
        }
        parsed
    }

    fn id_range(&mut self, d: &Directive) -> Option<(u32, u32)> {
        let [min, max] = d.args.as_slice() else {
            self.error(d, format!("{} takes two arguments", d.name));
            return None;
        };
        match (min.parse::<u32>(), max.parse::<u32>()) {
            (Ok(lo), Ok(hi)) if lo <= hi => Some((lo, hi)),
            (Ok(_), Ok(_)) => {
                self.error(d, "the minimum must not be above the maximum");
                None
            }
            _ => {
                self.error(
                    d,
                    format!("{} takes two numbers, not '{min}' '{max}'", d.name),
                );
                None
            }
        }
    }

    fn log_level(&mut self, d: &Directive) -> Option<crate::loglevel::LogLevel> {
        const LEVELS: &[&str] = &[
            "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1",
            "trace2", "trace3", "trace4", "trace5", "trace6", "trace7", "trace8",
        ];
        if d.args.is_empty() {
            self.error(d, "LogLevel requires at least one argument");
            return None;
        }
        for arg in &d.args {
            let level = arg.rsplit(':').next().unwrap_or(arg);
            if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
                self.error(d, format!("LogLevel requires level keyword: one of emerg/alert/crit/error/warn/notice/info/debug/trace1/.../trace8, not '{arg}'"));
                return None;
            }
        }
        Some(crate::loglevel::LogLevel::parse(&d.args.join(" ")))
    }

    fn log_format(&mut self, d: &Directive) {
        let (format, nickname) = match d.args.as_slice() {
            [f] => (f, None),
            [f, n] => (f, Some(n)),
            _ => return self.error(d, "LogFormat takes one or two arguments"),
        };
        match LogFormat::parse(format) {
            Ok(parsed) => match nickname {
                Some(n) => {
                    self.log_formats.insert(n.clone(), parsed);
                }
                None => self.transfer_format = Some(format.clone()),
            },
            Err(e) => self.error(d, e),
        }
    }

    fn log_target(&self, arg: &str, error_log: bool) -> LogTarget {
        if let Some(cmd) = arg.strip_prefix('|') {
            LogTarget::Pipe(cmd.strip_prefix('$').unwrap_or(cmd).trim().to_owned())
        } else if error_log && (arg == "syslog" || arg.starts_with("syslog:")) {
            LogTarget::Syslog(arg.strip_prefix("syslog:").unwrap_or("local7").to_owned())
        } else {
            LogTarget::File(resolve(&self.server_root, Path::new(arg)))
        }
    }

    fn resolve_user(
        &mut self,
        d: &Directive,
        text: &str,
        directive: &'static str,
    ) -> Option<UserId> {
        let (uid, name) = self.resolve_id(d, text, true, directive)?;
        Some(UserId { uid, name })
    }

    fn resolve_group(
        &mut self,
        d: &Directive,
        text: &str,
        directive: &'static str,
    ) -> Option<GroupId> {
        let (gid, name) = self.resolve_id(d, text, false, directive)?;
        Some(GroupId { gid, name })
    }

    /// `#n` or a name, as httpd's `ap_uname2id`/`ap_gname2id`; the id is remembered for
    /// the LimitUIDRange/LimitGIDRange check once the whole tree is read.
    fn resolve_id(
        &mut self,
        d: &Directive,
        text: &str,
        is_uid: bool,
        directive: &'static str,
    ) -> Option<(u32, Option<String>)> {
        let what = if is_uid { "user" } else { "group" };
        let resolved = match text.strip_prefix('#') {
            Some(n) => n.parse::<u32>().ok().map(|id| {
                let name = if is_uid {
                    self.system.user_name(id)
                } else {
                    self.system.group_name(id)
                };
                (id, name)
            }),
            None => {
                let id = if is_uid {
                    self.system.user_by_name(text).map(|(uid, _)| uid)
                } else {
                    self.system.group_by_name(text)
                };
                id.map(|id| (id, Some(text.to_owned())))
            }
        };
        let Some((id, name)) = resolved else {
            let hint = if text.starts_with("${") {
                " (hint: Debian's configuration needs /etc/apache2/envvars sourced first, as apache2ctl does)"
            } else {
                ""
            };
            self.error(d, format!("bad {what} name {text}{hint}"));
            return None;
        };
        self.static_ids.push(StaticId {
            id,
            is_uid,
            span: d.span.clone(),
            directive,
        });
        Some((id, name))
    }

    /// Everything that needs the whole tree read: defaults, vhost merging, formats,
    /// the uid/gid range check, TypesConfig.
    fn finish(
        &mut self,
        parsed: &Parsed,
        main: ServerScope,
        vhosts: Vec<VhostScope>,
    ) -> ServerConfig {
        self.warn_handlers();
        let root = self.server_root.clone();
        let main_span = self.main_span.clone();
        // Without User/Group: httpd's compiled default is `#-1`, an id no request may
        // use; itkd takes nobody/nogroup, resolved and range-checked like a written one.
        let default = |name: &str, arg: &str| Directive {
            name: name.to_owned(),
            args: vec![arg.to_owned()],
            span: main_span.clone(),
            children: None,
        };
        let user = match self.user.take() {
            Some(user) => Some(user),
            None => self.resolve_user(&default("User", "nobody"), "nobody", "User"),
        };
        let group = match self.group.take() {
            Some(group) => Some(group),
            None => self.resolve_group(&default("Group", "nogroup"), "nogroup", "Group"),
        };
        // Only without a usable user is this placeholder kept, and then there is an error.
        let user = user.unwrap_or(UserId {
            uid: u32::MAX,
            name: None,
        });
        let group = group.unwrap_or(GroupId {
            gid: u32::MAX,
            name: None,
        });

        for id in std::mem::take(&mut self.static_ids) {
            let (range, what, limit) = if id.is_uid {
                (self.itk.limit_uid, "uid", "LimitUIDRange")
            } else {
                (self.itk.limit_gid, "gid", "LimitGIDRange")
            };
            if id.id < range.0 || id.id > range.1 {
                self.diags.push(Diagnostic::error(
                    &id.span,
                    Some(id.directive),
                    format!(
                        "{what} {} is outside {limit} {}-{}: requests would run as (or fail on) it; itkd refuses it at load",
                        id.id, range.0, range.1
                    ),
                ));
            }
        }
        self.check_pool();

        let mime_types = self.mime_types();
        let fallback_name = self.system.default_server_name();
        let main_server = self.merge_server(&root, None, Vec::new(), main, None, &fallback_name);
        if main_server.server_name.is_none() && !parsed.has_errors() {
            self.diags.push(Diagnostic::warning(
                &main_span,
                Some("ServerName"),
                format!("Could not reliably determine the server's fully qualified domain name, using {fallback_name}. Set the 'ServerName' directive globally to suppress this message"),
            ));
        }
        let mut servers = Vec::new();
        for v in vhosts {
            let server = self.merge_server(
                &root,
                Some(v.span),
                v.addrs,
                v.scope,
                Some(&main_server),
                &fallback_name,
            );
            servers.push(server);
        }
        let vhost_table = VhostTable::build(&servers);
        ServerConfig {
            server_root: root.clone(),
            pid_file: self
                .pid_file
                .take()
                .unwrap_or_else(|| root.join("logs/httpd.pid")),
            listen: std::mem::take(&mut self.listen),
            user,
            group,
            pool: self.pool.clone(),
            itk: self.itk.clone(),
            server_tokens: self.server_tokens,
            mime_types,
            defines: parsed
                .defines
                .iter()
                .map(|d| (d.clone(), parsed.define_value(d).map(str::to_owned)))
                .collect(),
            main: main_server,
            vhosts: servers,
            vhost_table,
        }
    }

    /// httpd prefork's sanity rules, with its warnings.
    fn check_pool(&mut self) {
        let span = self.main_span.clone();
        let p = &mut self.pool;
        let mut notes = Vec::new();
        if p.max_request_workers > p.server_limit {
            notes.push(format!(
                "MaxRequestWorkers of {} exceeds ServerLimit value of {}, decreasing to match",
                p.max_request_workers, p.server_limit
            ));
            p.max_request_workers = p.server_limit;
        }
        if p.max_request_workers == 0 {
            notes.push(
                "MaxRequestWorkers of 0 would not serve anything, increasing to 1".to_owned(),
            );
            p.max_request_workers = 1;
        }
        if p.min_spare_servers == 0 {
            notes.push("MinSpareServers set to non-positive, resetting to 1".to_owned());
            p.min_spare_servers = 1;
        }
        if p.max_spare_servers <= p.min_spare_servers {
            p.max_spare_servers = p.min_spare_servers + 1;
        }
        for note in notes {
            self.diags.push(Diagnostic::warning(&span, None, note));
        }
    }

    fn mime_types(&mut self) -> MimeTypes {
        let (path, span) = match self.types_config.take() {
            Some(t) => t,
            None => {
                // Unset: Debian's /etc/mime.types when it exists (httpd's compiled default
                // would be conf/mime.types under ServerRoot).
                return std::fs::read_to_string("/etc/mime.types")
                    .map(|t| MimeTypes::parse(&t))
                    .unwrap_or_default();
            }
        };
        // A regular file only: `TypesConfig /dev/zero` must not hang the master.
        let read = match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_file() => Err(std::io::Error::other("not a regular file")),
            _ => std::fs::read(&path),
        };
        match read {
            Ok(bytes) => MimeTypes::parse(&String::from_utf8_lossy(&bytes)),
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    &span,
                    Some("TypesConfig"),
                    format!(
                        "could not open mime types config file {}: {e}",
                        path.display()
                    ),
                ));
                MimeTypes::default()
            }
        }
    }

    fn merge_server(
        &mut self,
        root: &Path,
        span: Option<Span>,
        addrs: Vec<VhostAddr>,
        scope: ServerScope,
        main: Option<&Server>,
        fallback_name: &str,
    ) -> Server {
        let ServerScope {
            fields: f,
            dir,
            sections,
        } = scope;
        let logs = self.resolve_logs(f.logs);
        let (server_name, server_name_port) = match f.server_name {
            Some((n, p)) => (Some(n), p),
            None => (
                main.and_then(|m| m.server_name.clone()),
                main.and_then(|m| m.server_name_port),
            ),
        };
        let document_root = match f.document_root {
            Some((root, root_span)) => {
                if !root.is_dir() {
                    // httpd: an error for the main server, a warning for a vhost.
                    if main.is_some() {
                        let message = format!("DocumentRoot [{}] does not exist", root.display());
                        self.diags.push(Diagnostic::warning(
                            &root_span,
                            Some("DocumentRoot"),
                            message,
                        ));
                    } else {
                        let message = format!(
                            "DocumentRoot '{}' is not a directory, or is not readable",
                            root.display()
                        );
                        self.diags.push(Diagnostic::error(
                            &root_span,
                            Some("DocumentRoot"),
                            message,
                        ));
                    }
                }
                root
            }
            // Debian builds httpd with DOCUMENT_LOCATION /var/www/html.
            None => main.map_or_else(
                || PathBuf::from("/var/www/html"),
                |m| m.document_root.clone(),
            ),
        };
        let inherit = |pick: fn(&Server) -> Duration, default: Duration| main.map_or(default, pick);
        Server {
            addrs,
            server_name,
            server_name_port,
            aliases: f.aliases,
            server_admin: f
                .server_admin
                .or_else(|| main.and_then(|m| m.server_admin.clone())),
            document_root,
            error_log: f
                .error_log
                .or_else(|| main.map(|m| m.error_log.clone()))
                .unwrap_or_else(|| LogTarget::File(root.join("logs/error_log"))),
            log_level: f
                .log_level
                .or_else(|| main.map(|m| m.log_level.clone()))
                .unwrap_or_default(),
            // httpd defaults: Timeout 60, KeepAlive On, KeepAliveTimeout 5, MaxKeepAliveRequests 100.
            timeout: f
                .timeout
                .unwrap_or_else(|| inherit(|m| m.timeout, Duration::from_secs(60))),
            keep_alive: f.keep_alive.or(main.map(|m| m.keep_alive)).unwrap_or(true),
            keep_alive_timeout: f
                .keep_alive_timeout
                .unwrap_or_else(|| inherit(|m| m.keep_alive_timeout, Duration::from_secs(5))),
            max_keep_alive_requests: f
                .max_keep_alive_requests
                .or(main.map(|m| m.max_keep_alive_requests))
                .unwrap_or(100),
            // mod_log_config: a vhost with no log of its own uses the main server's.
            custom_logs: if logs.is_empty() {
                main.map(|m| m.custom_logs.clone()).unwrap_or_default()
            } else {
                logs
            },
            access_file_names: f
                .access_file_names
                .or_else(|| main.map(|m| m.access_file_names.clone()))
                .unwrap_or_else(|| vec![".htaccess".to_owned()]),
            // mod_alias: the vhost's aliases are tried before the main server's.
            aliases_map: f
                .aliases_map
                .into_iter()
                .chain(main.map(|m| m.aliases_map.clone()).unwrap_or_default())
                .collect(),
            limits: {
                let base = main.map(|m| m.limits).unwrap_or_default();
                RequestLimits {
                    fields: f.limit_fields.unwrap_or(base.fields),
                    field_size: f.limit_field_size.unwrap_or(base.field_size),
                    line: f.limit_line.unwrap_or(base.line),
                }
            },
            allow_encoded_slashes: f
                .allow_encoded_slashes
                .or(main.map(|m| m.allow_encoded_slashes))
                .unwrap_or(EncodedSlashes::Off),
            trace_enable: f
                .trace_enable
                .or(main.map(|m| m.trace_enable))
                .unwrap_or(TraceEnable::On),
            // itkd: a server-level MaxClientsVHost is the default for every vhost.
            max_clients_vhost: f
                .max_clients_vhost
                .unwrap_or_else(|| main.and_then(|m| m.max_clients_vhost)),
            dir: match main {
                Some(m) => m.dir.merge(&dir),
                None => dir,
            },
            sections: main
                .map(|m| m.sections.clone())
                .unwrap_or_default()
                .into_iter()
                .chain(sections)
                .collect(),
            ssl: merge_ssl(f.ssl, main.map(|m| &m.ssl)),
            read_timeouts: f
                .read_timeouts
                .or(main.map(|m| m.read_timeouts))
                .unwrap_or_default(),
            span,
        }
        .named(fallback_name)
    }

    fn resolve_logs(&mut self, pending: Vec<PendingLog>) -> Vec<CustomLog> {
        let mut logs = Vec::new();
        for p in pending {
            let format = match self.log_formats.get(&p.format) {
                Some(f) => f.clone(),
                None => match LogFormat::parse(&p.format) {
                    Ok(f) => {
                        if !p.format.contains('%') {
                            self.diags.push(Diagnostic::warning(
                                &p.span,
                                Some("CustomLog"),
                                format!("no LogFormat is named '{}': it is used as the format itself, as httpd does", p.format),
                            ));
                        }
                        f
                    }
                    Err(e) => {
                        self.diags
                            .push(Diagnostic::error(&p.span, Some("CustomLog"), e));
                        continue;
                    }
                },
            };
            logs.push(CustomLog {
                target: p.target,
                format,
                condition: p.condition,
                span: p.span,
            });
        }
        logs
    }
}

impl Server {
    /// A server without ServerName anywhere gets the host's name, as httpd does.
    fn named(mut self, fallback: &str) -> Server {
        if self.span.is_some() && self.server_name.is_none() {
            self.server_name = Some(fallback.to_owned());
        }
        self
    }
}

/// A server's SSL settings over the main server's (mod_ssl's server merge; the
/// certificate list is the vhost's own when it names any).
fn merge_ssl(own: SslFields, main: Option<&SslSettings>) -> SslSettings {
    let base = main.cloned().unwrap_or(SslSettings {
        session_tickets: true,
        ..SslSettings::default()
    });
    let (certificate_files, key_files) = if own.certificate_files.is_empty() {
        (base.certificate_files, base.key_files)
    } else {
        (own.certificate_files, own.key_files)
    };
    SslSettings {
        engine: own.engine.as_ref().map_or(base.engine, |(on, _)| *on),
        span: own.engine.map(|(_, span)| span).or(base.span),
        certificate_files,
        key_files,
        chain_file: own.chain_file.or(base.chain_file),
        protocols: own.protocols.unwrap_or(base.protocols),
        cipher_suite: own.cipher_suite.or(base.cipher_suite),
        honor_cipher_order: own.honor_cipher_order.unwrap_or(base.honor_cipher_order),
        session_tickets: own.session_tickets.unwrap_or(base.session_tickets),
    }
}

/// The section's mod_access_compat settings, made on their first directive (httpd creates
/// a module's per-directory config when one of its directives is used).
fn access_compat(dir: &mut DirConfig) -> &mut AccessCompat {
    dir.access_compat.get_or_insert_with(AccessCompat::default)
}

fn add_require(dir: &mut DirConfig, rule: Require) {
    match &mut dir.require {
        Some(Require::Any(items)) => items.push(rule),
        _ => dir.require = Some(Require::Any(vec![rule])),
    }
}

/// mod_reqtimeout's syntax: `handshake|header|body=timeout[-maxtimeout][,MinRate=rate]`.
/// One `RequestReadTimeout` argument: `stage=timeout[-maxtimeout][,MinRate=rate]`.
fn parse_request_read_timeout(arg: &str) -> Result<(String, ReadTimeout), String> {
    let bad = || format!("RequestReadTimeout: invalid argument '{arg}'");
    let (stage, value) = arg.split_once('=').ok_or_else(bad)?;
    let stage = stage.to_ascii_lowercase();
    if !["handshake", "header", "body"].contains(&stage.as_str()) {
        return Err(format!(
            "RequestReadTimeout: unknown stage '{stage}' (handshake, header or body)"
        ));
    }
    let mut parts = value.split(',');
    let times = parts.next().unwrap_or_default();
    let number = |t: &str| t.parse::<u32>().map_err(|_| bad());
    let secs = |n: u32| Duration::from_secs(u64::from(n));
    let (init, max) = match times.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (number(lo)?, number(hi)?);
            if lo > hi {
                return Err(format!(
                    "RequestReadTimeout: maximum timeout below the timeout in '{arg}'"
                ));
            }
            (secs(lo), Some(secs(hi)))
        }
        None => (secs(number(times)?), None),
    };
    let mut min_rate = None;
    for extra in parts {
        match extra.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("minrate") => {
                min_rate = Some(v.parse::<u32>().map_err(|_| bad())?).filter(|&r| r > 0);
            }
            _ => return Err(bad()),
        }
    }
    Ok((
        stage,
        ReadTimeout {
            init,
            max,
            min_rate,
        },
    ))
}

/// Headers a `Header` action may not touch: HTTP framing and what the server itself sends.
pub(crate) const FRAMING_HEADERS: &[&str] = &[
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "Keep-Alive",
    "Date",
    "Server",
];

/// RFC 9110 §5.6.2 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A `Header` value: literal text with mod_headers' `%%`, `%t`, `%D` and `%{VAR}e`
/// (a `%` at the very end is a `%`, as in httpd). No control character may appear.
fn header_value(text: &str) -> Result<Vec<HeaderPiece>, String> {
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(format!(
            "Header value contains the control character {:?}",
            c
        ));
    }
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        literal.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let mut arg = None;
        if let Some(after) = rest.strip_prefix('{') {
            let Some(end) = after.find('}') else {
                return Err("Header format %{ without its closing }".to_owned());
            };
            arg = Some(&after[..end]);
            rest = &after[end + 1..];
        }
        let mut chars = rest.chars();
        let tag = chars.next();
        if let (None | Some('%'), None) = (tag, arg) {
            literal.push('%');
            rest = chars.as_str();
            continue;
        }
        let piece = match (tag, arg) {
            (Some('t'), _) => HeaderPiece::Time,
            (Some('D'), _) => HeaderPiece::Duration,
            (Some('e'), var) => HeaderPiece::Env(var.unwrap_or_default().to_owned()),
            (Some(t @ ('s' | 'l' | 'i' | 'b')), _) => {
                return Err(format!(
                    "Header format %{t} is not supported by itkd (%t, %D, %{{VAR}}e and %% are)"
                ))
            }
            (Some(t), _) => return Err(format!("Unrecognized header format %{t}")),
            (None, _) => return Err("Unrecognized header format %".to_owned()),
        };
        rest = chars.as_str();
        if !literal.is_empty() {
            pieces.push(HeaderPiece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(piece);
    }
    literal.push_str(rest);
    if !literal.is_empty() || pieces.is_empty() {
        pieces.push(HeaderPiece::Text(literal));
    }
    Ok(pieces)
}

fn normalize_ext(ext: &str) -> String {
    ext.strip_prefix('.').unwrap_or(ext).to_ascii_lowercase()
}

/// A `<Directory>` path as httpd keeps it: without a trailing slash (but `/` itself).
fn section_path(kind: SectionKind, path: &str) -> String {
    if kind == SectionKind::Directory && path.len() > 1 {
        path.trim_end_matches('/').to_owned()
    } else {
        path.to_owned()
    }
}

/// httpd's `ap_is_url`: a scheme (letters, digits, `+-.`) then `:`.
fn is_url(text: &str) -> bool {
    match text.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        }
        None => false,
    }
}
