//! CGI (RFC 3875) as mod_cgi does it: the environment a script gets, and the header block
//! it answers with. Running the script is the worker's job (it already is the tenant).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use itkd_sys::credentials::AsTenant;

/// What the environment is built from.
#[derive(Debug, Clone)]
pub struct CgiRequest<'a> {
    pub method: &'a str,
    /// The request target as sent (`REQUEST_URI`).
    pub request_uri: &'a str,
    pub query: Option<&'a str>,
    pub protocol: &'a str,
    pub headers: &'a HeaderMap,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// UseCanonicalName Off: the Host header's name, else ServerName.
    pub server_name: &'a str,
    pub server_port: u16,
    pub server_admin: Option<&'a str>,
    pub server_software: &'a str,
    pub document_root: &'a Path,
    pub script_filename: &'a Path,
    pub script_name: &'a str,
    pub path_info: &'a str,
    pub path_translated: Option<PathBuf>,
    pub https: bool,
    /// For a script reached through an internal redirect (Action): the original status
    /// and URI (`REDIRECT_STATUS`, `REDIRECT_URL`).
    pub redirect: Option<(u16, &'a str)>,
    /// `CONTENT_LENGTH`: unset for a chunked body, as httpd leaves it.
    pub content_length: Option<u64>,
    /// `SetEnv`/`PassEnv` and the like, already resolved.
    pub extra: &'a [(String, String)],
    /// `CGIPassAuth On`: `Authorization` and `Proxy-Authorization` reach the script.
    pub pass_auth: bool,
}

/// httpd's default `PATH` for scripts (`DEFAULT_PATH` in mod_cgi's build).
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The script's environment, every variable httpd sets for a plain CGI request.
pub fn environment(req: &CgiRequest<'_>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
    for (name, value) in req.headers {
        // httpoxy: never HTTP_PROXY.
        if name.as_str() == "proxy" {
            continue;
        }
        // Credentials stay with the server unless `CGIPassAuth On` (ap_add_common_vars).
        if (name == http::header::PROXY_AUTHORIZATION || name == http::header::AUTHORIZATION)
            && !req.pass_auth
        {
            continue;
        }
        if name == http::header::CONTENT_TYPE || name == http::header::CONTENT_LENGTH {
            continue;
        }
        let key = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        set(&key, value);
    }
    // Repeated headers are joined as httpd's apr_table_merge does.
    merge_duplicates(&mut env);
    let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
    set("PATH", DEFAULT_PATH.to_owned());
    set("SERVER_SIGNATURE", String::new());
    set("SERVER_SOFTWARE", req.server_software.to_owned());
    set("SERVER_NAME", req.server_name.to_owned());
    set("SERVER_ADDR", req.local.ip().to_string());
    set("SERVER_PORT", req.server_port.to_string());
    set("REMOTE_ADDR", req.remote.ip().to_string());
    set("DOCUMENT_ROOT", req.document_root.display().to_string());
    set(
        "REQUEST_SCHEME",
        if req.https { "https" } else { "http" }.to_owned(),
    );
    set("CONTEXT_PREFIX", String::new());
    set(
        "CONTEXT_DOCUMENT_ROOT",
        req.document_root.display().to_string(),
    );
    set(
        "SERVER_ADMIN",
        req.server_admin.unwrap_or("[no address given]").to_owned(),
    );
    set("SCRIPT_FILENAME", req.script_filename.display().to_string());
    set("REMOTE_PORT", req.remote.port().to_string());
    set("GATEWAY_INTERFACE", "CGI/1.1".to_owned());
    set("SERVER_PROTOCOL", req.protocol.to_owned());
    set("REQUEST_METHOD", req.method.to_owned());
    set("QUERY_STRING", req.query.unwrap_or("").to_owned());
    set("REQUEST_URI", req.request_uri.to_owned());
    set("SCRIPT_NAME", req.script_name.to_owned());
    if !req.path_info.is_empty() {
        set("PATH_INFO", req.path_info.to_owned());
    }
    if let Some(t) = &req.path_translated {
        set("PATH_TRANSLATED", t.display().to_string());
    }
    if req.https {
        set("HTTPS", "on".to_owned());
    }
    if let Some(ct) = req.headers.get(http::header::CONTENT_TYPE) {
        set(
            "CONTENT_TYPE",
            String::from_utf8_lossy(ct.as_bytes()).into_owned(),
        );
    }
    if let Some(len) = req.content_length {
        set("CONTENT_LENGTH", len.to_string());
    }
    if let Some((status, url)) = req.redirect {
        set("REDIRECT_STATUS", status.to_string());
        set("REDIRECT_URL", url.to_owned());
    }
    for (k, v) in req.extra {
        set(k, v.clone());
    }
    env
}

