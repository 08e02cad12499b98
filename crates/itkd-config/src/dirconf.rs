//! Per-directory configuration: what `<Directory>`, `<Location>`, `<Files>`, `.htaccess`
//! and the server level outside sections set, and how httpd merges it (the inner
//! section's setting wins; `Options +x -y` adds to and removes from the outer set).

use std::collections::HashSet;

use apacheconf::Span;

use crate::access::AccessCompat;
use crate::directives::Override;
use crate::expr::StringExpr;
use crate::model::Assign;
use crate::require::Require;

/// The `Options` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct OptionSet(u8);

impl OptionSet {
    pub const INDEXES: OptionSet = OptionSet(1);
    pub const INCLUDES: OptionSet = OptionSet(2);
    pub const SYM_LINKS: OptionSet = OptionSet(4);
    pub const EXEC_CGI: OptionSet = OptionSet(8);
    pub const MULTIVIEWS: OptionSet = OptionSet(16);
    pub const SYM_OWNER: OptionSet = OptionSet(32);
    pub const INCLUDES_NOEXEC: OptionSet = OptionSet(64);
    /// httpd's `OPT_ALL`: everything but MultiViews.
    pub const ALL: OptionSet = OptionSet(1 | 2 | 4 | 8 | 32);
    pub const NONE: OptionSet = OptionSet(0);

    pub fn contains(self, other: OptionSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: OptionSet) -> OptionSet {
        OptionSet(self.0 | other.0)
    }

    pub fn minus(self, other: OptionSet) -> OptionSet {
        OptionSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The option named `name` (case-insensitive), as `Options` spells it.
    pub fn by_name(name: &str) -> Option<OptionSet> {
        let table = [
            ("Indexes", OptionSet::INDEXES),
            ("Includes", OptionSet::INCLUDES),
            ("IncludesNOEXEC", OptionSet::INCLUDES_NOEXEC),
            ("FollowSymLinks", OptionSet::SYM_LINKS),
            ("SymLinksIfOwnerMatch", OptionSet::SYM_OWNER),
            ("ExecCGI", OptionSet::EXEC_CGI),
            ("MultiViews", OptionSet::MULTIVIEWS),
            ("All", OptionSet::ALL),
        ];
        table
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, o)| o)
    }
}

/// One `Options` line: either a whole new set, or additions and removals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionsSetting {
    Set(OptionSet),
    Change { add: OptionSet, remove: OptionSet },
}

impl OptionsSetting {
    /// httpd 2.4's default: `Options FollowSymLinks`.
    pub const DEFAULT: OptionSet = OptionSet::SYM_LINKS;

    pub fn apply(self, base: OptionSet) -> OptionSet {
        match self {
            OptionsSetting::Set(set) => set,
            OptionsSetting::Change { add, remove } => base.minus(remove).union(add),
        }
    }

    /// `self` followed by `inner` (a later line, or an inner section).
    pub fn then(self, inner: OptionsSetting) -> OptionsSetting {
        match (self, inner) {
            (_, OptionsSetting::Set(_)) => inner,
            (OptionsSetting::Set(set), change) => OptionsSetting::Set(change.apply(set)),
            (
                OptionsSetting::Change { add, remove },
                OptionsSetting::Change {
                    add: a2,
                    remove: r2,
                },
            ) => OptionsSetting::Change {
                add: add.minus(r2).union(a2),
                remove: remove.minus(a2).union(r2),
            },
        }
    }
}

/// What `AllowOverride` lets `.htaccess` files set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Overrides {
    pub classes: HashSet<Override>,
    /// `Options=a,b`: the options an `.htaccess` may name; `None`: all of them.
    pub options: Option<OptionSet>,
    /// `AllowOverrideList`: single directives allowed besides the classes (lower case).
    pub list: Vec<String>,
}

impl Overrides {
    /// `AllowOverride None` and no list: `.htaccess` files are not even read.
    pub fn reads_htaccess(&self) -> bool {
        !self.classes.is_empty() || !self.list.is_empty()
    }
}

/// `ErrorDocument code …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorDocument {
    /// A local URL-path: an internal redirect.
    Local(String),
    /// An absolute URL: a 302 to it.
    Remote(String),
    /// A message (the argument began with `"`).
    Text(String),
    /// `default`: httpd's own page, undoing an outer ErrorDocument.
    Default,
}

