//! Access and error log lines, as mod_log_config and httpd's default `ErrorLogFormat`
//! write them (fixtures captured from Debian's apache2 in `tests/fixtures/logfmt/`).
//!
//! [`render`] turns a parsed [`LogFormat`] and a finished request's [`LogEntry`] into one
//! access log line; [`error_log_line`] builds one error log line. Neither writes anything,
//! and neither decides what the values are: the request handling fills the [`LogEntry`]
//! with what httpd would have (`r->the_request`, `r->uri`, the final status, …).
//! Both return the line without the `\n` httpd appends.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use itkd_config::logformat::{Field, LogFormat, LogItem};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// httpd's `MAX_STRING_LEN`: a `%{…}t` result that does not fit is logged empty, as
/// `apr_strftime` into a buffer of that size leaves it.
const MAX_STRING_LEN: usize = 8192;

/// `%X`: the state of the connection when the response was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnStatus {
    /// `X`: the client went away before the response was complete.
    Aborted,
    /// `+`: the connection stays open for another request.
    KeepAlive,
    /// `-`: the connection is closed after this response.
    #[default]
    Close,
}

/// The original request's values where an internal redirect (`ErrorDocument` to a local
/// URL, a CGI's local `Location`) replaced them; `%<` reads these.
#[derive(Debug, Clone, Default)]
pub struct Original {
    pub status: u16,
    pub uri_path: Vec<u8>,
    pub query: Option<Vec<u8>>,
    pub filename: Option<PathBuf>,
    pub handler: Option<String>,
    /// What the original request had set before the redirect (usually nothing).
    pub response_headers: HeaderMap,
}

/// Everything the `%` codes read, for one request that is done.
///
/// Unless a field says otherwise it holds the *final* request's value (after internal
/// redirects), as httpd's `r->next` chain end has it; see [`LogEntry::original`].
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The client (`%a`, `%h`, `%{remote}p`).
    pub remote: SocketAddr,
    /// The address the connection came in on (`%A`, `%{local}p`).
    pub local: SocketAddr,
    /// When the request began (httpd's `r->request_time`): `%t`, `%{sec}t`, ….
    pub request_time: SystemTime,
    /// From `request_time` to the log line: `%D`, `%T`, and the `end:` times.
    pub duration: Duration,
    /// `%r`: the request line as httpd keeps it (`r->the_request`, without CRLF).
    pub request_line: Vec<u8>,
    /// `%m`.
    pub method: String,
    /// `%H`: `HTTP/1.1`; httpd says `HTTP/1.0` for a request line it could not parse.
    pub protocol: String,
    /// `%U`: the URL path, %-decoded (`r->uri`). `DirectoryIndex` changes it in place.
    pub uri_path: Vec<u8>,
    /// `%q`: the query string without `?`; `None` when the URL had no `?`.
    pub query: Option<Vec<u8>>,
    /// `%>s`. `%s` and `%<s` read [`Original::status`] when there is an original.
    pub status: u16,
    /// `%f`: the file the URL mapped to (`r->filename`), if mapping got that far.
    pub filename: Option<PathBuf>,
    /// `%R`: `r->handler` (`cgi-script`, `httpd/unix-directory`; `None` for static files).
    pub handler: Option<String>,
    /// `%u`: the user authentication named (even when it then failed).
    pub remote_user: Option<Vec<u8>>,
    /// `%{…}i`, `%{…}C`: the request's header fields.
    pub request_headers: HeaderMap,
    /// `%{…}o`: the header fields sent with the response.
    pub response_headers: HeaderMap,
    /// `%{…}e`: the request's environment (`SetEnv`, `SetEnvIf`, …); the first of a name wins.
    pub env: Vec<(String, String)>,
    /// `%{…}n`: notes modules left on the request.
    pub notes: Vec<(String, String)>,
    /// `%B`, `%b`: body bytes sent.
    pub body_bytes: u64,
    /// `%I`: bytes received, request line and headers included (mod_logio).
    pub bytes_received: u64,
    /// `%O`: bytes sent, headers included (mod_logio).
    pub bytes_sent: u64,
    /// `%v`: the answering server's `ServerName` (without port).
    pub server_name: String,
    /// `%V`: `ap_get_server_name`: the Host header's name under `UseCanonicalName Off`.
    pub host_name: String,
    /// `%p`: `ServerName`'s port, or the scheme's default port when it names none.
    pub canonical_port: u16,
    /// `%P`: the process that served the request.
    pub pid: u32,
    /// httpd's `c->keepalives` when the line is logged: how many responses on this
    /// connection, this one included, left it open. `%k` logs this less one.
    pub keepalives: u32,
    /// `%X`.
    pub conn_status: ConnStatus,
    /// `%L`: the request's error log id, when an error line was logged for it.
    pub log_id: Option<String>,
    /// `%{c}L`: the connection's error log id.
    pub conn_log_id: Option<String>,
    /// The values of the request before an internal redirect; `None` without one.
    pub original: Option<Original>,
}

