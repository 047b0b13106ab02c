//! Headless Chromium for the browser tests (`tests/programs/browser/`, `tests/programs/front_page.rs`),
//! driven over the DevTools protocol on a pipe.
//!
//! Why not `chromium --headless --timeout=N --dump-dom URL`: in Chromium's current headless
//! mode `--timeout` only caps page loading, and the DOM is dumped at the load event, before
//! status.js's fetches have answered (tried with Chromium 156: `data-state="loading"` and
//! `???`, printed after under a second whatever N was). `--virtual-time-budget` does wait, but
//! in virtual time, which fast-forwards timers and so cannot check "within 2 s".
//! `--remote-debugging-pipe` needs nothing beyond Chromium: it reads JSON commands from fd 3
//! and writes replies to fd 4, each ended by a NUL byte. `sh` maps those two onto the child's
//! stdin and stdout, so no unsafe `pre_exec` is needed. The tests then wait for a condition
//! in the page with a real-time deadline and read the DOM with `XMLSerializer`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::common::process::TempDir;

/// The longest any single DevTools command may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Chromium's first answer: a cold start on a busy two-core machine takes a few seconds.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a page condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// The last `lines` lines of a log file, for failure messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One headless Chromium. Dropping it kills the browser process (`kill_on_drop`); its
/// renderers exit when their parent's pipes close.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    commands: ChildStdin,
    replies: mpsc::UnboundedReceiver<Value>,
    next_id: u64,
    log: PathBuf,
    // Last, so the profile is removed after the browser is gone.
    _profile: TempDir,
}

/// A tab in a browser context of its own: no cache, cookies or storage shared with other
/// tabs, so one case's cached `/servers` answer cannot leak into the next.
#[derive(Debug)]
pub struct Tab {
    context: String,
    session: String,
}

impl Browser {
    /// Starts `chromium` headless with the flags the tests share plus `extra`.
    pub async fn launch(extra: &[&str]) -> Browser {
        let dir = TempDir::new("chromium");
        let profile = dir.path().join("profile");
        let log = dir.path().join("chromium.log");
        let log_file = std::fs::File::create(&log).expect("create the Chromium log");
        let mut child = Command::new("sh")
            .arg("-c")
            // fd 3 ← our pipe (commands), fd 4 → our pipe (replies); Chromium's own stdout
            // joins its stderr in the log.
            .arg(r#"exec "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg("sh")
            .arg("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                // Loopback only, whatever proxy the environment names.
                "--no-proxy-server",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium through sh");
        let commands = child.stdin.take().expect("Chromium's command pipe");
        let mut out = child.stdout.take().expect("Chromium's reply pipe");
        let (sender, replies) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut pending = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let n = match out.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&chunk[..n]);
                while let Some(end) = pending.iter().position(|&b| b == 0) {
                    let message: Vec<u8> = pending.drain(..=end).collect();
                    let Ok(value) = serde_json::from_slice::<Value>(&message[..end]) else {
                        continue;
                    };
                    // Events carry no id; the tests only need replies.
                    if value.get("id").is_some() && sender.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            commands,
            replies,
            next_id: 0,
            log,
            _profile: dir,
        };
        if let Err(err) = browser
            .call_within(None, "Browser.getVersion", json!({}), START_TIMEOUT)
            .await
        {
            panic!(
                "Chromium did not start: {err}\n--- chromium log ---\n{}",
                log_tail(&browser.log, 30)
            );
        }
        browser
    }

    /// Sends one DevTools command (to a tab when `session` is given) and waits for its reply.
    pub async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.call_within(session, method, params, CALL_TIMEOUT)
            .await
    }

    async fn call_within(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .await
            .map_err(|e| format!("{method}: cannot write to Chromium: {e}"))?;
        self.commands
            .flush()
            .await
            .map_err(|e| format!("{method}: cannot write to Chromium: {e}"))?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let reply = tokio::time::timeout_at(deadline, self.replies.recv())
                .await
                .map_err(|_| format!("{method}: no reply within {timeout:?}"))?
                .ok_or_else(|| format!("{method}: Chromium closed its pipe"))?;
            // A reply to an earlier command that timed out: skip it.
            if reply["id"] != json!(id) {
                continue;
            }
            if let Some(error) = reply.get("error") {
                return Err(format!("{method}: {error}"));
            }
            return Ok(reply["result"].clone());
        }
    }

    /// Opens `about:blank` in a fresh browser context.
    pub async fn new_tab(&mut self) -> Result<Tab, String> {
        let created = self
            .call(None, "Target.createBrowserContext", json!({}))
            .await?;
        let context = string_field(&created, "browserContextId")?;
        let target = self
            .call(
                None,
                "Target.createTarget",
                json!({"url": "about:blank", "browserContextId": context}),
            )
            .await?;
        let target = string_field(&target, "targetId")?;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await?;
        let session = string_field(&attached, "sessionId")?;
        Ok(Tab { context, session })
    }

    /// Closes the tab and throws its browser context away.
    pub async fn close_tab(&mut self, tab: Tab) {
        let _ = self
            .call(
                None,
                "Target.disposeBrowserContext",
                json!({"browserContextId": tab.context}),
            )
            .await;
    }

    /// Starts loading `url` in `tab`; returns once Chromium has committed the navigation.
    pub async fn navigate(&mut self, tab: &Tab, url: &str) -> Result<(), String> {
        let result = self
            .call(Some(&tab.session), "Page.navigate", json!({"url": url}))
            .await?;
        match result.get("errorText").and_then(Value::as_str) {
            Some(error) if !error.is_empty() => Err(format!("navigate to {url}: {error}")),
            _ => Ok(()),
        }
    }

    /// Evaluates a JavaScript expression in the tab's page and returns its value as JSON
    /// (`null` for `undefined`). Promises are awaited.
    pub async fn evaluate(&mut self, tab: &Tab, expression: &str) -> Result<Value, String> {
        let result = self
            .call(
                Some(&tab.session),
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(format!("{expression}: threw {exception}"));
        }
        Ok(result["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Polls `expression` until it evaluates to `true` or `deadline` passes; returns whether
    /// it did. Errors while the page is between documents count as "not yet".
    pub async fn wait_for(&mut self, tab: &Tab, expression: &str, deadline: Instant) -> bool {
        loop {
            if let Ok(Value::Bool(true)) = self.evaluate(tab, expression).await {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sets the tab's viewport like a phone's: `width`×`height` CSS pixels at `scale`.
    pub async fn emulate_phone(
        &mut self,
        tab: &Tab,
        width: u32,
        height: u32,
        scale: f64,
    ) -> Result<(), String> {
        self.call(
            Some(&tab.session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": scale, "mobile": true}),
        )
        .await
        .map(drop)
    }

    /// A PNG of the tab: the viewport, or the whole page when `full_page`.
    pub async fn screenshot(&mut self, tab: &Tab, full_page: bool) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        let shot = self
            .call(
                Some(&tab.session),
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": full_page}),
            )
            .await?;
        let data = string_field(&shot, "data")?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("screenshot is not base64: {e}"))
    }

    /// The last lines of Chromium's own log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 30)
    }

    /// Asks Chromium to quit and waits a little for it; dropping kills it anyway.
    pub async fn close(mut self) {
        let _ = self.call(None, "Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

fn string_field(value: &Value, name: &str) -> Result<String, String> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name} in {value}"))
}
