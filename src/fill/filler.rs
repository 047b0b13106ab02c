//! What the caches call: [`Filler`], asked on a miss for another node's copy and told what
//! became of it, and what it trades in. The node's filler is [`super::asker::Asker`]; unit
//! tests of the cache script their own.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use serde_json::value::RawValue;

use crate::hub::HubError;
use crate::tools::clock;

/// Which node supplied a cached entry: an index the [`Filler`] hands out, one per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SupplierId(pub u16);

/// What an owner supplied.
#[derive(Debug)]
pub enum Supplied {
    /// The resource, as JSON (checked by the resource's reader before use).
    Found(Box<RawValue>),
    NotFound,
    RepositoryNotFound,
}

/// One fill: what the owner said, how old its copy was, and who it was.
#[derive(Debug)]
pub struct Filled {
    pub supplied: Supplied,
    pub age: Duration,
    pub supplier: SupplierId,
}

/// What a cache asks for on a miss.
#[derive(Debug, Clone, Copy)]
pub struct FillAsk<'a> {
    /// The resource's name in fills (`status`, `repository`, `tag_list`, `tag`).
    pub kind: &'static str,
    /// The key its owner is chosen by.
    pub owner_key: &'a str,
    /// The cache key, as the owner's cache spells it.
    pub key: &'a str,
    /// The largest answer read for this kind of resource ([`crate::cache::Resource::MAX_FILL_BYTES`]).
    pub max_answer_bytes: usize,
}

/// The future of one fill.
pub type FillFuture<'a> = Pin<Box<dyn Future<Output = Option<Filled>> + Send + 'a>>;

/// What a fill that reads well tells against what this node knew of the resource before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    /// Nothing known, or the same answer.
    Nothing,
    /// Another answer, which time explains (more pulls, a later push).
    Changed,
}

/// Which check a fill gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// The one its supplier's check schedule owes ([`super::trust`]).
    Scheduled,
    /// One more: an answer that changed, sampled, or one time does not explain.
    Extra,
}

/// What to do with a fill that reads well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Use it, checking it against Docker Hub when `Some`.
    Take(Option<CheckKind>),
    /// Do not use it: a check its supplier owes has not been made yet.
    Wait,
}

/// What a check of a fill found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    Agreed,
    /// The evidence of a disagreement.
    Disagreed(String),
    /// No check was made: Docker Hub gave no usable answer, or there was no room in time.
    NotMade,
}

/// The network, as the caches see it.
pub trait Filler: Send + Sync + fmt::Debug {
    /// Asks the owner of `ask` (hedged to the next node in order) for its copy; `None` when
    /// this node owns it, filling is off, or no node asked gave a good answer (the cache
    /// then asks Docker Hub).
    fn fill<'a>(&'a self, ask: FillAsk<'a>) -> FillFuture<'a>;
    /// Whether a fill for `owner_key` would ask another node: false when filling is off or
    /// this node comes first (it owns the resource, or every node before it is passed over).
    fn asks_others(&self, owner_key: &str) -> bool;
    /// Whether entries `supplier` supplied may still be served.
    fn trusted(&self, supplier: SupplierId) -> bool;
    /// Whether to use a fill of `supplier` that reads well, and whether to check it.
    fn take(&self, supplier: SupplierId, news: News) -> Use;
    /// How long what `supplier` supplies lives, as a share (numerator, denominator) of what
    /// this node fetched itself would: less for a supplier with little history.
    fn life_share(&self, supplier: SupplierId) -> (u32, u32);
    /// A supplied answer that could not be used (unreadable, impossible, too old): costs
    /// its sender.
    fn refused(&self, supplier: SupplierId, reason: &str);
    /// The outcome of a check: a disagreement makes the supplier untrusted (every cache
    /// then drops what it supplied).
    fn judged(&self, supplier: SupplierId, ask: FillAsk<'_>, check: CheckKind, judged: Judged);
}

/// A fill's outcome as the cache stores it.
pub(crate) fn outcome_of<V>(
    supplied: Supplied,
    read: impl FnOnce(&str) -> Result<V, String>,
) -> Result<Result<V, HubError>, String> {
    Ok(match supplied {
        Supplied::Found(raw) => Ok(read(raw.get())?),
        Supplied::NotFound => Err(HubError::NotFound),
        Supplied::RepositoryNotFound => Err(HubError::RepositoryNotFound),
    })
}

/// The wall-clock time `age` ago.
pub(crate) fn fetched_at(age: Duration) -> SystemTime {
    clock::wall().saturating_sub(age).into()
}
