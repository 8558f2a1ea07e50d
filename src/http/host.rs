//! [`ByAuthority`]: the HTTP and gRPC presets' key for state kept per host.

use std::fmt;
use std::hash::{Hash, Hasher};

use http::Request;
use http::uri::{Authority, Scheme};

use crate::scope::ScopeKey;

/// Keys requests by the scheme and authority (host and port, as written) of their URI: one
/// retry budget and one circuit per host. A request without an authority (a tonic channel's,
/// which names only the method) has its own single key: one channel, one dependency.
///
/// ```
/// use http::Request;
/// use tower_tenacity::http::ByAuthority;
/// use tower_tenacity::scope::ScopeKey;
///
/// let a = Request::get("http://127.0.0.1:3000/x").body(()).unwrap();
/// let b = Request::get("http://127.0.0.1:3000/y?z").body(()).unwrap();
/// let c = Request::get("http://127.0.0.1:3001/x").body(()).unwrap();
/// assert_eq!(ByAuthority.key(&a), ByAuthority.key(&b));
/// assert_ne!(ByAuthority.key(&a), ByAuthority.key(&c));
/// assert_eq!(format!("{:?}", ByAuthority.key(&c)), "http://127.0.0.1:3001");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByAuthority;

/// A request's scheme and authority: the key [`ByAuthority`] gives. Made without allocating:
/// both share the request URI's bytes. Keys compare as written (`Example.com` and
/// `example.com` are two keys): a lookup on every request is a byte comparison, not a
/// case-folding one.
#[derive(Clone)]
pub struct HostKey {
    scheme: Option<Scheme>,
    authority: Option<Authority>,
}

impl HostKey {
    fn parts(&self) -> (&str, &str) {
        let scheme = self.scheme.as_ref().map_or("", Scheme::as_str);
        let authority = self.authority.as_ref().map_or("", Authority::as_str);
        (scheme, authority)
    }
}

impl PartialEq for HostKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for HostKey {}

impl Hash for HostKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (scheme, authority) = self.parts();
        state.write(scheme.as_bytes());
        state.write(authority.as_bytes());
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = &self.scheme {
            write!(f, "{scheme}://")?;
        }
        match &self.authority {
            Some(authority) => write!(f, "{authority}"),
            None => f.write_str("(no authority)"),
        }
    }
}

impl<B> ScopeKey<Request<B>> for ByAuthority {
    type Key = HostKey;

    fn key(&self, request: &Request<B>) -> HostKey {
        HostKey {
            scheme: request.uri().scheme().cloned(),
            authority: request.uri().authority().cloned(),
        }
    }
}
