//! The HTTP side of a node: connections in, answers out.
//!
//! - [`server`]: the accept loop, connection limits, header timeout, graceful drain.
//! - [`router`]: the one request parser: method, path and query to a [`router::Route`].
//! - [`routes`]: the handlers, one per route family, and how errors become answers.
//! - [`memo`]: finished answers by request target, while they stay the same.
//! - [`pages`]: the HTML front page.
//! - [`source`]: the source archive served at `/source`.

pub mod badge_memo;
pub mod memo;
pub mod pages;
pub mod response;
pub mod router;
pub mod routes;
pub mod server;
pub mod source;
mod watchdog;
