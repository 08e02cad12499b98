//! Log files, opened by the master (as root) before any child exists, and written by
//! workers. A worker keeps only its own vhost's logs once it knows the vhost.
//!
//! Every file is opened close-on-exec (Rust's default), so a CGI never inherits one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use itkd_config::logformat::LogFormat;
use itkd_config::loglevel::LogLevel;
use itkd_config::model::{LogTarget, Server, ServerConfig};
use itkd_http::logfmt::{self, Level, LogEntry};

/// One server's logs (main server or a vhost).
#[derive(Debug, Clone)]
pub struct ServerLogs {
    pub error: Option<ErrorLog>,
    pub access: Vec<AccessLog>,
}

/// An `ErrorLog` with the server's `LogLevel`: every line passes through [`write_error`],
/// which drops what the level (or the module's own level) does not ask for.
#[derive(Debug, Clone)]
pub struct ErrorLog {
    pub file: Arc<File>,
    pub levels: LogLevel,
}

/// A `CustomLog`/`TransferLog` with its file open.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pub file: Arc<File>,
    pub format: LogFormat,
    /// `env=[!]VAR`: (wanted set, variable).
    pub condition: Option<(bool, String)>,
}

/// All servers' logs: index 0 is the main server, then the vhosts in order.
#[derive(Debug, Clone, Default)]
pub struct Logs {
    pub servers: Vec<ServerLogs>,
}

impl Logs {
    /// Opens every log the configuration names, each path once. Pipes and syslog are not
    /// supported yet: they are reported and skipped.
    pub fn open(config: &ServerConfig) -> Result<Logs, String> {
        let mut opened: Vec<(PathBuf, Arc<File>)> = Vec::new();
        let mut open = |path: &Path| -> Result<Arc<File>, String> {
            if let Some((_, f)) = opened.iter().find(|(p, _)| p == path) {
                return Ok(f.clone());
            }
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .map_err(|e| format!("could not open log file {}: {e}", path.display()))?;
            let file = Arc::new(file);
            opened.push((path.to_path_buf(), file.clone()));
            Ok(file)
        };
        let mut servers = Vec::new();
        for server in std::iter::once(&config.main).chain(&config.vhosts) {
            servers.push(Self::open_server(server, &mut open)?);
        }
        Ok(Logs { servers })
    }

    fn open_server(
        server: &Server,
        open: &mut impl FnMut(&Path) -> Result<Arc<File>, String>,
    ) -> Result<ServerLogs, String> {
        let error = match &server.error_log {
            LogTarget::File(path) => Some(ErrorLog {
                file: open(path)?,
                levels: server.log_level.clone(),
            }),
            LogTarget::Pipe(_) | LogTarget::Syslog(_) => None,
        };
        let mut access = Vec::new();
        for log in &server.custom_logs {
            if let LogTarget::File(path) = &log.target {
                access.push(AccessLog {
                    file: open(path)?,
                    format: log.format.clone(),
                    condition: log.condition.clone(),
                });
            }
        }
        Ok(ServerLogs { error, access })
    }

    /// The master's own error log (the main server's).
    pub fn main_error(&self) -> Option<&ErrorLog> {
        self.servers.first().and_then(|s| s.error.as_ref())
    }

    /// Keeps only server `index`'s logs (a worker that knows its vhost); every other file
    /// descriptor is closed when the last `Arc` goes.
    pub fn keep_only(&mut self, index: usize) {
        let kept = self.servers.get(index).cloned();
        self.servers.clear();
        if let Some(k) = kept {
            self.servers.push(k);
        }
    }
}

/// Writes one error-log line in httpd's format to `log`, if its `LogLevel` asks for it
/// (one `write` call, so lines of concurrent processes do not interleave: the file is
/// opened O_APPEND).
pub fn write_error(
    log: &ErrorLog,
    module: &str,
    level: Level,
    client: Option<SocketAddr>,
    message: &str,
) {
    if !log.levels.allows(module, level) {
        return;
    }
    write_error_always(&log.file, module, level, client, message);
}

/// [`write_error`] whatever the level: httpd's start-up and shutdown notices
/// (`resuming normal operations`, `caught SIGTERM`) are logged under any `LogLevel`.
pub fn write_error_always(
    file: &File,
    module: &str,
    level: Level,
    client: Option<SocketAddr>,
    message: &str,
) {
    let line = logfmt::error_log_line(
        std::time::SystemTime::now(),
        module,
        level,
        std::process::id(),
        client,
        message,
    );
    write_line(file, &line);
}

/// Writes the access-log lines of one request to every log of `server` whose condition
/// holds.
pub fn write_access(server: &ServerLogs, entry: &LogEntry) {
    for log in &server.access {
        if let Some((wanted, var)) = &log.condition {
            let set = entry.env.iter().any(|(k, _)| k == var);
            if set != *wanted {
                continue;
            }
        }
        write_line(&log.file, &logfmt::render(&log.format, entry));
    }
}

fn write_line(file: &File, line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let mut f = file;
    let _ = f.write_all(&bytes);
}
