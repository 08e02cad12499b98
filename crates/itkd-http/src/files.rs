//! The default handler: static files, run after the credential switch, so every open and
//! stat is the tenant's own (a file the tenant cannot read is a 403, as in mpm-itk).
//!
//! GET and HEAD with httpd's validators (`Last-Modified`, `ETag` "size-mtime", weak within
//! a second of the change), conditional requests (RFC 9110 §13.2.2 order), ranges (one →
//! 206, several → multipart/byteranges, none satisfiable → 416 with `Content-Range:
//! bytes */LEN`, malformed or adding up past the file → ignored), `DirectoryIndex`, the
//! trailing-slash redirect, symlink options.

use std::cell::RefCell;
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use itkd_config::dirconf::{DirConfig, OptionSet};
use itkd_config::mime::MimeTypes;

use crate::mapping::Mapped;
use itkd_sys::credentials::AsTenant;

/// A response body the worker writes out.
#[derive(Debug)]
pub enum Body {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of `file` from `offset` (shared with [`open_cached`]'s cache).
    File {
        file: Rc<File>,
        offset: u64,
        len: u64,
    },
}

/// What the handler decided.
#[derive(Debug)]
pub enum Outcome {
    /// A response ready to send (headers without `Date`/`Server`, which the worker adds).
    Response {
        status: u16,
        headers: HeaderMap,
        body: Body,
    },
    /// An error the caller renders (httpd's page or an `ErrorDocument`), with the
    /// error-log line httpd would write, if any.
    Error {
        status: u16,
        log: Option<String>,
        headers: HeaderMap,
    },
    /// A directory asked for with its trailing slash: mod_dir's `DirectoryIndex` names,
    /// as URIs in order. The caller serves the first that is a regular file through the
    /// whole request path again (sections, handler, `Action`, CGI: an index.php is run,
    /// never sent), else [`no_index`]. The static handler never serves an index file
    /// itself.
    Directory { index: Vec<String> },
}

impl Outcome {
    fn error(status: u16, log: Option<String>) -> Outcome {
        Outcome::Error {
            status,
            log,
            headers: HeaderMap::new(),
        }
    }
}

/// The parts of the request the handler reads.
#[derive(Debug, Clone, Copy)]
pub struct FileRequest<'a> {
    pub method: &'a str,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    /// `http` or `https`, for the trailing-slash redirect.
    pub scheme: &'a str,
    /// The Host header as sent (httpd builds the redirect from it, UseCanonicalName Off).
    pub host: &'a str,
    pub now: SystemTime,
}

/// httpd's `MaxRanges` default.
const MAX_RANGES: usize = 200;
/// mod_dir's default `DirectoryIndex`.
const DEFAULT_INDEX: &str = "index.html";

/// The default handler for `mapped`, as the tenant (`tenant` is the proof of the
/// switch). `known`: the metadata of `mapped.path` when the caller has just stat'ed it
/// (one stat per request instead of two).
pub fn serve_with(
    tenant: AsTenant,
    mapped: &Mapped,
    dir: &DirConfig,
    types: &MimeTypes,
    req: &FileRequest<'_>,
    known: Option<&Metadata>,
) -> Outcome {
    let options = dir.effective_options();
    if let Some(refusal) = check_symlinks(tenant, &mapped.root, &mapped.path, options) {
        return refusal;
    }
    let stat = known
        .cloned()
        .map_or_else(|| std::fs::metadata(&mapped.path), Ok);
    // mod_dir works for every method (its fixup runs before any handler): a POST to a
    // directory reaches its index script.
    if stat.as_ref().is_ok_and(Metadata::is_dir) {
        return directory(mapped, dir, req);
    }
    if let Some(refusal) = method_refusal(req) {
        return refusal;
    }
    let meta = match stat {
        Ok(meta) => meta,
        // A directory on the way the tenant may not search: httpd's directory walk stops
        // there (request.c) with AH00035.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Outcome::error(
                403,
                Some(format!(
                    "(13)Permission denied: AH00035: access to {} denied (filesystem path '{}') because search permissions are missing on a component of the path",
                    mapped.uri_path,
                    mapped.path.display()
                )),
            )
        }
        Err(e) => return stat_error(&mapped.path, &e),
    };
    file(&mapped.path, &meta, dir, types, req)
}

