//! Test fixture for `itkd_sys::signals`: installs the master's signals, raises and
//! receives some, resets them; prints `Key:\tvalue` lines (SigCgt/SigIgn/SigBlk are the
//! kernel's hex masks of caught, ignored and blocked signals).

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use common::{fail, print_status};
use itkd_sys::signals;
use nix::sys::signal::{raise, sigprocmask, SigSet, SigmaskHow, Signal};

const MASTER: [Signal; 5] = [
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGHUP,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

fn main() {
    let ok = |r: itkd_sys::Result<()>| r.unwrap_or_else(|e| fail(&e.to_string()));
    ok(signals::install(&MASTER));
    ok(signals::install(&[Signal::SIGALRM]));
    print_status("Installed", &["SigCgt:"]);

    raise(Signal::SIGUSR1).unwrap_or_else(|e| fail(&e.to_string()));
    println!("Usr1First:\t{}", signals::take(Signal::SIGUSR1));
    println!("Usr1Second:\t{}", signals::take(Signal::SIGUSR1));
    println!("TermUnraised:\t{}", signals::take(Signal::SIGTERM));

    let child = std::process::Command::new("/bin/true")
        .status()
        .unwrap_or_else(|e| fail(&e.to_string()));
    println!("ChildOk:\t{}", child.success());
    println!("Chld:\t{}", signals::take(Signal::SIGCHLD));

    // No SA_RESTART: a blocking read is interrupted and returns EINTR.
    let (read, _write) = nix::unistd::pipe().unwrap_or_else(|e| fail(&e.to_string()));
    nix::unistd::alarm::set(1);
    let mut buf = [0u8; 1];
    let r = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&read), &mut buf);
    println!("BlockedRead:\t{r:?}");
    println!("Alrm:\t{}", signals::take(Signal::SIGALRM));

    ok(signals::ignore(Signal::SIGPIPE));
    print_status("Ignored", &["SigIgn:"]);

    // The worker after the fork: defaults back, unblocked, no flag left over.
    let mut blocked = SigSet::empty();
    blocked.add(Signal::SIGUSR1);
    blocked.add(Signal::SIGWINCH);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None)
        .unwrap_or_else(|e| fail(&e.to_string()));
    raise(Signal::SIGUSR1).unwrap_or_else(|e| fail(&e.to_string())); // stays pending
    print_status("Before", &["SigBlk:"]);
    // A flag set but not yet taken must not survive the reset.
    raise(Signal::SIGHUP).unwrap_or_else(|e| fail(&e.to_string()));
    ok(signals::reset_to_default(&[
        Signal::SIGHUP,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ]));
    println!("HupAfterReset:\t{}", signals::take(Signal::SIGHUP));
    print_status("Reset", &["SigCgt:", "SigBlk:"]);
    // SIGWINCH's default is to ignore it: still alive after this, and no flag.
    raise(Signal::SIGWINCH).unwrap_or_else(|e| fail(&e.to_string()));
    std::thread::sleep(Duration::from_millis(10));
    println!("WinchAfterReset:\t{}", signals::take(Signal::SIGWINCH));
    // SIGUSR1 (not reset, still caught and blocked): unblocking delivers the pending one.
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&usr1), None)
        .unwrap_or_else(|e| fail(&e.to_string()));
    println!("Usr1Pending:\t{}", signals::take(Signal::SIGUSR1));
    ok(signals::reset_to_default(&[Signal::SIGUSR1]));
    print_status("After", &["SigCgt:"]);
}
