//! [`ByAuthority`]: the HTTP and gRPC presets' key for state kept per host.

use std::fmt;
use std::hash::{Hash, Hasher};

use http::Request;
use http::uri::{Authority, Scheme};

use crate::scope::ScopeKey;

/// Keys requests by the scheme, host and port of their URI: one retry budget and one circuit
/// per host. A request without an authority (a tonic channel's, which names only the method)
/// has its own single key: one channel, one dependency.
///
/// Hosts are compared as RFC 3986 §6.2.2 and §6.2.3 say: case-insensitively (`Example.com` and
/// `example.com` are one host) and with the scheme's default port filled in (`http://host` and
/// `http://host:80` are one). Userinfo (`user:password@`) is no part of the key, so it never
/// reaches an event or a scope's name.
///
/// A key's `Debug` form, which names its circuit in events, is the lowercase scheme, host and
/// port: `https://example.com:443` for `https://alice:pw@Example.COM/`.
///
/// ```
/// use tower_tenacity::http::ByAuthority;
/// use tower_tenacity::retry::RetryLayer;
///
/// // Outside the presets, which key by host already: one retry budget per host, for at most
/// // 1024 hosts.
/// let layer = RetryLayer::new().budget_per_key(ByAuthority, 1024);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByAuthority;

/// A request's scheme, host and port: the key [`ByAuthority`] gives. Made without allocating:
/// it shares the request URI's bytes, and compares and hashes its host case-insensitively in
/// place. The authority is parsed once, when the key is made: a lookup on every request then
/// compares and hashes a slice.
#[derive(Clone)]
pub struct HostKey {
    scheme: Option<Scheme>,
    // Kept whole (a reference count, not a copy); only `host` of it is read.
    authority: Option<Authority>,
    host: std::ops::Range<usize>,
    port: Option<u16>,
    // The host has an upper-case letter: hashing it must fold it first.
    mixed_case: bool,
}

impl HostKey {
    fn host(&self) -> &[u8] {
        let authority = self.authority.as_ref().map_or("", Authority::as_str);
        authority
            .as_bytes()
            .get(self.host.clone())
            .unwrap_or_default()
    }
}

/// Where the host is in an authority (`user:pw@host:port`, `[::1]:port`), its port (`None` if
/// it is not a number that fits), and whether the host has a capital letter: one pass over
/// the bytes, as this runs for every request.
fn host_and_port(authority: &str) -> (std::ops::Range<usize>, Option<u16>, bool) {
    let (mut start, mut colon, mut capitals, mut in_brackets) = (0, None, false, false);
    for (i, &b) in authority.as_bytes().iter().enumerate() {
        match b {
            // Whatever came before was userinfo.
            b'@' => (start, colon, capitals) = (i + 1, None, false),
            b'[' => in_brackets = true,
            b']' => in_brackets = false,
            b':' if !in_brackets => colon = Some(i),
            b'A'..=b'Z' => capitals = true,
            _ => {}
        }
    }
    let end = colon.unwrap_or(authority.len());
    let port = match authority.as_bytes().get(end + 1..) {
        Some(digits) if !digits.is_empty() => digits.iter().try_fold(0u16, |port, &b| {
            let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
            port.checked_mul(10)?.checked_add(u16::from(digit))
        }),
        _ => None,
    };
    (start..end, port, capitals)
}

/// The port a scheme means when none is written.
fn default_port(scheme: Option<&Scheme>) -> Option<u16> {
    if scheme == Some(&Scheme::HTTP) {
        Some(80)
    } else if scheme == Some(&Scheme::HTTPS) {
        Some(443)
    } else {
        None
    }
}

impl PartialEq for HostKey {
    fn eq(&self, other: &Self) -> bool {
        // `Scheme`'s own comparison is case-insensitive already.
        self.port == other.port
            && self.scheme == other.scheme
            && self.authority.is_some() == other.authority.is_some()
            && (self.host() == other.host() || self.host().eq_ignore_ascii_case(other.host()))
    }
}

impl Eq for HostKey {}

impl Hash for HostKey {
    /// The host and the port: keys that differ only in their scheme share a hash, and are told
    /// apart by `eq`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.port.map_or(u32::MAX, u32::from));
        // Equal hosts have equal lengths, so they are cut into the same pieces; a piece with an
        // upper-case letter is lowercased on the stack.
        let mut folded = [0u8; 64];
        for chunk in self.host().chunks(folded.len()) {
            if self.mixed_case {
                let folded = &mut folded[..chunk.len()];
                folded.copy_from_slice(chunk);
                folded.make_ascii_lowercase();
                state.write(folded);
            } else {
                state.write(chunk);
            }
        }
    }
}

