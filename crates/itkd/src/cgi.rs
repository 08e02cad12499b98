//! Running a CGI script in the worker, which already is the tenant: no suexec, no
//! wrapper. mod_cgi's behaviour: the body goes to stdin, stdout's header block becomes
//! the response head, stderr lines go to the vhost's error log, a script that says
//! nothing within Timeout is killed (504), one that says something malformed is a 500.
//!
//! The script inherits exactly fds 0, 1 and 2: everything else this process holds is
//! close-on-exec (Rust opens every file and socket so). It starts with the directory's
//! `RLimitCPU`, `RLimitMEM` and `RLimitNPROC` (set between fork and exec, as APR does).
//!
//! A script's life, as under mod_cgi, where the script belongs to the request and the
//! request lasts until the script's output ends:
//! - While its output streams, each wait for the next piece lasts at most `Timeout`
//!   (mod_cgi's pipe timeout, AH01220); then the response is cut off.
//! - Once the response has what it needs (the output ended, the script's Content-Length
//!   is sent, or the response has no body), the script may go on working — PHP's
//!   `ignore_user_abort(true)`, DokuWiki's indexer — for `Timeout` more; what it still
//!   writes to stdout is read and dropped, as httpd reads a script's output to its end.
//! - A client that goes away mid-response closes the script's stdout (it gets EPIPE, as
//!   under httpd) and leaves it the same `Timeout` to finish.
//! - A failure httpd ends the request for (504, 413, 408, 400, a malformed head) ends
//!   the script at once.
//! - Ending a script is httpd's `free_proc_chain` (APR_KILL_AFTER_TIMEOUT): SIGTERM, up
//!   to 3 s to exit, then SIGKILL.
//!
//! Every script is reaped the moment it exits, whatever the connection does meanwhile:
//! a task per script waits on a pidfd (a descriptor readable once the process exits) in
//! the worker's event loop, so a keep-alive connection leaves no zombie behind its
//! responses. Deliberately not tokio's process driver: it needs the signal driver
//! (SIGCHLD handler, a self-pipe and their allocations) in every worker, CGI or not. The
//! worker does not exit while a script runs ([`wait_for_scripts`]), so its scoreboard
//! slot stays busy, as an httpd child stays busy with its request.

use std::cell::RefCell;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Stdio};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use itkd_config::rlimit::ScriptLimits;
use itkd_http::cgi::{self, CgiHead};
use itkd_sys::pidfd::AsyncPidFd;
use itkd_sys::rlimit::{Limit, Resource};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::unix::pipe;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

/// How much of a script's output is kept while its input is still being fed.
const MAX_BUFFERED: usize = 64 << 20;

/// How much of the script's output one read takes.
const READ_SIZE: usize = 64 * 1024;

/// After SIGTERM, how long a script has to exit before SIGKILL: APR's `free_proc_chain`
/// (apr_pools.c, `TIMEOUT_USECS`).
const TERM_GRACE: Duration = Duration::from_secs(3);

/// Where no pidfd can be had (a kernel before 5.3, a seccomp policy that forbids it): how
/// often a script is checked for its exit instead (one `waitpid` each; a zombie lives at
/// most this long).
const EXIT_POLL: Duration = Duration::from_millis(50);

/// How long stderr is still read after the script was reaped, when something it left
/// running keeps the pipe open (the worker waits for its stderr reader to end).
const STDERR_AFTER_EXIT: Duration = Duration::from_millis(100);

/// The longest stderr line logged as one (httpd reads stderr in HUGE_STRING_LEN pieces).
const STDERR_LINE: u64 = 8192;

thread_local! {
    /// The tasks that look after this worker's scripts: a keeper and a stderr reader
    /// for each. A worker has one thread, so this is the worker's registry.
    static SCRIPT_TASKS: RefCell<Vec<JoinHandle<()>>> = const { RefCell::new(Vec::new()) };
}

fn register(task: JoinHandle<()>) {
    SCRIPT_TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    });
}