impl LogEntry {
    /// An entry for a request from `remote` to `local` that began at `request_time`, with
    /// every other value empty: status 0, no headers, no bytes.
    pub fn new(remote: SocketAddr, local: SocketAddr, request_time: SystemTime) -> Self {
        LogEntry {
            remote,
            local,
            request_time,
            duration: Duration::ZERO,
            request_line: Vec::new(),
            method: String::new(),
            protocol: String::new(),
            uri_path: Vec::new(),
            query: None,
            status: 0,
            filename: None,
            handler: None,
            remote_user: None,
            request_headers: HeaderMap::new(),
            response_headers: HeaderMap::new(),
            env: Vec::new(),
            notes: Vec::new(),
            body_bytes: 0,
            bytes_received: 0,
            bytes_sent: 0,
            server_name: String::new(),
            host_name: String::new(),
            canonical_port: 80,
            pid: 0,
            keepalives: 0,
            conn_status: ConnStatus::Close,
            log_id: None,
            conn_log_id: None,
            original: None,
        }
    }
}

/// One access log line for `entry` in `format`, times in the system's local time zone.
pub fn render(format: &LogFormat, entry: &LogEntry) -> String {
    render_in(format, entry, &TimeZone::system())
}

/// [`render`] with times in `zone`.
pub fn render_in(format: &LogFormat, entry: &LogEntry, zone: &TimeZone) -> String {
    let mut line = String::with_capacity(256);
    for item in &format.items {
        match item {
            LogItem::Text(text) => line.push_str(text),
            LogItem::Field(field) => field_value(field, entry, zone, &mut line),
        }
    }
    line
}

/// The codes whose value comes from the original request unless `%>` asks otherwise
/// (mod_log_config's `want_orig_default`).
const ORIGINAL_BY_DEFAULT: &[&str] = &["r", "D", "T", "U", "s", "R", "L"];

/// The per-request values `%<` and `%>` choose between.
struct View<'a> {
    status: u16,
    uri_path: &'a [u8],
    query: Option<&'a [u8]>,
    filename: Option<&'a PathBuf>,
    handler: Option<&'a str>,
    response_headers: &'a HeaderMap,
}

fn view(entry: &LogEntry, want_original: bool) -> View<'_> {
    match (&entry.original, want_original) {
        (Some(orig), true) => View {
            status: orig.status,
            uri_path: &orig.uri_path,
            query: orig.query.as_deref(),
            filename: orig.filename.as_ref(),
            handler: orig.handler.as_deref(),
            response_headers: &orig.response_headers,
        },
        _ => View {
            status: entry.status,
            uri_path: &entry.uri_path,
            query: entry.query.as_deref(),
            filename: entry.filename.as_ref(),
            handler: entry.handler.as_deref(),
            response_headers: &entry.response_headers,
        },
    }
}

