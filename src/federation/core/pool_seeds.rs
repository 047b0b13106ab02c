//! Pools named in `peers.toml`: when to ask one, whom to ask at the addresses its name
//! resolves to, and the backoff when none answers. The driver resolves the name and runs
//! the exchanges ([`Action::AskPool`]); this side only decides.
//!
//! A pool is a way in, not a member: the addresses it resolves to are asked like seeds
//! (the same digest as the round's other exchanges), and what they answer is merged and
//! verified like any gossip. The nodes learned that way are ordinary gossip-learned nodes
//! (score 0, probation, evictable), not `peers.toml` nodes: the operator named a DNS name,
//! whose answers change every minute and, over UDP, can be forged, so they earn none of
//! the start score or eviction protection an operator's own `url` entry gives.

use super::*;

/// A pool from `peers.toml` and how asking it went.
#[derive(Clone, Debug)]
pub(super) struct PoolSeedState {
    seed: PoolSeed,
    /// Some address it resolved to answered in this run.
    reached: bool,
    /// A round of resolving and asking is under way (asked, not yet reported).
    asking: bool,
    backoff: Option<SeedBackoff>,
}

impl Core {
    /// Takes the pools of `peers.toml`. Each is asked every gossip round (with the seeds'
    /// backoff when nothing answers) until one of its addresses answers, and again
    /// whenever this node has no gossip partner whose last probe was good.
    pub fn set_pool_seeds(&mut self, pools: Vec<PoolSeed>) {
        self.pools = pools
            .into_iter()
            .map(|seed| PoolSeedState {
                seed,
                reached: false,
                asking: false,
                backoff: None,
            })
            .collect();
    }

    /// The pools this core asks.
    pub fn pool_seeds(&self) -> impl Iterator<Item = &PoolSeed> {
        self.pools.iter().map(|state| &state.seed)
    }

    /// Called once per gossip round: asks the pools that are due.
    pub(super) fn due_pools(
        &mut self,
        now: Timestamp,
        request: &GossipRequest,
        actions: &mut Vec<Action>,
    ) {
        if self.pools.is_empty() {
            return;
        }
        let connected = self
            .by_url
            .values()
            .any(|slot| slot.class == Some(PartnerClass::Verified));
        for state in &mut self.pools {
            let backed_off = state.backoff.is_some_and(|b| b.retry_at > now);
            if state.asking || backed_off || (state.reached && connected) {
                continue;
            }
            state.asking = true;
            actions.push(Action::AskPool {
                pool: state.seed.clone(),
                request: request.clone(),
            });
        }
    }

    /// The URLs to ask for a pool whose name resolved to `resolved`: each address once, in
    /// the order given, on the pool's scheme and port, at most
    /// [`MAX_POOL_ADDRESSES_ASKED`]; this node's own pool addresses and URL left out.
    pub fn pool_seed_urls(&self, pool: &PoolSeed, resolved: &[IpAddr]) -> Vec<PeerUrl> {
        let own = &self.settings.pool_addresses;
        let mut seen = HashSet::new();
        resolved
            .iter()
            .map(|ip| canonical_ip(*ip))
            .filter(|ip| !own.contains(ip) && seen.insert(*ip))
            .filter_map(|ip| pool.url_for(ip).ok())
            .filter(|url| url != self.own.url())
            .take(MAX_POOL_ADDRESSES_ASKED)
            .collect()
    }

    /// How a round of asking `pool` went: `reached` if any address it resolved to
    /// answered (a refusal is an answer, as for seeds). A round in which the name did not
    /// resolve, resolved to no address to ask, or no address answered is a failure and
    /// backs off as a seed does. Returns the failures in a row so far (0 when reached).
    pub fn on_pool_result(&mut self, pool: &PoolSeed, reached: bool, now: Timestamp) -> u32 {
        let interval = self.settings.gossip_interval;
        let Some(state) = self.pools.iter_mut().find(|state| state.seed == *pool) else {
            return 0;
        };
        state.asking = false;
        if reached {
            state.reached = true;
            state.backoff = None;
            return 0;
        }
        let backoff = SeedBackoff::failed(state.backoff, now, interval);
        state.backoff = Some(backoff);
        backoff.failures
    }
}