/// Resolves once every script this worker started has exited (or been killed at its
/// bound), been reaped, and had its stderr logged. The worker awaits it after its
/// connection has ended, before it exits: a script still at work would otherwise lose
/// its keeper, and with it the bound on its life.
pub async fn wait_for_scripts() {
    loop {
        let tasks = SCRIPT_TASKS.with(|tasks| std::mem::take(&mut *tasks.borrow_mut()));
        if tasks.is_empty() {
            return;
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// What running the script gave.
pub enum CgiResult {
    /// The header block and the rest of stdout, still streaming.
    Head {
        head: CgiHead,
        output: Box<CgiOutput>,
    },
    /// An HTTP error, with the error-log line httpd writes.
    Error { status: u16, log: String },
}

/// How the response let go of the script's output; sent to the script's keeper.
enum Ending {
    /// The response has all it needs: the script gets `Timeout` more to exit, and what
    /// it still writes (the receiver, if the output has not ended) is read and dropped.
    Complete(Option<pipe::Receiver>),
    /// The client went away mid-response: stdout is closed, `Timeout` more to exit. Also
    /// what a keeper makes of a request dropped before it sent anything.
    Abandoned,
    /// A failure httpd ends the request for: SIGTERM at once.
    Failed,
}

/// The script's stdout after its header block. Dropping it hands the script over to
/// its keeper, which bounds the rest of its life (see the module documentation).
pub struct CgiOutput {
    pending: Bytes,
    stdout: Option<pipe::Receiver>,
    /// Read buffer, allocated at the first read (a HEAD response never reads).
    buf: Vec<u8>,
    done: bool,
    /// Whether the response asked for any output at all (HEAD, 204 and 304 do not).
    polled: bool,
    /// Bytes given to the response, and the script's Content-Length if it sent one.
    sent: u64,
    length: Option<u64>,
    /// mod_cgi's pipe timeout: the longest wait for the next piece of output.
    timeout: Duration,
    idle: Pin<Box<Sleep>>,
    timed_out: bool,
    keeper: Option<oneshot::Sender<Ending>>,
    log: Rc<dyn Fn(&str)>,
    script: String,
}

impl CgiOutput {
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        self.polled = true;
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.sent += chunk.len() as u64;
            return Poll::Ready(Some(Ok(chunk)));
        }
        let Some(stdout) = self.stdout.as_mut().filter(|_| !self.done) else {
            return Poll::Ready(None);
        };
        if self.buf.is_empty() {
            self.buf = vec![0; READ_SIZE];
        }
        let mut read = ReadBuf::new(&mut self.buf);
        match Pin::new(stdout).poll_read(cx, &mut read) {
            Poll::Pending => {
                if self.idle.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // The request ends here, as httpd's: the response is cut off (the
                // connection closes) and the script is ended.
                self.timed_out = true;
                (self.log)(&format!(
                    "AH01220: Timeout waiting for output from CGI script {}",
                    self.script
                ));
                Poll::Ready(Some(Err(std::io::ErrorKind::TimedOut.into())))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    self.done = true;
                    return Poll::Ready(None);
                }
                let chunk = Bytes::copy_from_slice(read.filled());
                self.sent += n as u64;
                let next = Instant::now() + self.timeout;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}

impl Drop for CgiOutput {
    fn drop(&mut self) {
        let complete = self.done || !self.polled || self.length.is_some_and(|n| self.sent >= n);
        let ending = if self.timed_out {
            Ending::Failed
        } else if complete {
            Ending::Complete(self.stdout.take().filter(|_| !self.done))
        } else {
            Ending::Abandoned
        };
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.send(ending);
        }
    }
}

/// What bounds a script: its directory's settings.
pub struct Bounds<'a> {
    /// `LimitRequestBody` (0: none): more is a 413 and the script is stopped.
    pub body: Option<u64>,
    /// `Timeout`: the longest wait for each read of the script's output, and how long it
    /// may go on once its response is over.
    pub timeout: Duration,
    /// `RLimitCPU`, `RLimitMEM`, `RLimitNPROC`.
    pub rlimits: &'a ScriptLimits,
}

/// Runs `script` with `env` and the request `body` (a malformed one is a 400) within
/// `bounds`. `stderr_line` receives every line the script writes to stderr, and the
/// other lines about the script httpd logs.
pub async fn run(
    _tenant: itkd_sys::credentials::AsTenant,
    script: &Path,
    env: Vec<(String, String)>,
    body: Option<Incoming>,
    bounds: Bounds<'_>,
    mut clock: crate::reqtimeout::BodyClock,
    stderr_line: impl Fn(&str) + 'static,
) -> CgiResult {
    let Bounds {
        body: limit,
        timeout,
        rlimits,
    } = bounds;
    let log: Rc<dyn Fn(&str)> = Rc::new(stderr_line);
    let script_name = script.display().to_string();
    let limits = match resolve_limits(rlimits) {
        Ok(limits) => limits,
        Err(why) => {
            // What APR's child writes to the script's stderr before it gives up; the
            // script never runs, so its output ends before any header.
            log(&stderr_entry(&why, &script_name));
            return CgiResult::Error {
                status: 500,
                log: format!("AH01215: End of script output before headers: {script_name}"),
            };
        }
    };
    let dir = script.parent().unwrap_or(Path::new("/"));
    let mut command = std::process::Command::new(script);
    command
        .env_clear()
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Only with RLimit* lines: a pre-exec hook makes std fork and exec instead of its
    // posix_spawn (vfork), ~0.13 ms more per script.
    itkd_sys::rlimit::set_in_child(&mut command, limits);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return CgiResult::Error {
                status: 500,
                log: format!(
                    "({}){e}: AH01241: exec of '{}' failed",
                    e.raw_os_error().unwrap_or(0),
                    script.display()
                ),
            }
        }
    };
    let pipes = (
        child
            .stdin
            .take()
            .map(|p| pipe::Sender::from_owned_fd(p.into())),
        child
            .stdout
            .take()
            .map(|p| pipe::Receiver::from_owned_fd(p.into())),
        child
            .stderr
            .take()
            .map(|p| pipe::Receiver::from_owned_fd(p.into())),
    );
    // From here on the keeper owns the child: it reaps it, whatever becomes of this
    // request. `ending` tells it how the response let go; if it is dropped unsent (this
    // future dropped), the keeper takes it for an abandoned request.
    let (ending, ended) = oneshot::channel();
    let (reaped_tx, reaped) = oneshot::channel();
    let exit = Exit::watch(&child);
    register(tokio::task::spawn_local(keep(
        child, exit, ended, timeout, reaped_tx,
    )));
    let (Some(Ok(mut stdin)), Some(Ok(mut stdout)), Some(Ok(stderr))) = pipes else {
        let _ = ending.send(Ending::Failed);
        return CgiResult::Error {
            status: 500,
            log: "could not connect to the script's pipes".to_owned(),
        };
    };
    // stderr → error log, line by line, for as long as the script writes.
    let stderr_log = log.clone();
    let stderr_script = script_name.clone();
    register(tokio::task::spawn_local(async move {
        let mut reader = BufReader::new(stderr);
        let log_all = async {
            let mut line = Vec::new();
            loop {
                line.clear();
                match (&mut reader)
                    .take(STDERR_LINE)
                    .read_until(b'\n', &mut line)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches(['\n', '\r']);
                        stderr_log(&stderr_entry(text, &stderr_script));
                    }
                }
            }
        };
        let after_exit = async {
            let _ = reaped.await;
            tokio::time::sleep(STDERR_AFTER_EXIT).await;
        };
        tokio::select! {
            () = log_all => {}
            () = after_exit => {}
        }
    }));

    // The body is fed while the head is read: a script may answer before it has read
    // all of its input, and a full pipe must not deadlock either side.
    let feed = async move {
        // No body (an ErrorDocument script after the request's body was read): empty stdin.
        let Some(mut body) = body else {
            drop(stdin);
            return Ok(());
        };
        let mut total: u64 = 0;
        loop {
            // mod_reqtimeout's body stage: too slow a body is a 408.
            let Ok(next) = clock.next(&mut body).await else {
                return Err(408u16);
            };
            let Some(frame) = next else { break };
            // A malformed body (bad chunk, trailers over hyper's limit, the client gone):
            // httpd's mod_cgi answers 400 (AH01225), not whatever the script made of the
            // part it got. Checked by tests/framing.rs.
            let Ok(frame) = frame else { return Err(400u16) };
            if let Ok(data) = frame.into_data() {
                total += data.len() as u64;
                if limit.is_some_and(|l| l != 0 && total > l) {
                    return Err(413u16);
                }
                if stdin.write_all(&data).await.is_err() {
                    // The script stopped reading: what it says is still its answer.
                    return Ok(());
                }
            }
        }
        drop(stdin);
        Ok(())
    };
    // Read the script's output while its input is fed, keeping what it says until the
    // body is in: a script that echoes as it reads (cat) must not fill its pipe and stall
    // the feed, and an over-long body must still be a 413 before any response goes out.
    let mut feed = std::pin::pin!(feed);
    let mut fed: Option<Result<(), u16>> = None;
    let mut buf = BytesMut::with_capacity(8192);
    let mut eof = false;
    let head = loop {
        if let Some(result) = fed {
            if let Err(status) = result {
                let log = if status == 408 {
                    "AH01382: Request body read timeout"
                } else {
                    "AH01225: Error reading request entity data"
                };
                break Err((status, log.to_owned()));
            }
            match cgi::parse_head(&buf) {
                Ok(Some((head, start))) => break Ok((head, buf.split_off(start).freeze())),
                Ok(None) if eof => {
                    break Err((
                        500,
                        format!(
                            "AH01215: End of script output before headers: {}",
                            script.display()
                        ),
                    ))
                }
                Ok(None) => {}
                Err(why) => {
                    break Err((
                        500,
                        format!("malformed header from script '{}': {why}", script.display()),
                    ))
                }
            }
        }
        if buf.len() > MAX_BUFFERED {
            break Err((
                500,
                format!(
                    "script '{}' wrote more than {MAX_BUFFERED} bytes before reading its input",
                    script.display()
                ),
            ));
        }
        let mut chunk = [0u8; 16384];
        tokio::select! {
            result = &mut feed, if fed.is_none() => fed = Some(result),
            read = tokio::time::timeout(timeout, stdout.read(&mut chunk)), if !eof => match read {
                Err(_) => {
                    break Err((504, format!("AH01220: Timeout waiting for output from CGI script {}", script.display())))
                }
                Ok(Ok(0)) => eof = true,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => break Err((500, format!("reading from script '{}': {e}", script.display()))),
            },
        }
    };
    match head {
        Ok((head, pending)) => {
            let length = head
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            CgiResult::Head {
                head,
                output: Box::new(CgiOutput {
                    pending,
                    stdout: Some(stdout),
                    buf: Vec::new(),
                    done: eof,
                    polled: false,
                    sent: 0,
                    length,
                    timeout,
                    idle: Box::pin(tokio::time::sleep(timeout)),
                    timed_out: false,
                    keeper: Some(ending),
                    log,
                    script: script_name,
                }),
            }
        }
        Err((status, log)) => {
            let _ = ending.send(Ending::Failed);
            CgiResult::Error { status, log }
        }
    }
}