fn field_value(field: &Field, entry: &LogEntry, zone: &TimeZone, out: &mut String) {
    // mod_log_config: the status list is checked against the final request's status.
    if let Some((negate, list)) = &field.statuses {
        if list.contains(&entry.status) == *negate {
            out.push('-');
            return;
        }
    }
    let want_original = field
        .original
        .unwrap_or_else(|| ORIGINAL_BY_DEFAULT.contains(&field.code));
    let v = view(entry, want_original);
    let arg = field.arg.as_deref().unwrap_or("");
    match field.code {
        // HostnameLookups is not supported: %h is the address, as with `Off`.
        "a" | "h" => push_ip(out, entry.remote.ip()),
        "A" => push_ip(out, entry.local.ip()),
        "b" => match entry.body_bytes {
            0 => out.push('-'),
            n => push_num(out, n),
        },
        "B" => push_num(out, entry.body_bytes),
        "C" => push_opt(out, cookie(&entry.request_headers, arg)),
        "D" => push_num(out, entry.duration.as_micros()),
        "e" => push_opt(out, table_get(&entry.env, arg).map(str::as_bytes)),
        // mod_ssl's `%{VAR}x`: its variables are in the request environment.
        "x" => push_opt(out, table_get(&entry.env, arg).map(str::as_bytes)),
        "f" => push_opt(out, v.filename.map(|p| path_bytes(p))),
        "H" => escape_into(out, entry.protocol.as_bytes()),
        "i" => push_opt(out, header_joined(&entry.request_headers, arg).as_deref()),
        "I" => push_num(out, entry.bytes_received),
        "k" => push_num(out, entry.keepalives.saturating_sub(1)),
        // No identd lookups (IdentityCheck): always `-`.
        "l" => out.push('-'),
        "L" => {
            let id = if arg == "c" {
                &entry.conn_log_id
            } else {
                &entry.log_id
            };
            out.push_str(id.as_deref().unwrap_or("-"));
        }
        "m" => escape_into(out, entry.method.as_bytes()),
        "n" => push_opt(out, table_get(&entry.notes, arg).map(str::as_bytes)),
        "o" => push_opt(out, response_header(v.response_headers, arg).as_deref()),
        "O" => push_num(out, entry.bytes_sent),
        "p" => match arg.to_ascii_lowercase().as_str() {
            "" | "canonical" => push_num(out, entry.canonical_port),
            "remote" => push_num(out, entry.remote.port()),
            "local" => push_num(out, entry.local.port()),
            _ => out.push_str(arg),
        },
        // itkd's workers run one request on one thread: the thread is the process.
        "P" => match arg.to_ascii_lowercase().as_str() {
            "" | "pid" | "tid" => push_num(out, entry.pid),
            "hextid" => {
                let _ = write!(out, "{:x}", entry.pid);
            }
            _ => out.push_str(arg),
        },
        "q" => {
            if let Some(query) = v.query {
                out.push('?');
                escape_into(out, query);
            }
        }
        "r" => escape_into(out, &entry.request_line),
        "R" => push_opt(out, v.handler.map(str::as_bytes)),
        "s" => match v.status {
            0 => out.push('-'),
            n => push_num(out, n),
        },
        "S" => push_num(out, entry.bytes_received + entry.bytes_sent),
        "t" => request_time(out, entry, arg, zone),
        "T" => {
            let d = entry.duration;
            match arg.to_ascii_lowercase().as_str() {
                "" | "s" => push_num(out, d.as_secs()),
                "ms" => push_num(out, d.as_millis()),
                "us" => push_num(out, d.as_micros()),
                _ => out.push_str(arg),
            }
        }
        "u" => match &entry.remote_user {
            None => out.push('-'),
            Some(user) if user.is_empty() => out.push_str("\"\""),
            Some(user) => escape_into(out, user),
        },
        "U" => escape_into(out, v.uri_path),
        "v" => escape_into(out, entry.server_name.as_bytes()),
        "V" => escape_into(out, entry.host_name.as_bytes()),
        "X" => out.push(match entry.conn_status {
            ConnStatus::Aborted => 'X',
            ConnStatus::KeepAlive => '+',
            ConnStatus::Close => '-',
        }),
        // Trailers (`%{…}^ti`, `%{…}^to`) are not kept, and the parser knows no other code.
        _ => out.push('-'),
    }
}