/// `text` lowercased, as the key compares it.
fn write_lowercase(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    text.chars()
        .try_for_each(|c| fmt::Write::write_char(f, c.to_ascii_lowercase()))
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = &self.scheme {
            write_lowercase(f, scheme.as_str())?;
            f.write_str("://")?;
        }
        if self.authority.is_none() {
            return f.write_str("(no authority)");
        }
        let host = String::from_utf8_lossy(self.host());
        write_lowercase(f, &host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

impl<B> ScopeKey<Request<B>> for ByAuthority {
    type Key = HostKey;

    fn key(&self, request: &Request<B>) -> HostKey {
        let uri = request.uri();
        let scheme = uri.scheme().cloned();
        let authority = uri.authority().cloned();
        let text = authority.as_ref().map_or("", Authority::as_str);
        let (host, port, mixed_case) = host_and_port(text);
        HostKey {
            port: port.or_else(|| default_port(scheme.as_ref())),
            scheme,
            authority,
            host,
            mixed_case,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use proptest::prelude::*;

    use super::*;

    fn key(uri: &str) -> HostKey {
        ByAuthority.key(&Request::get(uri).body(()).unwrap())
    }

    fn hash(key: &HostKey) -> u64 {
        foldhash::fast::FixedState::with_seed(7).hash_one(key)
    }

    // What `ByAuthority`'s doc showed, and the key of a URI full of secrets (from
    // `tests/secrets.rs`): the trait that gives keys is the crate's own.
    #[test]
    fn requests_to_one_host_share_a_key_named_by_scheme_host_and_port() {
        let a = key("http://127.0.0.1:3000/x");
        assert_eq!(a, key("http://127.0.0.1:3000/y?z"));
        assert_ne!(a, key("http://127.0.0.1:3001/x"));
        assert_eq!(
            format!("{:?}", key("http://127.0.0.1:3001/x")),
            "http://127.0.0.1:3001"
        );
        let upper = key("https://alice:pw@Example.COM/");
        assert_eq!(upper, key("https://example.com:443/"));
        assert_eq!(format!("{upper:?}"), "https://example.com:443");
        let secret = "http://alice:pw-4f7a9e@127.0.0.1:3000/status/503?access_token=tok-8c1d2b&x=1";
        assert_eq!(format!("{:?}", key(secret)), "http://127.0.0.1:3000");
        // From `tests/zero_alloc.rs`, which checks that making these keys allocates nothing.
        let (plain, secret) = (
            key("http://example.com:8080/x"),
            key("http://alice:pw@Example.COM:8080/y?access_token=t"),
        );
        assert_eq!(plain, secret);
        assert_eq!(hash(&plain), hash(&secret));
    }

    #[test]
    fn one_host_whatever_its_case_its_userinfo_and_its_default_port() {
        let plain = key("http://example.com/");
        for same in [
            "http://Example.COM/x",
            "HTTP://example.com:80/",
            "http://alice:secret@EXAMPLE.com/?access_token=t",
        ] {
            assert_eq!(key(same), plain, "{same}");
            assert_eq!(hash(&key(same)), hash(&plain), "{same}");
            assert_eq!(format!("{:?}", key(same)), "http://example.com:80");
        }
        for other in [
            "https://example.com/",
            "http://example.com:8080/",
            "http://example.org/",
        ] {
            assert_ne!(key(other), plain, "{other}");
        }
        assert_eq!(format!("{:?}", key("/only/a/path")), "(no authority)");
        assert_eq!(
            format!("{:?}", key("http://[::1]:3000/")),
            "http://[::1]:3000"
        );
    }

    #[test]
    fn the_host_and_port_are_found_past_userinfo_and_in_brackets() {
        let cases: [(&str, &str, Option<u16>); 7] = [
            ("example.com", "example.com", None),
            ("example.com:8080", "example.com", Some(8080)),
            ("a:b@c@example.com:1", "example.com", Some(1)),
            ("[::1]:3000", "[::1]", Some(3000)),
            ("[::1]", "[::1]", None),
            ("example.com:70000", "example.com", None),
            ("example.com:", "example.com", None),
        ];
        assert!(host_and_port("User@Example.com").2, "a capital in the host");
        assert!(!host_and_port("User@example.com").2, "not in the userinfo");
        for (authority, host, port) in cases {
            let (range, found, capitals) = host_and_port(authority);
            assert_eq!((&authority[range], found), (host, port), "{authority}");
            assert!(!capitals);
        }
    }

    proptest! {
        /// A host in any mix of cases, with or without userinfo and its default port, is one
        /// key (equal, one hash).
        #[test]
        fn case_and_userinfo_make_no_other_key(
            host in "[a-z0-9][a-z0-9.-]{0,70}",
            flips in proptest::collection::vec(any::<bool>(), 71),
            secret in "[a-z]{6,12}",
            explicit_port in any::<bool>(),
        ) {
            let mixed: String = host
                .chars()
                .zip(&flips)
                .map(|(c, flip)| if *flip { c.to_ascii_uppercase() } else { c })
                .collect();
            let port = if explicit_port { ":443" } else { "" };
            let plain = key(&format!("https://{host}/"));
            let other = key(&format!("https://user:{secret}@{mixed}{port}/p?token={secret}"));
            prop_assert_eq!(&plain, &other);
            prop_assert_eq!(hash(&plain), hash(&other));
            // Its name is the lowercase host and the port, nothing of the userinfo.
            prop_assert_eq!(format!("{other:?}"), format!("https://{host}:443"));
        }
    }
}
