//! Test fixture for `itkd_sys::process`; every mode runs in this fresh, single-threaded
//! process and prints `Key:\tvalue` lines (or `error: …` and exit 1):
//!
//! - `pool-chain [--caps-off] POOL_UID POOL_GID UID GID NICE`: drop_to_pool_identity, then
//!   `credentials::switch_to(UID, GID, [GID], NICE)`; prints the kernel's view after each.
//! - `fork`: forks a child that exits 7 and reports how it ended.
//! - `fork-threaded`: starts a second thread, then forks (debug builds panic).
//! - `orphan`: as a subreaper, forks B, which forks C with PR_SET_PDEATHSIG=SIGKILL; B
//!   exits; reports how B and C ended.

#[path = "common/mod.rs"]
mod common;

use common::{ended, fail, nice, number, print_status};
use itkd_sys::credentials::{switch_to, Credentials, Nice};
use itkd_sys::process::{self, Fork};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{self, Pid};

const STATUS: [&str; 4] = ["Uid:", "Gid:", "Groups:", "Cap"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["pool-chain", "--caps-off", rest @ ..] => pool_chain(false, rest),
        ["pool-chain", rest @ ..] => pool_chain(true, rest),
        ["fork"] => fork_and_wait(),
        ["fork-threaded"] => {
            let (_tx, rx) = std::sync::mpsc::channel::<()>();
            std::thread::spawn(move || rx.recv());
            fork_and_wait()
        }
        ["orphan"] => orphan(),
        _ => fail("usage: itkd-process-probe pool-chain|fork|fork-threaded|orphan …"),
    }
}

fn pdeathsig() -> String {
    match prctl::get_pdeathsig() {
        Ok(Some(signal)) => signal.to_string(),
        Ok(None) => "none".to_owned(),
        Err(e) => e.to_string(),
    }
}

fn pool_chain(keep_capabilities: bool, args: &[&str]) {
    let [pool_uid, pool_gid, uid, gid, n] = args else {
        fail("pool-chain [--caps-off] POOL_UID POOL_GID UID GID NICE")
    };
    let nice_value = Nice::new(number(n)).unwrap_or_else(|| fail("nice out of range"));
    process::set_pdeathsig(Signal::SIGKILL).unwrap_or_else(|e| fail(&e.to_string()));
    process::drop_to_pool_identity(number(pool_uid), number(pool_gid), keep_capabilities)
        .unwrap_or_else(|e| fail(&e.to_string()));
    print_status("Pool", &STATUS);
    // Cleared by the kernel when the effective uid changed (and kept when it did not).
    println!("PoolPdeathsig:\t{}", pdeathsig());
    process::set_pdeathsig(Signal::SIGKILL).unwrap_or_else(|e| fail(&e.to_string()));
    let (uid, gid): (u32, u32) = (number(uid), number(gid));
    let target = Credentials {
        uid,
        gid,
        groups: vec![gid],
    };
    switch_to(&target, Some(nice_value)).unwrap_or_else(|e| fail(&e.to_string()));
    print_status("", &STATUS);
    println!("Nice:\t{}", nice());
    println!("Pdeathsig:\t{}", pdeathsig());
    let root = unistd::Uid::from_raw(0);
    match unistd::setresuid(root, root, root) {
        Ok(()) => println!("Regain:\troot"),
        Err(e) => println!("Regain:\t{e}"),
    }
}

fn fork_and_wait() {
    // SAFETY: single-threaded, except in `fork-threaded`, whose point is the assertion.
    match unsafe { process::fork() } {
        Ok(Fork::Child) => std::process::exit(7),
        Ok(Fork::Parent(child)) => {
            let status = waitpid(child, None).unwrap_or_else(|e| fail(&e.to_string()));
            println!("Child:\t{}", ended(status));
        }
        Err(e) => fail(&format!("fork: {e}")),
    }
}

fn orphan() {
    process::set_child_subreaper(true).unwrap_or_else(|e| fail(&e.to_string()));
    let (read, write) = unistd::pipe().unwrap_or_else(|e| fail(&e.to_string()));
    // SAFETY: this process is single-threaded.
    let b = match unsafe { process::fork() } {
        Ok(Fork::Parent(b)) => b,
        Ok(Fork::Child) => middle(read, write),
        Err(e) => fail(&format!("fork: {e}")),
    };
    drop(read);
    drop(write);
    // B ends first, then C (reparented to us, the subreaper) when its parent-death signal
    // fires; nobody else is our child.
    for _ in 0..2 {
        let status = waitpid(None::<Pid>, None).unwrap_or_else(|e| fail(&e.to_string()));
        let who = if status.pid() == Some(b) { "B" } else { "C" };
        println!("{who}:\t{}", ended(status));
    }
}

/// B: forks C, waits until C has set its parent-death signal, exits.
fn middle(read: std::os::fd::OwnedFd, write: std::os::fd::OwnedFd) -> ! {
    let me = unistd::getpid();
    // SAFETY: B is single-threaded (forked from a single-threaded process).
    match unsafe { process::fork() } {
        Ok(Fork::Child) => {
            drop(read);
            process::set_pdeathsig(Signal::SIGKILL).unwrap_or_else(|e| fail(&e.to_string()));
            // The documented race check: B may already be gone.
            if unistd::getppid() != me {
                std::process::exit(3);
            }
            unistd::write(&write, b"x").unwrap_or_else(|e| fail(&e.to_string()));
            // Long enough for the test, short enough not to hang it if pdeathsig failed.
            std::thread::sleep(std::time::Duration::from_secs(10));
            std::process::exit(0)
        }
        Ok(Fork::Parent(_)) => {
            drop(write);
            let mut byte = [0u8];
            unistd::read(std::os::fd::AsRawFd::as_raw_fd(&read), &mut byte)
                .unwrap_or_else(|e| fail(&e.to_string()));
            std::process::exit(0)
        }
        Err(e) => fail(&format!("fork: {e}")),
    }
}