/// httpd's default handler: GET, HEAD and POST are served (POST's body was read and
/// discarded; ranges stay GET's, conditionals answer 412 rather than 304), OPTIONS is
/// answered, any other method is a 405, whether the file exists or not.
fn method_refusal(req: &FileRequest<'_>) -> Option<Outcome> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ALLOW,
        HeaderValue::from_static("GET,POST,OPTIONS,HEAD"),
    );
    match req.method {
        "GET" | "HEAD" | "POST" => None,
        "OPTIONS" => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            Some(Outcome::Response {
                status: 200,
                headers,
                body: Body::Empty,
            })
        }
        _ => Some(Outcome::Error {
            status: 405,
            log: None,
            headers,
        }),
    }
}

fn stat_error(path: &Path, e: &std::io::Error) -> Outcome {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => Outcome::error(
            403,
            Some(format!(
                "(13)Permission denied: AH00132: file permissions deny server access: {}",
                path.display()
            )),
        ),
        _ => Outcome::error(
            404,
            Some(format!("AH00128: File does not exist: {}", path.display())),
        ),
    }
}

/// Every path component below `root` that is a symlink must be allowed by Options.
/// `Some(refusal)` when a symlink is not allowed.
pub fn check_symlinks(
    _tenant: AsTenant,
    root: &Path,
    path: &Path,
    options: OptionSet,
) -> Option<Outcome> {
    if options.contains(OptionSet::SYM_LINKS) {
        return None;
    }
    let Ok(rest) = path.strip_prefix(root) else {
        return None;
    };
    let mut at = root.to_path_buf();
    for part in rest.components() {
        at.push(part);
        let Ok(link) = std::fs::symlink_metadata(&at) else {
            return None;
        };
        if !link.file_type().is_symlink() {
            continue;
        }
        let owner_match = options.contains(OptionSet::SYM_OWNER)
            && std::fs::metadata(&at).is_ok_and(|target| target.uid() == link.uid());
        if !owner_match {
            return Some(Outcome::error(
                403,
                Some(format!(
                    "AH00037: Symbolic link not allowed or link target not accessible: {}",
                    at.display()
                )),
            ));
        }
    }
    None
}

fn directory(mapped: &Mapped, dir: &DirConfig, req: &FileRequest<'_>) -> Outcome {
    if !mapped.uri_path.ends_with('/') {
        // mod_dir: a directory without its trailing slash → 301 to the slashed URL.
        let mut location = format!("{}://{}{}/", req.scheme, req.host, mapped.uri_path);
        if let Some(q) = req.query {
            location.push('?');
            location.push_str(q);
        }
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&location) {
            headers.insert(header::LOCATION, v);
        }
        return Outcome::Error {
            status: 301,
            log: None,
            headers,
        };
    }
    // mod_dir: a relative name is relative to the directory's URI, an absolute one is a
    // URI of its own (`DirectoryIndex /index.php`).
    let index = index_names(dir)
        .into_iter()
        .map(|name| {
            if name.starts_with('/') {
                name.to_owned()
            } else {
                format!("{}{name}", mapped.uri_path)
            }
        })
        .collect();
    Outcome::Directory { index }
}

/// The `DirectoryIndex` names in force (mod_dir's default: index.html).
fn index_names(dir: &DirConfig) -> Vec<&str> {
    match &dir.directory_index {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => vec![DEFAULT_INDEX],
    }
}

