//! The validated configuration: what every later stage reads. Nothing here needs checking
//! again; every value was checked when it was built (`load`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use apacheconf::Span;

use crate::dirconf::{DirConfig, Section};
use crate::logformat::LogFormat;
use crate::mime::MimeTypes;
use crate::vhost::{VhostAddr, VhostTable};

/// The whole server: global settings, the main server and the virtual hosts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub server_root: PathBuf,
    pub pid_file: PathBuf,
    pub listen: Vec<Listen>,
    /// `User`/`Group`: the pool children's identity, and every request's without AssignUserID.
    pub user: UserId,
    pub group: GroupId,
    pub pool: PoolLimits,
    pub itk: ItkGlobal,
    pub server_tokens: ServerTokens,
    pub mime_types: MimeTypes,
    /// `-D` and `Define` names in force at the end of reading, with `Define`'s value.
    pub defines: Vec<(String, Option<String>)>,
    /// The main server: the defaults for every virtual host, and the server for
    /// addresses no `<VirtualHost>` claims.
    pub main: Server,
    /// Every `<VirtualHost>`, in configuration order, merged with the main server.
    pub vhosts: Vec<Server>,
    pub vhost_table: VhostTable,
}

impl ServerConfig {
    /// Server `index` in the numbering workers and logs use: 0 is the main server,
    /// `i + 1` is `vhosts[i]`.
    pub fn server(&self, index: usize) -> &Server {
        match index.checked_sub(1) {
            None => &self.main,
            Some(i) => &self.vhosts[i],
        }
    }

    /// The index ([`ServerConfig::server`]) of the server a request to `ip:port` with
    /// `host` (Host header or SNI name) goes to.
    pub fn route_index(&self, ip: IpAddr, port: u16, host: Option<&str>) -> usize {
        match self.vhost_table.route(&self.vhosts, ip, port, host) {
            crate::vhost::Route::Main => 0,
            crate::vhost::Route::Vhost(i) => i + 1,
        }
    }
}

/// One `Listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// `None`: every address.
    pub addr: Option<IpAddr>,
    pub port: u16,
    pub protocol: Option<String>,
    pub span: Span,
}

/// A uid, with its passwd name when there is one (`#n` users need none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId {
    pub uid: u32,
    /// The name `initgroups` is called with; `None` for a `#n` uid without passwd entry.
    pub name: Option<String>,
}

/// A gid, with its group name when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupId {
    pub gid: u32,
    pub name: Option<String>,
}

/// A static `AssignUserID user group`, resolved at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assign {
    pub user: UserId,
    pub group: GroupId,
    pub span: Span,
}

/// The prefork directives: how many pool children accept connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolLimits {
    pub start_servers: u32,
    pub min_spare_servers: u32,
    pub max_spare_servers: u32,
    pub max_request_workers: u32,
    pub server_limit: u32,
    /// 0: never retire a pool child.
    pub max_connections_per_child: u32,
}

impl Default for PoolLimits {
    /// httpd prefork's defaults.
    fn default() -> Self {
        PoolLimits {
            start_servers: 5,
            min_spare_servers: 5,
            max_spare_servers: 10,
            max_request_workers: 256,
            server_limit: 256,
            max_connections_per_child: 0,
        }
    }
}

/// mpm-itk's server-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItkGlobal {
    pub limit_uid: (u32, u32),
    pub limit_gid: (u32, u32),
    pub enable_capabilities: bool,
}

/// `LimitUIDRange`/`LimitGIDRange` default: every id but 0 and `(uid_t)-1`.
pub const DEFAULT_ID_RANGE: (u32, u32) = (1, u32::MAX - 1);

impl Default for ItkGlobal {
    fn default() -> Self {
        ItkGlobal {
            limit_uid: DEFAULT_ID_RANGE,
            limit_gid: DEFAULT_ID_RANGE,
            enable_capabilities: true,
        }
    }
}

/// `ServerTokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTokens {
    Major,
    Minor,
    Minimal,
    ProductOnly,
    Os,
    Full,
}

/// The main server or one virtual host, with the main server's values filled in where the
/// virtual host sets none.
#[derive(Debug, Clone)]
pub struct Server {
    /// The `<VirtualHost>` line; `None` for the main server.
    pub span: Option<Span>,
    pub addrs: Vec<VhostAddr>,
    /// `ServerName` without scheme and port, lower case; `None` when never set.
    pub server_name: Option<String>,
    pub server_name_port: Option<u16>,
    /// `ServerAlias` patterns, lower case; `*` and `?` are wildcards.
    pub aliases: Vec<String>,
    pub server_admin: Option<String>,
    pub document_root: PathBuf,
    pub error_log: LogTarget,
    pub log_level: crate::loglevel::LogLevel,
    pub timeout: Duration,
    pub keep_alive: bool,
    pub keep_alive_timeout: Duration,
    pub max_keep_alive_requests: u32,
    pub custom_logs: Vec<CustomLog>,
    pub access_file_names: Vec<String>,
    pub aliases_map: Vec<AliasRule>,
    pub limits: RequestLimits,
    pub allow_encoded_slashes: EncodedSlashes,
    pub trace_enable: TraceEnable,
    /// `None`: no limit (mpm-itk's `MaxClientsVHost` ≤ 0 too).
    pub max_clients_vhost: Option<u32>,
    /// Per-directory settings given at server level (outside any section).
    pub dir: DirConfig,
    /// The main server's sections then this server's, as httpd merges them.
    pub sections: Vec<Section>,
    pub ssl: SslSettings,
    pub read_timeouts: ReadTimeouts,
}

