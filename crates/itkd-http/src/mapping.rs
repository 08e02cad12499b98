//! URI → filesystem path, as httpd does it: decode what is safe to decode, remove dot
//! segments (a path that climbs above `/` is a 400, AH10244), decode the rest (`%2f` is a
//! 404 under `AllowEncodedSlashes Off`, AH00026 style), then Alias/ScriptAlias or
//! DocumentRoot. The result never names anything outside the mapped root: no `..`
//! survives normalization, and symlinks are judged later, after the credential switch.

use std::path::{Component, Path, PathBuf};

use itkd_config::model::{EncodedSlashes, Server, UrlMatcher};

/// Why a URI has no path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// 400: not an origin-form path, a bad `%` escape, or `..` above the root.
    BadRequest,
    /// 404: an encoded `/` or NUL, as httpd answers.
    NotFound,
}

/// A request's path in the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The decoded, normalized URI path (what `<Location>` sections match).
    pub uri_path: String,
    pub path: PathBuf,
    /// The directory the URI was mapped under (DocumentRoot or an alias target): symlink
    /// checks start below it.
    pub root: PathBuf,
    /// Mapped by `ScriptAlias`/`ScriptAliasMatch`.
    pub script: bool,
}

/// Decodes and normalizes the path part of a request target.
pub fn normalize(raw: &str, slashes: EncodedSlashes) -> Result<String, MapError> {
    if !raw.starts_with('/') {
        return Err(MapError::BadRequest);
    }
    // 1. Decode only unreserved characters (httpd's AP_NORMALIZE_DECODE_UNRESERVED), so
    //    `%2e%2e` is `..` when dot segments are removed.
    let partly = decode(raw, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))?;
    // 2. Remove dot segments and merge slashes; climbing above the root is an error.
    let mut segments: Vec<&str> = Vec::new();
    for segment in partly.split('/').skip(1) {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(MapError::BadRequest);
                }
            }
            s => segments.push(s),
        }
    }
    let trailing = partly.ends_with('/') || partly.ends_with("/.") || partly.ends_with("/..");
    let mut path = String::with_capacity(partly.len());
    for s in &segments {
        path.push('/');
        path.push_str(s);
    }
    if trailing || path.is_empty() {
        path.push('/');
    }
    // 3. Decode the rest: `%2f` and `%00` refused as httpd refuses them.
    if slashes != EncodedSlashes::NoDecode {
        let lower = path.to_ascii_lowercase();
        if lower.contains("%00") || (slashes == EncodedSlashes::Off && lower.contains("%2f")) {
            return Err(MapError::NotFound);
        }
    }
    let decoded = match slashes {
        EncodedSlashes::NoDecode => decode(&path, |b| b != b'/')?,
        _ => decode(&path, |_| true)?,
    };
    // With encoded slashes decoded, a `..` could reappear: refuse it rather than re-walk.
    if decoded.split('/').any(|s| s == ".." || s == ".") || decoded.contains('\0') {
        return Err(MapError::NotFound);
    }
    Ok(decoded)
}

/// Percent-decodes the escapes whose byte `keep` accepts; others stay escaped.
fn decode(text: &str, keep: impl Fn(u8) -> bool) -> Result<String, MapError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(MapError::BadRequest)?;
            let value = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(MapError::BadRequest)?;
            if keep(value) {
                out.push(value);
            } else {
                out.extend_from_slice(&bytes[i..i + 3]);
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    // Paths are bytes to the kernel, text to the configuration: keep what is not UTF-8
    // from matching sections by refusing it.
    String::from_utf8(out).map_err(|_| MapError::NotFound)
}