/// Whether `path` is a regular file, looked up as the tenant (mod_dir's test of an
/// index candidate).
pub fn is_file(_tenant: AsTenant, path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// A directory none of whose `DirectoryIndex` names is a file: mod_autoindex's listing
/// with `Options Indexes`, else httpd's 403 (AH01276).
pub fn no_index(
    _tenant: AsTenant,
    mapped: &Mapped,
    dir: &DirConfig,
    req: &FileRequest<'_>,
) -> Outcome {
    if dir.effective_options().contains(OptionSet::INDEXES) {
        return listing(&mapped.path, &mapped.uri_path, req);
    }
    Outcome::error(
        403,
        Some(format!(
            "AH01276: Cannot serve directory {}/: No matching DirectoryIndex ({}) found, and server-generated directory index forbidden by Options directive",
            mapped.path.display().to_string().trim_end_matches('/'),
            index_names(dir).join(",")
        )),
    )
}

/// A plain listing (`Options Indexes`): names only, directories with a trailing slash.
fn listing(path: &Path, uri_path: &str, req: &FileRequest<'_>) -> Outcome {
    let entries = match std::fs::read_dir(path) {
        Ok(rd) => rd,
        // mod_autoindex's line for a directory it may not read.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Outcome::error(
                403,
                Some(format!(
                    "(13)Permission denied: AH01275: Can't open directory for index: {}/",
                    path.display().to_string().trim_end_matches('/')
                )),
            )
        }
        Err(e) => return stat_error(path, &e),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let slash = if e.file_type().is_ok_and(|t| t.is_dir()) {
                "/"
            } else {
                ""
            };
            Some(format!("{name}{slash}"))
        })
        .collect();
    names.sort();
    let title = crate::errors::escape_html(uri_path);
    let mut html = format!(
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html>\n <head>\n  <title>Index of {title}</title>\n </head>\n <body>\n<h1>Index of {title}</h1>\n<ul>"
    );
    if uri_path != "/" {
        html.push_str("<li><a href=\"../\"> Parent Directory</a></li>\n");
    }
    for name in names {
        // mod_autoindex: the URI-escaped name, then HTML-escaped (a `&` stays `&amp;`).
        let href = percent_encoding::utf8_percent_encode(&name, HREF).to_string();
        html.push_str(&format!(
            "<li><a href=\"{}\"> {}</a></li>\n",
            crate::errors::escape_html(&href),
            crate::errors::escape_html(&name)
        ));
    }
    html.push_str("</ul>\n</body></html>\n");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=UTF-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(html.len()));
    let body = if req.method == "HEAD" {
        Body::Empty
    } else {
        Body::Bytes(Bytes::from(html))
    };
    Outcome::Response {
        status: 200,
        headers,
        body,
    }
}

const HREF: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\'');

/// The media type for a file name: `ForceType`, else the last extension `AddType` or
/// TypesConfig knows (mod_mime looks at every extension; the later one wins).
pub fn content_type(name: &str, dir: &DirConfig, types: &MimeTypes) -> Option<String> {
    if let Some(forced) = &dir.force_type {
        return forced.clone();
    }
    let mut found = None;
    for ext in name.split('.').skip(1) {
        let ext = ext.to_ascii_lowercase();
        let added = dir
            .types
            .iter()
            .rev()
            .find(|(e, _)| *e == ext)
            .map(|(_, t)| t.clone());
        let removed = dir.removed_types.contains(&ext);
        if let Some(t) = added.or_else(|| {
            (!removed)
                .then(|| types.lookup(&ext).map(str::to_owned))
                .flatten()
        }) {
            found = Some(t);
        }
    }
    let charset = dir.default_charset.clone().flatten();
    match (found, charset) {
        (Some(t), Some(cs))
            if (t == "text/plain" || t == "text/html") && !t.contains("charset") =>
        {
            Some(format!("{t}; charset={cs}"))
        }
        (t, _) => t,
    }
}

fn file(
    path: &Path,
    meta: &Metadata,
    dir: &DirConfig,
    types: &MimeTypes,
    req: &FileRequest<'_>,
) -> Outcome {
    // Only regular files: opening a FIFO would block the worker until a writer comes
    // (httpd blocks; a tenant's FIFO must not hold a worker), and a device has no length.
    if !meta.is_file() {
        return Outcome::error(
            403,
            Some(format!(
                "not a regular file, not served: {}",
                path.display()
            )),
        );
    }
    let handle = match open_cached(path, meta) {
        Ok(f) => f,
        Err(e) => return stat_error(path, &e),
    };
    let len = meta.len();
    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    // httpd never claims a modification time in the future.
    let last_modified = mtime.min(req.now);
    let etag = etag(meta, mtime, req.now);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(last_modified)) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    if let Some(status) = preconditions(req, &etag, last_modified) {
        if status == 304 {
            return Outcome::Response {
                status,
                headers,
                body: Body::Empty,
            };
        }
        return Outcome::Error {
            status,
            log: None,
            headers: HeaderMap::new(),
        };
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let media_type = content_type(&name, dir, types);
    let head = req.method == "HEAD";

    let ranges = if req.method == "GET" && if_range_holds(req, &etag, last_modified) {
        req.headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|r| parse_ranges(r, len))
    } else {
        None
    };
    match ranges {
        Some(Ranges::Unsatisfiable) => {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            Outcome::Error {
                status: 416,
                log: None,
                headers,
            }
        }
        Some(Ranges::Satisfiable(list)) if list.len() == 1 => {
            let (start, end) = list[0];
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
            set_type(&mut headers, media_type.as_deref());
            let body = Body::File {
                file: handle,
                offset: start,
                len: end - start + 1,
            };
            Outcome::Response {
                status: 206,
                headers,
                body,
            }
        }
        Some(Ranges::Satisfiable(list)) => {
            let boundary = format!("{:x}{:x}", std::process::id(), now_nanos(req.now));
            let read = |start: u64, buf: &mut [u8]| handle.read_exact_at(buf, start);
            let Ok(out) = byteranges_body(&list, len, media_type.as_deref(), &boundary, read)
            else {
                return Outcome::error(500, Some(format!("reading {} failed", path.display())));
            };
            if let Ok(v) =
                HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
            {
                headers.insert(header::CONTENT_TYPE, v);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
            Outcome::Response {
                status: 206,
                headers,
                body: Body::Bytes(Bytes::from(out)),
            }
        }
        None | Some(Ranges::Ignored) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            set_type(&mut headers, media_type.as_deref());
            let body = if head {
                Body::Empty
            } else {
                Body::File {
                    file: handle,
                    offset: 0,
                    len,
                }
            };
            Outcome::Response {
                status: 200,
                headers,
                body,
            }
        }
    }
}

