//! Signals for processes without threads: the master and the pool children react to
//! SIGTERM (stop), SIGUSR1 (graceful restart), SIGHUP (restart), SIGWINCH (graceful stop)
//! and SIGCHLD (reap) — httpd's meanings — by checking flags in their main loop.
//!
//! The handler does the one thing that is async-signal-safe and enough: it sets a
//! per-signal `AtomicBool` (lock-free, so a plain store). [`take`] reads and clears it.
//! Handlers are installed without `SA_RESTART`, on purpose: a pool child blocked in
//! `accept` or a master in `waitpid` gets `EINTR` and goes round its loop to look at the
//! flags, instead of sleeping on with a SIGTERM pending. Callers treat `EINTR` as "check
//! the flags, then retry". To wait without the check-then-block race, block the signals
//! with `sigprocmask` and sleep in `ppoll`/`sigsuspend` with the old mask.
//!
//! Not here: which signal means what to the server (the binary decides), and signalfd
//! (it needs the signals blocked in every thread and inherited masks reset before exec;
//! flags are simpler for one-threaded processes).

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

use crate::error::{Error, Result};

/// One flag per signal number; Linux numbers signals 1..=64 (`_NSIG` is 65).
const SIGNALS: usize = 65;

static PENDING: [AtomicBool; SIGNALS] = [const { AtomicBool::new(false) }; SIGNALS];

fn flag(signal: Signal) -> Option<&'static AtomicBool> {
    usize::try_from(signal as libc::c_int)
        .ok()
        .and_then(|i| PENDING.get(i))
}

/// The handler: async-signal-safe, since it only stores to a lock-free atomic in a static
/// (no allocation, no lock, errno untouched).
extern "C" fn note(signal: libc::c_int) {
    if let Some(pending) = usize::try_from(signal).ok().and_then(|i| PENDING.get(i)) {
        pending.store(true, Ordering::SeqCst);
    }
}

/// Catches each of `signals`: from now on its arrival sets the flag [`take`] returns.
/// SIGCHLD is installed with `SA_NOCLDSTOP` (only ended children matter). Installing is
/// process-wide and replaces any earlier disposition.
pub fn install(signals: &[Signal]) -> Result<()> {
    for &signal in signals {
        let mut flags = SaFlags::empty(); // no SA_RESTART: see the module documentation
        if signal == Signal::SIGCHLD {
            flags |= SaFlags::SA_NOCLDSTOP;
        }
        let action = SigAction::new(SigHandler::Handler(note), flags, SigSet::empty());
        set(signal, &action)?;
    }
    Ok(())
}

/// Whether `signal` arrived since the last call, clearing the flag: n arrivals between two
/// calls are reported once (so a SIGCHLD means "reap until waitpid has no more").
pub fn take(signal: Signal) -> bool {
    flag(signal).is_some_and(|f| f.swap(false, Ordering::SeqCst))
}

/// Back to the default disposition, unblocked, with no flag left set: what a worker does
/// right after the fork, so that it dies of SIGTERM like any process and nothing its pool
/// child caught or blocked carries over.
pub fn reset_to_default(signals: &[Signal]) -> Result<()> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    let mut mask = SigSet::empty();
    for &signal in signals {
        set(signal, &default)?;
        if let Some(f) = flag(signal) {
            f.store(false, Ordering::SeqCst);
        }
        mask.add(signal);
    }
    signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&mask), None)
        .map_err(|e| Error::sys("sigprocmask(SIG_UNBLOCK)", e))
}

/// Ignores `signal` (SIGPIPE: a client that went away must give `EPIPE` on write, not
/// kill the worker). Ignored stays ignored across `execve`; Rust's `Command` resets
/// SIGPIPE to the default in the child, so CGIs start with the default anyway.
pub fn ignore(signal: Signal) -> Result<()> {
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    set(signal, &ignore)
}

fn set(signal: Signal, action: &SigAction) -> Result<()> {
    // SAFETY: the only handler this module installs is `note`, which is async-signal-safe
    // (one store to a lock-free static atomic); SIG_DFL and SIG_IGN run no code of ours.
    unsafe { signal::sigaction(signal, action) }
        .map(drop)
        .map_err(|e| Error::sys(format!("sigaction({signal})"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_has_a_flag() {
        for signal in Signal::iterator() {
            assert!(flag(signal).is_some(), "{signal}");
        }
    }

    #[test]
    fn the_handler_sets_the_flag_and_take_clears_it() {
        // Calls the handler directly: no signal is sent inside the test harness.
        assert!(!take(Signal::SIGWINCH));
        note(Signal::SIGWINCH as libc::c_int);
        note(Signal::SIGWINCH as libc::c_int);
        assert!(take(Signal::SIGWINCH), "two arrivals, reported once");
        assert!(!take(Signal::SIGWINCH));
    }

    #[test]
    fn out_of_range_numbers_are_ignored_by_the_handler() {
        for n in [-1, 0, 65, 1000] {
            note(n);
        }
    }
}
