//! A pool child: accepts connections, forks one worker per connection, waits for it,
//! repeats. It runs as User/Group with only CAP_SETUID, CAP_SETGID and CAP_SYS_NICE
//! (EnableCapabilities On) under the seccomp filter of LimitUIDRange/LimitGIDRange, and
//! never reads a byte from a client: the worker does.

use std::net::TcpListener;

use itkd_sys::process::{self, Fork, SingleThreaded};
use itkd_sys::scoreboard::{Scoreboard, SlotState};
use itkd_sys::{seccomp, signals};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::logs;
use crate::master::Shared;
use crate::worker;

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
    // One epoll set per pool child, each listener added with EPOLLEXCLUSIVE: a new
    // connection wakes one idle pool child, not all of them (with poll() every idle
    // child woke, and all but one found EAGAIN).
    let Ok(epoll) = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) else {
        return 1;
    };
    for (i, l) in listeners.iter().enumerate() {
        let event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE, i as u64);
        if epoll.add(l, event).is_err() {
            return 1;
        }
    }
    // Checked once: this process never starts a thread.
    let Some(single) = SingleThreaded::check() else {
        return 1;
    };
    let limit = config.pool.max_connections_per_child;
    let mut served = 0u32;
    let mut events = [EpollEvent::empty(); 8];
    board.slot(slot).set_state(SlotState::Idle);
    loop {
        if signals::take(Signal::SIGTERM)
            || signals::take(Signal::SIGUSR1)
            || signals::take(Signal::SIGWINCH)
        {
            return 0;
        }
        let ready = match epoll.wait(&mut events, EpollTimeout::from(1000u16)) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(_) => return 1,
        };
        for event in &events[..ready] {
            let Some(listener) = usize::try_from(event.data())
                .ok()
                .and_then(|i| listeners.get(i))
            else {
                continue;
            };
            // Another pool child may have taken it: EAGAIN is the normal outcome then.
            let Ok((stream, _)) = listener.accept() else {
                continue;
            };
            board.slot(slot).set_state(SlotState::Busy);
            match single.fork() {
                Ok(Fork::Child) => {
                    // The worker holds no listener (mpm-itk closes them too).
                    listeners.clear();
                    drop(epoll);
                    let _ = signals::reset_to_default(&[
                        Signal::SIGTERM,
                        Signal::SIGUSR1,
                        Signal::SIGWINCH,
                    ]);
                    let code = worker::run(shared, stream, board, slot);
                    process::exit_now(code);
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
