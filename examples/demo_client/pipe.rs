//! Connections over in-memory pipes, for the embedded demo on a simulated clock: the real hyper
//! client talks HTTP/1 to the real hyper server, byte for byte, with no socket in between, so
//! that tokio's paused clock (which jumps ahead whenever every task waits) makes a run exact.
//! Over real sockets, the kernel's timing would decide the order of events; here the seed does.

use std::future::{Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;

/// Connects to a server in the same process: every connection is a new pipe, whose server end
/// `serve` takes (and serves on a task of its own).
#[derive(Clone)]
pub struct PipeConnector {
    serve: Arc<dyn Fn(DuplexStream) + Send + Sync>,
}

impl PipeConnector {
    /// A connector whose every connection is a new pipe, its server end handed to `serve`.
    pub fn new(serve: impl Fn(DuplexStream) + Send + Sync + 'static) -> Self {
        PipeConnector {
            serve: Arc::new(serve),
        }
    }
}

/// The client's end of a pipe.
pub struct Pipe(TokioIo<DuplexStream>);

impl tower::Service<Uri> for PipeConnector {
    type Response = Pipe;
    type Error = io::Error;
    type Future = Ready<io::Result<Pipe>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let (client, server) = tokio::io::duplex(64 * 1024);
        (self.serve)(server);
        ready(Ok(Pipe(TokioIo::new(client))))
    }
}

impl Connection for Pipe {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Pipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Pipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
