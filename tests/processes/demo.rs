//! The one-command demo as a newcomer runs it: `dockerhub-build-status demo` prints where to
//! look, its three nodes find each other, badges work from the sample hub, and Ctrl-C stops
//! it cleanly.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::process::{ChildGuard, NODE_BIN};
use common::{get, get_json, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_network_forms_and_serves_badges() {
    let mut command = Command::new(NODE_BIN);
    command.args(["demo", "--port", "0"]).env_remove("RUST_LOG");
    let mut demo = ChildGuard::spawn(&mut command);
    let mut nodes: Vec<String> = Vec::new();
    wait_until(
        Duration::from_secs(20),
        "the demo to print its node URLs",
        || {
            nodes = demo
                .stdout()
                .iter()
                .filter_map(|line| {
                    line.trim()
                        .strip_prefix("node ")?
                        .split_once(": ")
                        .map(|(_, url)| url.trim_end_matches('/').to_owned())
                })
                .collect();
            let ready = nodes.len() == 3;
            async move { ready }
        },
    )
    .await;

    let (code, body) = get_json(&format!("{}/build/demo/building", nodes[0])).await;
    assert_eq!((code, body["status"].as_i64()), (200, Some(3)), "{body}");
    let (code, _, svg) = get(&format!(
        "{}/status.svg?organization=demo&repository=passing",
        nodes[1]
    ))
    .await;
    assert_eq!(code, 200);
    assert!(svg.contains(">ok<"), "{svg}");

    let mut expected = nodes.clone();
    expected.sort();
    wait_until(
        Duration::from_secs(30),
        "every demo node to list all three",
        || {
            let nodes = nodes.clone();
            let expected = expected.clone();
            async move {
                for node in &nodes {
                    let Ok(response) = common::client().get(format!("{node}/servers")).send().await
                    else {
                        return false;
                    };
                    let Ok(body) = response.json::<serde_json::Value>().await else {
                        return false;
                    };
                    let mut urls: Vec<String> = body["servers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s["url"].as_str().map(str::to_owned))
                        .collect();
                    urls.sort();
                    if urls != expected {
                        return false;
                    }
                }
                true
            }
        },
    )
    .await;

    demo.signal("INT");
    let status = demo.wait_exit(Duration::from_secs(20)).await;
    assert!(
        status.success(),
        "Ctrl-C ends the demo cleanly: {status}\n{}",
        demo.stderr().join("\n")
    );
    assert!(!demo.stderr().iter().any(|l| l.contains("panicked")));
}