fn push_num(out: &mut String, n: impl std::fmt::Display) {
    let _ = write!(out, "{n}");
}

/// A value or `-` when there is none; an empty value stays empty, as in httpd.
fn push_opt(out: &mut String, value: Option<&[u8]>) {
    match value {
        Some(v) => escape_into(out, v),
        None => out.push('-'),
    }
}

fn push_ip(out: &mut String, ip: IpAddr) {
    // A v4 client on a v6 socket is logged as v4, as APR does.
    let _ = write!(out, "{}", ip.to_canonical());
}

fn path_bytes(path: &std::path::Path) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes()
}

/// `apr_table_get`: the first entry whose name matches regardless of case.
fn table_get<'a>(table: &'a [(String, String)], name: &str) -> Option<&'a str> {
    table
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Request header fields as httpd's `headers_in` has them: repeated fields merged with
/// `", "` when the header was read.
fn header_joined(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    let mut values = headers.get_all(name).iter();
    let mut joined = values.next()?.as_bytes().to_vec();
    for v in values {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(v.as_bytes());
    }
    Some(joined)
}

/// mod_log_config's `log_header_out`: Content-Type without parameters, every Set-Cookie
/// joined with `", "`, otherwise the first field of that name.
fn response_header(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    if name.eq_ignore_ascii_case("content-type") {
        let value = headers.get(http::header::CONTENT_TYPE)?.as_bytes();
        // `ap_field_noparam`: up to the first `;`, trailing white space dropped.
        let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
        let mut kept = &value[..end];
        while let [rest @ .., last] = kept {
            if !last.is_ascii_whitespace() {
                break;
            }
            kept = rest;
        }
        return Some(kept.to_vec());
    }
    if name.eq_ignore_ascii_case("set-cookie") {
        return header_joined(headers, name);
    }
    headers.get(name).map(|v| v.as_bytes().to_vec())
}

/// mod_log_config's `log_cookie`: the value of cookie `name` in the Cookie header, pairs
/// split at `;`, white space around names and values dropped, names compared without case.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    let cookies = headers.get(http::header::COOKIE)?.as_bytes();
    for pair in cookies.split(|&b| b == b';') {
        // `apr_strtok(cookie, "=")` skips leading `=`, then cuts at the next one.
        let Some(start) = pair.iter().position(|&b| b != b'=') else {
            continue;
        };
        let pair = &pair[start..];
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        if key.is_empty() || value.is_empty() {
            continue;
        }
        if trim(key).eq_ignore_ascii_case(name.as_bytes()) {
            return Some(trim(value));
        }
    }
    None
}

/// Leading spaces and tabs, trailing white space (`apr_isspace`) off.
fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let s = &s[start..];
    let end = s
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .map_or(0, |i| i + 1);
    &s[..end]
}

/// httpd's `ap_escape_logitem`: `\"` and `\\`, C escapes for `\b \n \r \t \v`, `\xhh` for
/// every other byte that is not printable ASCII.
pub fn escape_logitem(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(&mut out, bytes);
    out
}

fn escape_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            _ => push_escaped_byte(out, b),
        }
    }
}