/// Joins repeated `HTTP_*` variables with ", " (first position kept).
fn merge_duplicates(env: &mut Vec<(String, String)>) {
    let mut out: Vec<(String, String)> = Vec::with_capacity(env.len());
    for (k, v) in env.drain(..) {
        match out.iter_mut().find(|(ek, _)| *ek == k) {
            Some((_, existing)) => {
                existing.push_str(", ");
                existing.push_str(&v);
            }
            None => out.push((k, v)),
        }
    }
    *env = out;
}

/// A script's header block.
#[derive(Debug, Clone, PartialEq)]
pub struct CgiHead {
    pub status: u16,
    pub headers: HeaderMap,
    /// `Location:` to a local path with no Status: an internal redirect (RFC 3875 §6.2.2).
    pub local_redirect: Option<String>,
}

/// The longest the header block may be before it is a malformed one (httpd reads at most
/// HUGE_STRING_LEN per line; a block this long is no header).
pub const MAX_HEAD: usize = 64 * 1024;

/// The fields httpd's `ap_scan_script_header_err_core` sets rather than adds (util_script.c:
/// `ap_set_content_type`, `apr_table_set`, `ap_set_last_modified`): a repeated one keeps its
/// last value, so a script cannot send two `Location`s or two `Content-Length`s.
const SET_NOT_ADDED: [HeaderName; 6] = [
    http::header::CONTENT_TYPE,
    http::header::LOCATION,
    http::header::CONTENT_LENGTH,
    http::header::CONTENT_RANGE,
    http::header::TRANSFER_ENCODING,
    http::header::LAST_MODIFIED,
];

/// Parses the script's output so far: `Ok(None)` when the blank line has not come yet,
/// `Ok(Some((head, body_start)))` once it has, `Err(why)` for what httpd calls a
/// "malformed header from script".
pub fn parse_head(bytes: &[u8]) -> Result<Option<(CgiHead, usize)>, String> {
    let Some((end, body_start)) = find_blank_line(bytes) else {
        if bytes.len() > MAX_HEAD {
            return Err("Headers too long".to_owned());
        }
        return Ok(None);
    };
    let block = &bytes[..end];
    let mut status = None;
    let mut location = None;
    let mut headers = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            let shown = String::from_utf8_lossy(&line[..line.len().min(64)]).into_owned();
            return Err(format!("Bad header: {shown}"));
        };
        let name = std::str::from_utf8(&line[..colon])
            .map_err(|_| "Bad header name".to_owned())?
            .trim();
        let value = trim_ascii(&line[colon + 1..]);
        if name.eq_ignore_ascii_case("Status") {
            let text = String::from_utf8_lossy(value);
            let code = text
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok());
            match code {
                Some(c) if (100..=999).contains(&c) => status = Some(c),
                _ => return Err(format!("Invalid status line from script '{text}'")),
            }
            continue;
        }
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("Bad header: {name}"))?;
        let value =
            HeaderValue::from_bytes(value).map_err(|_| format!("Bad header value for {name}"))?;
        if header == http::header::LOCATION {
            location = value.to_str().ok().map(str::to_owned);
        }
        if SET_NOT_ADDED.contains(&header) {
            headers.insert(header, value);
        } else {
            headers.append(header, value);
        }
    }
    let local_redirect = match (&location, status) {
        (Some(l), None) if l.starts_with('/') => Some(l.clone()),
        _ => None,
    };
    let status = match (status, &location) {
        (Some(s), _) => s,
        // RFC 3875 §6.2.3: an absolute Location alone is a client redirect.
        (None, Some(_)) => 302,
        (None, None) => 200,
    };
    Ok(Some((
        CgiHead {
            status,
            headers,
            local_redirect,
        },
        body_start,
    )))
}

/// The end of the header block (index of the blank line) and where the body starts.
fn find_blank_line(bytes: &[u8]) -> Option<(usize, usize)> {
    // A script that starts with the blank line has no headers at all, whatever follows
    // (httpd's `ap_scan_script_header_err` stops at the first empty line). Checked first:
    // a later blank line must not make the same first line a header.
    if bytes.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    if bytes.starts_with(b"\n") {
        return Some((0, 1));
    }
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            if bytes.get(i + 1) == Some(&b'\n') {
                return Some((i + 1, i + 2));
            }
            if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                return Some((i + 1, i + 3));
            }
        }
        i += 1;
    }
    None
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// Splits a mapped path into the script file and the PATH_INFO after it: the longest
/// prefix (at or below `root`) that is a regular file, looked up as the tenant, with the
/// file's metadata (the stat it made), so that a caller serving the file does not stat
/// it again.
pub fn split_path_info_with_meta(
    _tenant: AsTenant,
    path: &Path,
    root: &Path,
) -> Option<(PathBuf, String, std::fs::Metadata)> {
    split_at_file(path, root)
}