/// `Redirect`, `RedirectMatch`, `RedirectPermanent`, `RedirectTemp`.
#[derive(Debug, Clone)]
pub struct Redirect {
    pub status: u16,
    pub matcher: crate::model::UrlMatcher,
    /// `None` for statuses without a target (410 Gone).
    pub target: Option<String>,
    pub span: Span,
}

/// `Action type script [virtual]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// A media type or a handler name, lower case.
    pub trigger: String,
    pub script: String,
    /// `virtual`: run even when the requested file does not exist.
    pub is_virtual: bool,
}

/// Per-directory settings. `None` (or empty) means "not set here": the outer value holds.
#[derive(Debug, Clone, Default)]
pub struct DirConfig {
    pub options: Option<OptionsSetting>,
    pub allow_override: Option<Overrides>,
    pub directory_index: Option<Vec<String>>,
    /// `AddHandler`, lower-case extension without dot → handler; later wins.
    pub handlers: Vec<(String, String)>,
    pub removed_handlers: Vec<String>,
    /// `SetHandler`: `Some(None)` is `SetHandler None`.
    pub set_handler: Option<Option<String>>,
    /// Where each handler name was set (`SetHandler`, `AddHandler`, or `AddType` of a
    /// handler-like media type): name → "Directive at file:line"; later wins.
    pub handler_origins: Vec<(String, String)>,
    /// `AddType`, lower-case extension → media type.
    pub types: Vec<(String, String)>,
    pub removed_types: Vec<String>,
    pub force_type: Option<Option<String>>,
    pub actions: Vec<Action>,
    /// `AddDefaultCharset`: `Some(None)` is Off.
    pub default_charset: Option<Option<String>>,
    pub error_documents: Vec<(u16, ErrorDocument)>,
    pub redirects: Vec<Redirect>,
    pub require: Option<Require>,
    /// mod_access_compat's `Order`, `Allow`, `Deny`, `Satisfy` of the innermost section
    /// (or `.htaccess`) that uses any of them.
    pub access_compat: Option<AccessCompat>,
    /// `CGIPassAuth`: scripts see `Authorization` (and `Proxy-Authorization`).
    pub cgi_pass_auth: Option<bool>,
    pub assign: Option<Assign>,
    pub user_expr: Option<StringExpr>,
    pub group_expr: Option<StringExpr>,
    pub nice: Option<i32>,
    pub limit_request_body: Option<u64>,
    /// `RLimitCPU`, `RLimitMEM`, `RLimitNPROC`: the limits of the scripts started here.
    pub rlimits: crate::rlimit::ScriptLimits,
    pub server_signature: Option<ServerSignature>,
    pub hostname_lookups: Option<bool>,
    /// `SetEnv`, `PassEnv`, `UnsetEnv`, in order (outer sections first).
    pub env: Vec<EnvOp>,
    /// `AuthType Basic` (`Some(true)`) or `None` (`Some(false)`).
    pub auth_basic: Option<bool>,
    pub auth_name: Option<String>,
    pub auth_user_file: Option<std::path::PathBuf>,
    pub auth_group_file: Option<std::path::PathBuf>,
    /// mod_headers `Header` actions, in order (outer sections first).
    pub headers: Vec<HeaderAction>,
}

/// Which of httpd's two response header tables a `Header` action works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderTable {
    /// `onsuccess` (the default): `headers_out`, sent with responses a handler produced.
    OnSuccess,
    /// `always`: `err_headers_out`, sent with every response, error pages included.
    Always,
}

/// What a `Header` action does to its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderOp {
    /// Replaces every value.
    Set,
    /// Joins the value to the existing one with `, ` (or sets it).
    Append,
    /// Adds one more header line, even if one exists.
    Add,
    /// Appends unless the value is already one of the comma-separated values.
    Merge,
    /// Sets only when the header is absent.
    SetIfEmpty,
    /// Removes every value.
    Unset,
}

/// One piece of a `Header` value: literal text or one of mod_headers' `%` formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderPiece {
    Text(String),
    /// `%t`: `t=` and the time the request was received, microseconds since the epoch.
    Time,
    /// `%D`: `D=` and the time from request received to the header sent, microseconds.
    Duration,
    /// `%{VAR}e`: a request variable (SetEnv & co.), empty when unset.
    Env(String),
}