/// The escapes `ap_escape_logitem` and `ap_escape_errorlog_item` share.
fn push_escaped_byte(out: &mut String, b: u8) {
    match b {
        0x08 => out.push_str("\\b"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x0b => out.push_str("\\v"),
        0x20..=0x7e => out.push(char::from(b)),
        _ => {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// A point in time, broken down in a zone: what `apr_time_exp_t` holds.
struct Tm {
    year: i64,
    /// 1..=12
    month: usize,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    /// 0 = Sunday
    weekday: i64,
    /// 0-based
    yday: i64,
    /// seconds east of UTC
    offset: i64,
    zone: String,
    epoch: i64,
    usec: i64,
}

fn explode(time: SystemTime, zone: &TimeZone) -> Tm {
    // A time before 1970 or after 9999 cannot come from a clock that serves requests;
    // the epoch stands in rather than failing the whole log line.
    let ts = Timestamp::try_from(time).unwrap_or(Timestamp::UNIX_EPOCH);
    let info = zone.to_offset_info(ts);
    let dt = info.offset().to_datetime(ts);
    Tm {
        year: i64::from(dt.year()),
        month: usize::try_from(dt.month()).unwrap_or(1),
        day: i64::from(dt.day()),
        hour: i64::from(dt.hour()),
        minute: i64::from(dt.minute()),
        second: i64::from(dt.second()),
        weekday: i64::from(dt.weekday().to_sunday_zero_offset()),
        yday: i64::from(dt.day_of_year()) - 1,
        offset: i64::from(info.offset().seconds()),
        zone: info.abbreviation().to_owned(),
        epoch: ts.as_second(),
        usec: i64::from(ts.subsec_microsecond()),
    }
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn day_name(tm: &Tm) -> &'static str {
    DAYS[usize::try_from(tm.weekday.rem_euclid(7)).unwrap_or(0)]
}

fn month_name(tm: &Tm) -> &'static str {
    MONTHS[(tm.month.clamp(1, 12)) - 1]
}

/// `%t` and `%{…}t`, as mod_log_config's `log_request_time`.
fn request_time(out: &mut String, entry: &LogEntry, arg: &str, zone: &TimeZone) {
    // `SystemTime + Duration` panics past the end of time; the start stands in then.
    let end = entry
        .request_time
        .checked_add(entry.duration)
        .unwrap_or(entry.request_time);
    let mut time = entry.request_time;
    let mut fmt = arg;
    if let Some(rest) = fmt.strip_prefix("begin") {
        if rest.is_empty() {
            fmt = "";
        } else if let Some(rest) = rest.strip_prefix(':') {
            fmt = rest;
        }
    } else if let Some(rest) = fmt.strip_prefix("end") {
        if rest.is_empty() {
            fmt = "";
            time = end;
        } else if let Some(rest) = rest.strip_prefix(':') {
            fmt = rest;
            time = end;
        }
    }
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    match fmt {
        "" => clf_time(out, &explode(time, zone)),
        "sec" => push_num(out, since_epoch.as_secs()),
        "msec" => push_num(out, since_epoch.as_millis()),
        "usec" => push_num(out, since_epoch.as_micros()),
        "msec_frac" => {
            let _ = write!(out, "{:03}", since_epoch.subsec_millis());
        }
        "usec_frac" => {
            let _ = write!(out, "{:06}", since_epoch.subsec_micros());
        }
        custom => {
            let formatted = strftime(custom, &explode(time, zone));
            if formatted.len() < MAX_STRING_LEN {
                out.push_str(&formatted);
            }
        }
    }
}

/// `[25/Nov/2026:20:51:10 +0000]`.
fn clf_time(out: &mut String, tm: &Tm) {
    let sign = if tm.offset < 0 { '-' } else { '+' };
    let off = tm.offset.abs();
    let _ = write!(
        out,
        "[{:02}/{}/{}:{:02}:{:02}:{:02} {sign}{:02}{:02}]",
        tm.day,
        &month_name(tm)[..3],
        tm.year,
        tm.hour,
        tm.minute,
        tm.second,
        off / 3600,
        (off % 3600) / 60
    );
}

/// glibc's `strftime` in the C locale, which `apr_strftime` calls: conversions, the
/// `_ - 0 ^ #` flags, a field width, and the `E`/`O` modifiers (ignored in the C locale).
/// An unknown conversion is copied as it stands.
fn strftime(fmt: &str, tm: &Tm) -> String {
    let mut out = String::new();
    let mut rest = fmt;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let spec = &rest[pos..];
        let consumed = conversion(spec, tm, &mut out);
        rest = &spec[consumed..];
        if out.len() >= MAX_STRING_LEN {
            return out;
        }
    }
    out.push_str(rest);
    out
}

/// Writes one `%…` conversion starting at `spec[0] == '%'`; returns the bytes it used.
fn conversion(spec: &str, tm: &Tm, out: &mut String) -> usize {
    let bytes = spec.as_bytes();
    let mut i = 1;
    let mut pad: Option<u8> = None; // b'_', b'-', b'0'
    let mut upper = false;
    let mut swap = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'_' | b'-' | b'0' => pad = Some(b),
            b'^' => upper = true,
            b'#' => swap = true,
            _ => break,
        }
        i += 1;
    }
    let mut width: Option<usize> = None;
    while let Some(&b) = bytes.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        let w = width.unwrap_or(0) * 10 + usize::from(b - b'0');
        width = Some(w.min(MAX_STRING_LEN));
        i += 1;
    }
    while matches!(bytes.get(i), Some(b'E' | b'O')) {
        i += 1;
    }
    let Some(c) = spec[i..].chars().next() else {
        // A lone `%` at the end is copied.
        out.push_str(spec);
        return spec.len();
    };
    let used = i + c.len_utf8();
    let num = |n: i64, digits: usize, default_pad: u8| Num {
        n,
        digits,
        default_pad,
    };
    let hour12 = match tm.hour % 12 {
        0 => 12,
        h => h,
    };
    let (iso_year, iso_week) = iso_week(tm);
    let text: Result<String, Num> = match c {
        'a' => Ok(day_name(tm)[..3].to_owned()),
        'A' => Ok(day_name(tm).to_owned()),
        'b' | 'h' => Ok(month_name(tm)[..3].to_owned()),
        'B' => Ok(month_name(tm).to_owned()),
        'c' => Ok(strftime("%a %b %e %H:%M:%S %Y", tm)),
        'C' => Err(num(tm.year.div_euclid(100), 2, b'0')),
        'd' => Err(num(tm.day, 2, b'0')),
        'D' | 'x' => Ok(strftime("%m/%d/%y", tm)),
        'e' => Err(num(tm.day, 2, b' ')),
        'F' => Ok(strftime("%Y-%m-%d", tm)),
        'g' => Err(num(iso_year.rem_euclid(100), 2, b'0')),
        'G' => Err(num(iso_year, 1, b'0')),
        'H' => Err(num(tm.hour, 2, b'0')),
        'I' => Err(num(hour12, 2, b'0')),
        'j' => Err(num(tm.yday + 1, 3, b'0')),
        'k' => Err(num(tm.hour, 2, b' ')),
        'l' => Err(num(hour12, 2, b' ')),
        'm' => Err(num(tm.month as i64, 2, b'0')),
        'M' => Err(num(tm.minute, 2, b'0')),
        'n' => Ok("\n".to_owned()),
        'p' => Ok(if tm.hour < 12 { "AM" } else { "PM" }.to_owned()),
        'P' => Ok(if tm.hour < 12 { "am" } else { "pm" }.to_owned()),
        'r' => Ok(strftime("%I:%M:%S %p", tm)),
        'R' => Ok(strftime("%H:%M", tm)),
        's' => Err(num(tm.epoch, 1, b'0')),
        'S' => Err(num(tm.second, 2, b'0')),
        't' => Ok("\t".to_owned()),
        'T' | 'X' => Ok(strftime("%H:%M:%S", tm)),
        'u' => Err(num(if tm.weekday == 0 { 7 } else { tm.weekday }, 1, b'0')),
        'U' => Err(num((tm.yday + 7 - tm.weekday) / 7, 2, b'0')),
        'V' => Err(num(iso_week, 2, b'0')),
        'w' => Err(num(tm.weekday, 1, b'0')),
        'W' => Err(num((tm.yday + 7 - (tm.weekday + 6) % 7) / 7, 2, b'0')),
        'y' => Err(num(tm.year.rem_euclid(100), 2, b'0')),
        'Y' => Err(num(tm.year, 1, b'0')),
        'z' => {
            let sign = if tm.offset < 0 { '-' } else { '+' };
            let off = tm.offset.abs();
            Ok(format!("{sign}{:02}{:02}", off / 3600, (off % 3600) / 60))
        }
        'Z' => Ok(if swap {
            tm.zone.to_ascii_lowercase()
        } else {
            tm.zone.clone()
        }),
        '%' => Ok("%".to_owned()),
        _ => {
            out.push_str(&spec[..used]);
            return used;
        }
    };
    match text {
        Ok(mut s) => {
            if upper || (swap && c != 'Z' && c != 'p') {
                s = s.to_ascii_uppercase();
            } else if swap && c == 'p' {
                s = s.to_ascii_lowercase();
            }
            let fill = if pad == Some(b'0') { '0' } else { ' ' };
            for _ in s.len()..width.unwrap_or(0) {
                out.push(fill);
            }
            out.push_str(&s);
        }
        Err(Num {
            n,
            digits,
            default_pad,
        }) => {
            // glibc: a width below the conversion's digits does not shorten it; `-` drops
            // the digit padding, and the width is then made up with spaces.
            let digits = digits.max(width.unwrap_or(0));
            let fill = match pad {
                Some(b'-') => None,
                Some(b'_') => Some(' '),
                Some(b'0') => Some('0'),
                _ => Some(char::from(default_pad)),
            };
            let s = n.unsigned_abs().to_string();
            let sign = if n < 0 { "-" } else { "" };
            let len = s.len() + sign.len();
            match fill {
                Some('0') => {
                    out.push_str(sign);
                    for _ in len..digits {
                        out.push('0');
                    }
                }
                Some(f) => {
                    for _ in len..digits {
                        out.push(f);
                    }
                    out.push_str(sign);
                }
                None => {
                    for _ in len..width.unwrap_or(0) {
                        out.push(' ');
                    }
                    out.push_str(sign);
                }
            }
            out.push_str(&s);
        }
    }
    used
}

