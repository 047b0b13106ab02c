//! Merging descriptors into the member list: verification, replacement, eviction to make
//! room, and re-issuing this node's own descriptor.
//!
//! Making room is not forgetting. An evicted node is only not fetched back from other
//! nodes' digests while the list is full (that would evict another at once); pushed to us,
//! by itself or anyone, it is judged afresh, and taken whenever there is room for it.
//! Refusing a valid descriptor for good is reserved for what this node never wants
//! (another key at its own URL, or at a URL `peers.toml` pins to another key); a node's
//! own signed leave is what removes it.

use super::*;
use crate::tools::bounded::BoundedMap;

/// Keys with an issue time, oldest first, bounded: refused descriptors (forgotten) and
/// evicted ones (not fetched back while the list is full).
#[derive(Clone, Debug)]
pub(super) struct Forgotten(BoundedMap<PublicKey, Timestamp>);

impl Forgotten {
    /// Room for `cap` keys.
    pub(super) fn new(cap: usize) -> Self {
        Forgotten(BoundedMap::new(cap))
    }

    pub(super) fn blocks(&self, key: &PublicKey, issued_at: Timestamp) -> bool {
        self.0.get(key).is_some_and(|&t| issued_at <= t)
    }

    pub(super) fn insert(&mut self, key: PublicKey, issued_at: Timestamp) {
        self.0.insert(key, issued_at);
    }

    /// Drops the record of `key` (it is held again).
    pub(super) fn remove(&mut self, key: &PublicKey) {
        self.0.remove(key);
    }

    /// Drops records of descriptors that have expired anyway.
    pub(super) fn prune(&mut self, oldest: Timestamp) {
        self.0.forget_oldest_while(|&t| t < oldest);
    }
}

/// Members a newcomer may replace, in the order they go (see `Core::next_victim`), worked
/// out when first needed.
#[derive(Debug, Default)]
pub(super) struct Victims {
    /// Worst last.
    queue: Option<Vec<PublicKey>>,
}

impl Victims {
    pub(super) fn invalidate(&mut self) {
        self.queue = None;
    }

    /// Gives back a pick that was not used (the newcomer was refused after all): it is
    /// still the worst, so it goes first next time.
    fn put_back(&mut self, key: PublicKey) {
        if let Some(queue) = &mut self.queue {
            queue.push(key);
        }
    }
}

/// Whether a newcomer may replace `member`: it left, or its probes fail and it is not
/// listed, and it is neither named in `peers.toml` nor was ever listed here. A newcomer is
/// unproven (not probed yet); a node that proved itself, or that the operator named, is
/// worth more than any number of them, even while it misses a few probes: otherwise a
/// burst of fresh fakes pushed during a peer's short outage would lock it out.
pub(super) fn is_evictable(member: &Member) -> bool {
    member.desc.leaving()
        || (member.consecutive_failures > 0
            && !member.score.is_listable()
            && !member.seed
            && !member.ever_listed)
}

/// Eviction order: `Less` when `a` goes before `b` (left first, then the lowest score, then
/// the most recently learned; the key settles ties).
pub(super) fn eviction_order(
    ka: &PublicKey,
    a: &Member,
    kb: &PublicKey,
    b: &Member,
) -> std::cmp::Ordering {
    (!a.desc.leaving())
        .cmp(&!b.desc.leaving())
        .then(a.score.value().total_cmp(&b.score.value()))
        .then(b.first_seen.cmp(&a.first_seen))
        .then(ka.cmp(kb))
}

impl Core {
    /// Changes this node's weight, re-issuing its descriptor.
    pub fn set_weight(&mut self, weight: f64, now: Timestamp) -> Result<(), DescriptorError> {
        let mut descriptor = self.own.descriptor().clone();
        descriptor.weight = weight;
        descriptor.issued_at = now.max(
            self.own
                .issued_at()
                .saturating_add(Duration::from_millis(1)),
        );
        self.own = descriptor.sign(&self.identity)?;
        self.settings.weight = weight;
        self.mark_dirty(&self.own.key());
        Ok(())
    }

    /// Merges descriptors in order. Stops at the first descriptor no honest node sends
    /// (see [`MergeError::is_rejection`]) and returns its index and error; otherwise returns
    /// how many were refused for what an honest node may run into (no room, just expired),
    /// which the sender pays for by the token.
    pub(super) fn merge_all(
        &mut self,
        descriptors: &[SignedDescriptor],
        now: Timestamp,
    ) -> Result<usize, (usize, DescriptorError)> {
        // One eviction order for the whole message: a full core takes up to 128 newcomers
        // here, and finding each one's victim by a scan of every member cost a thousand
        // comparisons apiece, under the lock the async side waits for.
        let mut victims = Victims::default();
        let mut charged = 0;
        for (index, descriptor) in descriptors.iter().enumerate() {
            match self.merge_counted(descriptor, now, &mut victims) {
                Err(MergeError::Invalid(err)) if err.is_rejection() => return Err((index, err)),
                Err(MergeError::Full | MergeError::Invalid(_)) => charged += 1,
                _ => {}
            }
        }
        Ok(charged)
    }

