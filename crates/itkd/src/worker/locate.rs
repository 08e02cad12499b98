//! The first stage after the switch: the URI mapped to a file and PATH_INFO (stat'ed
//! as the tenant), the configuration sections in force for it, and for an internal
//! redirect the check that it needs no other identity.

use super::*;

/// What a URI is, on disk and in the configuration (before `.htaccess`).
pub(super) struct Found {
    pub(super) mapped: mapping::Mapped,
    /// The file and the PATH_INFO after it, when the path reaches a regular file.
    pub(super) split: Option<(std::path::PathBuf, String)>,
    /// The stat of the whole path when it is that file (reused by the static handler).
    pub(super) known: Option<std::fs::Metadata>,
    /// The sections in force, and whether any level would read a `.htaccess`.
    pub(super) dir: Rc<DirConfig>,
    pub(super) wants_htaccess: bool,
}

impl Found {
    /// The file the request names: the script when there is PATH_INFO, else the path.
    /// `<Files>` sections and mod_mime look at its name (httpd's file walk runs on
    /// r->filename after the directory walk split it).
    pub(super) fn file(&self) -> &std::path::Path {
        self.split
            .as_ref()
            .map_or(self.mapped.path.as_path(), |(file, _)| file)
    }
}

pub(super) fn locate(c: &Ctx<'_>, target: &Target) -> Result<Found, Stop> {
    let uri_path = target.uri_path.as_str();
    let mapped = mapping::map(c.server, uri_path);
    let (split, known) =
        match itkd_http::cgi::split_path_info_with_meta(c.tenant, &mapped.path, &mapped.root) {
            Some((file, info, meta)) => {
                let known = (info.is_empty() && file == mapped.path).then_some(meta);
                (Some((file, info)), known)
            }
            None => (None, None),
        };
    let file = split
        .as_ref()
        .map_or(mapped.path.as_path(), |(file, _)| file);
    let (dir, wants_htaccess) = section_walk(c.state, c.server, c.index, file, uri_path);
    let found = Found {
        mapped,
        split,
        known,
        dir,
        wants_htaccess,
    };
    // An Action's script runs as the request it serves (Debian's /usr/lib/cgi-bin has no
    // identity of its own); every other redirect is checked.
    if !matches!(target.reached, Reached::Request | Reached::Action { .. }) {
        // mpm-itk: the identity was chosen for the request's URI; a redirect to a place
        // whose sections name another one cannot be served by this process.
        let server_name = c.server.server_name.clone().unwrap_or_default();
        let ctx = ExprContext {
            http_host: c.host,
            server_name: &server_name,
            request_uri: uri_path,
            request_env: &[],
        };
        match identity::identity(&c.shared.config, &found.dir, &ctx, &SysLookup) {
            Ok(id) if id == *c.identity => {}
            other => {
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => format!("{uri_path} is served as another uid/gid than the request it was redirected from"),
                };
                c.log("mpm_itk", Level::Error, &why);
                return Err(c.fatal(500).into());
            }
        }
    }
    Ok(found)
}