struct Num {
    n: i64,
    digits: usize,
    default_pad: u8,
}

/// ISO 8601 week-numbering year and week (`%G`, `%V`).
fn iso_week(tm: &Tm) -> (i64, i64) {
    let iso_wday = (tm.weekday + 6) % 7; // Monday = 0
    let week = (tm.yday - iso_wday + 10) / 7;
    let is_leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if week < 1 {
        let prev = tm.year - 1;
        let prev_len = if is_leap(prev) { 366 } else { 365 };
        let yday = tm.yday + prev_len;
        (prev, (yday - iso_wday + 10) / 7)
    } else {
        let len = if is_leap(tm.year) { 366 } else { 365 };
        if tm.yday - iso_wday + 3 >= len {
            (tm.year + 1, 1)
        } else {
            (tm.year, week)
        }
    }
}

pub use itkd_config::loglevel::Level;

/// One error log line in httpd 2.4's default `ErrorLogFormat`, times in the system's
/// local time zone:
///
/// `[Wed Nov 25 21:40:49.123456 2026] [core:error] [pid 1234:tid 1234] [client 127.0.0.1:5555] message`
///
/// httpd prints `tid` even for prefork and mpm-itk, with the thread id of the
/// single-threaded process, which is its pid: `pid` stands for both. The message is
/// escaped as `ap_escape_errorlog_item` does (like [`escape_logitem`], but `"` stays).
/// It is everything after the client: `AH00128: File does not exist: /x`, an errno
/// prefix like `(13)Permission denied: `, and for a request carrying a Referer the
/// `, referer: …` httpd appends.
pub fn error_log_line(
    time: SystemTime,
    module: &str,
    level: Level,
    pid: u32,
    client: Option<SocketAddr>,
    message: impl AsRef<[u8]>,
) -> String {
    error_log_line_in(
        time,
        module,
        level,
        pid,
        client,
        message,
        &TimeZone::system(),
    )
}