/// What identifies an unchanged file: its inode, mode and owner, and its ctime, which
/// every change of content, mode, owner, ACL or link count moves (mode and owner are
/// compared too, for file systems whose timestamps are coarser than two requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileKey {
    dev: u64,
    ino: u64,
    mode: u32,
    owner: (u32, u32),
    ctime: (i64, i64),
}

impl FileKey {
    fn of(meta: &Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            mode: meta.mode(),
            owner: (meta.uid(), meta.gid()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

thread_local! {
    /// The file this process opened last, kept open while the path stat'ed for a request
    /// still leads to it unchanged: a keep-alive client fetching one file again costs a
    /// stat and a read, not an open and a close as well. A worker serves one connection
    /// as one identity, so the open's permission check was the same uid's; a changed
    /// mode, owner or ACL moves the ctime, and the next request opens afresh.
    static LAST_OPENED: RefCell<Option<(FileKey, Rc<File>)>> = const { RefCell::new(None) };
}

/// Opens `path`, whose `meta` the caller has just stat'ed, or reuses the descriptor the
/// last request opened for the same unchanged inode. A file opened is kept for the next
/// request only if it is the inode `meta` describes (not one swapped in since the stat).
fn open_cached(path: &Path, meta: &Metadata) -> std::io::Result<Rc<File>> {
    let key = FileKey::of(meta);
    LAST_OPENED.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((k, file)) = &*last {
            if *k == key {
                return Ok(Rc::clone(file));
            }
        }
        // O_NONBLOCK: if the file was swapped for a FIFO since the stat, the open still
        // returns at once (and the read finds nothing), it never waits for a writer.
        let file = Rc::new(
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)?,
        );
        *last = match file.metadata() {
            Ok(opened) if FileKey::of(&opened) == key => Some((key, Rc::clone(&file))),
            _ => None,
        };
        Ok(file)
    })
}

fn set_type(headers: &mut HeaderMap, media_type: Option<&str>) {
    if let Some(v) = media_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
}

fn now_nanos(now: SystemTime) -> u128 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// httpd's default `FileETag MTime Size`: `"size-mtime"` in hex, mtime in microseconds;
/// weak when the file changed within the last second (it may change again unseen).
fn etag(meta: &Metadata, mtime: SystemTime, now: SystemTime) -> String {
    let micros = mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let weak = now
        .duration_since(mtime)
        .map_or(true, |age| age < Duration::from_secs(1));
    format!(
        "{}\"{:x}-{:x}\"",
        if weak { "W/" } else { "" },
        meta.len(),
        micros
    )
}