/// One `Header [always|onsuccess] action name [value] [env=[!]VAR]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderAction {
    pub table: HeaderTable,
    pub op: HeaderOp,
    /// The header name as written (compared case-insensitively).
    pub name: String,
    /// Empty for `unset`.
    pub value: Vec<HeaderPiece>,
    /// `env=VAR` (true) or `env=!VAR` (false): act only when VAR is (not) set.
    pub condition: Option<(bool, String)>,
}

/// One mod_env directive's effect on the request environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvOp {
    Set(String, String),
    /// From the server's own environment at start, if set there.
    Pass(String),
    Unset(String),
}

impl EnvOp {
    /// Applies `ops` in order; `process` looks variables up for `PassEnv`.
    pub fn apply(ops: &[EnvOp], process: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        for op in ops {
            match op {
                EnvOp::Set(k, v) => {
                    env.retain(|(n, _)| n != k);
                    env.push((k.clone(), v.clone()));
                }
                EnvOp::Pass(k) => {
                    if let Some(v) = process(k) {
                        env.retain(|(n, _)| n != k);
                        env.push((k.clone(), v));
                    }
                }
                EnvOp::Unset(k) => env.retain(|(n, _)| n != k),
            }
        }
        env
    }
}

/// `ServerSignature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSignature {
    On,
    Off,
    Email,
}

impl DirConfig {
    /// `self` (outer) with `inner` laid over it, as httpd's per-directory merge.
    pub fn merge(&self, inner: &DirConfig) -> DirConfig {
        fn pick<T: Clone>(outer: &Option<T>, inner: &Option<T>) -> Option<T> {
            inner.clone().or_else(|| outer.clone())
        }
        fn concat<T: Clone>(outer: &[T], inner: &[T]) -> Vec<T> {
            outer.iter().chain(inner).cloned().collect()
        }
        let options = match (self.options, inner.options) {
            (Some(o), Some(i)) => Some(o.then(i)),
            (o, i) => i.or(o),
        };
        let mut error_documents = self.error_documents.clone();
        for (code, doc) in &inner.error_documents {
            error_documents.retain(|(c, _)| c != code);
            error_documents.push((*code, doc.clone()));
        }
        DirConfig {
            options,
            allow_override: pick(&self.allow_override, &inner.allow_override),
            directory_index: pick(&self.directory_index, &inner.directory_index),
            handlers: concat(&self.handlers, &inner.handlers),
            removed_handlers: concat(&self.removed_handlers, &inner.removed_handlers),
            set_handler: pick(&self.set_handler, &inner.set_handler),
            handler_origins: concat(&self.handler_origins, &inner.handler_origins),
            types: concat(&self.types, &inner.types),
            removed_types: concat(&self.removed_types, &inner.removed_types),
            force_type: pick(&self.force_type, &inner.force_type),
            actions: concat(&self.actions, &inner.actions),
            default_charset: pick(&self.default_charset, &inner.default_charset),
            error_documents,
            // mod_alias: the inner section's redirects are tried first.
            redirects: concat(&inner.redirects, &self.redirects),
            // AuthMerging Off (httpd's default): an inner Require replaces the outer one.
            require: pick(&self.require, &inner.require),
            // mod_access_compat has no merge function: the inner settings replace the
            // outer ones whole, a lone `Satisfy` included.
            access_compat: pick(&self.access_compat, &inner.access_compat),
            cgi_pass_auth: pick(&self.cgi_pass_auth, &inner.cgi_pass_auth),
            assign: pick(&self.assign, &inner.assign),
            user_expr: pick(&self.user_expr, &inner.user_expr),
            group_expr: pick(&self.group_expr, &inner.group_expr),
            nice: pick(&self.nice, &inner.nice),
            limit_request_body: pick(&self.limit_request_body, &inner.limit_request_body),
            rlimits: self.rlimits.merge(&inner.rlimits),
            server_signature: pick(&self.server_signature, &inner.server_signature),
            hostname_lookups: pick(&self.hostname_lookups, &inner.hostname_lookups),
            env: concat(&self.env, &inner.env),
            auth_basic: pick(&self.auth_basic, &inner.auth_basic),
            auth_name: pick(&self.auth_name, &inner.auth_name),
            auth_user_file: pick(&self.auth_user_file, &inner.auth_user_file),
            auth_group_file: pick(&self.auth_group_file, &inner.auth_group_file),
            // mod_headers: the outer section's actions run first, then the inner one's.
            headers: concat(&self.headers, &inner.headers),
        }
    }

