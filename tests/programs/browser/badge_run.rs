//! Loading a badge page in Chromium and reading what it shows, with a real-time deadline.

use super::*;

/// What the badge looked like when it was done, or when the deadline passed.
#[derive(Debug, Default)]
pub(super) struct BadgeRun {
    pub(super) url: String,
    pub(super) elapsed: Duration,
    pub(super) state: Option<String>,
    pub(super) message: Option<String>,
    pub(super) server: Option<String>,
    pub(super) label: Option<String>,
    pub(super) status: Option<String>,
    pub(super) title: Option<String>,
    pub(super) dom: String,
}

impl BadgeRun {
    pub(super) fn summary(&self) -> String {
        format!(
            "{}\n  after {:?}: data-state={:?} data-message={:?} data-server={:?} \
             label={:?} status={:?}",
            self.url, self.elapsed, self.state, self.message, self.server, self.label, self.status
        )
    }

    /// Done, showing `message`, within `deadline`.
    pub(super) fn expect_done(&self, message: &str, deadline: Duration) -> Result<(), String> {
        let shown_done = self.state.as_deref() == Some("done")
            && self.message.as_deref() == Some(message)
            && self.status.as_deref() == Some(message);
        if shown_done && self.elapsed <= deadline {
            Ok(())
        } else {
            Err(format!(
                "expected `{message}` within {deadline:?}, got {}",
                self.summary()
            ))
        }
    }

    pub(super) fn expect_server(&self, want: &str, why: &str) -> Result<(), String> {
        if self.server.as_deref() == Some(want) {
            Ok(())
        } else {
            Err(format!(
                "expected data-server {want} ({why}), got {}",
                self.summary()
            ))
        }
    }
}

pub(super) const IS_DONE: &str = "document.documentElement !== null \
    && document.documentElement.getAttribute('data-state') === 'done'";

pub(super) const SNAPSHOT: &str = "(() => {
    const root = document.documentElement;
    const text = (id) => { const e = document.getElementById(id); return e ? e.textContent : null; };
    return {
        state: root && root.getAttribute('data-state'),
        message: root && root.getAttribute('data-message'),
        server: root && root.getAttribute('data-server'),
        label: text('name'), status: text('status'), title: text('title'),
        dom: new XMLSerializer().serializeToString(document),
    };
})()";

/// Opens `url` in a fresh browser context and waits until the badge is done or `deadline`
/// (real time, counted from the navigation) has passed.
pub(super) async fn show_badge(browser: &mut Browser, url: &str, deadline: Duration) -> BadgeRun {
    let mut run = BadgeRun {
        url: url.to_owned(),
        ..BadgeRun::default()
    };
    let tab = match browser.new_tab().await {
        Ok(tab) => tab,
        Err(err) => {
            run.dom = format!("(no tab: {err})");
            return run;
        }
    };
    let started = Instant::now();
    if let Err(err) = browser.navigate(&tab, url).await {
        run.dom = format!("(navigation failed: {err})");
        browser.close_tab(tab).await;
        return run;
    }
    browser.wait_for(&tab, IS_DONE, started + deadline).await;
    run.elapsed = started.elapsed();
    match browser.evaluate(&tab, SNAPSHOT).await {
        Ok(snapshot) => {
            let field = |name: &str| snapshot[name].as_str().map(str::to_owned);
            run.state = field("state");
            run.message = field("message");
            run.server = field("server");
            run.label = field("label");
            run.status = field("status");
            run.title = field("title");
            run.dom = field("dom").unwrap_or_default();
        }
        Err(err) => run.dom = format!("(no snapshot: {err})"),
    }
    browser.close_tab(tab).await;
    eprintln!(
        "  {:?}: {:?} from {:?}",
        run.elapsed,
        run.message.as_deref().unwrap_or("(not done)"),
        run.server.as_deref().unwrap_or("-")
    );
    run
}

/// `base?query` with every value form-encoded, as a page author would link it.
pub(super) fn page_url(base: &str, params: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{base}?{query}")
}

/// Where the badge pair is served from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Served<'a> {
    /// `status.svg` on the static host.
    Statically(&'a str),
    /// `/static/status.svg` on a node.
    ByNode(&'a str),
}

impl Served<'_> {
    pub(super) fn svg(self) -> String {
        match self {
            Served::Statically(host) => format!("{host}/status.svg"),
            Served::ByNode(node) => format!("{node}/static/status.svg"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cases
