//! What the gRPC tests share: reading a `grpc-timeout` back, and tonic's body again.
#![allow(dead_code)]

use std::time::Duration;

use http::Response;
use tonic::body::Body;
use tower::BoxError;

/// A `grpc-timeout` value read back (digits and a unit), as the server saw it.
pub fn decode_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// A response with tonic's body again, whatever body a layer put on it.
pub fn tonic_body<B>(response: Response<B>) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    response.map(Body::new)
}