/// A line of the script's stderr as the error log gets it: httpd 2.4.71's mod_cgi writes
/// `AH01215: stderr from SCRIPT: LINE` (older releases put the script last).
fn stderr_entry(line: &str, script: &str) -> String {
    format!("AH01215: stderr from {script}: {line}")
}

/// The limits a script starts with: each `RLimit*` line resolved against this worker's
/// own limits (the master's, inherited; httpd reads the line against the same ones),
/// in APR's order (CPU, NPROC, then MEM). Err: the line APR's child writes when the
/// kernel would refuse one (a soft limit above the hard one, a hard limit raised without
/// privilege).
fn resolve_limits(limits: &ScriptLimits) -> Result<Vec<(Resource, Limit)>, String> {
    let mut out = Vec::new();
    for (line, resource) in [
        (limits.cpu, Resource::Cpu),
        (limits.nproc, Resource::Processes),
        (limits.mem, Resource::AddressSpace),
    ] {
        let Some(line) = line else { continue };
        let now = itkd_sys::rlimit::current(resource).map_err(|e| e.to_string())?;
        let (soft, hard) = line.resolve(now.soft, now.hard);
        let limit = Limit { soft, hard };
        if let Some(errno) = limit.refusal(now) {
            return Err(format!(
                "({}){}: setting of resource limits failed",
                errno as i32,
                errno.desc()
            ));
        }
        out.push((resource, limit));
    }
    Ok(out)
}

