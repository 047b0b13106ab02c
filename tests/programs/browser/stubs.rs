//! Stand-in servers: a static file host for status.svg, fake nodes that lie or list junk,
//! and a node that never answers.

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) body: String,
}

impl Reply {
    pub(super) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }
}

/// A tiny HTTP server on `127.0.0.1:0` answering every request with `handler(path?query)`,
/// with the CORS header nodes send, and remembering what it was asked.
pub(super) struct Stub {
    pub(super) url: String,
    pub(super) requests: Arc<Mutex<Vec<String>>>,
    pub(super) task: JoinHandle<()>,
}

impl Stub {
    pub(super) async fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a stub");
        let url = format!("http://{}", listener.local_addr().expect("stub address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let log = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let target = request
                            .uri()
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_owned();
                        log.lock().expect("stub log").push(target.clone());
                        let reply = handler(&target);
                        let response = Response::builder()
                            .status(reply.status)
                            .header("content-type", reply.content_type)
                            .header("access-control-allow-origin", "*")
                            .header("cache-control", "no-store")
                            .body(Full::new(Bytes::from(reply.body)))
                            .expect("a stub response");
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Stub {
            url,
            requests,
            task,
        }
    }

    pub(super) fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("stub log").clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The static host: the repository's own status.svg and status.js, nothing else.
pub(super) async fn static_host() -> Stub {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let svg = std::fs::read_to_string(root.join("status.svg")).expect("read status.svg");
    let js = std::fs::read_to_string(root.join("status.js")).expect("read status.js");
    Stub::start(move |target| {
        let path = target.split('?').next().unwrap_or("");
        match path {
            "/status.svg" => Reply {
                status: 200,
                content_type: "image/svg+xml",
                body: svg.clone(),
            },
            "/status.js" => Reply {
                status: 200,
                content_type: "application/javascript",
                body: js.clone(),
            },
            _ => Reply {
                status: 404,
                content_type: "text/plain",
                body: "not found".into(),
            },
        }
    })
    .await
}

/// A fake node whose `/servers` answers `servers` and whose `/build` always fails (503), so
/// it never serves a badge itself.
pub(super) async fn fake_node(servers: Value) -> Stub {
    Stub::start(move |target| {
        if target.starts_with("/servers") {
            Reply::json(200, json!({"node": "fake", "servers": servers.clone()}))
        } else {
            Reply::json(503, json!({"request": "error", "description": "fake node"}))
        }
    })
    .await
}

/// A server that must never be asked: it would answer every `/build` with a failed build.
pub(super) async fn evil_node() -> Stub {
    Stub::start(|_| Reply::json(200, json!({"request": "ok", "status": -1}))).await
}

/// Accepts connections and never answers: a hung node.
pub(super) struct Silent {
    pub(super) url: String,
    pub(super) task: JoinHandle<()>,
}

impl Silent {
    pub(super) async fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Silent { url, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Running the badge in the browser
