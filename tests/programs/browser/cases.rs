//! The browser cases, run in order against one cluster and one browser.

use super::*;

/// The badge shows `ok`, answered by the node the rendezvous ranking puts first.
pub(super) async fn case_ok(
    browser: &mut Browser,
    cluster: &mut Cluster,
    served: Served<'_>,
) -> Outcome {
    let urls = cluster.urls();
    let (repo, order) = cluster.new_repo(&urls, None);
    let url = page_url(
        &served.svg(),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &urls.join(",")),
        ],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    run.expect_done("ok", BUDGET + LOAD_MARGIN)?;
    run.expect_server(&order[0], "the top of the rendezvous ranking")
}

/// Without `servers=`, a badge served by a node asks that node for `/servers`, so it is
/// right wherever that node's network is; the same file from a static host asks the built-in
/// list instead and gets its answer from none of these nodes.
pub(super) async fn case_bootstrap(
    browser: &mut Browser,
    cluster: &mut Cluster,
    served: Served<'_>,
) -> Outcome {
    let urls = cluster.urls();
    let (repo, order) = cluster.new_repo(&urls, None);
    let url = page_url(
        &served.svg(),
        &[("organization", ORGANIZATION), ("repository", &repo)],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    match served {
        Served::ByNode(_) => {
            run.expect_done("ok", BUDGET + LOAD_MARGIN)?;
            run.expect_server(&order[0], "the top of the serving node's /servers, ranked")
        }
        Served::Statically(_) => {
            if run.state.as_deref() != Some("done") {
                return Err(format!("not done: {}", run.summary()));
            }
            match &run.server {
                Some(server) if urls.contains(server) => Err(format!(
                    "a static copy found the test nodes without being told: {}",
                    run.summary()
                )),
                _ => Ok(()),
            }
        }
    }
}

/// A label full of markup is shown as text: the DOM holds it as escaped text, and no element
/// or event handler was added.
pub(super) async fn case_markup(
    browser: &mut Browser,
    cluster: &mut Cluster,
    served: Served<'_>,
) -> Outcome {
    // 42 characters: under status.js's 48-character cap, so it must be shown whole.
    let text = r#"<img src=x onerror=alert(1)><b>&amp;"'</b>"#;
    let urls = cluster.urls();
    let (repo, _) = cluster.new_repo(&urls, None);
    let url = page_url(
        &served.svg(),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("text", text),
            ("servers", &urls.join(",")),
        ],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    run.expect_done("ok", BUDGET + LOAD_MARGIN)?;
    if run.label.as_deref() != Some(text) || run.title.as_deref() != Some(&format!("{text}: ok")) {
        return Err(format!(
            "label {:?} / title {:?} are not the text as given\n{}",
            run.label,
            run.title,
            run.summary()
        ));
    }
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    if !run.dom.contains(&escaped) {
        return Err(format!(
            "the dumped DOM lacks the escaped text {escaped}:\n{}",
            run.dom
        ));
    }
    let elements = |xml: &str| -> Result<Vec<String>, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| format!("{e}: {xml}"))?;
        let mut names: Vec<String> = doc
            .descendants()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name().to_owned())
            .collect();
        names.sort();
        Ok(names)
    };
    let before = elements(include_str!("../../../status.svg"))?;
    let after = elements(&run.dom)?;
    if before != after {
        return Err(format!(
            "elements changed from {before:?} to {after:?}:\n{}",
            run.dom
        ));
    }
    let doc = roxmltree::Document::parse(&run.dom).map_err(|e| e.to_string())?;
    if let Some(handler) = doc
        .descendants()
        .flat_map(|n| n.attributes())
        .find(|a| a.name().to_ascii_lowercase().starts_with("on"))
    {
        return Err(format!("an event handler appeared: {handler:?}"));
    }
    Ok(())
}

