//! A node that lies in its fills as a modified node would: it answers `POST /fill` as the
//! node does, then changes the answer and signs it with its own key (so the answer verifies,
//! and only a check against Docker Hub can tell); every other route it answers honestly.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dockerhub_build_status::federation::Identity;
use dockerhub_build_status::fill::wire::{FillAnswer, FillRequest};
use dockerhub_build_status::http::{App, routes};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use serde_json::value::RawValue;
use tokio::net::TcpListener;

/// How a node in these tests answers `POST /fill`.
#[derive(Clone)]
pub enum Behaviour {
    Honest,
    /// Answers with a pull count a million higher than its cache's, signed with its key.
    Lying,
    /// Answers with bytes that are no fill answer.
    Garbage,
    /// Says a tag's build status is 3 (building), from the endpoint named.
    Building(&'static str),
    /// Says a repository has no pulls.
    NoPulls,
    /// Doubles the size of every image of a tag, and claims a copy of this age.
    Resized(Duration),
    /// Honest in its first `n` fills, then lies as [`Behaviour::Lying`] in every one; counts
    /// its fills.
    TurnsAfter(usize, Arc<AtomicUsize>),
    /// Pads every value with blanks to this many bytes (the JSON means the same).
    Padded(usize),
}

/// A plain hyper server that answers like the node, except `POST /fill`.
pub async fn serve_dishonestly(listener: TcpListener, app: App, behaviour: Behaviour) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        let behaviour = behaviour.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let app = app.clone();
                let behaviour = behaviour.clone();
                async move {
                    Ok::<_, Infallible>(answer_dishonestly(&app, request, peer, &behaviour).await)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

async fn answer_dishonestly(
    app: &App,
    request: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    behaviour: &Behaviour,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let honest = routes::handle(
        app,
        Request::from_parts(parts.clone(), Full::new(body.clone())),
        peer.ip(),
    )
    .await;
    let (honest_parts, honest_body) = honest.into_parts();
    let honest_body = honest_body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if parts.uri.path() != "/fill" || !honest_parts.status.is_success() {
        return Response::from_parts(honest_parts, Full::new(honest_body));
    }
    if let Behaviour::Garbage = behaviour {
        return Response::from_parts(
            honest_parts,
            Full::new(Bytes::from_static(b"{\"owner\":\"nope\"}")),
        );
    }
    let request: FillRequest = serde_json::from_slice(&body).expect("the asker's request");
    let answer: FillAnswer = serde_json::from_slice(&honest_body).expect("an answer");
    let mut value: serde_json::Value = answer
        .value
        .as_ref()
        .map(|v| serde_json::from_str(v.get()).expect("JSON"))
        .unwrap_or_default();
    let mut age = answer.age();
    let mut lie = true;
    let mut padding = 0;
    match behaviour {
        Behaviour::Honest | Behaviour::Garbage => lie = false,
        Behaviour::Padded(to) => padding = *to,
        Behaviour::TurnsAfter(honest, fills) => {
            if fills.fetch_add(1, Ordering::SeqCst) >= *honest {
                add_pulls(&mut value);
            }
        }
        Behaviour::Lying => add_pulls(&mut value),
        Behaviour::Building(source) => {
            if request.resource == "status" {
                value = serde_json::json!({"status": 3, "source": source});
            }
        }
        Behaviour::NoPulls => {
            if value.get("pull_count").is_some() {
                value["pull_count"] = 0.into();
            }
        }
        Behaviour::Resized(claimed) => {
            if request.resource == "tag" {
                if let Some(images) = value["images"].as_array_mut() {
                    for image in images {
                        let size = image["size"].as_u64().unwrap_or(0);
                        image["size"] = (size * 2).into();
                    }
                }
                let full = value["full_size"].as_u64().unwrap_or(0);
                value["full_size"] = (full * 2).into();
                age = *claimed;
            }
        }
    }
    if !lie {
        return Response::from_parts(honest_parts, Full::new(honest_body));
    }
    let raw = answer.value.is_some().then(|| {
        let text = value.to_string();
        // Blanks inside the object: a raw value keeps them, and the signature covers them.
        let text = match text.strip_prefix('{') {
            Some(rest) => format!("{{{}{rest}", " ".repeat(padding.saturating_sub(text.len()))),
            None => text,
        };
        RawValue::from_string(text).expect("JSON")
    });
    let identity: &Identity = app.node().driver().identity();
    let lie = FillAnswer::sign(identity, &request, age, answer.outcome, raw);
    Response::from_parts(
        honest_parts,
        Full::new(Bytes::from(serde_json::to_vec(&lie).expect("serializes"))),
    )
}

/// A pull count a million higher, if the value has one.
fn add_pulls(value: &mut serde_json::Value) {
    if let Some(pulls) = value.get("pull_count").and_then(|p| p.as_u64()) {
        value["pull_count"] = (pulls + 1_000_000).into();
    }
}
