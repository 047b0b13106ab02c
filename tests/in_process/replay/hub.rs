//! The replay hub: a Docker Hub on loopback that answers from a route table of recorded
//! answers (`tests/fixtures/hub/`), read as their sources hold them, and keeps every
//! request it received.
//!
//! It serves nothing but recorded bytes, with three exceptions it owns: a path it has no
//! recording for answers 404 with an empty body (as Docker Hub answers a page past the
//! last one, docker/hub-feedback#2357); `POST /v2/auth/token` answers a token of its own
//! (no recording of that endpoint's answer was found); and the framing headers of a
//! recording (`transfer-encoding`, `connection`, `content-length`) are left to the server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub(super) fn fixture(name: &str) -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hub")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Bytes::from(bytes)
}

fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name).to_vec()).expect("fixtures are UTF-8")
}

/// One answer as the replay hub sends it.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Bytes,
}

/// A recorded body with the status its source recorded, and no headers (none recorded).
pub(super) fn body(status: u16, name: &str) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).expect("a status"),
        headers: Vec::new(),
        body: fixture(name),
    }
}

/// A recorded status whose source holds no body.
pub(super) fn status_only(status: u16) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).expect("a status"),
        headers: Vec::new(),
        body: Bytes::new(),
    }
}

/// Headers the server sets from the body it sends; a recording's values would lie.
const FRAMING: [&str; 3] = ["transfer-encoding", "connection", "content-length"];

fn without_framing(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(name, _)| !FRAMING.contains(&name.to_ascii_lowercase().as_str()))
        .collect()
}

/// docker/hub-feedback#2459: the headers of Docker Hub's 429 of May 2025, pasted as a JSON
/// member (`"headers": {…},`); the body was not recorded.
pub(super) fn headers_pasted_as_json(name: &str) -> Vec<(String, String)> {
    let text = fixture_text(name);
    let member = text.trim().trim_end_matches(',');
    let value: serde_json::Value =
        serde_json::from_str(&format!("{{{member}}}")).expect("the pasted member is JSON");
    let headers = value["headers"]
        .as_object()
        .expect("a header object")
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().expect("text").to_owned()))
        .collect();
    without_framing(headers)
}

/// docker/hub-feedback#1907: a whole answer pasted on one line, `\n` written for each
/// line end (the comment's point is that the server ended lines with a bare LF).
pub(super) fn answer_pasted_raw(name: &str) -> Answer {
    let text = fixture_text(name);
    let raw = text.trim_end_matches('\n').replace("\\n", "\n");
    let (head, body) = raw.split_once("\n\n").expect("head and body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .expect("a status line");
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("a header line");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    Answer {
        status: StatusCode::from_u16(status).expect("a status"),
        headers: without_framing(headers),
        body: Bytes::from(body.to_owned()),
    }
}

/// goharbor/harbor#21267: a log line `… list tags error: <status> -- <body>`.
pub(super) fn answer_in_log_line(name: &str) -> Answer {
    let text = fixture_text(name);
    let (head, body) = text.trim_end().rsplit_once(" -- ").expect("status -- body");
    let status = head
        .rsplit(' ')
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .expect("a status before the body");
    Answer {
        status: StatusCode::from_u16(status).expect("a status"),
        headers: Vec::new(),
        body: Bytes::from(body.to_owned()),
    }
}

/// The first tag object of a tag list its source pasted only in part (docker/hub-feedback
/// #2484 stops after it): the recorded bytes from its `{` to its `}`, which is what the
/// tag endpoint answers for that tag (the list's entries and the tag endpoint's answer are
/// one shape, as the rust tags of `tag-library-rust-*` show).
pub(super) fn first_listed_tag(name: &str) -> Answer {
    let bytes = fixture(name);
    let text = std::str::from_utf8(&bytes).expect("UTF-8");
    let results = text.find("\"results\": [").expect("a results member");
    let open = results + text[results..].find('{').expect("a first result");
    let mut depth = 0usize;
    let mut close = None;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close.expect("the first result is whole");
    Answer {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: bytes.slice(open..=close),
    }
}

/// Where the replay hub serves an answer: method, path, and the `page` query parameter (1
/// when absent), since a tag list's pages share one path.
#[derive(Debug, Clone)]
pub(super) struct Route {
    method: Method,
    path: String,
    page: u32,
    answer: Answer,
}

pub(super) fn route(path: impl Into<String>, answer: &Answer) -> Route {
    Route {
        method: Method::GET,
        path: path.into(),
        page: 1,
        answer: answer.clone(),
    }
}

pub(super) fn head(path: impl Into<String>, answer: &Answer) -> Route {
    Route {
        method: Method::HEAD,
        ..route(path, answer)
    }
}

/// The repository resource at both of Docker Hub's paths: the namespaces one, and the one
/// its API changelog deprecated on 2025-09-19; Docker Hub serves one object at both.
pub(super) fn repository(org: &str, repo: &str, answer: &Answer) -> Vec<Route> {
    vec![
        route(format!("/v2/namespaces/{org}/repositories/{repo}"), answer),
        route(format!("/v2/repositories/{org}/{repo}"), answer),
    ]
}

/// One tag at both paths the client asks it at: its images, and its status.
pub(super) fn tag(org: &str, repo: &str, tag: &str, answer: &Answer) -> Vec<Route> {
    vec![
        route(format!("/v2/repositories/{org}/{repo}/tags/{tag}"), answer),
        route(
            format!("/v2/namespaces/{org}/repositories/{repo}/tags/{tag}"),
            answer,
        ),
    ]
}

/// The first page of a tag list.
pub(super) fn tag_list(org: &str, repo: &str, answer: &Answer) -> Vec<Route> {
    vec![route(format!("/v2/repositories/{org}/{repo}/tags"), answer)]
}

/// Every path of a repository the client asks, for answers that are the same whatever is
/// asked (a 429, a 5xx, an unknown repository).
pub(super) fn everything(org: &str, repo: &str, tags: &[&str], answer: &Answer) -> Vec<Route> {
    let mut routes = repository(org, repo, answer);
    routes.extend(tag_list(org, repo, answer));
    routes.push(route(
        format!("/v2/repositories/{org}/{repo}/buildhistory/"),
        answer,
    ));
    for name in tags {
        routes.extend(tag(org, repo, name, answer));
    }
    routes
}

/// One request the hub received.
#[derive(Debug, Clone)]
pub(super) struct Asked {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) authorization: Option<String>,
    pub(super) at: Instant,
}