/// How a keeper learns that its script has exited.
enum Exit {
    /// A pidfd, readable once the process has exited.
    Pidfd(AsyncPidFd),
    /// No pidfd (or one that said "exited" while `waitpid` disagreed, which the kernel
    /// never does): `try_wait` every [`EXIT_POLL`].
    Poll,
}

impl Exit {
    fn watch(child: &Child) -> Exit {
        AsyncPidFd::open(child.id()).map_or(Exit::Poll, Exit::Pidfd)
    }

    /// Resolves once `child` has exited and been reaped (or cannot be waited for).
    async fn reaped(&mut self, child: &mut Child) {
        loop {
            match child.try_wait() {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => return,
            }
            match self {
                Exit::Pidfd(fd) => {
                    // Readable for good once it is: a second look means waitpid was
                    // earlier than the kernel's notice, so poll from now on.
                    let seen = fd.exited().await;
                    if seen.is_err() || matches!(child.try_wait(), Ok(None)) {
                        *self = Exit::Poll;
                    } else {
                        return;
                    }
                }
                Exit::Poll => tokio::time::sleep(EXIT_POLL).await,
            }
        }
    }
}

/// Looks after one script until it is reaped: while the response is produced it only
/// reaps it if it exits; once the response has let go ([`Ending`]) it bounds the rest.
/// `reaped` tells the stderr reader that the script is gone.
async fn keep(
    mut child: Child,
    mut exit: Exit,
    ended: oneshot::Receiver<Ending>,
    timeout: Duration,
    reaped: oneshot::Sender<()>,
) {
    let ending = tokio::select! {
        () = exit.reaped(&mut child) => {
            let _ = reaped.send(());
            return;
        }
        ending = ended => ending.unwrap_or(Ending::Abandoned),
    };
    let (deadline, rest) = match ending {
        Ending::Complete(rest) => (Instant::now() + timeout, rest),
        Ending::Abandoned => (Instant::now() + timeout, None),
        Ending::Failed => (Instant::now(), None),
    };
    tokio::select! {
        () = exit.reaped(&mut child) => {}
        () = discard(rest) => {}
        () = tokio::time::sleep_until(deadline) => terminate(&mut child, &mut exit).await,
    }
    let _ = reaped.send(());
}

/// Reads and drops what the script still writes, then waits forever (the keeper's other
/// branches end it).
async fn discard(rest: Option<pipe::Receiver>) {
    if let Some(mut rest) = rest {
        let mut sink = vec![0; READ_SIZE];
        while let Ok(n) = rest.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    }
    std::future::pending::<()>().await
}

/// APR's `free_proc_chain` for APR_KILL_AFTER_TIMEOUT: SIGTERM, [`TERM_GRACE`] to exit,
/// then SIGKILL. A script that cannot be signalled (it executed a setuid program) is
/// left after one more grace period; the master, the subreaper, reaps it when this
/// worker is gone.
async fn terminate(child: &mut Child, exit: &mut Exit) {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let _ = kill(pid, Signal::SIGTERM);
    if tokio::time::timeout(TERM_GRACE, exit.reaped(child))
        .await
        .is_err()
    {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = tokio::time::timeout(TERM_GRACE, exit.reaped(child)).await;
    }
}
