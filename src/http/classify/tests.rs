use super::*;
use crate::classify::NotSent;
use crate::error::BoxError;
use http::Method;
use std::io;

fn request(method: Method) -> Request<()> {
    Request::builder()
        .method(method)
        .uri("http://127.0.0.1/")
        .body(())
        .unwrap()
}

fn status(code: u16) -> Response<String> {
    Response::builder()
        .status(code)
        .body(String::new())
        .unwrap()
}

fn classify(req: &Request<()>, outcome: Result<&Response<String>, &BoxError>) -> Classification {
    HttpClassifier::new().classify(req, outcome)
}

#[test]
fn the_default_retryable_statuses() {
    let get = request(Method::GET);
    for code in [500, 502, 503, 504, 408, 429] {
        assert_eq!(
            classify(&get, Ok(&status(code))),
            Classification::retryable(Reason::Status(code))
        );
    }
    for code in [400, 401, 403, 404, 409, 501, 505] {
        assert_eq!(
            classify(&get, Ok(&status(code))),
            Classification::fatal(Reason::Status(code))
        );
    }
    for code in [200, 204, 301, 304] {
        assert!(classify(&get, Ok(&status(code))).is_success());
    }
}

#[test]
fn the_status_set_is_configurable() {
    let classifier = HttpClassifier::new()
        .retry_on(StatusCode::CONFLICT)
        .no_retry_on(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(classifier.retries_status(StatusCode::CONFLICT));
    assert!(!classifier.retries_status(StatusCode::INTERNAL_SERVER_ERROR));
    assert!(classifier.retries_status(StatusCode::BAD_GATEWAY));
}

#[test]
fn unsafe_methods_need_a_reason() {
    let busy = status(503);
    for method in [Method::POST, Method::PATCH, Method::CONNECT] {
        assert!(
            classify(&request(method.clone()), Ok(&busy)).is_fatal(),
            "{method}"
        );
    }
    for method in [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
        // RFC 10008: safe and idempotent, as `http::Method::is_idempotent` knows.
        Method::QUERY,
    ] {
        assert!(
            classify(&request(method.clone()), Ok(&busy)).is_retryable(),
            "{method}"
        );
    }
    let mut keyed = request(Method::POST);
    keyed
        .headers_mut()
        .insert(IDEMPOTENCY_KEY, "8e03978e".parse().unwrap());
    assert!(classify(&keyed, Ok(&busy)).is_retryable());
    let mut marked = request(Method::POST);
    marked.extensions_mut().insert(Idempotent);
    assert!(classify(&marked, Ok(&busy)).is_retryable());
    let layer_wide = HttpClassifier::new().retry_unsafe_methods(true);
    let outcome: Result<&Response<String>, &BoxError> = Ok(&busy);
    assert!(
        layer_wide
            .classify(&request(Method::POST), outcome)
            .is_retryable()
    );
}

#[test]
fn a_request_never_sent_is_retried_whatever_its_method() {
    let refused: BoxError = io::Error::from(io::ErrorKind::ConnectionRefused).into();
    let reset: BoxError = io::Error::from(io::ErrorKind::ConnectionReset).into();
    let post = request(Method::POST);
    assert_eq!(
        classify(&post, Err(&refused)),
        Classification::retryable(Reason::NeverSent(NotSent::ConnectionRefused))
    );
    assert_eq!(
        classify(&post, Err(&reset)),
        Classification::fatal(Reason::Reset)
    );
    assert_eq!(
        classify(&request(Method::GET), Err(&reset)),
        Classification::retryable(Reason::Reset)
    );
}

#[test]
fn retry_after_comes_with_429_and_503_only() {
    let get = request(Method::GET);
    let throttled = Response::builder()
        .status(429)
        .header("retry-after", "3")
        .body(String::new())
        .unwrap();
    assert_eq!(
        classify(&get, Ok(&throttled)),
        Classification::retry_after(Reason::Status(429), std::time::Duration::from_secs(3))
    );
    let gateway = Response::builder()
        .status(502)
        .header("retry-after", "3")
        .body(String::new())
        .unwrap();
    assert_eq!(
        classify(&get, Ok(&gateway)),
        Classification::retryable(Reason::Status(502))
    );
    let garbage = Response::builder()
        .status(503)
        .header("retry-after", "whenever")
        .body(String::new())
        .unwrap();
    assert_eq!(
        classify(&get, Ok(&garbage)),
        Classification::retryable(Reason::Status(503))
    );
}
