//! A pool child: accepts connections, forks one worker per connection, waits for it,
//! repeats. It runs as User/Group with only CAP_SETUID, CAP_SETGID and CAP_SYS_NICE
//! (EnableCapabilities On) under the seccomp filter of LimitUIDRange/LimitGIDRange, and
//! never reads a byte from a client: the worker does.

use std::net::TcpListener;
use std::os::fd::AsFd;

use itkd_sys::process::{self, Fork};
use itkd_sys::scoreboard::{Scoreboard, SlotState};
use itkd_sys::{seccomp, signals};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::logs;
use crate::worker::{self, Shared};

/// Runs the pool child to its end; returns its exit code.
pub fn run(shared: &mut Shared, mut listeners: Vec<TcpListener>, board: &Scoreboard) -> i32 {
    let me = Pid::this();
    let Some(slot) = board.claim_free_slot(me) else {
        return 0;
    };
    let config = &shared.config;
    // The master's death ends the pool.
    let _ = process::set_pdeathsig(Signal::SIGTERM);
    // Confine first: installing the filter needs CAP_SYS_ADMIN, gone after the drop.
    let setup =
        seccomp::confine_id_changes(config.itk.limit_uid, config.itk.limit_gid).and_then(|()| {
            process::drop_to_pool_identity(
                config.user.uid,
                config.group.gid,
                config.itk.enable_capabilities,
            )
        });
    if let Err(e) = setup {
        if let Some(file) = shared.logs.main_error() {
            logs::write_error(
                file,
                "mpm_itk",
                itkd_http::logfmt::Level::Emerg,
                None,
                &format!("pool child could not take its identity: {e}"),
            );
        }
        board.slot(slot).set_state(SlotState::Empty);
        return 1;
    }
    if signals::install(&[Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGWINCH]).is_err() {
        return 1;
    }
    for l in &listeners {
        let _ = l.set_nonblocking(true);
    }
    let limit = config.pool.max_connections_per_child;
    let mut served = 0u32;
    board.slot(slot).set_state(SlotState::Idle);
    loop {
        if signals::take(Signal::SIGTERM)
            || signals::take(Signal::SIGUSR1)
            || signals::take(Signal::SIGWINCH)
        {
            return 0;
        }
        let ready: Vec<usize> = {
            let mut fds: Vec<PollFd<'_>> = listeners
                .iter()
                .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, PollTimeout::from(1000u16)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => fds
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                    .map(|(i, _)| i)
                    .collect(),
                Err(_) => return 1,
            }
        };
        for i in ready {
            // Another pool child may have taken it: EAGAIN is the normal outcome then.
            let Ok((stream, _)) = listeners[i].accept() else {
                continue;
            };
            let _ = stream.set_nonblocking(false);
            board.slot(slot).set_state(SlotState::Busy);
            // A pool child never starts a thread; fork_single_threaded checks it anyway.
            match process::fork_single_threaded() {
                Ok(Fork::Child) => {
                    // The worker holds no listener (mpm-itk closes them too).
                    listeners.clear();
                    let _ = signals::reset_to_default(&[
                        Signal::SIGTERM,
                        Signal::SIGUSR1,
                        Signal::SIGWINCH,
                    ]);
                    let code = worker::run(shared, stream, board, slot);
                    std::process::exit(code);
                }
                Ok(Fork::Parent(child)) => {
                    drop(stream);
                    wait_for(child);
                }
                Err(_) => drop(stream),
            }
            board.slot(slot).leave_vhost();
            board.slot(slot).set_state(SlotState::Idle);
            served += 1;
            if limit != 0 && served >= limit {
                return 0;
            }
        }
    }
}

/// Waits for the worker, through signals (EINTR): a graceful stop lets it finish.
fn wait_for(child: Pid) {
    loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            _ => return,
        }
    }
}
