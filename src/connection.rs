//! A client connection with backpressure and a write timeout.
//!
//! The HTTP/1 dispatcher reads pipelined requests and queues their answers in memory for
//! as long as the client sends: a client that sends requests and never reads the answers
//! would have its answers piled up in this process (and in the kernel's send queue) for
//! as long as it stays connected. This stream stops reading new requests while earlier
//! answers are still waiting to leave, and fails the connection when no byte of them
//! could be written for `PAYWALL_WRITE_TIMEOUT_SECS`: a slow reader holds at most one
//! round of answers, and a reader that never reads is let go.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

pub struct GuardedStream {
    io: TcpStream,
    timeout: Duration,
    /// Set while the last write did not take everything it was given: the time by which
    /// some byte must go out. Reading waits while it is set.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl GuardedStream {
    pub fn new(io: TcpStream, timeout: Duration) -> GuardedStream {
        GuardedStream {
            io,
            timeout,
            stalled: None,
        }
    }

    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.io.peer_addr()
    }

    /// Keeps account of a write of `offered` bytes that came back as `result`.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        offered: usize,
        result: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(n)) if n >= offered => {
                if self.stalled.take().is_some() {
                    // Reading waited for this: let the dispatcher read again.
                    cx.waker().wake_by_ref();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Ok(n)) => {
                // Some went out, the rest waits: the client reads, slowly.
                let deadline = Instant::now() + self.timeout;
                match &mut self.stalled {
                    Some(timer) if n > 0 => timer.as_mut().reset(deadline),
                    Some(_) => {}
                    None => self.stalled = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(timed_out())),
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the client read none of its answers within the write timeout",
    )
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(timer) = &mut this.stalled {
            // Answers are waiting to leave: no new requests until they have. Wake when
            // the socket can take more (the dispatcher then writes) or the time is up.
            // Room to write means the client has been reading: that is never a
            // timeout, however late this task runs (a busy machine may not run it for
            // a while after the client read).
            if this.io.poll_write_ready(cx).is_ready() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(timed_out()));
            }
            return Poll::Pending;
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.written(cx, buf.len(), result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let offered = bufs.iter().map(|b| b.len()).sum();
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.written(cx, offered, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
