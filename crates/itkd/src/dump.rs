//! `-S`: the virtual host table and run settings in `apachectl -S`'s layout (so existing
//! scripts and eyes can compare), then what httpd does not show: the identity each
//! virtual host's requests run as.

use std::fmt::Write;

use itkd_config::directives::{Support, DIRECTIVES};
use itkd_config::model::{GroupId, LogTarget, Server, ServerConfig, UserId};

pub fn show(config: &ServerConfig) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_show(&mut out, config);
    out
}

fn origin(server: &Server) -> String {
    server
        .span
        .as_ref()
        .map_or_else(|| "main server".to_owned(), ToString::to_string)
}

fn name(server: &Server) -> &str {
    server.server_name.as_deref().unwrap_or("")
}

fn write_show(out: &mut String, config: &ServerConfig) -> std::fmt::Result {
    writeln!(out, "VirtualHost configuration:")?;
    for group in &config.vhost_table.groups {
        let addr = group.addr.to_string();
        let first = &config.vhosts[group.vhosts[0]];
        if group.vhosts.len() == 1 {
            writeln!(out, "{addr:<22} {} ({})", name(first), origin(first))?;
            continue;
        }
        writeln!(out, "{addr:<22} is a NameVirtualHost")?;
        writeln!(
            out,
            "{:8} default server {} ({})",
            "",
            name(first),
            origin(first)
        )?;
        let port = group
            .addr
            .port
            .map_or_else(|| "*".to_owned(), |p| p.to_string());
        for &index in &group.vhosts {
            let vhost = &config.vhosts[index];
            writeln!(
                out,
                "{:8} port {port} namevhost {} ({})",
                "",
                name(vhost),
                origin(vhost)
            )?;
            for alias in &vhost.aliases {
                let wild = if alias.contains(['*', '?']) {
                    "wild "
                } else {
                    ""
                };
                writeln!(out, "{:16} {wild}alias {alias}", "")?;
            }
        }
    }
    writeln!(out, "ServerRoot: \"{}\"", config.server_root.display())?;
    writeln!(
        out,
        "Main DocumentRoot: \"{}\"",
        config.main.document_root.display()
    )?;
    writeln!(
        out,
        "Main ErrorLog: \"{}\"",
        log_target(&config.main.error_log)
    )?;
    writeln!(out, "PidFile: \"{}\"", config.pid_file.display())?;
    for (define, value) in &config.defines {
        match value {
            Some(v) => writeln!(out, "Define: {define}={v}")?,
            None => writeln!(out, "Define: {define}")?,
        }
    }
    writeln!(
        out,
        "User: name=\"{}\" id={}",
        config.user.name.as_deref().unwrap_or(""),
        config.user.uid
    )?;
    writeln!(
        out,
        "Group: name=\"{}\" id={}",
        config.group.name.as_deref().unwrap_or(""),
        config.group.gid
    )?;

    writeln!(
        out,
        "Identities (mpm-itk: AssignUserID of the vhost, else User/Group):"
    )?;
    for vhost in std::iter::once(&config.main).chain(&config.vhosts) {
        let (user, group, source) = match &vhost.dir.assign {
            Some(a) => (&a.user, &a.group, format!("AssignUserID at {}", a.span)),
            None => (&config.user, &config.group, "User/Group".to_owned()),
        };
        write!(
            out,
            "{:8} {} ({}) uid={} gid={} from {source}",
            "",
            name(vhost),
            origin(vhost),
            uid(user),
            gid(group)
        )?;
        if vhost.dir.user_expr.is_some() || vhost.dir.group_expr.is_some() {
            write!(out, ", per request by AssignUserIDExpr/AssignGroupIDExpr")?;
        }
        if let Some(n) = vhost.max_clients_vhost {
            write!(out, ", MaxClientsVHost {n}")?;
        }
        if let Some(n) = vhost.dir.nice {
            write!(out, ", NiceValue {n}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn uid(u: &UserId) -> String {
    match &u.name {
        Some(n) => format!("{}({n})", u.uid),
        None => u.uid.to_string(),
    }
}

fn gid(g: &GroupId) -> String {
    match &g.name {
        Some(n) => format!("{}({n})", g.gid),
        None => g.gid.to_string(),
    }
}

fn log_target(target: &LogTarget) -> String {
    match target {
        LogTarget::File(p) => p.display().to_string(),
        LogTarget::Pipe(cmd) => format!("|{cmd}"),
        LogTarget::Syslog(facility) => format!("syslog:{facility}"),
    }
}

/// `-L`: one line per directive, tab-separated: name, module, contexts, `.htaccess`
/// override class (or `-`), and `model` or `no effect: why`.
pub fn directives() -> String {
    let mut out = String::new();
    let mut specs: Vec<_> = DIRECTIVES.iter().collect();
    specs.sort_by_key(|s| s.name.trim_start_matches('<').to_ascii_lowercase());
    for s in specs {
        let htaccess = s.htaccess.map_or("-", |o| o.name());
        let support = match s.support {
            Support::Model => "model".to_owned(),
            Support::NoEffect(why) => format!("no effect: {why}"),
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{htaccess}\t{support}",
            s.name, s.module, s.contexts
        );
    }
    out
}
