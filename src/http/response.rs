//! What every answer carries: the JSON shapes of the old API, `Cache-Control` from the
//! remaining freshness, an `ETag` with `304` on `If-None-Match`, CORS, and the
//! [`Cacheable`] answers the response memo keeps.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde::Serialize;

use super::memo::Weigh;

/// Every response body is a complete buffer: answers are small and built in one go.
pub type Body = Full<Bytes>;

/// Cache lifetime of error answers: short, so a fixed problem shows soon.
pub const ERROR_MAX_AGE: Duration = Duration::from_secs(30);

/// The headers of every answer: any page may read it (the API is public), and browsers take
/// its content type as given.
pub fn add_common_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

#[derive(Serialize)]
struct ErrorAnswer<'a> {
    request: &'static str,
    description: &'a str,
}

pub fn static_file(body: &'static str, content_type: &'static str) -> Response<Body> {
    typed(
        Bytes::from_static(body.as_bytes()),
        content_type,
        "max-age=3600",
    )
}

/// A `200` with `body`, its content type and a fixed `Cache-Control`.
pub fn typed(
    body: impl Into<Bytes>,
    content_type: &'static str,
    cache_control: &'static str,
) -> Response<Body> {
    let mut response = Response::new(Body::from(body.into()));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

pub fn html(body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A JSON answer.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    // Serialising these plain structs cannot fail; an empty body would still be an answer.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The old API's error shape: `{"request":"error","description":…}`.
pub fn api_error(status: StatusCode, description: &str) -> Response<Body> {
    // Descriptions quote input now and then (a name, a parser's message); whatever a
    // caller passes, an error answer stays small.
    let description = shorten(description, MAX_DESCRIPTION_CHARS);
    let mut response = json(
        status,
        &ErrorAnswer {
            request: "error",
            description: &description,
        },
    );
    set_cache_control(&mut response, ERROR_MAX_AGE);
    response
}

pub fn set_cache_control(response: &mut Response<Body>, max_age: Duration) {
    if let Some(value) = cache_control(max_age) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
}

/// The longest freshness an answer announces: a day. shields.io takes any `cacheSeconds` a
/// JavaScript number holds exactly (up to 2^53 - 1); a day is the longest it announces
/// itself (its static resources), and no badge should outlive a change by more.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// `public, max-age=N`, with `max_age` capped at [`MAX_AGE`].
fn cache_control(max_age: Duration) -> Option<HeaderValue> {
    const PREFIX: &[u8] = b"public, max-age=";
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(max_age.min(MAX_AGE).as_secs()).as_bytes();
    // The longest u64 has 20 digits.
    let mut text = [0u8; PREFIX.len() + 20];
    text[..PREFIX.len()].copy_from_slice(PREFIX);
    text[PREFIX.len()..][..digits.len()].copy_from_slice(digits);
    HeaderValue::from_bytes(&text[..PREFIX.len() + digits.len()]).ok()
}

/// A cacheable `200` answer before the request's own conditions apply: `Cache-Control` from
/// the remaining freshness and an `ETag` of the body. What [`super::App::memo`] keeps, with both
/// header sets it may answer with made up front, since copying a ready map costs less than
/// filling one.
#[derive(Debug, Clone)]
pub struct Cacheable {
    /// The route's metrics label.
    pub route: &'static str,
    body: Bytes,
    etag: Option<HeaderValue>,
    /// The headers of the `200` answer, and those of a `304 Not Modified`.
    headers: HeaderMap,
    not_modified: HeaderMap,
}

impl Weigh for Cacheable {
    fn bytes(&self) -> usize {
        // A header map's slot per header (name, value, hash, links), and what values that
        // are not static hold on the heap; an estimate, as the map's own layout is private.
        let map = |headers: &HeaderMap| {
            headers.len() * (std::mem::size_of::<(HeaderName, HeaderValue)>() + 32)
                + headers.values().map(HeaderValue::len).sum::<usize>()
        };
        std::mem::size_of::<Self>() + self.body.len() + map(&self.headers) + map(&self.not_modified)
    }
}

/// The `Content-Security-Policy` of badges.
const BADGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

impl Cacheable {
    pub fn new(
        route: &'static str,
        body: Bytes,
        etag: Option<HeaderValue>,
        content_type: &'static str,
        max_age: Duration,
    ) -> Cacheable {
        let mut not_modified = HeaderMap::with_capacity(8);
        add_common_headers(&mut not_modified);
        if let Some(value) = cache_control(max_age) {
            not_modified.insert(header::CACHE_CONTROL, value);
        }
        if let Some(etag) = &etag {
            not_modified.insert(header::ETAG, etag.clone());
        }
        // An SVG opened on its own is a document: it may draw, never run anything.
        if content_type.starts_with("image/svg+xml") {
            not_modified.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(BADGE_CSP),
            );
        }
        let mut headers = not_modified.clone();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Cacheable {
            route,
            body,
            etag,
            headers,
            not_modified,
        }
    }

    /// The response to a request with these headers: `304 Not Modified` when the client
    /// already holds this body (`If-None-Match`), the answer otherwise.
    pub fn respond(&self, request: &HeaderMap) -> Response<Body> {
        let not_modified = self
            .etag
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|etag| {
                request
                    .get_all(header::IF_NONE_MATCH)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .map(|tag| tag.trim().trim_start_matches("W/"))
                    .any(|tag| tag == etag || tag == "*")
            });
        if not_modified {
            let mut response = Response::new(Body::default());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            *response.headers_mut() = self.not_modified.clone();
            response
        } else {
            let mut response = Response::new(Body::new(self.body.clone()));
            *response.headers_mut() = self.headers.clone();
            response
        }
    }
}

