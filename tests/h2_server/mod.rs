//! A bare HTTP/2 server on 127.0.0.1 that resets the first stream to a path with the reason
//! the test picks, and answers every other stream as the test says: the stream errors a real
//! server or proxy sends, for the tests of how HTTP/2 failures are classified.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use h2::server::SendResponse;
use tokio::net::{TcpListener, TcpStream};

/// Which reset, if any, the first stream to a path gets.
type Resets = dyn Fn(&str) -> Option<h2::Reason> + Send + Sync;

#[derive(Clone)]
pub struct ResettingServer {
    resets: Arc<Resets>,
    answer: fn(SendResponse<Bytes>),
    /// Streams seen, per path.
    streams: Arc<Mutex<HashMap<String, usize>>>,
}

impl ResettingServer {
    /// Starts a server that resets the first stream to a path with `resets(path)`, and answers
    /// the others with `answer`.
    pub async fn start(
        resets: impl Fn(&str) -> Option<h2::Reason> + Send + Sync + 'static,
        answer: fn(SendResponse<Bytes>),
    ) -> (Self, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = ResettingServer {
            resets: Arc::new(resets),
            answer,
            streams: Arc::default(),
        };
        let serving = server.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(socket));
            }
        });
        (server, addr)
    }

    async fn serve(self, socket: TcpStream) {
        let Ok(mut connection) = h2::server::handshake(socket).await else {
            return;
        };
        while let Some(Ok((request, mut respond))) = connection.accept().await {
            let path = request.uri().path().to_owned();
            let first = {
                let mut streams = self.streams.lock().unwrap();
                let count = streams.entry(path.clone()).or_default();
                *count += 1;
                *count == 1
            };
            match (self.resets)(&path) {
                Some(reason) if first => respond.send_reset(reason),
                _ => (self.answer)(respond),
            }
        }
    }

    pub fn streams_to(&self, path: &str) -> usize {
        self.streams.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}
