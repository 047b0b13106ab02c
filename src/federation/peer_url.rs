//! Public node URLs in one canonical spelling, so that equal nodes compare equal everywhere.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::{Host, Url};

/// Longest accepted URL, in bytes. A badge server's address is short; a longer one is
/// junk or an attempt to make every node store and forward a large string.
pub const MAX_URL_LEN: usize = 256;

/// The public base URL of a node: `http` or `https`, a host, an optional port and path,
/// no credentials, query or fragment.
///
/// Canonical form: the `url` crate's serialisation (lowercase host, punycode, default port
/// dropped, dot segments resolved) without trailing slashes, e.g. `https://a.example` or
/// `https://a.example/badges`. Endpoints are formed as `{base}/health`, which is what
/// `status.js` does with the URLs of `/servers` too.
///
/// Cheap to clone: the core keeps many copies. Equal URLs are equal strings; the order is
/// by a 64-bit FNV-1a hash of the string, then the string (any fixed total order does for
/// the maps it keys, and this one compares in a nanosecond).
#[derive(Clone)]
pub struct PeerUrl {
    /// Kept beside the pointer so that comparing two URLs rarely reads either string.
    fnv: u64,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    text: Box<str>,
    /// Worked out once: the probe schedule asks for every URL on every round.
    literal_ip: Option<IpAddr>,
    localhost_name: bool,
}

impl PartialEq for PeerUrl {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.fnv == other.fnv && self.as_str() == other.as_str())
    }
}

impl Eq for PeerUrl {}

impl PartialOrd for PeerUrl {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PeerUrl {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.fnv
            .cmp(&other.fnv)
            .then_with(|| self.as_str().cmp(other.as_str()))
    }
}

impl std::hash::Hash for PeerUrl {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.fnv);
    }
}

/// Why a string is not an acceptable node URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("longer than {MAX_URL_LEN} bytes")]
    TooLong,
    #[error("not a URL: {0}")]
    Parse(#[from] url::ParseError),
    /// A host written without `https://` in front, the commonest slip.
    #[error("`{0}` has no scheme: write `https://{0}` (or `http://{0}` for plain HTTP)")]
    NoScheme(String),
    #[error("scheme `{0}` is not allowed (only http and https)")]
    Scheme(String),
    #[error("has no host")]
    NoHost,
    #[error("must not contain a user name or password")]
    Credentials,
    #[error("must not contain a query (`?…`)")]
    Query,
    #[error("must not contain a fragment (`#…`)")]
    Fragment,
    #[error("not in canonical form (expected `{0}`)")]
    NotCanonical(String),
}

impl PeerUrl {
    /// Parses and normalises a URL typed by a person (`peers.toml`, `--public-url`).
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        if input.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let input = input.trim();
        let url = Url::parse(input).map_err(|err| match err {
            url::ParseError::RelativeUrlWithoutBase => UrlError::NoScheme(input.to_owned()),
            other => UrlError::Parse(other),
        })?;
        match url.scheme() {
            "http" | "https" => {}
            // `a.example:8080` parses as the scheme `a.example`: a host and port.
            _ if host_and_port(input) => return Err(UrlError::NoScheme(input.to_owned())),
            other => return Err(UrlError::Scheme(other.to_owned())),
        }
        if url.host().is_none() {
            return Err(UrlError::NoHost);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if url.query().is_some() {
            return Err(UrlError::Query);
        }
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        let canonical = url.as_str().trim_end_matches('/');
        // Normalisation (punycode, percent-encoding) can lengthen the input.
        if canonical.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let literal_ip = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        let localhost_name = url
            .host_str()
            .is_some_and(|host| host == "localhost" || host.ends_with(".localhost"));
        Ok(Self {
            fnv: fnv1a64(canonical.as_bytes()),
            inner: Arc::new(Inner {
                text: canonical.into(),
                literal_ip,
                localhost_name,
            }),
        })
    }

    /// Parses a URL that a signer must already have written canonically (descriptors):
    /// two spellings of one URL would let one node appear twice.
    pub fn parse_canonical(input: &str) -> Result<Self, UrlError> {
        let url = Self::parse(input)?;
        if url.as_str() != input {
            return Err(UrlError::NotCanonical(url.as_str().to_owned()));
        }
        Ok(url)
    }

    pub fn as_str(&self) -> &str {
        &self.inner.text
    }