    /// Takes one descriptor if it is valid and newer than what is held for its key.
    /// Cheap refusals (older or already held) come before the signature check.
    pub fn merge(
        &mut self,
        descriptor: &SignedDescriptor,
        now: Timestamp,
    ) -> Result<MergeOutcome, MergeError> {
        self.merge_counted(descriptor, now, &mut Victims::default())
    }

    pub(super) fn merge_counted(
        &mut self,
        descriptor: &SignedDescriptor,
        now: Timestamp,
        victims: &mut Victims,
    ) -> Result<MergeOutcome, MergeError> {
        let result = self.merge_inner(descriptor, now, victims);
        match &result {
            Ok(_) => self.stats.descriptors_accepted += 1,
            Err(err) => {
                *self
                    .stats
                    .descriptors_rejected
                    .entry(err.kind())
                    .or_default() += 1
            }
        }
        result
    }

    pub(super) fn merge_inner(
        &mut self,
        descriptor: &SignedDescriptor,
        now: Timestamp,
        victims: &mut Victims,
    ) -> Result<MergeOutcome, MergeError> {
        let key = descriptor.peek_key()?;
        let issued_at = Timestamp::from_unix_ms(descriptor.issued_at);
        let held = self.held(&key);
        match held {
            Some(t) if issued_at < t => return Err(MergeError::Stale),
            Some(t) if issued_at == t => return Err(MergeError::Replayed),
            None if self.forgotten.blocks(&key, issued_at) => return Err(MergeError::Forgotten),
            _ => {}
        }
        // No room and nobody to make room: refused before any cryptography, so a sender
        // who pushes to a full node costs it nothing but the parse.
        let victim = if held.is_none() && self.members.len() >= self.settings.max_members {
            Some(self.next_victim(victims).ok_or(MergeError::Full)?)
        } else {
            None
        };
        let verified =
            match descriptor.verify(now, &self.freshness, self.signature_cache.as_deref()) {
                Ok(verified) => verified,
                Err(err) => {
                    if let Some(victim) = victim {
                        victims.put_back(victim);
                    }
                    return Err(err.into());
                }
            };
        if key == self.own.key() {
            // Signed with our own key and newer than ours: make ours newer still.
            self.stats.own_key_seen_elsewhere += 1;
            let leaving = self.own.leaving();
            self.reissue(
                verified
                    .issued_at()
                    .saturating_add(Duration::from_millis(1))
                    .max(now),
                leaving,
            );
            return Ok(MergeOutcome::OwnReissued);
        }
        let refusal = if *verified.url() == self.settings.public_url {
            Some(MergeError::ClaimsOwnUrl)
        } else if let Some(Peer {
            key: Some(pinned), ..
        }) = self.seeds.get(verified.url())
            && *pinned != key
        {
            Some(MergeError::PinnedKeyMismatch {
                url: verified.url().to_string(),
            })
        } else {
            None
        };
        if let Some(err) = refusal {
            // Valid but unwanted here: remember it, so peers holding it are not asked for
            // it again on every exchange.
            if held.is_none() {
                self.forget(key, issued_at);
            }
            if let Some(victim) = victim {
                victims.put_back(victim);
            }
            return Err(err);
        }
        let leaving = verified.leaving();
        if held.is_some() {
            // A leave makes a member the first to go, and a new descriptor can reset its
            // probe history: the order worked out so far no longer holds.
            victims.invalidate();
            self.replace(key, verified, now);
            return Ok(if leaving {
                MergeOutcome::Left
            } else {
                MergeOutcome::Updated
            });
        }
        if let Some(victim) = victim {
            self.evict(&victim);
        }
        if leaving {
            // A node first heard of by its leave is evictable at once, ahead of the rest.
            victims.invalidate();
        }
        let seed = self.seeds.contains_key(verified.url());
        let member = Member {
            desc: verified,
            score: Score::new(if seed {
                score::SEED_START
            } else {
                score::GOSSIP_START
            }),
            seed,
            probes: 0,
            good_probes: 0,
            consecutive_failures: 0,
            last_verdict: None,
            last_probe_at: None,
            latency: None,
            resolved_ip: None,
            first_seen: now,
            standing: None,
            ever_listed: false,
            listed_since: None,
            pool_good: Vec::new(),
        };
        self.evicted.remove(&key);
        self.insert(key, member, now);
        Ok(if leaving {
            MergeOutcome::Left
        } else {
            MergeOutcome::Added
        })
    }

