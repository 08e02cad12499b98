//! The connection's bytes as hyper reads and writes them: the request-head clock that can still answer 408, and httpd's spelling of the field names hyper title-cases otherwise.

use super::*;

/// httpd's 408 page with `Connection: close`, as bytes for [`Watched`] to write; made
/// only when a head times out.
fn timeout_page(config: &ServerConfig) -> Bytes {
    let banner = banner(config);
    let mut ctx = ErrorContext::new("GET");
    ctx.banner = &banner;
    let name = config.main.server_name.clone().unwrap_or_default();
    ctx.server_name = &name;
    let page = errors::error_body(408, &ctx);
    Bytes::from(format!(
        "HTTP/1.1 408 Request Timeout\r\nDate: {}\r\nServer: {banner}\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: {}\r\n\r\n{page}",
        httpdate::fmt_http_date(SystemTime::now()),
        page.len(),
        errors::CONTENT_TYPE
    ))
}

/// The connection's bytes as hyper reads them, with the request-head timeout hyper
/// cannot answer: httpd sends 408 for a head whose request line arrived but not the
/// rest within the header timeout, and closes silently on nothing or a partial request
/// line. The clock starts with the connection, then with the first bytes of each later
/// head (a kept-alive connection's wait for them is KeepAliveTimeout's, `idle_watch`).
pub(super) struct Watched<'a, T> {
    pub(super) inner: T,
    pub(super) config: &'a ServerConfig,
    pub(super) state: Rc<RefCell<State>>,
    pub(super) timeout: Duration,
    pub(super) deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// `State::heads` when the clock started: a head handed over since stops it.
    pub(super) armed_at: u32,
    /// `State::heads` when the last response head was written (see [`SPELLINGS`]).
    pub(super) written_heads: u32,
    /// The 408 being written: what is left of it.
    pub(super) answer: Option<Bytes>,
}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncRead
    for Watched<'_, T>
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.answer.is_none() {
            let before = buf.filled().len();
            let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
            let fresh = &buf.filled()[before..];
            let (busy, heads) = this
                .state
                .try_borrow()
                .map_or((true, this.armed_at), |st| (st.busy(), st.heads));
            if busy || heads != this.armed_at {
                // The head was handed over: this clock is done.
                this.deadline = None;
            }
            if !busy && !fresh.is_empty() {
                if this.deadline.is_none() {
                    this.deadline = Some(Box::pin(tokio::time::sleep(this.timeout)));
                    this.armed_at = heads;
                }
                if fresh.contains(&b'\n') {
                    if let Ok(mut st) = this.state.try_borrow_mut() {
                        st.head_started = true;
                    }
                }
            }
            if !matches!(polled, Poll::Pending) {
                return polled;
            }
            let Some(deadline) = this.deadline.as_mut() else {
                return Poll::Pending;
            };
            if std::future::Future::poll(deadline.as_mut(), cx).is_pending() {
                return Poll::Pending;
            }
            this.deadline = None;
            let line_in = this
                .state
                .try_borrow()
                .is_ok_and(|st| st.head_started && !st.busy() && st.heads == this.armed_at);
            if !line_in {
                // Nothing, or part of a request line: closed without a word.
                return Poll::Ready(Ok(()));
            }
            this.answer = Some(timeout_page(this.config));
        }
        // Write the 408, then end the input: hyper closes the connection.
        while let Some(rest) = this.answer.as_mut().filter(|r| !r.is_empty()) {
            match Pin::new(&mut this.inner).poll_write(cx, rest) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    let _ = rest.split_to(n);
                }
                Poll::Ready(_) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        if Pin::new(&mut this.inner).poll_flush(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }
}

/// The field names hyper's title case spells otherwise than httpd (same lengths, so the
/// bytes hyper counts do not change).
pub(super) const SPELLINGS: &[(&[u8], &[u8])] = &[
    (b"\r\nEtag:", b"\r\nETag:"),
    (b"\r\nWww-Authenticate:", b"\r\nWWW-Authenticate:"),
    (b"\r\nContent-Md5:", b"\r\nContent-MD5:"),
];

