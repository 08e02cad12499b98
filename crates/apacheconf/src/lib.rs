//! The Apache httpd configuration language, read as httpd reads it.
//!
//! [`parse_file`] turns a main configuration file into a tree of [`Directive`]s, each with
//! the file and line it came from. The directives httpd executes while it reads
//! (`Define`, `UnDefine`, `Include`, `IncludeOptional`, `<IfDefine>`, `<IfModule>`,
//! `<IfDirective>`, `<IfSection>`, `<IfFile>`) are carried out here and do not appear in
//! the tree; `ServerRoot` and `LoadModule` are carried out *and* kept.
//!
//! This crate knows no directive of any module: what a module is, and whether a directive
//! exists, is asked of the caller's [`Host`]. It does not check arguments or contexts;
//! that is the configuration model's job.

#![forbid(unsafe_code)]

pub mod fnmatch;
pub mod lex;
mod parse;
mod print;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use parse::{parse_bytes, parse_file, parse_htaccess, Options};
pub use print::{quote_arg, write_tree};

/// Where a directive was written: file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: Arc<Path>,
    pub line: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 stands for the file as a whole (it could not be opened, say).
        match self.line {
            0 => write!(f, "{}", self.file.display()),
            n => write!(f, "{}:{n}", self.file.display()),
        }
    }
}

/// One directive, or a section (`<Name args>` … `</Name>`) when `children` is `Some`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// As written (httpd compares names case-insensitively); a section's name has no `<`.
    pub name: String,
    pub args: Vec<String>,
    pub span: Span,
    pub children: Option<Vec<Directive>>,
}

impl Directive {
    /// Case-insensitive name comparison, as httpd's.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    pub fn is_section(&self) -> bool {
        self.children.is_some()
    }
}

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// An error or warning tied to a place in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    /// The directive it is about, as written; `None` for line-level problems.
    pub directive: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(span: &Span, directive: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, span, directive, message)
    }

    pub fn warning(span: &Span, directive: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, span, directive, message)
    }

    fn new(
        severity: Severity,
        span: &Span,
        directive: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            span: span.clone(),
            directive: directive.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// `file:line: Directive: message` (errors) or `file:line: warning: Directive: message`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.span)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(d) = &self.directive {
            write!(f, "{d}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What `LoadModule` of a module means to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleLoad {
    /// The caller provides this module: `<IfModule>` for it is true from now on.
    Provided,
    /// The caller does not: a warning with this text, and `<IfModule>` stays false.
    Skipped(String),
}

/// What the parser needs to know of the program reading the configuration.
pub trait Host {
    /// A variable of the process environment, for `${NAME}` not set by `Define`.
    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    /// Whether the module (normalised id, see [`module_id`]) is built in, like httpd's
    /// statically linked modules: `<IfModule>` is true for it without `LoadModule`.
    fn builtin_module(&self, id: &str) -> bool;

    /// `LoadModule id path` was read.
    fn load_module(&self, id: &str, path: &str) -> ModuleLoad;

    /// Whether a directive of this name exists, for `<IfDirective>`.
    fn known_directive(&self, name: &str) -> bool;

    /// Whether a section of this name (without `<`) exists, for `<IfSection>`.
    fn known_section(&self, name: &str) -> bool;
}

/// One name for a module, whichever way the configuration spells it: `<IfModule>` takes
/// the source file name (`mod_ssl.c`, `prefork.c`) or the module identifier (`ssl_module`,
/// `mpm_prefork_module`). Both give `ssl`, `mpm_prefork`.
pub fn module_id(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if let Some(id) = lower.strip_suffix("_module") {
        return id.to_owned();
    }
    let file = lower.strip_suffix(".c").unwrap_or(&lower);
    match file {
        "http_core" => "http".to_owned(),
        "prefork" | "worker" | "event" => format!("mpm_{file}"),
        _ => file.strip_prefix("mod_").unwrap_or(file).to_owned(),
    }
}

/// The result of reading a configuration: the tree, and every problem found on the way.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The main file (or the name given to `parse_bytes`).
    pub file: PathBuf,
    pub directives: Vec<Directive>,
    pub diagnostics: Vec<Diagnostic>,
    /// The ServerRoot in force at the end of reading (the last `ServerRoot`, else the start).
    pub server_root: PathBuf,
    /// Names defined for `<IfDefine>` at the end (`-D` and `Define`), in order.
    pub defines: Vec<String>,
    /// Variables, defines and loaded modules, for reading `.htaccess` files later.
    pub(crate) state: parse::ReadState,
}

impl Parsed {
    /// The value `Define NAME value` gave, if any.
    pub fn define_value(&self, name: &str) -> Option<&str> {
        self.state.value(name)
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_normalise() {
        let table = [
            ("mod_ssl.c", "ssl"),
            ("ssl_module", "ssl"),
            ("prefork.c", "mpm_prefork"),
            ("mpm_prefork_module", "mpm_prefork"),
            ("mpm_itk_module", "mpm_itk"),
            ("mpm_itk.c", "mpm_itk"),
            ("core.c", "core"),
            ("http_core.c", "http"),
            ("mod_php.c", "php"),
            ("php_module", "php"),
            ("Mod_Alias.C", "alias"),
        ];
        for (name, id) in table {
            assert_eq!(module_id(name), id, "{name}");
        }
    }

    #[test]
    fn diagnostic_format() {
        let span = Span {
            file: Path::new("/etc/a.conf").into(),
            line: 7,
        };
        let e = Diagnostic::error(&span, Some("Listen"), "bad port");
        assert_eq!(e.to_string(), "/etc/a.conf:7: Listen: bad port");
        let w = Diagnostic::warning(&span, None, "hmm");
        assert_eq!(w.to_string(), "/etc/a.conf:7: warning: hmm");
    }
}
