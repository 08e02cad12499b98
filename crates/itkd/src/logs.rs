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
    pub levels: LogLevels,
}

/// `LogLevel [module:]level ...`: the global level (httpd's default `warn`) and
/// per-module ones (`LogLevel warn cgi:info ssl:debug`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogLevels {
    global: Level,
    modules: Vec<(String, Level)>,
}

impl LogLevels {
    /// Reads a validated `LogLevel` value; what does not parse keeps the default.
    pub fn parse(text: &str) -> LogLevels {
        let mut levels = LogLevels {
            global: Level::Warn,
            modules: Vec::new(),
        };
        for arg in text.split_whitespace() {
            match arg.split_once(':') {
                Some((module, level)) => {
                    if let Some(level) = Level::parse(level) {
                        levels.modules.push((module_name(module), level));
                    }
                }
                None => {
                    if let Some(level) = Level::parse(arg) {
                        levels.global = level;
                    }
                }
            }
        }
        levels
    }

    /// Whether a line of `module` at `level` is logged.
    pub fn allows(&self, module: &str, level: Level) -> bool {
        let module = module_name(module);
        let wanted = self
            .modules
            .iter()
            .rev()
            .find(|(m, _)| *m == module)
            .map_or(self.global, |(_, l)| *l);
        level <= wanted
    }
}

/// httpd accepts a module as `cgi`, `mod_cgi`, `mod_cgi.c` or `cgi_module`.
fn module_name(module: &str) -> String {
    let m = module.to_ascii_lowercase();
    let m = m.strip_suffix(".c").unwrap_or(&m);
    let m = m.strip_prefix("mod_").unwrap_or(m);
    m.strip_suffix("_module").unwrap_or(m).to_owned()
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
                levels: LogLevels::parse(&server.log_level),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_global_and_per_module() {
        let cases: &[(&str, &str, Level, bool)] = &[
            ("warn", "core", Level::Warn, true),
            ("warn", "core", Level::Info, false),
            ("warn", "core", Level::Error, true),
            ("info", "core", Level::Info, true),
            ("info", "core", Level::Debug, false),
            ("warn cgi:info", "cgi", Level::Info, true),
            ("warn mod_cgi.c:info", "cgi", Level::Info, true),
            ("warn cgi_module:info", "cgi", Level::Info, true),
            ("warn cgi:info", "core", Level::Info, false),
            ("debug ssl:error", "ssl", Level::Warn, false),
            ("debug ssl:error", "core", Level::Debug, true),
            ("", "core", Level::Warn, true),
            ("", "core", Level::Notice, false),
            ("trace2", "core", Level::Trace(2), true),
            ("trace2", "core", Level::Trace(3), false),
        ];
        for (text, module, level, logged) in cases {
            assert_eq!(
                LogLevels::parse(text).allows(module, *level),
                *logged,
                "LogLevel {text}: {module} at {level:?}"
            );
        }
    }
}
