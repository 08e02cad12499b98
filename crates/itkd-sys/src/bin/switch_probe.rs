//! Test fixture: `itkd-switch-probe [--drop-bounding] UID GID GROUP[,GROUP…] [NICE]`
//! switches with `itkd_sys::credentials` and prints the kernel's view of the result
//! (the Uid/Gid/Groups/Cap*/NoNewPrivs lines of /proc/self/status and the nice value),
//! or `error: …` and exit 1.

use itkd_sys::credentials::{drop_bounding_set, switch_to, Credentials, Nice};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let drop_bounding = args.first().is_some_and(|a| a == "--drop-bounding");
    if drop_bounding {
        args.remove(0);
    }
    let number = |s: &str| {
        s.parse::<u32>()
            .unwrap_or_else(|_| fail(&format!("not a number: {s}")))
    };
    let (uid, gid, groups) = match args.as_slice() {
        [u, g, list, ..] => (number(u), number(g), list.split(',').map(number).collect()),
        _ => fail("usage: itkd-switch-probe [--drop-bounding] UID GID GROUPS [NICE]"),
    };
    let nice = args.get(3).map(|n| {
        let n: i32 = n.parse().unwrap_or_else(|_| fail("bad nice"));
        Nice::new(n).unwrap_or_else(|| fail("nice out of range"))
    });
    if drop_bounding {
        drop_bounding_set().unwrap_or_else(|e| fail(&e));
    }
    switch_to(&Credentials { uid, gid, groups }, nice).unwrap_or_else(|e| fail(&e.to_string()));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if ["Uid:", "Gid:", "Groups:", "Cap", "NoNewPrivs:"]
            .iter()
            .any(|p| line.starts_with(p))
        {
            println!("{line}");
        }
    }
    let dumpable = nix::sys::prctl::get_dumpable().map_or("?".to_owned(), |d| d.to_string());
    println!("Dumpable:\t{dumpable}");
    // Irreversible: trying to become root again must fail.
    let root = nix::unistd::Uid::from_raw(0);
    match nix::unistd::setresuid(root, root, root) {
        Ok(()) => println!("Regain:\troot"),
        Err(e) => println!("Regain:\t{e}"),
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Field 19 is the nice value; fields after the ")" of the command name are fixed.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    println!("Nice:\t{}", after.split_whitespace().nth(16).unwrap_or("?"));
}

fn fail(message: &str) -> ! {
    println!("error: {message}");
    std::process::exit(1)
}