#[derive(Debug, Default)]
struct HubState {
    routes: Vec<Route>,
    received: Vec<Asked>,
    tokens_issued: u32,
}

/// The replay hub; dropping it stops the server.
#[derive(Debug)]
pub(super) struct ReplayHub {
    pub(super) url: String,
    state: Arc<Mutex<HubState>>,
    _stop: watch::Sender<()>,
}

fn page_of(query: &str) -> u32 {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("page="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

impl ReplayHub {
    pub(super) async fn start(routes: Vec<Route>) -> ReplayHub {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(HubState {
            routes,
            ..HubState::default()
        }));
        let (stop, mut stopped) = watch::channel(());
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                    _ = stopped.changed() => break,
                };
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, request)) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ReplayHub {
            url: format!("http://{addr}"),
            state,
            _stop: stop,
        }
    }

    pub(super) fn received(&self) -> Vec<Asked> {
        self.state.lock().received.clone()
    }

    pub(super) fn asked(&self, method: Method, path: &str) -> Vec<Asked> {
        self.received()
            .into_iter()
            .filter(|a| a.method == method && a.path == path)
            .collect()
    }
}

fn answer(state: &Mutex<HubState>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut state = state.lock();
    state.received.push(Asked {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        authorization,
        at: Instant::now(),
    });
    if method == Method::POST && path == "/v2/auth/token" {
        state.tokens_issued += 1;
        let token = format!("replay-token-{}", state.tokens_issued);
        let mut response = Response::new(Full::from(
            serde_json::json!({ "access_token": token }).to_string(),
        ));
        response.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return response;
    }
    let page = page_of(&query);
    let found = state
        .routes
        .iter()
        .find(|r| r.method == method && r.path == path && r.page == page)
        .or_else(|| {
            // A HEAD without a recording of its own is answered as its GET, as HTTP says.
            (method == Method::HEAD).then_some(())?;
            state
                .routes
                .iter()
                .find(|r| r.method == Method::GET && r.path == path && r.page == page)
        });
    let Some(found) = found else {
        let mut response = Response::new(Full::from(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let mut response = Response::new(Full::from(found.answer.body.clone()));
    *response.status_mut() = found.answer.status;
    for (name, value) in &found.answer.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