/// A `/servers` answer that lists the real nodes plus `javascript:`, `data:` and other
/// non-plain URLs (with the highest weight, so they would be asked first) changes nothing:
/// the junk is never asked, and the badge comes from the top-ranked real node. The fake node
/// is the only bootstrap node, so its answer is believed and URL filtering is the only guard.
pub(super) async fn case_junk_urls(
    browser: &mut Browser,
    cluster: &mut Cluster,
    static_host: &str,
) -> Outcome {
    let evil = evil_node().await;
    let evil_port = evil.url.rsplit(':').next().unwrap_or_default().to_owned();
    let urls = cluster.urls();
    let mut servers: Vec<Value> = urls
        .iter()
        .map(|u| json!({"url": u, "key": "k", "weight": 1.0}))
        .collect();
    for junk in [
        "javascript:alert(document.domain)//".to_owned(),
        " JavaScript:fetch('//evil')".to_owned(),
        "java\nscript:alert(1)".to_owned(),
        "data:application/json,{\"request\":\"ok\",\"status\":-1}".to_owned(),
        format!("{}/?via=query", evil.url),
        format!("{}#fragment", evil.url),
        format!("http://user:secret@127.0.0.1:{evil_port}"),
        format!("//127.0.0.1:{evil_port}"),
        format!("ftp://127.0.0.1:{evil_port}"),
    ] {
        servers.push(json!({"url": junk, "key": "k", "weight": 1000.0}));
    }
    let lister = fake_node(Value::Array(servers)).await;
    let (repo, order) = cluster.new_repo(&urls, None);
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &lister.url),
        ],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    run.expect_done("ok", BUDGET + LOAD_MARGIN)?;
    run.expect_server(&order[0], "the top real node; junk entries are dropped")?;
    let asked = evil.requests();
    if !asked.is_empty() {
        return Err(format!("a junk URL was asked: {asked:?}"));
    }
    if !lister.requests().iter().any(|r| r.starts_with("/servers")) {
        return Err("the fake node was never asked for /servers".into());
    }
    Ok(())
}

/// One lying bootstrap node of three answers `/servers` with made-up servers (weight 1000)
/// and omits the real ones. Checked twice: the badge still comes from a real node and the
/// made-up servers are never asked (the majority outvotes the liar, or, before federation,
/// nobody agrees and the bootstrap list is used); and it comes from node 3, which is not a
/// bootstrap node and is known only from the honest nodes' `/servers`, as the top of the
/// honest ranking (this needs the federation: the honest nodes must list node 3).
pub(super) async fn case_liar(
    browser: &mut Browser,
    cluster: &mut Cluster,
    static_host: &str,
) -> (Outcome, Outcome) {
    let evil = [evil_node().await, evil_node().await];
    let liar = fake_node(json!([
        {"url": evil[0].url, "key": "k", "weight": 1000.0},
        {"url": evil[1].url, "key": "k", "weight": 1000.0},
    ]))
    .await;
    let urls = cluster.urls();
    let (repo, order) = cluster.new_repo(&urls, Some(&urls[2]));
    let bootstrap = [urls[0].as_str(), urls[1].as_str(), liar.url.as_str()].join(",");
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &bootstrap),
        ],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    let real = (|| {
        run.expect_done("ok", BUDGET + LOAD_MARGIN)?;
        if !run.server.as_ref().is_some_and(|s| urls.contains(s)) {
            return Err(format!("not served by a real node: {}", run.summary()));
        }
        let asked: Vec<String> = evil.iter().flat_map(Stub::requests).collect();
        if !asked.is_empty() {
            return Err(format!("the liar's made-up servers were asked: {asked:?}"));
        }
        Ok(())
    })();
    let federated = run.expect_server(
        &order[0],
        "node 3, top of the ranking the honest majority lists",
    );
    (real, federated)
}