/// [`error_log_line`] with the time in `zone`.
pub fn error_log_line_in(
    time: SystemTime,
    module: &str,
    level: Level,
    pid: u32,
    client: Option<SocketAddr>,
    message: impl AsRef<[u8]>,
    zone: &TimeZone,
) -> String {
    let tm = explode(time, zone);
    let mut line = String::with_capacity(128);
    // `ap_recent_ctime_ex` with AP_CTIME_OPTION_USEC: the day is zero-padded.
    let _ = write!(
        line,
        "[{} {} {:02} {:02}:{:02}:{:02}.{:06} {}] [{module}:{level}] [pid {pid}:tid {pid}] ",
        &day_name(&tm)[..3],
        &month_name(&tm)[..3],
        tm.day,
        tm.hour,
        tm.minute,
        tm.second,
        tm.usec,
        tm.year
    );
    if let Some(client) = client {
        let _ = write!(
            line,
            "[client {}:{}] ",
            client.ip().to_canonical(),
            client.port()
        );
    }
    for &b in message.as_ref() {
        match b {
            b'\\' => line.push_str("\\\\"),
            // "no need for this in error log"
            b'"' => line.push('"'),
            _ => push_escaped_byte(&mut line, b),
        }
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_level_keywords_parse_in_any_case_and_order_by_verbosity() {
        use super::Level;
        assert_eq!(Level::parse("INFO"), Some(Level::Info));
        assert_eq!(Level::parse("trace3"), Some(Level::Trace(3)));
        for bad in ["trace0", "trace9", "verbose", "", "ssl:info"] {
            assert_eq!(Level::parse(bad), None, "{bad}");
        }
        assert!(Level::Warn < Level::Info && Level::Info < Level::Trace(1));
        for level in [Level::Emerg, Level::Notice, Level::Debug, Level::Trace(8)] {
            assert_eq!(Level::parse(&level.to_string()), Some(level));
        }
    }

    use super::*;

    #[test]
    fn escapes() {
        for (input, want) in [
            (&b"plain text"[..], "plain text"),
            (b"a\"b\\c", "a\\\"b\\\\c"),
            (
                b"\x08\n\r\t\x0b\x0c\x00\x7f\xe9",
                "\\b\\n\\r\\t\\v\\x0c\\x00\\x7f\\xe9",
            ),
        ] {
            assert_eq!(escape_logitem(input), want);
        }
    }

    #[test]
    fn cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("a=1; B = two words ;==c=3=4;;d=; e"),
        );
        for (name, want) in [
            ("a", Some(&b"1"[..])),
            ("b", Some(b"two words")),
            ("c", Some(b"3=4")),
            ("d", None),
            ("e", None),
            ("x", None),
        ] {
            assert_eq!(cookie(&headers, name), want, "{name}");
        }
    }

    #[test]
    fn trim_spaces() {
        assert_eq!(trim(b" \t a b \r\n"), b"a b");
        assert_eq!(trim(b"   "), b"");
    }

    #[test]
    fn iso_weeks() {
        // (year, yday 0-based, weekday 0=Sun) → (iso year, week), checked with `date +%G-%V`.
        for (year, yday, weekday, want) in [
            (2026, 0, 4, (2026, 1)),    // Thu 2026-01-01
            (2027, 0, 5, (2026, 53)),   // Fri 2027-01-01
            (2024, 364, 1, (2025, 1)),  // Mon 2024-12-30
            (2021, 2, 0, (2020, 53)),   // Sun 2021-01-03
            (2026, 328, 3, (2026, 48)), // Wed 2026-11-25
        ] {
            let tm = Tm {
                year,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                weekday,
                yday,
                offset: 0,
                zone: String::new(),
                epoch: 0,
                usec: 0,
            };
            assert_eq!(iso_week(&tm), want, "{year} {yday}");
        }
    }
}
