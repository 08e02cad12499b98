//! `.htaccess` files, read as the tenant and remembered for the connection's later requests.

use super::*;

/// The stage: the sections merged with every `.htaccess` along the path (AllowOverride
/// permitting); an unreadable one is a 403 (crit), a bad one a 500 (alert), as httpd.
pub(super) fn walk_htaccess(
    c: &Ctx<'_>,
    target: &Target,
    found: &Found,
) -> Result<Rc<DirConfig>, Stop> {
    if !found.wants_htaccess {
        return Ok(Rc::clone(&found.dir));
    }
    let mut reader = |level: &std::path::Path, overrides: &itkd_config::Overrides| {
        cached_htaccess(c.state, c.index, level, overrides, || {
            read_htaccess(c.tenant, c.shared, c.server, level, overrides)
        })
    };
    match walk::dir_config_with(c.server, Some(found.file()), &target.uri_path, &mut reader) {
        Ok(dir) => Ok(Rc::new(dir)),
        Err(stop) => {
            let level = if stop.status == 500 {
                Level::Alert
            } else {
                Level::Crit
            };
            c.log("core", level, &stop.log);
            Err(page(
                &c.shared.config,
                Some(c.server),
                stop.status,
                c.req,
                stop.status == 500,
            )
            .into())
        }
    }
}

/// `read` (one directory's `.htaccess`), remembered for this process's later requests:
/// a worker serves one connection as one tenant, so its keep-alive requests reuse what
/// the first ones read (httpd re-reads per request; an edit shows on the next
/// connection). Nothing crosses processes, so no tenant ever sees another's results.
pub(super) fn cached_htaccess(
    state: &RefCell<State>,
    index: usize,
    level: &std::path::Path,
    overrides: &itkd_config::Overrides,
    read: impl FnOnce() -> Result<Option<itkd_config::Htaccess>, walk::HtaccessStop>,
) -> Result<Option<itkd_config::Htaccess>, walk::HtaccessStop> {
    let hit = state
        .borrow()
        .htaccess_cache
        .iter()
        .find(|(i, dir, o, _)| *i == index && dir == level && o == overrides)
        .map(|(_, _, _, result)| result.clone());
    if let Some(result) = hit {
        return result;
    }
    let result = read();
    let mut st = state.borrow_mut();
    if st.htaccess_cache.len() >= HTACCESS_CACHE_ENTRIES {
        st.htaccess_cache.clear();
    }
    st.htaccess_cache.push((
        index,
        level.to_path_buf(),
        overrides.clone(),
        result.clone(),
    ));
    result
}

/// One directory's `.htaccess` (every AccessFileName), read as the tenant: missing is
/// nothing, unreadable is a 403 and a directive it may not hold a 500, with httpd's lines.
pub(super) fn read_htaccess(
    _tenant: AsTenant,
    shared: &Shared,
    server: &Server,
    level: &std::path::Path,
    overrides: &itkd_config::Overrides,
) -> Result<Option<itkd_config::Htaccess>, walk::HtaccessStop> {
    let mut found: Option<itkd_config::Htaccess> = None;
    for name in &server.access_file_names {
        let path = level.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(walk::HtaccessStop {
                    status: 403,
                    log: format!(
                        "(13)Permission denied: AH00529: {} pcfg_openfile: unable to check htaccess file, ensure it is readable and that '{}/' is executable",
                        path.display(),
                        level.display().to_string().trim_end_matches('/')
                    ),
                });
            }
            // A directory named .htaccess and the like: httpd treats it as unreadable.
            Err(e) => {
                return Err(walk::HtaccessStop {
                    status: 403,
                    log: format!("{}: {e}", path.display()),
                })
            }
        };
        let (htaccess, diagnostics) = itkd_config::load_htaccess(
            &bytes,
            &path,
            &shared.parsed,
            overrides,
            &crate::system::RealSystem,
        );
        if let Some(e) = diagnostics
            .iter()
            .find(|d| d.severity == itkd_config::Severity::Error)
        {
            // httpd: "/path/.htaccess: AssignUserID not allowed here" (no line number).
            let directive = e.directive.as_deref().unwrap_or("");
            let log = if e.message.starts_with("Invalid command") || directive.is_empty() {
                format!("{}: {}", path.display(), e.message)
            } else {
                format!("{}: {directive} {}", path.display(), e.message)
            };
            return Err(walk::HtaccessStop { status: 500, log });
        }
        found = Some(match found {
            None => htaccess,
            Some(mut before) => {
                before.dir = before.dir.merge(&htaccess.dir);
                before.files.extend(htaccess.files);
                before
            }
        });
    }
    Ok(found)
}
