//! The itkd configuration model.
//!
//! [`load`] reads an Apache httpd configuration (through `apacheconf`) and turns it, in one
//! step, into a validated [`ServerConfig`]: every directive checked against its contexts
//! and arguments, users and groups resolved, the mpm-itk rules applied, the virtual host
//! table built. Every problem is reported with its file and line, not only the first.
//! [`load_htaccess`] reads one `.htaccess` file against an `AllowOverride` set.
//!
//! This crate knows nothing of processes or sockets; what it needs of the system (the
//! user database, name resolution) it asks of a [`System`].

#![forbid(unsafe_code)]

pub mod access;
pub mod dirconf;
pub mod directives;
pub mod expr;
mod load;
pub mod logformat;
pub mod loglevel;
pub mod mime;
pub mod model;
pub mod modules;
pub mod require;
pub mod rlimit;
pub mod ssl;
pub mod vhost;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use apacheconf::{Diagnostic, Parsed, Severity, Span};
pub use dirconf::{DirConfig, Overrides, Section};
pub use load::{load_htaccess, Htaccess};
pub use model::ServerConfig;

/// What the model needs of the operating system.
pub trait System {
    /// `(uid, primary gid)` of a user name.
    fn user_by_name(&self, name: &str) -> Option<(u32, u32)>;
    fn group_by_name(&self, name: &str) -> Option<u32>;
    fn user_name(&self, uid: u32) -> Option<String>;
    fn group_name(&self, gid: u32) -> Option<String>;
    /// Addresses of a host name in a `<VirtualHost>` line.
    fn resolve_host(&self, name: &str) -> Vec<IpAddr>;
    /// The name the main server has without `ServerName` (httpd: the host's FQDN).
    fn default_server_name(&self) -> String;
}

/// Where and how to read the configuration (the `-f`, `-d`, `-D` flags).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub config_file: PathBuf,
    pub server_root: PathBuf,
    pub defines: Vec<String>,
}

/// The outcome of [`load`]: the model when there was no error, and every diagnostic.
#[derive(Debug)]
pub struct Loaded {
    pub config: Option<ServerConfig>,
    /// Errors and warnings in the order they were found, the parser's first.
    pub diagnostics: Vec<Diagnostic>,
    /// The directive tree, kept for reading `.htaccess` files with the same defines.
    pub parsed: Parsed,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
}

/// Reads and validates the configuration.
pub fn load(options: &LoadOptions, system: &dyn System) -> Loaded {
    let parse_options = apacheconf::Options {
        server_root: options.server_root.clone(),
        defines: options.defines.clone(),
        forbid_includes: false,
    };
    let config_file = resolve(&options.server_root, &options.config_file);
    let parsed = apacheconf::parse_file(&config_file, &parse_options, &modules::ItkdHost);
    load_parsed(parsed, system)
}

/// Validates an already parsed tree (tests and fuzzing build trees from text).
pub fn load_parsed(parsed: Parsed, system: &dyn System) -> Loaded {
    let mut diagnostics = parsed.diagnostics.clone();
    let (config, more) = load::build(&parsed, system);
    diagnostics.extend(more);
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error);
    Loaded {
        config: if failed { None } else { Some(config) },
        diagnostics,
        parsed,
    }
}

/// `path` relative to `root` unless absolute (httpd's `ap_server_root_relative`).
pub fn resolve(root: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    }
}
