//! The per-directory configuration of one request, merged in httpd's order: the server's
//! own settings, `<Directory>` sections from the shortest path to the longest (config
//! order among equals), then `<DirectoryMatch>`/`<Directory ~>`, then `<Files>` sections
//! (those at server level and those inside the matching directories), then `<Location>`
//! sections in config order. `.htaccess` files join the directory part level by level
//! ([`dir_config_with`]), read by the worker after the credential switch.
//!
//! Pure: it compares paths as text and touches no file itself; the `.htaccess` reader
//! the caller passes does.

use std::path::Path;

use apacheconf::fnmatch;
use itkd_config::dirconf::{DirConfig, Overrides, Section, SectionKind, SectionPattern};
use itkd_config::model::Server;
use itkd_config::Htaccess;

/// The merged configuration for `file` (a mapped path, `None` when the request maps to no
/// file) and the decoded URI path, without `.htaccess` files (before the switch).
pub fn dir_config(server: &Server, file: Option<&Path>, uri_path: &str) -> DirConfig {
    let mut none = |_: &Path, _: &Overrides| Ok(None);
    // Without a reader nothing can fail.
    dir_config_with(server, file, uri_path, &mut none).unwrap_or_else(|_| server.dir.clone())
}

/// Why a request stops while its `.htaccess` files are read: the status and httpd's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtaccessStop {
    pub status: u16,
    pub log: String,
}

/// Reads the `.htaccess` of one directory under the override set in force there:
/// `Ok(None)` when there is none.
pub type HtaccessReader<'r> =
    dyn FnMut(&Path, &Overrides) -> Result<Option<Htaccess>, HtaccessStop> + 'r;

/// [`dir_config`] with `.htaccess` files, merged as httpd's directory walk does: at each
/// directory from `/` down, that level's `<Directory>` sections, then its `.htaccess` if
/// the AllowOverride in force there lets one be read.
pub fn dir_config_with(
    server: &Server,
    file: Option<&Path>,
    uri_path: &str,
    htaccess: &mut HtaccessReader<'_>,
) -> Result<DirConfig, HtaccessStop> {
    let mut merged = server.dir.clone();
    let mut files_sections: Vec<Section> = Vec::new();
    if let Some(file) = file {
        let full = file.to_string_lossy();
        // The directories walked: every ancestor of the file, and the path itself when
        // the request names a directory.
        let mut levels: Vec<&Path> = file.ancestors().skip(1).collect();
        levels.reverse();
        if uri_path.ends_with('/') {
            levels.push(file);
        }
        for level in levels {
            let text = level.to_string_lossy();
            let depth = components(&text);
            for s in server
                .sections
                .iter()
                .filter(|s| s.kind == SectionKind::Directory)
            {
                if let SectionPattern::Path(p) = &s.pattern {
                    if components(p) == depth && directory_matches(p, &text) {
                        merged = merged.merge(&s.config);
                        files_sections.extend(s.files.iter().cloned());
                    }
                }
            }
            if let Some(overrides) = merged
                .allow_override
                .clone()
                .filter(Overrides::reads_htaccess)
            {
                if let Some(found) = htaccess(level, &overrides)? {
                    merged = merged.merge(&found.dir);
                    files_sections.extend(found.files);
                }
            }
        }
        for s in server
            .sections
            .iter()
            .filter(|s| s.kind == SectionKind::Directory)
        {
            if let SectionPattern::Regex(re) = &s.pattern {
                let parent = file
                    .parent()
                    .map_or_else(|| "/".into(), Path::to_string_lossy);
                if re.is_match(&parent) || re.is_match(&full) {
                    merged = merged.merge(&s.config);
                    files_sections.extend(s.files.iter().cloned());
                }
            }
        }
        let base = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let top_files = server
            .sections
            .iter()
            .filter(|s| s.kind == SectionKind::Files);
        for s in top_files.chain(files_sections.iter()) {
            let hit = match &s.pattern {
                // httpd: apr_fnmatch (case-sensitive) for a wildcard, else the name.
                SectionPattern::Path(p) if fnmatch::has_wildcard(p) => {
                    fnmatch::matches_pathname(p, &base)
                }
                SectionPattern::Path(p) => *p == base,
                SectionPattern::Regex(re) => re.is_match(&base),
            };
            if hit {
                merged = merged.merge(&s.config);
            }
        }
    }
    for s in server
        .sections
        .iter()
        .filter(|s| s.kind == SectionKind::Location)
    {
        let hit = match &s.pattern {
            SectionPattern::Path(p) => location_matches(p, uri_path),
            SectionPattern::Regex(re) => re.is_match(uri_path),
        };
        if hit {
            merged = merged.merge(&s.config);
        }
    }
    Ok(merged)
}

fn components(path: &str) -> usize {
    path.split('/').filter(|c| !c.is_empty()).count()
}

/// `<Directory /a/b>` applies to `/a/b` and everything below it; wildcards match one
/// component each, as apr_fnmatch with APR_FNM_PATHNAME (`/home/*/public_html`; `*`
/// matches a leading dot too, and case counts).
fn directory_matches(pattern: &str, path: &str) -> bool {
    let mut have = path.split('/').filter(|c| !c.is_empty());
    for want in pattern.split('/').filter(|c| !c.is_empty()) {
        match have.next() {
            Some(c) if fnmatch::has_wildcard(want) && fnmatch::matches_pathname(want, c) => {}
            Some(c) if c == want => {}
            _ => return false,
        }
    }
    true
}

/// `<Location /a>` applies to `/a`, `/a/`, `/a/x`, not `/ab` (httpd 2.4 segment rule);
/// `<Location /a/>` to `/a/` and below. With a wildcard the whole URI must match, as
/// apr_fnmatch with APR_FNM_PATHNAME (`/d/*.txt` is `/d/x.txt`, not `/d/e/x.txt`).
fn location_matches(pattern: &str, uri: &str) -> bool {
    if fnmatch::has_wildcard(pattern) {
        return fnmatch::matches_pathname(pattern, uri);
    }
    match uri.strip_prefix(pattern) {
        Some(rest) => pattern.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_prefixes_are_whole_components() {
        assert!(directory_matches("/var/www", "/var/www/a/index.html"));
        assert!(directory_matches("/", "/etc/passwd"));
        assert!(!directory_matches("/var/www", "/var/wwwx/a"));
        assert!(directory_matches(
            "/home/*/public_html",
            "/home/alice/public_html/x"
        ));
        assert!(!directory_matches(
            "/home/*/public_html",
            "/home/alice/private/x"
        ));
    }

    #[test]
    fn locations_match_on_segment_boundaries() {
        assert!(location_matches("/private", "/private"));
        assert!(location_matches("/private", "/private/x"));
        assert!(!location_matches("/private", "/privatex"));
        assert!(location_matches("/private/", "/private/x"));
        assert!(!location_matches("/private/", "/private"));
        assert!(location_matches("/", "/anything"));
    }
}
