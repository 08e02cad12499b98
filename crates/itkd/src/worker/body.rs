//! The response body: bytes, a file region read in chunks, or a script's streamed output; it writes the access-log line when it is dropped.

use super::*;

/// A response body: bytes in memory or a file region read in chunks (blocking reads are
/// fine: this process serves one connection).
pub struct ResponseBody {
    pub(super) body: Body,
    /// The connection's state, marked idle when the body is done (dropped).
    pub(super) state: Option<Rc<RefCell<State>>>,
    /// A CGI script's output, streamed as it comes.
    pub(super) cgi: Option<Box<crate::cgi::CgiOutput>>,
    /// Body bytes handed to hyper so far.
    pub(super) sent: u64,
    /// The access-log line, written when the body is done (dropped).
    pub(super) log: Option<PendingLog>,
}

impl From<Body> for ResponseBody {
    fn from(body: Body) -> Self {
        ResponseBody {
            body,
            state: None,
            cgi: None,
            sent: 0,
            log: None,
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        let Some(state) = &self.state else {
            return;
        };
        if let Ok(mut st) = state.try_borrow_mut() {
            st.phase = Phase::Waiting {
                since: Instant::now(),
            };
        }
        if let (Some(PendingLog { mut entry, index }), Ok(st)) =
            (self.log.take(), state.try_borrow())
        {
            entry.body_bytes = self.sent;
            entry.bytes_sent += self.sent;
            entry.duration = entry.request_time.elapsed().unwrap_or_default();
            if let Some(logs) = st.server_logs(index) {
                logs::write_access(logs, &entry);
            }
        }
    }
}

/// Read size for files: large enough for few syscalls, small enough to stay light.
pub(super) const CHUNK: u64 = 256 * 1024;

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = this.next_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            this.sent += frame.data_ref().map_or(0, |d| d.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        if self.cgi.is_some() {
            return false;
        }
        match &self.body {
            Body::Empty => true,
            Body::Bytes(b) => b.is_empty(),
            Body::File { len, .. } => *len == 0,
        }
    }
}

impl ResponseBody {
    pub(super) fn next_frame(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self;
        if let Some(output) = &mut this.cgi {
            return output
                .poll_chunk(_cx)
                .map(|chunk| chunk.map(|r| r.map(Frame::data)));
        }
        match &mut this.body {
            Body::Empty => Poll::Ready(None),
            Body::Bytes(b) => {
                if b.is_empty() {
                    return Poll::Ready(None);
                }
                let data = std::mem::take(b);
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Body::File { file, offset, len } => {
                if *len == 0 {
                    return Poll::Ready(None);
                }
                let want = usize::try_from((*len).min(CHUNK)).unwrap_or(0);
                match itkd_sys::fileio::pread_new(file, *offset, want) {
                    Ok(buf) if buf.is_empty() => {
                        Poll::Ready(Some(Err(std::io::ErrorKind::UnexpectedEof.into())))
                    }
                    Ok(buf) => {
                        let n = buf.len();
                        *len -= n as u64;
                        *offset += n as u64;
                        Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
                    }
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}