    /// `{base}/{path}`, e.g. `endpoint("health")`.
    pub fn endpoint(&self, path: &str) -> Result<Url, url::ParseError> {
        Url::parse(&format!(
            "{}/{}",
            self.as_str(),
            path.trim_start_matches('/')
        ))
    }

    /// The host when it is an IP literal (`http://127.0.0.1:8080`), so the address policy can
    /// be applied before any DNS lookup.
    pub fn literal_ip(&self) -> Option<IpAddr> {
        self.inner.literal_ip
    }

    /// Whether the host is `localhost` or a name under it, which resolvers map to loopback.
    pub fn is_localhost_name(&self) -> bool {
        self.inner.localhost_name
    }
}

/// Whether `input` is a host and port without a scheme (`a.example:8080`).
fn host_and_port(input: &str) -> bool {
    !input.contains("://")
        && input
            .split_once(':')
            .is_some_and(|(_, rest)| rest.starts_with(|c: char| c.is_ascii_digit()))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl fmt::Debug for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerUrl({})", self.as_str())
    }
}

impl fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PeerUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PeerUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse_canonical(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_one_spelling() {
        let cases = [
            ("https://A.Example", "https://a.example"),
            ("https://a.example/", "https://a.example"),
            ("https://a.example:443/", "https://a.example"),
            ("http://a.example:8080//", "http://a.example:8080"),
            ("https://a.example/badges/", "https://a.example/badges"),
            ("https://a.example/x/../badges", "https://a.example/badges"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://2130706433:80/", "http://127.0.0.1"),
            ("  https://a.example  ", "https://a.example"),
        ];
        for (input, want) in cases {
            let url = PeerUrl::parse(input).expect(input);
            assert_eq!(url.as_str(), want, "{input}");
            // The canonical form is a fixed point.
            assert_eq!(PeerUrl::parse_canonical(want).expect(want).as_str(), want);
        }
        assert_eq!(
            PeerUrl::parse_canonical("https://a.example/"),
            Err(UrlError::NotCanonical("https://a.example".into()))
        );
    }

    #[test]
    fn refuses_what_is_not_a_public_http_base_url() {
        assert_eq!(
            PeerUrl::parse("ftp://a.example"),
            Err(UrlError::Scheme("ftp".into()))
        );
        assert_eq!(
            PeerUrl::parse("file:///etc/passwd"),
            Err(UrlError::Scheme("file".into()))
        );
        assert_eq!(
            PeerUrl::parse("https://u:p@a.example"),
            Err(UrlError::Credentials)
        );
        assert_eq!(
            PeerUrl::parse("https://a.example/?x=1"),
            Err(UrlError::Query)
        );
        assert_eq!(
            PeerUrl::parse("https://a.example/#top"),
            Err(UrlError::Fragment)
        );
        assert_eq!(
            PeerUrl::parse("a.example"),
            Err(UrlError::NoScheme("a.example".into()))
        );
        assert_eq!(
            PeerUrl::parse("gopher://a.example"),
            Err(UrlError::Scheme("gopher".into()))
        );
        let no_scheme = PeerUrl::parse(" a.example:8080 ").expect_err("no scheme");
        assert_eq!(no_scheme, UrlError::NoScheme("a.example:8080".into()));
        assert_eq!(
            no_scheme.to_string(),
            "`a.example:8080` has no scheme: write `https://a.example:8080` (or `http://a.example:8080` for plain HTTP)"
        );
        assert!(matches!(
            PeerUrl::parse("https://"),
            Err(UrlError::Parse(_))
        ));
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_LEN));
        assert_eq!(PeerUrl::parse(&long), Err(UrlError::TooLong));
    }

    #[test]
    fn endpoints_and_hosts() {
        let url = PeerUrl::parse("https://a.example/badges").expect("valid");
        assert_eq!(
            url.endpoint("health").expect("valid").as_str(),
            "https://a.example/badges/health"
        );
        assert_eq!(url.literal_ip(), None);
        let ip = PeerUrl::parse("http://127.0.0.1:8080").expect("valid");
        assert_eq!(ip.literal_ip(), Some(IpAddr::from([127, 0, 0, 1])));
        assert!(
            PeerUrl::parse("http://api.localhost")
                .expect("valid")
                .is_localhost_name()
        );
        assert!(!url.is_localhost_name());
    }
}
