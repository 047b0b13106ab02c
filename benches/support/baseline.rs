//! The throughput benchmark's baseline: the smallest honest hyper 1 server, answering every
//! request with the same fixed 1 KB SVG. It is what any badge server must pay at least (accept,
//! HTTP/1 parsing, writing the answer), so the node's figures divided by its figures say what
//! our own routing, cache lookup, rendering, headers, metrics and logging cost on top.
//!
//! It does what hyper's own server example does: the default `http1::Builder`, one task per
//! connection, nothing else. The node's extra connection settings (a header-read timer, a head
//! size limit, a connection cap) are part of what the node costs, so the baseline leaves them out.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The size of the baseline's answer, about a rendered badge's.
pub const SVG_BYTES: usize = 1024;

/// A valid SVG badge of exactly [`SVG_BYTES`] bytes (padded with an XML comment), so the
/// baseline writes as much as the node does.
pub fn fixed_svg() -> Bytes {
    let head = concat!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="78" height="20" role="img" aria-label="Docker: ok">"##,
        r##"<title>Docker: ok</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>"##,
        r##"<stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="78" height="20" rx="3" fill="#fff"/></clipPath>"##,
        r##"<g clip-path="url(#r)"><rect width="51" height="20" fill="#555"/><rect x="51" width="27" height="20" fill="#4c1"/>"##,
        r##"<rect width="78" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="110">"##,
        r##"<text x="265" y="140" transform="scale(.1)" fill="#fff" textLength="410">Docker</text>"##,
        r##"<text x="635" y="140" transform="scale(.1)" fill="#fff" textLength="170">ok</text></g>"##,
    );
    let tail = "</svg>";
    let padding = SVG_BYTES - head.len() - tail.len() - "<!---->".len();
    let svg = format!("{head}<!--{}-->{tail}", "x".repeat(padding));
    debug_assert_eq!(svg.len(), SVG_BYTES);
    Bytes::from(svg)
}

/// Serves the fixed SVG on `listener` until `shutdown` completes. Open connections are not
/// drained: the benchmark stops it only after its load generator has finished.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let svg = fixed_svg();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = &mut shutdown => return,
        };
        let svg = svg.clone();
        let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
            let mut response = Response::new(Full::new(svg.clone()));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml; charset=utf-8"),
            );
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::spawn(async move {
            // A client that goes away mid-request is no concern of a benchmark.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
