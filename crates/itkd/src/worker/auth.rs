//! HTTP Basic authentication against the tenant's password and group files.

use super::*;

/// `AuthType Basic`: the user and groups the request proves, if any. A wrong password is
/// no user (logged, as httpd's AH01617); an unreadable password file is an error (500).
/// `log` receives what the error log should say besides a failure (malformed lines of
/// the password file, password mismatches, unknown users), as httpd's mod_auth_basic.
pub(super) fn authenticate(
    _tenant: AsTenant,
    dir: &DirConfig,
    req: &Request<()>,
    uri_path: &str,
    log: &mut Vec<(Level, String)>,
) -> Result<(Option<String>, Vec<String>), String> {
    if dir.auth_basic != Some(true) {
        return Ok((None, Vec::new()));
    }
    let Some((name, password)) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(itkd_http::auth::basic_credentials)
    else {
        return Ok((None, Vec::new()));
    };
    let Some(file) = &dir.auth_user_file else {
        return Err("AH01618: AuthType Basic without AuthUserFile".to_owned());
    };
    let users = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "AH01620: Could not open password file: {} ({e})",
            file.display()
        )
    })?;
    let check = itkd_http::auth::read_htpasswd(&users, &name, &password);
    for bad in &check.malformed {
        log.push((
            Level::Warn,
            format!(
                "{}:{}: ignoring a malformed password line ({})",
                file.display(),
                bad.line,
                bad.reason
            ),
        ));
    }
    // Not granted: 401, like any unauthenticated request, with httpd's log line.
    match check.verdict {
        Verdict::Granted => {}
        Verdict::Mismatch => {
            log.push((
                Level::Error,
                format!(
                    "AH01617: user {name}: authentication failure for \"{uri_path}\": Password Mismatch"
                ),
            ));
            return Ok((None, Vec::new()));
        }
        Verdict::NoSuchUser => {
            log.push((
                Level::Error,
                format!("AH01618: user {name} not found: {uri_path}"),
            ));
            return Ok((None, Vec::new()));
        }
    }
    let groups = match &dir.auth_group_file {
        Some(f) => std::fs::read_to_string(f)
            .map(|t| itkd_http::auth::groups_of(&t, &name))
            .map_err(|e| format!("AH01664: Could not open group file: {} ({e})", f.display()))?,
        None => Vec::new(),
    };
    Ok((Some(name), groups))
}