/// RFC 9110 §13.2.2: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since.
fn preconditions(req: &FileRequest<'_>, etag: &str, last_modified: SystemTime) -> Option<u16> {
    let get = |name: header::HeaderName| req.headers.get(name).and_then(|v| v.to_str().ok());
    let date = |text: &str| httpdate::parse_http_date(text).ok();
    let whole_seconds = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    if let Some(list) = get(header::IF_MATCH) {
        if !etag_list_matches(list, etag, true) {
            return Some(412);
        }
    } else if let Some(since) = get(header::IF_UNMODIFIED_SINCE).and_then(date) {
        if whole_seconds(last_modified) > whole_seconds(since) {
            return Some(412);
        }
    }
    if let Some(list) = get(header::IF_NONE_MATCH) {
        if etag_list_matches(list, etag, false) {
            return Some(if matches!(req.method, "GET" | "HEAD") {
                304
            } else {
                412
            });
        }
    } else if let Some(since) = get(header::IF_MODIFIED_SINCE).and_then(date) {
        // httpd's ap_meets_conditions: a date in the future is no validator (a client's
        // clock ahead must not pin a stale copy).
        if matches!(req.method, "GET" | "HEAD")
            && whole_seconds(last_modified) <= whole_seconds(since)
            && whole_seconds(since) <= whole_seconds(req.now)
        {
            return Some(304);
        }
    }
    None
}

fn etag_list_matches(list: &str, etag: &str, strong: bool) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    list.split(',').any(|candidate| {
        let candidate = candidate.trim();
        if candidate == "*" {
            return true;
        }
        if strong && (candidate.starts_with("W/") || etag.starts_with("W/")) {
            return false;
        }
        opaque(candidate) == opaque(etag)
    })
}

/// If-Range: ranges apply only when the validator still matches.
fn if_range_holds(req: &FileRequest<'_>, etag: &str, last_modified: SystemTime) -> bool {
    let Some(value) = req
        .headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    if value.starts_with('"') || value.starts_with("W/") {
        return !etag.starts_with("W/") && value == etag;
    }
    httpdate::parse_http_date(value).is_ok_and(|d| {
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        secs(d) == secs(last_modified)
    })
}

/// What a `Range` header asks of a file.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranges {
    /// Inclusive byte ranges, in request order, each inside the file.
    Satisfiable(Vec<(u64, u64)>),
    /// None inside the file: 416.
    Unsatisfiable,
    /// Not a byte range set itkd serves: the whole file, 200, as httpd's
    /// `ap_set_byterange` returning 0.
    Ignored,
}

/// `bytes=0-9,20-,-5`. A header that is not a valid byte range set, or has more than
/// MaxRanges ranges, is ignored (the whole file), as RFC 9110 §14.2 allows.
///
/// Public for the `range` fuzz target; the handler is its only other caller.
pub fn parse_ranges(text: &str, len: u64) -> Ranges {
    let Some(set) = text.trim().strip_prefix("bytes=") else {
        return Ranges::Ignored;
    };
    let mut out = Vec::new();
    let mut any = false;
    for spec in set.split(',') {
        let spec = spec.trim();
        let Some((first, last)) = spec.split_once('-') else {
            return Ranges::Ignored;
        };
        let number = |s: &str| s.trim().parse::<u64>().ok();
        let range = match (first.trim().is_empty(), last.trim().is_empty()) {
            (true, false) => match number(last) {
                Some(0) => None,
                Some(n) => Some((len.saturating_sub(n), len.saturating_sub(1))),
                None => return Ranges::Ignored,
            },
            (false, _) => {
                let Some(start) = number(first) else {
                    return Ranges::Ignored;
                };
                let end = if last.trim().is_empty() {
                    len.saturating_sub(1)
                } else {
                    match number(last) {
                        Some(e) if e >= start => e.min(len.saturating_sub(1)),
                        _ => return Ranges::Ignored,
                    }
                };
                (start < len).then_some((start, end))
            }
            (true, true) => return Ranges::Ignored,
        };
        any = true;
        if let Some(r) = range {
            out.push(r);
        }
    }
    if !any || out.len() > MAX_RANGES {
        return Ranges::Ignored;
    }
    if out.is_empty() || len == 0 {
        return Ranges::Unsatisfiable;
    }
    // httpd's byterange filter: "Sum of ranges larger than file, ignoring." Overlapping
    // ranges would otherwise make the multipart body MaxRanges times the file
    // (CVE-2011-3192). httpd merges overlapping ranges first; itkd ignores them whenever
    // they add up past the file.
    if out.iter().map(|(s, e)| e - s + 1).sum::<u64>() > len {
        return Ranges::Ignored;
    }
    Ranges::Satisfiable(out)
}