/// The `ETag` of `body`: its hash, quoted.
pub fn etag_of(body: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("\"{:016x}\"", etag_hash(body))).ok()
}

/// The ETag hash: XXH3-64, a specified, stable, non-cryptographic hash (an ETag only has to
/// change when the body does and be the same on every node and version, so clients keep
/// their 304s when status.js sends them to another node). It hashes a 1.2 KB badge in well
/// under a microsecond.
fn etag_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Answers a CORS preflight.
pub fn preflight() -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, If-None-Match"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

pub fn method_not_allowed(allowed: &[Method]) -> Response<Body> {
    let list = allowed
        .iter()
        .map(Method::as_str)
        .chain(["OPTIONS"])
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = api_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed here; use {list}"),
    );
    if let Ok(value) = HeaderValue::from_str(&list) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// Cuts client-supplied text for error messages.
pub fn shorten(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// The longest description an error answer carries, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 300;

/// `Retry-After` of `wait`, in whole seconds rounded up (at least one): a client that waits
/// the seconds it is told must find the budget open again.
pub fn set_retry_after(response: &mut Response<Body>, wait: std::time::Duration) {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_says_the_max_age_up_to_a_day() {
        for seconds in [0, 1, 299, 300, 3600, 3601, 86_399, 86_400] {
            let value = cache_control(Duration::from_secs(seconds)).expect("a header value");
            assert_eq!(value, format!("public, max-age={seconds}").as_str());
        }
        // A client's `cacheSeconds` past a day, up to the largest number it can write.
        for seconds in [86_401, 31_536_000, u64::from(u32::MAX), u64::MAX] {
            let value = cache_control(Duration::from_secs(seconds)).expect("a header value");
            assert_eq!(value, "public, max-age=86400", "{seconds}");
        }
        let answer = Cacheable::new(
            "docker",
            Bytes::from_static(b"<svg/>"),
            None,
            "image/svg+xml",
            Duration::MAX,
        );
        let response = answer.respond(&HeaderMap::new());
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=86400"
        );
    }

    #[test]
    fn etag_hash_is_pinned_and_sees_every_byte() {
        // Pinned to XXH3-64's published value for the empty input: nodes of different
        // versions must give one body one ETag.
        assert_eq!(etag_hash(b""), 0x2d06_8005_38d3_94c2);
        let body: Vec<u8> = (0..1262u32).map(|i| (i % 251) as u8).collect();
        let hash = etag_hash(&body);
        for at in [0, 7, 8, 631, 1255, 1256, 1261] {
            let mut changed = body.clone();
            changed[at] ^= 1;
            assert_ne!(etag_hash(&changed), hash, "byte {at}");
        }
        assert_ne!(etag_hash(b"a"), etag_hash(b"a\0"));
        assert_ne!(etag_hash(&body[..1261]), hash);
    }

    #[test]
    fn etags_match_in_lists_and_weak_form() {
        let body = b"{}".to_vec();
        let etag = format!("\"{:016x}\"", etag_hash(&body));
        let answer = Cacheable::new(
            "build",
            Bytes::from(body.clone()),
            etag_of(&body),
            "application/json",
            Duration::ZERO,
        );
        for header in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"x\", {etag}"),
            "*".into(),
        ] {
            let mut request = HeaderMap::new();
            request.insert(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(&header).unwrap(),
            );
            let response = answer.respond(&request);
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{header}");
        }
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        let response = answer.respond(&request);
        assert_eq!(response.status(), StatusCode::OK);
    }
}