/// mod_alias's `alias_matches`: the alias must match whole segments; runs of `/` in
/// either count as one. Returns how many bytes of `uri` matched.
pub fn alias_matches(uri: &str, alias: &str) -> Option<usize> {
    let (u, a) = (uri.as_bytes(), alias.as_bytes());
    let (mut ui, mut ai) = (0, 0);
    while ai < a.len() {
        if a[ai] == b'/' {
            if ui >= u.len() || u[ui] != b'/' {
                return None;
            }
            while ai < a.len() && a[ai] == b'/' {
                ai += 1;
            }
            while ui < u.len() && u[ui] == b'/' {
                ui += 1;
            }
        } else {
            if ui >= u.len() || u[ui] != a[ai] {
                return None;
            }
            ui += 1;
            ai += 1;
        }
    }
    // The alias ended: the URI must end too, or continue with a new segment.
    if ai > 0 && a[ai - 1] != b'/' && ui < u.len() && u[ui] != b'/' {
        return None;
    }
    Some(ui)
}

/// `$1`…`$9` and `$0` from `captures` into `target`.
pub fn substitute(target: &str, captures: &regex::Captures<'_>) -> String {
    let mut out = String::with_capacity(target.len());
    let mut chars = target.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            if let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                chars.next();
                out.push_str(captures.get(d as usize).map_or("", |m| m.as_str()));
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// An `AliasMatch` result with `.` and `..` resolved lexically, as httpd's directory walk
/// resolves `r->filename` (`apr_filepath_merge`) before it looks at the file. The URI has
/// no `..` segment, but a capture need not start one: `AliasMatch ^/a(.*)$ /srv/a/$1` maps
/// `/a..` to `/srv/a/..`, which is `/srv` to the kernel while `<Directory>` sections and
/// the symlink checks would have judged `/srv/a`. `..` never climbs above the start.
fn resolve_dots(path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for part in Path::new(path).components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The filesystem path for a normalized URI path on `server`.
pub fn map(server: &Server, uri_path: &str) -> Mapped {
    for rule in &server.aliases_map {
        let hit = match &rule.matcher {
            UrlMatcher::Prefix(prefix) => alias_matches(uri_path, prefix).map(|n| {
                let rest = uri_path[n..].trim_start_matches('/');
                let target = rule.target.trim_end_matches('/');
                let root = PathBuf::from(if target.is_empty() { "/" } else { target });
                let path = if rest.is_empty() {
                    PathBuf::from(&rule.target)
                } else {
                    root.join(rest)
                };
                (path, root)
            }),
            UrlMatcher::Regex(re) => re.captures(uri_path).map(|c| {
                let path = resolve_dots(&substitute(&rule.target, &c));
                let root = path
                    .parent()
                    .map_or_else(|| PathBuf::from("/"), PathBuf::from);
                (path, root)
            }),
        };
        if let Some((path, root)) = hit {
            return Mapped {
                uri_path: uri_path.to_owned(),
                path,
                root,
                script: rule.script,
            };
        }
    }
    let root = server.document_root.clone();
    let rest = uri_path.trim_start_matches('/');
    let path = if rest.is_empty() {
        root.clone()
    } else {
        root.join(rest)
    };
    Mapped {
        uri_path: uri_path.to_owned(),
        path,
        root,
        script: false,
    }
}

/// mod_alias's `Redirect*` for a request: the first matching rule's status and target
/// (`None` target for 410 Gone). A relative target is made absolute on `scheme://host`;
/// `Redirect` (not `RedirectMatch`) carries the query string over, as mod_alias does.
pub fn redirect_for(
    redirects: &[itkd_config::dirconf::Redirect],
    uri_path: &str,
    query: Option<&str>,
    scheme: &str,
    host: &str,
) -> Option<(u16, Option<String>)> {
    for r in redirects {
        let target = match &r.matcher {
            UrlMatcher::Prefix(prefix) if prefix.is_empty() => {
                Some(r.target.clone().unwrap_or_default())
            }
            UrlMatcher::Prefix(prefix) => alias_matches(uri_path, prefix).map(|n| {
                let mut t = r.target.clone().unwrap_or_default();
                t.push_str(&uri_path[n..]);
                if let Some(q) = query {
                    t.push('?');
                    t.push_str(q);
                }
                t
            }),
            UrlMatcher::Regex(re) => re
                .captures(uri_path)
                .map(|c| substitute(r.target.as_deref().unwrap_or(""), &c)),
        };
        let Some(target) = target else { continue };
        if r.target.is_none() {
            return Some((r.status, None));
        }
        let absolute = if target.starts_with('/') {
            format!("{scheme}://{host}{target}")
        } else {
            target
        };
        return Some((r.status, Some(absolute)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_like_httpd() {
        use EncodedSlashes::Off;
        let table: &[(&str, Result<&str, MapError>)] = &[
            ("/", Ok("/")),
            ("/a/b.txt", Ok("/a/b.txt")),
            ("/a//b/./c/../d", Ok("/a/b/d")),
            ("/a/b/", Ok("/a/b/")),
            ("/a/b/..", Ok("/a/")),
            ("/%61%62c", Ok("/abc")),
            ("/a%20b", Ok("/a b")),
            // itk-reference.md: 400 AH10244 for these
            ("/../../../../etc/passwd", Err(MapError::BadRequest)),
            ("/sub/../../..", Err(MapError::BadRequest)),
            ("/%2e%2e/..", Err(MapError::BadRequest)),
            ("/.%2e/..", Err(MapError::BadRequest)),
            // ... and 404 for these (AllowEncodedSlashes Off, double encoding, backslashes)
            ("/..%2f..%2f..%2fetc%2fpasswd", Err(MapError::NotFound)),
            ("/%2e%2e%2f..%2fetc", Err(MapError::NotFound)),
            ("/%252e%252e/etc", Ok("/%2e%2e/etc")),
            ("/..\\..\\etc\\passwd", Ok("/..\\..\\etc\\passwd")),
            ("/a%00b", Err(MapError::NotFound)),
            ("/a%zz", Err(MapError::BadRequest)),
            ("/a%2", Err(MapError::BadRequest)),
            ("a/b", Err(MapError::BadRequest)),
            ("/%ff", Err(MapError::NotFound)),
        ];
        for (raw, want) in table {
            assert_eq!(
                normalize(raw, Off).as_deref().map_err(|e| *e),
                *want,
                "{raw}"
            );
        }
        assert_eq!(
            normalize("/a%2fb", EncodedSlashes::On).as_deref(),
            Ok("/a/b")
        );
        assert_eq!(
            normalize("/..%2f..%2fetc", EncodedSlashes::On),
            Err(MapError::NotFound)
        );
        assert_eq!(
            normalize("/a%2fb%41", EncodedSlashes::NoDecode).as_deref(),
            Ok("/a%2fbA")
        );
    }

    /// The fuzz target `mapping` found `/glued..` mapped to `/srv/glued/..` by
    /// `AliasMatch ^/glued(.*)$ /srv/glued/$1`: a path that left the alias's directory
    /// with a `..` the later stages took for a name. `map`'s AliasMatch branch, step by step.
    #[test]
    fn alias_match_capture_cannot_spell_parent_dir() {
        let re = regex::Regex::new("^/glued(.*)$").unwrap();
        let table = [
            ("/glued..", "/srv"),
            ("/glued../x", "/srv/x"),
            ("/glued./x", "/srv/glued/x"),
            ("/glued/x", "/srv/glued/x"),
            ("/glued../../../../..", "/"),
        ];
        for (uri, want) in table {
            let caps = re.captures(uri).unwrap();
            let path = resolve_dots(&substitute("/srv/glued/$1", &caps));
            assert_eq!(path.to_str(), Some(want), "{uri}");
            assert!(!path.components().any(|c| c == Component::ParentDir));
        }
    }

    #[test]
    fn alias_segments() {
        assert_eq!(alias_matches("/icons/a.png", "/icons/"), Some(7));
        assert_eq!(alias_matches("/icons", "/icons/"), None);
        assert_eq!(alias_matches("/icons", "/icons"), Some(6));
        assert_eq!(alias_matches("/iconsx", "/icons"), None);
        assert_eq!(alias_matches("/icons/x", "/icons"), Some(6));
        assert_eq!(alias_matches("//icons//x", "/icons/"), Some(9));
    }
}
