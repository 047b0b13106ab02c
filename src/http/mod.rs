//! The HTTP side of a node: connections in, answers out.
//!
//! - [`server`]: the accept loop, connection limits, header timeout, graceful drain.
//! - [`client_addr`]: who a request comes from, behind `--trusted-proxies` too.
//! - [`router`]: the one request parser: method, path and query to a [`router::Route`].
//! - [`routes`]: the handlers, one per route family.
//! - [`error`]: how errors become answers, the same for every route family.
//! - [`response`]: what every answer carries (ETag, `Cache-Control`, CORS).
//! - [`memo`]: the one memo of rendered answers, bounded by bytes: finished answers by
//!   request target, while they stay the same, and ([`badge_memo`]) rendered badges.
//! - [`pages`]: the HTML front page.
//! - [`source`]: the source archive served at `/source`.

pub mod badge_memo;
pub mod client_addr;
pub mod error;
pub mod memo;
pub mod pages;
pub mod response;
pub mod router;
pub mod routes;
pub mod server;
pub mod source;

use std::sync::Arc;

use self::client_addr::TrustedProxies;
use self::memo::ResponseMemo;
use self::response::Cacheable;
use crate::node::Node;

/// The response memo's budget. An answer weighs its target (at most 512 bytes), its body
/// (a 1.3 KB badge, shared with the badge memo but counted here too) and two ready header
/// maps: about 2,000 badges. A few hundred popular badges is what it is for.
const MEMO_BYTES: usize = 4 * 1024 * 1024;
/// A badge answer, as [`Cacheable`] weighs it.
const TYPICAL_ANSWER_BYTES: usize = 2048;

/// What the HTTP side serves from: the node, and the finished answers it keeps for it.
/// Cloning shares both.
#[derive(Debug, Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

#[derive(Debug)]
struct AppInner {
    node: Node,
    memo: ResponseMemo<Arc<Cacheable>>,
    trusted_proxies: TrustedProxies,
}

impl App {
    pub fn new(node: Node) -> App {
        App {
            inner: Arc::new(AppInner {
                trusted_proxies: TrustedProxies::new(node.config().trusted_proxies.clone()),
                node,
                memo: ResponseMemo::new(MEMO_BYTES, TYPICAL_ANSWER_BYTES),
            }),
        }
    }

    pub fn node(&self) -> &Node {
        &self.inner.node
    }

    /// The reverse proxies whose forwarding headers name the client.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.trusted_proxies
    }

    /// Finished badge and JSON answers by request target, while they stay the same.
    pub fn memo(&self) -> &ResponseMemo<Arc<Cacheable>> {
        &self.inner.memo
    }
}

impl From<Node> for App {
    fn from(node: Node) -> App {
        App::new(node)
    }
}