    /// The member a newcomer may replace: one that left, or one whose probes fail and that
    /// is not listed; never a listed node, never one still waiting for its first probe
    /// (it may be as good as the newcomer). Left first, then the lowest score, then the
    /// most recently learned.
    ///
    /// The order is worked out once per message (`victims`) and then taken from: within a
    /// message only merges happen, newcomers are never evictable (not probed yet) unless
    /// they are leaves, and a leave or an update invalidates the order, so each pick is the
    /// one a fresh scan would make.
    pub(super) fn next_victim(&self, victims: &mut Victims) -> Option<PublicKey> {
        let queue = victims.queue.get_or_insert_with(|| {
            let mut candidates: Vec<(&PublicKey, &Member)> = self
                .members
                .iter()
                .filter(|(_, m)| is_evictable(m))
                .collect();
            // Sorted worst last, so taking from the end of the Vec takes the worst first.
            candidates.sort_by(|(ka, a), (kb, b)| eviction_order(kb, b, ka, a));
            candidates.into_iter().map(|(key, _)| *key).collect()
        });
        while let Some(key) = queue.pop() {
            if self.members.get(&key).is_some_and(is_evictable) {
                return Some(key);
            }
        }
        None
    }

    /// Makes room: the member goes, but is not forgotten (see the module documentation).
    pub(super) fn evict(&mut self, key: &PublicKey) {
        if let Some(member) = self.remove(key) {
            self.evicted.insert(*key, member.desc.issued_at());
            self.stats.evictions += 1;
        }
    }

    /// Whether a digest entry is worth fetching as far as room goes: an evicted
    /// descriptor only when it would not push out another member.
    pub(super) fn worth_fetching(&self, key: &PublicKey, issued_at: Timestamp) -> bool {
        !self.forgotten.blocks(key, issued_at)
            && (self.members.len() < self.settings.max_members
                || !self.evicted.blocks(key, issued_at))
    }

    pub(super) fn forget(&mut self, key: PublicKey, issued_at: Timestamp) {
        self.forgotten.insert(key, issued_at);
    }

    pub(super) fn insert(&mut self, key: PublicKey, member: Member, now: Timestamp) {
        let url = member.desc.url().clone();
        let leaving = member.desc.leaving();
        self.members.insert(key, member);
        let slot = self.by_url.entry(url.clone()).or_default();
        slot.keys.push(key);
        if !leaving {
            // Probe newcomers right away: listing and gossip both wait for it.
            slot.next_probe = Some(now);
        }
        self.refresh_slot(&url);
        self.mark_dirty(&key);
    }

    pub(super) fn remove(&mut self, key: &PublicKey) -> Option<Member> {
        let member = self.members.remove(key)?;
        let url = member.desc.url().clone();
        if let Some(slot) = self.by_url.get_mut(&url) {
            slot.keys.remove(key);
            if slot.keys.is_empty() {
                self.by_url.remove(&url);
            } else {
                self.refresh_slot(&url);
            }
        }
        self.mark_dirty(key);
        Some(member)
    }

    /// Swaps in a newer descriptor of a known node, keeping its probe history unless what
    /// was probed changed (its URL) or it comes back after a leave.
    ///
    /// A node that sends a newer descriptor after a run of failed probes, before its score
    /// has climbed back, has restarted: its outage counts as one failed probe, not as all
    /// the probes that failed while it was down. It gets back the score it had when the
    /// failures began, less one failure, and is listed again only after a good probe that
    /// follows. Why this is safe against a node that re-signs on purpose: docs/GOSSIP.md
    /// section 4.
    pub(super) fn replace(&mut self, key: PublicKey, verified: VerifiedDescriptor, now: Timestamp) {
        let Some(mut member) = self.remove(&key) else {
            return;
        };
        let moved = member.desc.url() != verified.url();
        let returned = member.desc.leaving() && !verified.leaving();
        if moved || returned {
            member.good_probes = 0;
            member.consecutive_failures = 0;
            member.probes = 0;
            member.standing = None;
        } else if !verified.leaving()
            && let Some(standing) = member.standing.take()
        {
            let forgiven = standing.after_probe(false);
            if forgiven.value() > member.score.value() {
                member.score = forgiven;
                // Listed again only once the restarted process has answered a probe.
                member.good_probes = 0;
                self.stats.outages_forgiven += 1;
            }
        }
        member.seed = self.seeds.contains_key(verified.url());
        member.desc = verified;
        self.insert(key, member, now);
    }

    /// Re-issues this node's descriptor (time strictly after the previous one).
    pub(super) fn reissue(&mut self, now: Timestamp, leaving: bool) {
        let mut descriptor = self.own.descriptor().clone();
        descriptor.issued_at = now.max(
            self.own
                .issued_at()
                .saturating_add(Duration::from_millis(1)),
        );
        descriptor.leaving = leaving;
        // Signing only fails on fields that Settings::validate accepted; keep the old
        // descriptor in that impossible case rather than panic.
        if let Ok(signed) = descriptor.sign(&self.identity) {
            self.own = signed;
            self.mark_dirty(&self.own.key());
        }
    }
}
