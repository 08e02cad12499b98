//! Log files, opened by the master (as root) before any child exists, and written by
//! workers. A worker keeps only its own vhost's logs once it knows the vhost.
//!
//! Every file is opened close-on-exec (Rust's default), so a CGI never inherits one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use itkd_config::model::{LogTarget, Server, ServerConfig};

/// One server's logs (main server or a vhost). Access logs join when lines are rendered.
#[derive(Debug, Clone)]
pub struct ServerLogs {
    pub error: Option<Arc<File>>,
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
            LogTarget::File(path) => Some(open(path)?),
            LogTarget::Pipe(_) | LogTarget::Syslog(_) => None,
        };
        Ok(ServerLogs { error })
    }

    /// The master's own error log (the main server's).
    pub fn main_error(&self) -> Option<&Arc<File>> {
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

/// Writes one error-log line in httpd's format to `file` (one `write` call, so lines of
/// concurrent processes do not interleave: the file is opened O_APPEND).
pub fn write_error(
    file: &File,
    module: &str,
    level: &str,
    client: Option<SocketAddr>,
    message: &str,
) {
    let line = crate::pages::error_log_line(module, level, client, message);
    let mut f = file;
    let _ = f.write_all(format!("{line}\n").as_bytes());
}
