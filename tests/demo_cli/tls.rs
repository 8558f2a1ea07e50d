//! https:// against a local rustls server with a self-signed certificate: trusted with
//! `--cacert`, refused without it.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{report, run};

/// A rustls server on 127.0.0.1 answering `secure` to everything; its certificate's PEM.
async fn tls_server() -> (String, String, tokio::task::JoinHandle<()>) {
    let (acceptor, _, pem) = crate::self_signed::self_signed("127.0.0.1");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/secure", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake: fine.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|_: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"secure"))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, pem, task)
}

#[tokio::test]
async fn https_with_a_private_ca_and_without() {
    let (url, pem, server) = tls_server().await;
    let dir = std::env::temp_dir().join(format!("demo-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cacert = dir.join("ca.pem");
    std::fs::write(&cacert, pem).unwrap();

    let output = run(&[
        "--json",
        "-n",
        "3",
        "--cacert",
        cacert.to_str().unwrap(),
        &url,
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let trusted = report(&output);
    assert_eq!(trusted["succeeded"], 3);
    assert_eq!(trusted["results"][0]["status"], 200);

    // Without the CA the certificate is unknown: fatal, not retried, and said so.
    let output = run(&["--json", &url]).await;
    assert_eq!(output.status.code(), Some(1));
    let refused = report(&output);
    assert_eq!(refused["failed"], 1);
    assert_eq!(refused["attempts"], 1, "not retried: {refused}");
    assert_eq!(refused["outcomes"]["TLS certificate: unknown issuer"], 1);
    let error = refused["results"][0]["error"].as_str().unwrap();
    assert!(error.to_lowercase().contains("certificate"), "{error}");

    let output = run(&["--cacert", dir.join("missing.pem").to_str().unwrap(), &url]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--cacert"));
    server.abort();
    std::fs::remove_dir_all(dir).unwrap();
}
