//! Running a CGI script in the worker, which already is the tenant: no suexec, no
//! wrapper. mod_cgi's behaviour: the body goes to stdin, stdout's header block becomes
//! the response head, stderr lines go to the vhost's error log, a script that says
//! nothing within Timeout is killed (504), one that says something malformed is a 500.
//!
//! The script inherits exactly fds 0, 1 and 2: everything else this process holds is
//! close-on-exec (Rust opens every file and socket so).

use std::path::Path;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use itkd_http::cgi::{self, CgiHead};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::unix::pipe;

/// How much of a script's output is kept while its input is still being fed.
const MAX_BUFFERED: usize = 64 << 20;

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

/// The script's stdout after its header block; owns the child, which is killed if the
/// client goes away before the end (no orphan script).
pub struct CgiOutput {
    pending: Bytes,
    stdout: pipe::Receiver,
    _script: Script,
    done: bool,
}

/// A running script; killed when dropped before it has exited (the client went away, a
/// timeout, an error status). Without tokio's process driver (which costs every worker a
/// signal driver and its allocations, CGI or not) nothing reaps in the background: a
/// script is reaped here if it has exited, else its zombie goes to the master (the
/// subreaper) when the worker ends, after at most one keep-alive connection.
struct Script(std::process::Child);

impl Drop for Script {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.try_wait();
        }
    }
}

impl CgiOutput {
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        if !self.pending.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut self.pending))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = ReadBuf::new(&mut buf);
        match Pin::new(&mut self.stdout).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    self.done = true;
                    return Poll::Ready(None);
                }
                buf.truncate(n);
                Poll::Ready(Some(Ok(Bytes::from(buf))))
            }
        }
    }
}

/// Runs `script` with `env` and the request `body` (at most `limit` bytes; more is a 413
/// and the script is stopped; a malformed one a 400), waiting at most `timeout` for each read of its output
/// head. `stderr_line` receives every line the script writes to stderr.
pub async fn run(
    script: &Path,
    env: Vec<(String, String)>,
    body: Incoming,
    limit: Option<u64>,
    timeout: Duration,
    mut clock: crate::reqtimeout::BodyClock,
    stderr_line: impl Fn(&str) + 'static,
) -> CgiResult {
    let dir = script.parent().unwrap_or(Path::new("/"));
    let spawned = std::process::Command::new(script)
        .env_clear()
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => Script(c),
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
    let std_pipes = &mut child.0;
    let pipes = (
        std_pipes
            .stdin
            .take()
            .map(|p| pipe::Sender::from_owned_fd(p.into())),
        std_pipes
            .stdout
            .take()
            .map(|p| pipe::Receiver::from_owned_fd(p.into())),
        std_pipes
            .stderr
            .take()
            .map(|p| pipe::Receiver::from_owned_fd(p.into())),
    );
    let (Some(Ok(mut stdin)), Some(Ok(mut stdout)), Some(Ok(stderr))) = pipes else {
        return CgiResult::Error {
            status: 500,
            log: "could not connect to the script's pipes".to_owned(),
        };
    };
    // stderr → error log, line by line, for as long as the script writes.
    let script_name = script.display().to_string();
    tokio::task::spawn_local(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            stderr_line(&format!("AH01215: {line}: {script_name}"));
        }
    });

    // The body is fed while the head is read: a script may answer before it has read
    // all of its input, and a full pipe must not deadlock either side.
    let feed = async move {
        let mut body = body;
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
                return CgiResult::Error {
                    status,
                    log: log.to_owned(),
                };
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
        Ok((head, pending)) => CgiResult::Head {
            head,
            output: Box::new(CgiOutput {
                pending,
                stdout,
                _script: child,
                done: false,
            }),
        },
        Err((status, log)) => CgiResult::Error { status, log },
    }
}