/// For the first bytes of a response head: a copy with httpd's spelling of the field
/// names (if any differs), and where the head ends in `buf`. Only head bytes are
/// touched, never a body's.
fn respell(buf: &[u8]) -> (Option<Vec<u8>>, Option<usize>) {
    if !buf.starts_with(b"HTTP/1.") {
        return (None, None);
    }
    // One pass over the line starts of the head: a dozen short comparisons.
    let mut fixed: Option<Vec<u8>> = None;
    let mut at = 0;
    while let Some(i) = find(&buf[at..], b"\r\n") {
        at += i;
        let line = &buf[at..];
        if line.starts_with(b"\r\n\r\n") {
            return (fixed, Some(at + 4));
        }
        if let Some((wrong, right)) = SPELLINGS.iter().find(|(w, _)| line.starts_with(w)) {
            fixed.get_or_insert_with(|| buf.to_vec())[at..at + wrong.len()].copy_from_slice(right);
        }
        at += 2;
    }
    (fixed, None)
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl<T> Watched<'_, T> {
    /// A response head is due: a request was handed over since the last head written.
    pub(super) fn head_due(&self) -> bool {
        self.state
            .try_borrow()
            .is_ok_and(|st| st.heads != self.written_heads)
    }

    /// [`respell`] when a response head is due.
    pub(super) fn respell(&self, buf: &[u8]) -> (Option<Vec<u8>>, Option<usize>) {
        if !self.head_due() {
            return (None, None);
        }
        respell(buf)
    }

    /// `n` bytes of `buf` went out: once past the end of a final head (not a `100
    /// Continue`), the next head is due only after the next request.
    pub(super) fn wrote(&mut self, n: usize, buf: &[u8], end: Option<usize>) {
        if end.is_some_and(|end| n >= end) && !buf.starts_with(b"HTTP/1.1 100 ") {
            if let Ok(st) = self.state.try_borrow() {
                self.written_heads = st.heads;
            }
        }
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Watched<'_, T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let (fixed, end) = this.respell(buf);
        let polled = Pin::new(&mut this.inner).poll_write(cx, fixed.as_deref().unwrap_or(buf));
        if let Poll::Ready(Ok(n)) = polled {
            this.wrote(n, buf, end);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().position(|b| !b.is_empty());
        let (fixed, end) = first.map_or((None, None), |i| this.respell(&bufs[i]));
        let polled = match (&fixed, first) {
            (Some(copy), Some(i)) => {
                let mut slices: Vec<std::io::IoSlice<'_>> = bufs.to_vec();
                slices[i] = std::io::IoSlice::new(copy);
                Pin::new(&mut this.inner).poll_write_vectored(cx, &slices)
            }
            _ => Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
        };
        if let (Poll::Ready(Ok(n)), Some(i)) = (&polled, first) {
            // Bytes before the first non-empty slice: none (they are empty).
            this.wrote(*n, &bufs[i], end);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_field_names_get_httpds_spelling_and_bodies_stay_as_they_are() {
        // (bytes written, what goes out instead if anything, whether the head ends there)
        let cases: &[(&str, Option<&str>, bool)] = &[
            (
                "HTTP/1.1 200 OK\r\nEtag: \"x\"\r\nContent-Length: 0\r\n\r\n",
                Some("HTTP/1.1 200 OK\r\nETag: \"x\"\r\nContent-Length: 0\r\n\r\n"),
                true,
            ),
            (
                "HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Basic\r\n\r\n\r\nEtag: body",
                Some("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n\r\n\r\nEtag: body"),
                true,
            ),
            ("HTTP/1.1 200 OK\r\nDate: x\r\n\r\n", None, true),
            // Not a head: a body chunk is never touched.
            ("\r\nEtag: x\r\n\r\n", None, false),
            // A head cut before its end: fixed as far as it goes.
            (
                "HTTP/1.1 200 OK\r\nEtag: x",
                Some("HTTP/1.1 200 OK\r\nETag: x"),
                false,
            ),
        ];
        for (input, fixed, end) in cases {
            let (got, got_end) = respell(input.as_bytes());
            assert_eq!(
                got.as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
                fixed.map(str::to_owned),
                "{input:?}"
            );
            let head_end = input.find("\r\n\r\n").map(|i| i + 4);
            assert_eq!(got_end, head_end.filter(|_| *end), "{input:?}");
        }
    }
}