/// [`split_path_info_with_meta`] without the proof, for this module's tests.
fn split_at_file(path: &Path, root: &Path) -> Option<(PathBuf, String, std::fs::Metadata)> {
    use std::os::unix::ffi::OsStrExt;
    // `/doku.php/`: PATH_INFO is `/` (httpd); Path forgets a trailing slash, so keep it.
    let trailing = path.as_os_str().as_bytes().ends_with(b"/");
    let mut candidate = path.to_path_buf();
    let mut rest: Vec<String> = Vec::new();
    loop {
        let stat = if trailing && rest.is_empty() {
            // `file.php/`: stat without the slash (with it, a file is ENOTDIR).
            std::fs::metadata(&candidate).or_else(|_| {
                let bare = candidate.as_os_str().as_bytes();
                let bare = std::ffi::OsStr::from_bytes(&bare[..bare.len().saturating_sub(1)]);
                std::fs::metadata(bare)
            })
        } else {
            std::fs::metadata(&candidate)
        };
        if let Ok(meta) = stat {
            if meta.is_file() {
                let mut info: String = rest.iter().rev().map(|s| format!("/{s}")).collect();
                if trailing {
                    info.push('/');
                }
                let bytes = candidate.as_os_str().as_bytes();
                let file = PathBuf::from(std::ffi::OsStr::from_bytes(
                    bytes.strip_suffix(b"/").unwrap_or(bytes),
                ));
                return Some((file, info, meta));
            }
            return None;
        }
        if candidate == root {
            return None;
        }
        let name = candidate.file_name()?.to_string_lossy().into_owned();
        rest.push(name);
        if !candidate.pop() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_info_of_a_trailing_slash() {
        let root = tempfile::tempdir().unwrap();
        let script = root.path().join("doku.php");
        std::fs::write(&script, "x").unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        let split = |rest: &str| {
            let path = PathBuf::from(format!("{}{rest}", root.path().display()));
            split_at_file(&path, root.path()).map(|(file, info, _)| (file, info))
        };
        assert_eq!(split("/doku.php/"), Some((script.clone(), "/".to_owned())));
        assert_eq!(
            split("/doku.php/a/b/"),
            Some((script.clone(), "/a/b/".to_owned()))
        );
        assert_eq!(
            split("/doku.php/a"),
            Some((script.clone(), "/a".to_owned()))
        );
        assert_eq!(split("/doku.php"), Some((script, String::new())));
        assert_eq!(split("/sub/"), None);
        assert_eq!(split("/missing/"), None);
    }

    #[test]
    fn header_blocks() {
        let (head, start) = parse_head(b"Content-Type: text/plain\r\nX-A: 1\r\n\r\nbody")
            .unwrap()
            .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.headers["content-type"], "text/plain");
        assert_eq!(start, 36);
        let (head, _) = parse_head(b"Status: 404 Nope\nContent-Type: text/html\n\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.status, 404);
        let (head, _) = parse_head(b"Location: http://x.test/\n\n")
            .unwrap()
            .unwrap();
        assert_eq!((head.status, head.local_redirect), (302, None));
        let (head, _) = parse_head(b"Location: /other?x=1\n\n").unwrap().unwrap();
        assert_eq!(head.local_redirect.as_deref(), Some("/other?x=1"));
        assert_eq!(parse_head(b"Content-Type: text/plain\r\n").unwrap(), None);
        assert!(parse_head(b"this is not a header\n\n").is_err());
        assert!(parse_head(b"Status: abc\n\n").is_err());
        assert!(parse_head(&vec![b'x'; MAX_HEAD + 1]).is_err());
    }

    /// The fuzz target `cgi_head` found `\nX-A: 1\n\nbody` parsed as a head with `X-A`
    /// while its first read, `\n`, alone was a head with none: the answer hung on how
    /// the pipe split the script's output. The leading blank line ends the head.
    #[test]
    fn leading_blank_line_ends_the_head_whatever_follows() {
        for (output, start) in [
            (&b"\nX-A: 1\n\nbody"[..], 1),
            (b"\n", 1),
            (b"\r\nStatus: 404\r\n\r\n", 2),
            (b"\r\n", 2),
        ] {
            let (head, body_start) = parse_head(output).unwrap().unwrap();
            assert_eq!(
                (head.status, head.headers.len(), body_start),
                (200, 0, start)
            );
        }
    }

    /// The fuzz target `cgi_head` found two `Location:` lines kept as two fields while the
    /// local redirect followed the last: httpd sets these fields, the last one wins.
    #[test]
    fn repeated_single_fields_keep_the_last_as_httpd() {
        let (head, _) = parse_head(
            b"Location: /first\nContent-Length: 1\nX-A: 1\nLocation: /second\n\
              Content-Length: 2\nX-A: 2\nSet-Cookie: a\nSet-Cookie: b\n\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.local_redirect.as_deref(), Some("/second"));
        let all = |name: &str| -> Vec<&str> {
            let values = head.headers.get_all(name).iter();
            values.map(|v| v.to_str().unwrap()).collect()
        };
        assert_eq!(all("location"), ["/second"]);
        assert_eq!(all("content-length"), ["2"]);
        assert_eq!(all("x-a"), ["1", "2"]);
        assert_eq!(all("set-cookie"), ["a", "b"]);
    }

    #[test]
    fn environment_has_the_rfc_3875_set_and_no_httpoxy() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "a.test".parse().unwrap());
        headers.insert("proxy", "http://evil/".parse().unwrap());
        headers.append("x-multi", "1".parse().unwrap());
        headers.append("x-multi", "2".parse().unwrap());
        headers.insert("content-type", "text/plain".parse().unwrap());
        let req = CgiRequest {
            method: "POST",
            request_uri: "/cgi-bin/t.sh/extra?q=1",
            query: Some("q=1"),
            protocol: "HTTP/1.1",
            headers: &headers,
            remote: "127.0.0.1:5555".parse().unwrap(),
            local: "127.0.0.1:80".parse().unwrap(),
            server_name: "a.test",
            server_port: 80,
            server_admin: None,
            server_software: "itkd",
            document_root: Path::new("/srv/a"),
            script_filename: Path::new("/usr/lib/cgi-bin/t.sh"),
            script_name: "/cgi-bin/t.sh",
            path_info: "/extra",
            path_translated: Some(PathBuf::from("/srv/a/extra")),
            https: false,
            redirect: None,
            content_length: Some(3),
            extra: &[],
            pass_auth: false,
        };
        let env = environment(&req);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        for (k, v) in [
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("REQUEST_METHOD", "POST"),
            ("QUERY_STRING", "q=1"),
            ("SCRIPT_NAME", "/cgi-bin/t.sh"),
            ("PATH_INFO", "/extra"),
            ("PATH_TRANSLATED", "/srv/a/extra"),
            ("CONTENT_LENGTH", "3"),
            ("CONTENT_TYPE", "text/plain"),
            ("HTTP_HOST", "a.test"),
            ("HTTP_X_MULTI", "1, 2"),
            ("REMOTE_PORT", "5555"),
        ] {
            assert_eq!(get(k), Some(v), "{k}");
        }
        assert_eq!(get("HTTP_PROXY"), None, "httpoxy");
        assert_eq!(get("HTTPS"), None);
    }

    /// `CGIPassAuth`: without it no credentials reach the script; with it both
    /// `Authorization` and `Proxy-Authorization` do (as httpd's ap_add_common_vars).
    #[test]
    fn credentials_reach_the_script_only_with_cgi_pass_auth() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Basic dTpw".parse().unwrap());
        headers.insert("proxy-authorization", "Basic eHg=".parse().unwrap());
        headers.insert("proxy", "http://evil/".parse().unwrap());
        for (pass_auth, authorization, proxy_authorization) in [
            (false, None, None),
            (true, Some("Basic dTpw"), Some("Basic eHg=")),
        ] {
            let env = environment(&CgiRequest {
                method: "GET",
                request_uri: "/t.sh",
                query: None,
                protocol: "HTTP/1.1",
                headers: &headers,
                remote: "127.0.0.1:5555".parse().unwrap(),
                local: "127.0.0.1:80".parse().unwrap(),
                server_name: "a.test",
                server_port: 80,
                server_admin: None,
                server_software: "itkd",
                document_root: Path::new("/srv/a"),
                script_filename: Path::new("/srv/a/t.sh"),
                script_name: "/t.sh",
                path_info: "",
                path_translated: None,
                https: false,
                redirect: None,
                content_length: None,
                extra: &[],
                pass_auth,
            });
            let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            assert_eq!(get("HTTP_AUTHORIZATION"), authorization, "{pass_auth}");
            assert_eq!(
                get("HTTP_PROXY_AUTHORIZATION"),
                proxy_authorization,
                "{pass_auth}"
            );
            assert_eq!(get("HTTP_PROXY"), None, "httpoxy, {pass_auth}");
        }
    }
}
