//! The master: root, never reads a client byte. It loads the configuration, opens the
//! listeners and log files, creates the scoreboard, and keeps the pool of accepting
//! children between MinSpareServers and MaxSpareServers (at most MaxRequestWorkers).
//! Signals as httpd: TERM stops, USR1 is a graceful restart (new connections get the new
//! configuration, in-flight ones finish), HUP a restart, WINCH a graceful stop.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use itkd_config::{load, LoadOptions, Parsed, ServerConfig};
use itkd_sys::process::{self, Fork};
use itkd_sys::scoreboard::{Scoreboard, SlotState};
use itkd_sys::signals;
use nix::errno::Errno;
use nix::poll::{poll, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::logs::{self, Logs};
use std::collections::HashMap;

use itkd_http::identity::Identity;
use itkd_sys::credentials::Credentials;

/// How long a stop waits for children before it kills them.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often the pool is checked against Min/MaxSpareServers (httpd: once a second).
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);
/// httpd's cap on children spawned per maintenance cycle.
const MAX_SPAWN_RATE: usize = 32;

struct Generation {
    shared: Shared,
    listeners: Vec<TcpListener>,
}

pub fn run(options: &LoadOptions, foreground: bool) -> ExitCode {
    // Invariant: a worker holds nothing but its own; a CGI sees fds 0, 1, 2 only. What
    // our starter left open must not travel down.
    process::close_inherited_fds();
    // Before the first fork, so that every pool child and worker shares the copy.
    let code = itkd_sys::hugecode::move_code_to_huge_pages();
    warm_up();
    let Some((config, parsed)) = load_config(options) else {
        return ExitCode::FAILURE;
    };
    // Made once, before any fork: every pool child of every generation shares them.
    let tickets = match crate::tls::SharedTicketer::new() {
        Ok(t) => std::sync::Arc::new(t),
        Err(e) => {
            eprintln!("itkd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut generation = match start_generation(config, parsed, None, &tickets) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("itkd: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !foreground {
        match process::fork_single_threaded() {
            Ok(Fork::Parent(_)) => return ExitCode::SUCCESS,
            Ok(Fork::Child) => {
                let _ = nix::unistd::setsid();
                detach_stdio();
            }
            Err(e) => {
                eprintln!("itkd: could not detach: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let pid_file = generation.shared.config.pid_file.clone();
    if let Err(e) = std::fs::write(&pid_file, format!("{}\n", std::process::id())) {
        eprintln!("itkd: could not write PidFile {}: {e}", pid_file.display());
        return ExitCode::FAILURE;
    }
    let slots = usize::try_from(generation.shared.config.pool.server_limit)
        .unwrap_or(256)
        .max(1)
        * 2;
    let board = match Scoreboard::new(slots) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("itkd: scoreboard: {e}");
            return ExitCode::FAILURE;
        }
    };
    let watched = [
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGHUP,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ];
    if signals::install(&watched).is_err() || signals::ignore(Signal::SIGPIPE).is_err() {
        return ExitCode::FAILURE;
    }
    let _ = process::set_child_subreaper(true);
    notice(&generation, "itkd configured -- resuming normal operations");
    log_code_placement(&generation, &code);

    let mut children: Vec<Pid> = Vec::new();
    let mut rotated = Instant::now();
    let mut maintained = Instant::now();
    let start = usize::try_from(generation.shared.config.pool.start_servers).unwrap_or(1);
    spawn(&mut generation, &board, &mut children, start);
    loop {
        match poll(&mut [], PollTimeout::from(1000u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
        for line in reap(&board, &mut children) {
            log_main(&generation, itkd_http::logfmt::Level::Error, &line);
        }
        if rotated.elapsed() >= crate::tls::TICKET_ROTATION {
            let _ = generation.shared.tickets.rotate();
            rotated = Instant::now();
        }
        if signals::take(Signal::SIGTERM) {
            notice(&generation, "caught SIGTERM, shutting down");
            stop(&board, &mut children, Signal::SIGTERM);
            break;
        }
        if signals::take(Signal::SIGWINCH) {
            notice(&generation, "caught WINCH, shutting down gracefully");
            stop(&board, &mut children, Signal::SIGUSR1);
            break;
        }
        let graceful = signals::take(Signal::SIGUSR1);
        let restart = signals::take(Signal::SIGHUP);
        if graceful || restart {
            match reload(options, &generation) {
                Ok(next) => {
                    notice(
                        &generation,
                        if graceful {
                            "Graceful restart requested, doing restart"
                        } else {
                            "SIGHUP received.  Attempting to restart"
                        },
                    );
                    let signal = if graceful {
                        Signal::SIGUSR1
                    } else {
                        Signal::SIGTERM
                    };
                    for &child in &children {
                        let _ = kill(child, signal);
                    }
                    board.next_generation();
                    generation = next;
                    notice(&generation, "itkd configured -- resuming normal operations");
                }
                Err(e) => notice(
                    &generation,
                    &format!("restart failed, keeping the running configuration: {e}"),
                ),
            }
        }
        // httpd's idle-server maintenance runs once a second: pool children that die as
        // soon as they start (EMFILE, a broken identity) are not re-forked in a tight loop.
        if maintained.elapsed() >= MAINTENANCE_INTERVAL {
            maintain(&mut generation, &board, &mut children);
            maintained = Instant::now();
        }
    }
    let _ = std::fs::remove_file(&pid_file);
    ExitCode::SUCCESS
}

/// A daemon keeps no terminal or pipe of its starter open (a caller reading our output
/// would wait forever): stdin, stdout and stderr become /dev/null; the ErrorLog has the rest.
fn detach_stdio() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
}

fn load_config(options: &LoadOptions) -> Option<(ServerConfig, Parsed)> {
    let loaded = load(options, &crate::system::RealSystem);
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    Some((loaded.config?, loaded.parsed))
}

fn reload(options: &LoadOptions, current: &Generation) -> Result<Generation, String> {
    let loaded = load(options, &crate::system::RealSystem);
    let errors: Vec<String> = loaded.errors().map(ToString::to_string).collect();
    match loaded.config {
        Some(config) => start_generation(
            config,
            loaded.parsed,
            Some(current),
            &current.shared.tickets,
        ),
        None => Err(errors.join("; ")),
    }
}

/// Listeners and logs for a configuration; listeners of the running generation on the
/// same address are reused (so a graceful restart never refuses a connection).
fn start_generation(
    config: ServerConfig,
    parsed: Parsed,
    current: Option<&Generation>,
    tickets: &std::sync::Arc<crate::tls::SharedTicketer>,
) -> Result<Generation, String> {
    if config.listen.is_empty() {
        return Err(
            "no listening sockets available, shutting down (no Listen directive)".to_owned(),
        );
    }
    let mut listeners = Vec::new();
    for l in &config.listen {
        let addr = SocketAddr::new(
            l.addr.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            l.port,
        );
        let reused = current
            .and_then(|g| {
                g.listeners
                    .iter()
                    .find(|old| old.local_addr().is_ok_and(|a| a == addr))
            })
            .and_then(|old| old.try_clone().ok());
        let listener = match reused {
            Some(l) => l,
            None => TcpListener::bind(addr)
                .map_err(|e| format!("could not bind to address {addr}: {e}"))?,
        };
        listeners.push(listener);
    }
    // Certificates and keys, read as root now: workers never open them.
    let certs = crate::tls::Certificates::load(&config, tickets).map_err(|e| e.join("; "))?;
    let logs = Logs::open(&config)?;
    Ok(Generation {
        shared: Shared::new(config, logs, parsed, certs, tickets.clone()),
        listeners,
    })
}

fn notice(generation: &Generation, message: &str) {
    log_main(generation, itkd_http::logfmt::Level::Notice, message);
}

/// A line of the master's own in the main server's ErrorLog.
fn log_main(generation: &Generation, level: itkd_http::logfmt::Level, message: &str) {
    if let Some(log) = generation.shared.logs.main_error() {
        // httpd logs its own notices (start, graceful restart, stop) under any LogLevel.
        if level == itkd_http::logfmt::Level::Notice {
            logs::write_error_always(&log.file, "mpm_itk", level, None, message);
        } else {
            logs::write_error(log, "mpm_itk", level, None, message);
        }
    }
}

/// Says, at LogLevel info and above, where the code ended up (bench/README.md: a worker
/// whose code is in huge pages starts without faulting it in).
fn log_code_placement(generation: &Generation, code: &itkd_sys::hugecode::Outcome) {
    use itkd_sys::hugecode::Outcome;
    let message = match code {
        Outcome::Moved(bytes) => {
            format!("code and constants ({bytes} bytes) in 2 MiB pages, mapped by every fork")
        }
        Outcome::Kept(why) => format!("code left in the binary's file-backed pages: {why}"),
    };
    log_main(generation, itkd_http::logfmt::Level::Info, &message);
}

/// Work every worker would otherwise repeat after its fork, done once here and
/// inherited: the allocator's settings, the first thread-local initialisations, and the
/// CPU feature detection that std and httparse cache in statics (each CPUID traps to the
/// hypervisor in a VM: it was 4% of a new connection's CPU time).
fn warm_up() {
    process::tune_allocator();
    #[cfg(target_arch = "x86_64")]
    let _ = std::arch::is_x86_feature_detected!("avx2");
    // The first thread-local with a destructor binds libc's __cxa_thread_atexit_impl
    // lazily (a symbol lookup that faults in pages of ld.so): tokio's context is one.
    let _ = tokio::runtime::Handle::try_current();
    let _ = std::thread::current();
    let mut headers = [httparse::EMPTY_HEADER; 4];
    let _ = httparse::Request::new(&mut headers).parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
}

fn spawn(generation: &mut Generation, board: &Scoreboard, children: &mut Vec<Pid>, count: usize) {
    for _ in 0..count {
        match process::fork_single_threaded() {
            Ok(Fork::Child) => {
                let listeners = std::mem::take(&mut generation.listeners);
                let _ = signals::reset_to_default(&[Signal::SIGHUP, Signal::SIGCHLD]);
                let code = crate::pool::run(&mut generation.shared, listeners, board);
                std::process::exit(code);
            }
            Ok(Fork::Parent(pid)) => children.push(pid),
            Err(e) => {
                notice(generation, &format!("fork: {e}"));
                return;
            }
        }
    }
}

/// Collects every exited child (pool children and, as subreaper, orphaned workers) and
/// frees its scoreboard slot: a SIGKILLed process never leaves a count raised.
/// Returns, for the error log, how pool children ended when that was not a normal stop
/// (httpd's ap_process_child_status: a failure exit, or a signal other than TERM, HUP,
/// USR1 and KILL).
fn reap(board: &Scoreboard, children: &mut Vec<Pid>) -> Vec<String> {
    let mut abnormal = Vec::new();
    loop {
        let (pid, why) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (
                pid,
                (code != 0).then(|| format!("child pid {pid} exit status {code}")),
            ),
            Ok(WaitStatus::Signaled(pid, signal, _)) => (
                pid,
                (![
                    Signal::SIGTERM,
                    Signal::SIGHUP,
                    Signal::SIGUSR1,
                    Signal::SIGKILL,
                ]
                .contains(&signal))
                .then(|| {
                    format!(
                        "AH00052: child pid {pid} exit signal {signal} ({})",
                        signal as i32
                    )
                }),
            ),
            Ok(WaitStatus::StillAlive) | Err(_) => return abnormal,
            Ok(_) => continue,
        };
        board.release_by_pid(pid);
        if children.contains(&pid) {
            if let Some(why) = why {
                abnormal.push(why);
            }
        }
        children.retain(|&c| c != pid);
    }
}

/// Keeps idle pool children between MinSpareServers and MaxSpareServers.
fn maintain(generation: &mut Generation, board: &Scoreboard, children: &mut Vec<Pid>) {
    let pool = generation.shared.config.pool.clone();
    let mine = |s: &&itkd_sys::scoreboard::Slot| s.pid().is_some_and(|p| children.contains(&p));
    let idle = board
        .slots()
        .iter()
        .filter(mine)
        .filter(|s| s.state() == SlotState::Idle)
        .count();
    let total = children.len();
    let max = usize::try_from(pool.max_request_workers).unwrap_or(256);
    let min_spare = usize::try_from(pool.min_spare_servers).unwrap_or(1);
    let max_spare = usize::try_from(pool.max_spare_servers).unwrap_or(2);
    if idle < min_spare && total < max {
        let n = (min_spare - idle).min(max - total).min(MAX_SPAWN_RATE);
        spawn(generation, board, children, n);
    } else if idle > max_spare {
        // One at a time, gracefully, as httpd does.
        if let Some(pid) = board
            .slots()
            .iter()
            .filter(mine)
            .find(|s| s.state() == SlotState::Idle)
            .and_then(|s| s.pid())
        {
            let _ = kill(pid, Signal::SIGUSR1);
        }
    }
}

fn stop(board: &Scoreboard, children: &mut Vec<Pid>, signal: Signal) {
    for &child in children.iter() {
        let _ = kill(child, signal);
    }
    let deadline = Instant::now() + STOP_GRACE;
    while !children.is_empty() && Instant::now() < deadline {
        let _ = poll(&mut [], PollTimeout::from(100u16));
        let _ = reap(board, children);
    }
    for &child in children.iter() {
        let _ = kill(child, Signal::SIGKILL);
    }
    let _ = reap(board, children);
}

/// `-k stop|graceful|restart|graceful-stop`: signal the running master named in PidFile.
pub fn signal_running(pid_file: &PathBuf, signal: Signal) -> Result<(), String> {
    let text =
        std::fs::read_to_string(pid_file).map_err(|e| format!("{}: {e}", pid_file.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{}: no pid in it", pid_file.display()))?;
    kill(Pid::from_raw(pid), signal).map_err(|e| format!("signalling pid {pid}: {e}"))
}

/// What every worker starts from: built by the master, inherited through two forks.
pub struct Shared {
    pub config: ServerConfig,
    pub logs: Logs,
    /// The configuration's directive tree: `.htaccess` files see its defines.
    pub parsed: itkd_config::Parsed,
    /// The credentials of every identity the configuration names statically (User/Group,
    /// AssignUserID), supplementary groups included: looked up once by the master, so a
    /// worker does not read the group database (getgrouplist) per connection.
    pub credentials: HashMap<(u32, u32), Credentials>,
    /// Every `SSLEngine on` server's certificate and key, read by the master.
    pub certs: crate::tls::Certificates,
    /// The session ticket keys the master shares with every worker.
    pub tickets: std::sync::Arc<crate::tls::SharedTicketer>,
}

impl Shared {
    pub fn new(
        config: ServerConfig,
        logs: Logs,
        parsed: itkd_config::Parsed,
        certs: crate::tls::Certificates,
        tickets: std::sync::Arc<crate::tls::SharedTicketer>,
    ) -> Shared {
        let mut credentials = HashMap::new();
        let mut add = |user: &itkd_config::model::UserId, gid: u32| {
            credentials
                .entry((user.uid, gid))
                .or_insert_with(|| Credentials::for_user(user.uid, gid, user.name.as_deref()));
        };
        add(&config.user, config.group.gid);
        for server in std::iter::once(&config.main).chain(&config.vhosts) {
            let mut dirs = vec![&server.dir];
            let mut sections: Vec<&itkd_config::dirconf::Section> =
                server.sections.iter().collect();
            while let Some(section) = sections.pop() {
                dirs.push(&section.config);
                sections.extend(&section.files);
            }
            for assign in dirs.into_iter().filter_map(|d| d.assign.as_ref()) {
                add(&assign.user, assign.group.gid);
            }
        }
        Shared {
            config,
            logs,
            parsed,
            credentials,
            certs,
            tickets,
        }
    }

    /// The credentials for `wanted`: from the table made at start when the configuration
    /// names it, else (AssignUserIDExpr results) looked up now.
    pub fn credentials_for(&self, wanted: &Identity) -> Credentials {
        match self.credentials.get(&(wanted.uid, wanted.gid)) {
            Some(c) => c.clone(),
            None => Credentials::for_user(wanted.uid, wanted.gid, wanted.user_name.as_deref()),
        }
    }
}
