//! Moving bytes: the client's socket, read ahead in large pieces after replaying the bytes
//! already read from it, and the bidirectional copy between client and upstream.
//!
//! Bulk traffic through the ingress is bound by CPU, mostly system calls and copies. Two things
//! keep both down:
//! - rustls asks its socket for at most about 4 KiB at a time, so a 16 KiB TLS record would
//!   take four `recv` calls; [`Prefixed`] reads the socket 64 KiB at a time and hands rustls
//!   what it asks for from memory.
//! - The client-to-upstream direction gathers the plaintext of every TLS record that is ready
//!   ([`AsyncBufRead`] on rustls's buffer) and writes it to the upstream in one call.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use prometheus::IntCounter;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

/// Copy buffer of each direction.
pub(crate) const COPY_BUF: usize = 64 * 1024;
/// How much of the client's socket is read at once.
const READ_AHEAD: usize = 64 * 1024;

/// A stream whose first reads return `prefix` (the ClientHello already consumed), then the
/// rest, read from the socket up to [`READ_AHEAD`] bytes at a time. The read-ahead buffer is
/// allocated on the first read past the prefix.
#[derive(Debug)]
pub(crate) struct Prefixed<S> {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            end: prefix.len(),
            buf: prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> Prefixed<S> {
    /// Refills the buffer when it is empty; `Ready(Ok(()))` with nothing buffered is end of
    /// stream.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pos < self.end {
            return Poll::Ready(Ok(()));
        }
        if self.buf.len() < READ_AHEAD {
            self.buf = vec![0; READ_AHEAD];
        }
        let mut rb = ReadBuf::new(&mut self.buf);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
        self.end = rb.filled().len();
        self.pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Nothing buffered and a large read: straight from the socket, no extra copy.
        if this.pos == this.end && buf.remaining() >= READ_AHEAD {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        ready!(this.fill(cx))?;
        let n = buf.remaining().min(this.end - this.pos);
        buf.put_slice(&this.buf[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncBufRead for Prefixed<S> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        ready!(this.fill(cx))?;
        Poll::Ready(Ok(&this.buf[this.pos..this.end]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.pos = (this.pos + amt).min(this.end);
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Bytes relayed each way, counted as they pass so that long-lived gRPC connections show up in
/// the metrics before they close.
pub(crate) struct Counters<'a> {
    pub client_to_upstream: &'a IntCounter,
    pub upstream_to_client: &'a IntCounter,
}

/// Bytes read and not yet written on.
struct Staged {
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    total: u64,
}

impl Staged {
    fn new() -> Self {
        Self {
            buf: vec![0; COPY_BUF].into_boxed_slice(),
            pos: 0,
            end: 0,
            total: 0,
        }
    }

    /// Writes everything staged to `to`, counting it.
    fn poll_drain<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        to: &mut W,
        counter: &IntCounter,
    ) -> Poll<io::Result<()>> {
        while self.pos < self.end {
            let n = ready!(Pin::new(&mut *to).poll_write(cx, &self.buf[self.pos..self.end]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pos += n;
            self.total += n as u64;
            counter.inc_by(n as u64);
        }
        (self.pos, self.end) = (0, 0);
        Poll::Ready(Ok(()))
    }
}

/// Client to upstream. rustls hands out one TLS record's plaintext (at most 16 KiB) at a time;
/// what is ready at once is gathered into one buffer and written with one system call, which
/// costs less than a copy per 16 KiB write to the upstream.
struct Forward {
    staged: Staged,
    eof: bool,
    done: bool,
}

impl Forward {
    fn new() -> Self {
        Self {
            staged: Staged::new(),
            eof: false,
            done: false,
        }
    }

    fn poll<A, B>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut A,
        to: &mut B,
        counter: &IntCounter,
    ) -> Poll<io::Result<()>>
    where
        A: AsyncBufRead + Unpin + ?Sized,
        B: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            let mut source_pending = false;
            let s = &mut self.staged;
            while s.end < s.buf.len() && !self.eof {
                match Pin::new(&mut *from).poll_fill_buf(cx) {
                    Poll::Ready(Ok([])) => self.eof = true,
                    Poll::Ready(Ok(data)) => {
                        let n = data.len().min(s.buf.len() - s.end);
                        s.buf[s.end..s.end + n].copy_from_slice(&data[..n]);
                        Pin::new(&mut *from).consume(n);
                        s.end += n;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        source_pending = true;
                        break;
                    }
                }
            }
            ready!(s.poll_drain(cx, to, counter))?;
            if self.eof {
                ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            if source_pending {
                return Poll::Pending;
            }
        }
    }
}

/// Upstream to client: through a buffer, flushing the client (rustls may hold encrypted
/// records) whenever the upstream has nothing more for now.
struct Backward {
    staged: Staged,
    eof: bool,
    unflushed: bool,
    done: bool,
}

impl Backward {
    fn new() -> Self {
        Self {
            staged: Staged::new(),
            eof: false,
            unflushed: false,
            done: false,
        }
    }

    fn poll<A, B>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut B,
        to: &mut A,
        counter: &IntCounter,
    ) -> Poll<io::Result<()>>
    where
        A: AsyncWrite + Unpin + ?Sized,
        B: AsyncRead + Unpin + ?Sized,
    {
        loop {
            let s = &mut self.staged;
            if s.pos == s.end && !self.eof {
                let mut rb = ReadBuf::new(&mut s.buf);
                match Pin::new(&mut *from).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => {
                        (s.pos, s.end) = (0, rb.filled().len());
                        self.eof = s.end == 0;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        if self.unflushed {
                            ready!(Pin::new(&mut *to).poll_flush(cx))?;
                            self.unflushed = false;
                        }
                        return Poll::Pending;
                    }
                }
            }
            self.unflushed |= s.pos < s.end;
            ready!(s.poll_drain(cx, to, counter))?;
            if self.eof {
                ready!(Pin::new(&mut *to).poll_flush(cx))?;
                ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// Copies both ways until both sides have closed, passing half-closes on; returns the bytes
/// moved (client to upstream, upstream to client). On an error the caller drops both streams,
/// which closes them.
pub(crate) async fn pump<A, B>(
    client: &mut A,
    upstream: &mut B,
    counters: Counters<'_>,
) -> io::Result<(u64, u64)>
where
    A: AsyncBufRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut forward = Forward::new();
    let mut backward = Backward::new();
    poll_fn(|cx| {
        if !forward.done
            && let Poll::Ready(Err(e)) =
                forward.poll(cx, client, upstream, counters.client_to_upstream)
        {
            return Poll::Ready(Err(e));
        }
        if !backward.done
            && let Poll::Ready(Err(e)) =
                backward.poll(cx, upstream, client, counters.upstream_to_client)
        {
            return Poll::Ready(Err(e));
        }
        if forward.done && backward.done {
            Poll::Ready(Ok((forward.staged.total, backward.staged.total)))
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_prefix_comes_first_even_in_small_reads() {
        let rest: &[u8] = b"world";
        let mut s = Prefixed::new(b"hello ".to_vec(), rest);
        let mut out = Vec::new();
        let mut chunk = [0u8; 4];
        loop {
            let n = s.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(out, b"hello world");
    }

    #[tokio::test]
    async fn reads_ahead_and_serves_reads_of_any_size_in_order() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (mut w, r) = tokio::io::duplex(8192);
        let sent = data.clone();
        tokio::spawn(async move {
            for chunk in sent.chunks(7000) {
                w.write_all(chunk).await.unwrap();
            }
        });
        let mut s = Prefixed::new(b"hi".to_vec(), r);
        let mut out = Vec::new();
        let mut sizes = [1usize, 4096, 100, READ_AHEAD + 1, 17].into_iter().cycle();
        loop {
            let mut chunk = vec![0u8; sizes.next().unwrap()];
            let n = s.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(&out[..2], b"hi");
        assert_eq!(&out[2..], &data[..]);
    }

    #[tokio::test]
    async fn pump_moves_both_ways_passes_half_closes_and_counts() {
        let (client_far, client_near) = tokio::io::duplex(4096);
        let (upstream_near, upstream_far) = tokio::io::duplex(4096);
        let up = IntCounter::new("up", "up").unwrap();
        let down = IntCounter::new("down", "down").unwrap();
        let request: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
        let response: Vec<u8> = (0..150_000u32).map(|i| (i % 7) as u8).collect();

        // The upstream reads the whole request (until the client's half-close), then answers.
        let answer = response.clone();
        let upstream = tokio::spawn(async move {
            let mut far = upstream_far;
            let mut got = Vec::new();
            far.read_to_end(&mut got).await.unwrap();
            far.write_all(&answer).await.unwrap();
            far.shutdown().await.unwrap();
            got
        });
        let sent = request.clone();
        let client = tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(client_far);
            let writer = async {
                w.write_all(&sent).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            let reader = r.read_to_end(&mut got);
            let (_, n) = tokio::join!(writer, reader);
            n.unwrap();
            got
        });
        let mut near = Prefixed::new(Vec::new(), client_near);
        let mut upstream_io = upstream_near;
        let counters = Counters {
            client_to_upstream: &up,
            upstream_to_client: &down,
        };
        let (a, b) = pump(&mut near, &mut upstream_io, counters).await.unwrap();
        assert_eq!(upstream.await.unwrap(), request);
        assert_eq!(client.await.unwrap(), response);
        assert_eq!((a, b), (request.len() as u64, response.len() as u64));
        assert_eq!((up.get(), down.get()), (a, b));
    }
}