/// mod_reqtimeout's limit for one stage of reading a request: `init` (zero: no limit of
/// its own, only `Timeout` per read), grown by a second per `min_rate` bytes received, up
/// to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTimeout {
    pub init: Duration,
    pub max: Option<Duration>,
    pub min_rate: Option<u32>,
}

impl ReadTimeout {
    pub const OFF: ReadTimeout = ReadTimeout {
        init: Duration::ZERO,
        max: None,
        min_rate: None,
    };
}

/// `RequestReadTimeout`, per stage; mod_reqtimeout's defaults are
/// `handshake=0 header=20-40,MinRate=500 body=20,MinRate=500`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTimeouts {
    pub handshake: ReadTimeout,
    pub header: ReadTimeout,
    pub body: ReadTimeout,
}

impl Default for ReadTimeouts {
    fn default() -> Self {
        ReadTimeouts {
            handshake: ReadTimeout::OFF,
            header: ReadTimeout {
                init: Duration::from_secs(20),
                max: Some(Duration::from_secs(40)),
                min_rate: Some(500),
            },
            body: ReadTimeout {
                init: Duration::from_secs(20),
                max: None,
                min_rate: Some(500),
            },
        }
    }
}

/// mod_ssl's settings of one server (a vhost inherits what it does not set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SslSettings {
    /// `SSLEngine on` (`optional` is refused at load: no TLS upgrade).
    pub engine: bool,
    /// `SSLCertificateFile`, each with its line (several: one per key type).
    pub certificate_files: Vec<(PathBuf, Span)>,
    /// `SSLCertificateKeyFile`, in the same order; a missing one means the key is in the
    /// certificate file.
    pub key_files: Vec<(PathBuf, Span)>,
    /// `SSLCertificateChainFile` (deprecated in httpd: the chain may follow the
    /// certificate in `SSLCertificateFile`).
    pub chain_file: Option<(PathBuf, Span)>,
    pub protocols: TlsVersions,
    /// `SSLCipherSuite`, as written (mapped onto what rustls offers when the TLS
    /// configuration is built).
    pub cipher_suite: Option<(String, Span)>,
    pub honor_cipher_order: bool,
    pub session_tickets: bool,
    /// The `SSLEngine` line.
    pub span: Option<Span>,
}

/// The TLS versions `SSLProtocol` leaves on (rustls has no others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVersions {
    pub tls12: bool,
    pub tls13: bool,
}

impl Default for TlsVersions {
    fn default() -> Self {
        TlsVersions {
            tls12: true,
            tls13: true,
        }
    }
}

/// Where `ErrorLog` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    File(PathBuf),
    Pipe(String),
    Syslog(String),
}

/// One `CustomLog`/`TransferLog`.
#[derive(Debug, Clone)]
pub struct CustomLog {
    pub target: LogTarget,
    pub format: LogFormat,
    /// `env=[!]VAR`: log only when the request variable is (not) set.
    pub condition: Option<(bool, String)>,
    pub span: Span,
}

/// `Alias`, `AliasMatch`, `ScriptAlias`, `ScriptAliasMatch`.
#[derive(Debug, Clone)]
pub struct AliasRule {
    pub matcher: UrlMatcher,
    /// For `Match` forms, with `$1`… references.
    pub target: String,
    /// `ScriptAlias`: everything under it is a CGI script.
    pub script: bool,
    pub span: Span,
}

/// How a URL-path is matched.
#[derive(Debug, Clone)]
pub enum UrlMatcher {
    /// A prefix that matches whole path segments, as mod_alias's `alias_matches`.
    Prefix(String),
    Regex(regex::Regex),
}

/// `LimitRequest*` at server level; httpd's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    pub fields: u32,
    pub field_size: u32,
    pub line: u32,
}

impl Default for RequestLimits {
    fn default() -> Self {
        // httpd defaults: DEFAULT_LIMIT_REQUEST_FIELDS, _FIELDSIZE, _LINE.
        RequestLimits {
            fields: 100,
            field_size: 8190,
            line: 8190,
        }
    }
}

/// `AllowEncodedSlashes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodedSlashes {
    Off,
    On,
    NoDecode,
}

/// `TraceEnable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceEnable {
    On,
    Off,
    Extended,
}