/// With the top-ranked node killed, the badge still shows `ok` within 2 s, from the second.
/// End to end: the live nodes may already have delisted the dead one (a failed probe or two),
/// or status.js may fail over; either way the reader sees `ok`. Returns the dead node's URL.
pub(super) async fn case_top_killed(
    browser: &mut Browser,
    cluster: &mut Cluster,
    static_host: &str,
) -> (Outcome, String) {
    let urls = cluster.urls();
    let (repo, order) = cluster.new_repo(&urls, None);
    let top = cluster
        .nodes
        .iter_mut()
        .find(|n| n.url == order[0])
        .expect("the top node is one of ours");
    top.kill();
    let dead = order[0].clone();
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &urls.join(",")),
        ],
    );
    let run = show_badge(browser, &url, FAILOVER_DEADLINE).await;
    let outcome = run
        .expect_done("ok", FAILOVER_DEADLINE)
        .and_then(|()| run.expect_server(&order[1], "second in the ranking; the first is dead"));
    (outcome, dead)
}

/// Three bootstrap nodes whose `/servers` all list `urls`: the network's view of a moment
/// ago (a crash is noticed only after failed probes, and browsers cache `/servers` answers
/// for a few seconds). With such a view only status.js itself can route around a bad node.
pub(super) async fn stale_view(urls: &[&str]) -> ([Stub; 3], String) {
    let list: Vec<Value> = urls
        .iter()
        .map(|u| json!({"url": u, "key": "k", "weight": 1.0}))
        .collect();
    let view = [
        fake_node(Value::Array(list.clone())).await,
        fake_node(Value::Array(list.clone())).await,
        fake_node(Value::Array(list)).await,
    ];
    let bootstrap = view
        .iter()
        .map(|s| s.url.as_str())
        .collect::<Vec<_>>()
        .join(",");
    (view, bootstrap)
}

/// The top-ranked node is dead (connection refused) but every `/servers` answer still lists
/// it: status.js moves on to the second at once, `ok` within 2 s.
pub(super) async fn case_dead_top_still_listed(
    browser: &mut Browser,
    cluster: &mut Cluster,
    static_host: &str,
    dead: &str,
) -> Outcome {
    let urls = cluster.urls();
    let listed: Vec<&str> = urls.iter().map(String::as_str).collect();
    let (_view, bootstrap) = stale_view(&listed).await;
    let (repo, order) = cluster.new_repo(&urls, Some(dead));
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &bootstrap),
        ],
    );
    let run = show_badge(browser, &url, FAILOVER_DEADLINE).await;
    run.expect_done("ok", FAILOVER_DEADLINE)?;
    run.expect_server(
        &order[1],
        "second in the ranking; the first refuses connections",
    )
}

/// The top-ranked node accepts connections and never answers, and every `/servers` answer
/// lists it: status.js hedges to the second after its delay (400 ms), `ok` within 2 s.
pub(super) async fn case_hung_top(
    browser: &mut Browser,
    cluster: &mut Cluster,
    static_host: &str,
) -> Outcome {
    let hung = Silent::start().await;
    let mut urls = cluster.urls();
    urls.truncate(2);
    urls.push(hung.url.clone());
    let listed: Vec<&str> = urls.iter().map(String::as_str).collect();
    let (_view, bootstrap) = stale_view(&listed).await;
    let (repo, order) = cluster.new_repo(&urls, Some(&hung.url));
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &bootstrap),
        ],
    );
    let run = show_badge(browser, &url, FAILOVER_DEADLINE).await;
    run.expect_done("ok", FAILOVER_DEADLINE)?;
    run.expect_server(&order[1], "second in the ranking; the first never answers")
}

/// With every node down the badge shows `unknown` (never `???`) within the budget.
pub(super) async fn case_all_down(
    browser: &mut Browser,
    cluster: &mut Cluster,
    static_host: &str,
) -> Outcome {
    let urls = cluster.urls();
    for node in &mut cluster.nodes {
        node.kill();
    }
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", "sample"),
            ("servers", &urls.join(",")),
        ],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    run.expect_done("unknown", BUDGET + LOAD_MARGIN)?;
    match &run.server {
        None => Ok(()),
        Some(server) => Err(format!("data-server {server} although every node is down")),
    }
}

pub(super) type Outcome = Result<(), String>;