/// The `multipart/byteranges` body (RFC 9110 §14.6) for `parts` of a `len`-byte file, in
/// httpd's spelling: each part is `CRLF--boundary CRLF`, `Content-type` (when the file has
/// one), `Content-range`, a blank line and the bytes; then `CRLF--boundary--CRLF`.
/// `read(start, buf)` fills `buf` with the file's bytes from `start`.
pub fn byteranges_body(
    parts: &[(u64, u64)],
    len: u64,
    media_type: Option<&str>,
    boundary: &str,
    mut read: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for &(start, end) in parts {
        out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        if let Some(t) = media_type {
            out.extend_from_slice(format!("Content-type: {t}\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!("Content-range: bytes {start}-{end}/{len}\r\n\r\n").as_bytes(),
        );
        let mut chunk = vec![0; usize::try_from(end - start + 1).unwrap_or(0)];
        read(start, &mut chunk)?;
        out.extend_from_slice(&chunk);
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let table: &[(&str, Ranges)] = &[
            ("bytes=0-9", Ranges::Satisfiable(vec![(0, 9)])),
            ("bytes=-5", Ranges::Satisfiable(vec![(3795, 3799)])),
            ("bytes=3790-", Ranges::Satisfiable(vec![(3790, 3799)])),
            ("bytes=0-1,5-6", Ranges::Satisfiable(vec![(0, 1), (5, 6)])),
            ("bytes=0-99999", Ranges::Satisfiable(vec![(0, 3799)])),
            ("bytes=999999-", Ranges::Unsatisfiable),
            ("bytes=-0", Ranges::Unsatisfiable),
            ("bytes=5-1", Ranges::Ignored),
            ("items=0-1", Ranges::Ignored),
            ("bytes=a-b", Ranges::Ignored),
        ];
        for (text, want) in table {
            assert_eq!(&parse_ranges(text, 3800), want, "{text}");
        }
    }

    /// The fuzz target `range` found `bytes=5-1` on an empty file answered with the part
    /// 0-0: a 206 promising one byte of a file that has none. A malformed header is now
    /// ignored (200, the whole file) whatever the length, as httpd ignores it.
    #[test]
    fn malformed_range_on_empty_file_is_ignored() {
        for text in ["bytes=5-1", "items=0-1", "bytes=a-b", "bytes=", "bytes=-"] {
            assert_eq!(parse_ranges(text, 0), Ranges::Ignored, "{text}");
        }
        assert_eq!(parse_ranges("bytes=0-0", 0), Ranges::Unsatisfiable);
        assert_eq!(parse_ranges("bytes=-1", 0), Ranges::Unsatisfiable);
    }

    /// MaxRanges copies of the whole file in one multipart body (the "Apache Killer"
    /// request): ignored once the parts add up past the file, as httpd does.
    #[test]
    fn ranges_adding_up_past_the_file_are_ignored() {
        let killer = vec!["0-"; MAX_RANGES].join(",");
        assert_eq!(
            parse_ranges(&format!("bytes={killer}"), 3800),
            Ranges::Ignored
        );
        assert_eq!(
            parse_ranges("bytes=0-1999,1000-2999", 3800),
            Ranges::Ignored
        );
        assert_eq!(
            parse_ranges("bytes=0-99,50-149", 3800),
            Ranges::Satisfiable(vec![(0, 99), (50, 149)])
        );
    }

    #[test]
    fn etag_comparison() {
        assert!(etag_list_matches("\"a-b\", \"c-d\"", "\"c-d\"", true));
        assert!(etag_list_matches("W/\"c-d\"", "\"c-d\"", false));
        assert!(!etag_list_matches("W/\"c-d\"", "\"c-d\"", true));
        assert!(etag_list_matches("*", "\"x\"", true));
    }

    #[test]
    fn types_and_charset() {
        let types = MimeTypes::parse("text/html html\ntext/plain txt\nimage/png png\n");
        let mut dir = DirConfig::default();
        assert_eq!(
            content_type("a.html", &dir, &types).as_deref(),
            Some("text/html")
        );
        assert_eq!(
            content_type("a.tar.png", &dir, &types).as_deref(),
            Some("image/png")
        );
        assert_eq!(content_type("README", &dir, &types), None);
        dir.types.push(("conf".into(), "text/plain".into()));
        dir.default_charset = Some(Some("UTF-8".into()));
        assert_eq!(
            content_type("x.conf", &dir, &types).as_deref(),
            Some("text/plain; charset=UTF-8")
        );
        assert_eq!(
            content_type("x.png", &dir, &types).as_deref(),
            Some("image/png")
        );
        dir.force_type = Some(Some("application/x-forced".into()));
        assert_eq!(
            content_type("x.png", &dir, &types).as_deref(),
            Some("application/x-forced")
        );
    }
}