    /// The effective `Options` set, from httpd's default.
    pub fn effective_options(&self) -> OptionSet {
        self.options.map_or(OptionsSetting::DEFAULT, |o| {
            o.apply(OptionsSetting::DEFAULT)
        })
    }
}

/// Which kind of section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    Directory,
    Location,
    Files,
}

/// What a section's argument matches.
#[derive(Debug, Clone)]
pub enum SectionPattern {
    /// A path or URL-path, possibly with `*`/`?`/`[]` wildcards.
    Path(String),
    /// `~ regex` or a `…Match` section.
    Regex(regex::Regex),
}

/// One `<Directory>`, `<Location>` or `<Files>` section (or `Match` form).
#[derive(Debug, Clone)]
pub struct Section {
    pub kind: SectionKind,
    pub pattern: SectionPattern,
    pub config: DirConfig,
    /// `<Files>` sections nested in a `<Directory>`.
    pub files: Vec<Section>,
    pub span: Span,
}

/// Whether a media type names a handler rather than content: httpd runs a file by its
/// content type when no handler is set (`ap_invoke_handler`), and mod_php's old
/// `AddType application/x-httpd-php .php` relies on it (as do `x-httpd-cgi` and the like).
pub fn names_a_handler(media_type: &str) -> bool {
    media_type.starts_with("application/x-httpd-")
}

/// The handlers itkd runs by itself, without an `Action`: mod_cgi's, and the default
/// handler (a static file).
pub fn runs_itself(handler: &str) -> bool {
    matches!(
        handler,
        "cgi-script" | "application/x-httpd-cgi" | "default-handler"
    )
}

/// What the warning and the refusal add about a handler itkd cannot run.
pub fn handler_hint(handler: &str) -> &'static str {
    if handler.starts_with("application/x-httpd-php") {
        " (php_module is not embedded in this itkd; run PHP through php-cgi with Action)"
    } else if handler.starts_with("proxy:") {
        " (mod_proxy_fcgi is not supported)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_merge_like_httpd() {
        let set = |o| OptionsSetting::Set(o);
        let change = |add, remove| OptionsSetting::Change { add, remove };
        let outer = DirConfig {
            options: Some(set(OptionSet::INDEXES.union(OptionSet::SYM_LINKS))),
            ..Default::default()
        };
        let inner = DirConfig {
            options: Some(change(OptionSet::EXEC_CGI, OptionSet::INDEXES)),
            ..Default::default()
        };
        let merged = outer.merge(&inner);
        assert_eq!(
            merged.effective_options(),
            OptionSet::SYM_LINKS.union(OptionSet::EXEC_CGI)
        );
        let absolute = DirConfig {
            options: Some(set(OptionSet::NONE)),
            ..Default::default()
        };
        assert_eq!(merged.merge(&absolute).effective_options(), OptionSet::NONE);
        let relative_only = DirConfig {
            options: Some(change(OptionSet::INDEXES, OptionSet::NONE)),
            ..Default::default()
        };
        assert_eq!(
            DirConfig::default()
                .merge(&relative_only)
                .effective_options(),
            OptionSet::SYM_LINKS.union(OptionSet::INDEXES)
        );
        let two_changes = relative_only.merge(&DirConfig {
            options: Some(change(
                OptionSet::NONE,
                OptionSet::INDEXES.union(OptionSet::SYM_LINKS),
            )),
            ..Default::default()
        });
        assert_eq!(two_changes.effective_options(), OptionSet::NONE);
    }

    #[test]
    fn inner_settings_win_and_error_documents_replace_by_code() {
        let outer = DirConfig {
            directory_index: Some(vec!["index.html".into()]),
            error_documents: vec![
                (404, ErrorDocument::Local("/a".into())),
                (500, ErrorDocument::Default),
            ],
            nice: Some(5),
            ..Default::default()
        };
        let inner = DirConfig {
            error_documents: vec![(404, ErrorDocument::Text("gone".into()))],
            nice: Some(-3),
            ..Default::default()
        };
        let m = outer.merge(&inner);
        assert_eq!(m.directory_index, Some(vec!["index.html".to_owned()]));
        assert_eq!(m.nice, Some(-3));
        assert_eq!(
            m.error_documents,
            vec![
                (500, ErrorDocument::Default),
                (404, ErrorDocument::Text("gone".into()))
            ]
        );
    }
}
