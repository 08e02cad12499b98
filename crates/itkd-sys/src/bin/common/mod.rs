//! Shared by the probe binaries (included with `#[path]`; not a binary of its own): what
//! the kernel says about this process, printed as `Key:\tvalue` lines for the tests.

#![allow(dead_code)] // each probe uses a part

/// Prints the /proc/self/status lines starting with one of `prefixes`, each with `tag`
/// put before its key (`PoolUid:` for tag `Pool`).
pub fn print_status(tag: &str, prefixes: &[&str]) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if prefixes.iter().any(|p| line.starts_with(p)) {
            println!("{tag}{line}");
        }
    }
}

/// This process's nice value (field 19 of /proc/self/stat).
pub fn nice() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that ends the command name are fixed: nice is the 17th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after.split_whitespace().nth(16).unwrap_or("?").to_owned()
}

/// How a waited-for child ended, in words the tests match.
pub fn ended(status: nix::sys::wait::WaitStatus) -> String {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => format!("exited {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("killed by {signal}"),
        other => format!("{other:?}"),
    }
}

pub fn fail(message: &str) -> ! {
    println!("error: {message}");
    std::process::exit(1)
}

pub fn number<T: std::str::FromStr>(s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| fail(&format!("not a number: {s}")))
}
