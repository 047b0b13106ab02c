//! The gossip side of the core: whom to gossip with, the server's admission and answer,
//! the client's reconciliation of an answer, the set digest and the signature checks.

use super::*;

impl Core {
    /// Up to `fanout` nodes: mostly nodes whose last probe was good (and `peers.toml` nodes
    /// not heard of yet), one not yet probed (so newcomers are reached before their first
    /// probe), and now and then one whose probes fail (so a healed partition reconnects).
    ///
    /// A `peers.toml` node not heard of yet whose exchanges failed is asked again only
    /// after its backoff ([`Core::on_gossip_result`]), so a node whose seeds are all down
    /// keeps trying them, ever less often, while it talks to the nodes of its saved state.
    pub(super) fn gossip_targets<R: Rng + ?Sized>(
        &self,
        now: Timestamp,
        rng: &mut R,
    ) -> Vec<PeerUrl> {
        let mut verified = Vec::new();
        let mut unprobed = Vec::new();
        let mut failing = Vec::new();
        for (url, slot) in &self.by_url {
            match slot.class {
                Some(PartnerClass::Verified) => verified.push(url),
                Some(PartnerClass::Unprobed) => unprobed.push(url),
                Some(PartnerClass::Failing) => failing.push(url),
                None => {}
            }
        }
        for url in self.seeds.keys() {
            let backed_off = self
                .seed_backoff
                .get(url)
                .is_some_and(|backoff| backoff.retry_at > now);
            if !self.by_url.contains_key(url) && !backed_off {
                verified.push(url);
            }
        }
        let fanout = self.settings.fanout;
        let from_verified = fanout.saturating_sub(usize::from(!unprobed.is_empty()));
        let mut picks = sample(rng, &mut verified, from_verified);
        let rest = fanout.saturating_sub(picks.len());
        picks.extend(sample(rng, &mut unprobed, rest));
        if picks.is_empty() {
            picks.extend(sample(rng, &mut failing, fanout));
        } else if !failing.is_empty() && rng.random_bool(self.settings.failing_gossip_probability) {
            picks.extend(sample(rng, &mut failing, 1));
        }
        picks.into_iter().cloned().collect()
    }

    /// How an exchange this node started with `to` went: `reached` if the first request
    /// got an answer. A `peers.toml` node that can't be reached is asked every round for
    /// three failures in a row (a lossy link loses one now and then), then twice as
    /// rarely after each further failure, up to every 32 intervals;
    /// an answer ends its backoff. Returns the number of failures in a row so far (0 when
    /// reached), for the driver's logs.
    pub fn on_gossip_result(&mut self, to: &PeerUrl, reached: bool, now: Timestamp) -> u32 {
        if !self.seeds.contains_key(to) {
            return 0;
        }
        if reached {
            self.seed_backoff.remove(to);
            return 0;
        }
        let backoff = SeedBackoff::failed(
            self.seed_backoff.get(to).copied(),
            now,
            self.settings.gossip_interval,
        );
        self.seed_backoff.insert(to.clone(), backoff);
        backoff.failures
    }

    /// Whether `url` is named in `peers.toml`.
    pub fn is_seed(&self, url: &PeerUrl) -> bool {
        self.seeds.contains_key(url)
    }

    /// The server side of `POST /gossip`; `from_ip` is the connection's peer address.
    /// The same as [`Core::admit_gossip`] followed by [`Core::answer_gossip`].
    pub fn handle_gossip(
        &mut self,
        request: GossipRequest,
        from_ip: IpAddr,
        now: Timestamp,
    ) -> Result<GossipResponse, GossipError> {
        let admitted = self.admit_gossip(request, from_ip, now)?;
        self.answer_gossip(admitted, now)
    }

    /// The first half of [`Core::handle_gossip`]: the rate limit (one token is taken here)
    /// and the message's limits, which cost nothing to check. A driver that holds the core
    /// behind a lock checks the admitted message's signatures outside it
    /// ([`Core::signature_checks`]) and then calls [`Core::answer_gossip`].
    pub fn admit_gossip(
        &mut self,
        request: GossipRequest,
        from_ip: IpAddr,
        now: Timestamp,
    ) -> Result<AdmittedGossip, GossipError> {
        let result = self.admit(request, from_ip, now);
        if let Err(err) = &result {
            *self.stats.requests_refused.entry(err.kind()).or_default() += 1;
        }
        result
    }

    pub(super) fn admit(
        &mut self,
        request: GossipRequest,
        from_ip: IpAddr,
        now: Timestamp,
    ) -> Result<AdmittedGossip, GossipError> {
        self.limiter
            .take(rate_limit_key(from_ip), 1, now)
            .map_err(|limited| GossipError::RateLimited {
                retry_after: limited.retry_in(),
            })?;
        match &request {
            GossipRequest::Digest { v, .. } => {
                if *v != PROTOCOL_VERSION {
                    return Err(GossipError::UnsupportedVersion(*v));
                }
            }
            GossipRequest::Sync { push, want } => {
                check_len("push", push.len(), MAX_DESCRIPTORS_PER_MESSAGE)?;
                check_len("want", want.len(), MAX_WANTS_PER_MESSAGE)?;
            }
        }
        Ok(AdmittedGossip { request, from_ip })
    }

    /// The second half of [`Core::handle_gossip`]: merges what the admitted message
    /// pushes and answers it.
    pub fn answer_gossip(
        &mut self,
        admitted: AdmittedGossip,
        now: Timestamp,
    ) -> Result<GossipResponse, GossipError> {
        let result = self.answer(admitted, now);
        match &result {
            Ok(_) => self.stats.requests_served += 1,
            Err(err) => *self.stats.requests_refused.entry(err.kind()).or_default() += 1,
        }
        result
    }

    pub(super) fn answer(
        &mut self,
        admitted: AdmittedGossip,
        now: Timestamp,
    ) -> Result<GossipResponse, GossipError> {
        let AdmittedGossip { request, from_ip } = admitted;
        match request {
            GossipRequest::Digest { buckets, .. } => {
                let differing = self.digest().differing(&buckets);
                if differing.is_empty() {
                    return Ok(GossipResponse::InSync);
                }
                let entries = self.entries_in(&bucket_mask(&differing));
                Ok(GossipResponse::Diff {
                    buckets: differing,
                    entries,
                })
            }
            GossipRequest::Sync { push, want } => {
                match self.merge_all(&push, now) {
                    Err((index, err)) => {
                        // Every descriptor no honest node sends costs the same: the message
                        // stops there and the sender's bucket is emptied.
                        self.limiter.drain(&rate_limit_key(from_ip), u32::MAX, now);
                        return Err(GossipError::rejected(index, &err));
                    }
                    // Refusals an honest node may meet cost a request's token each.
                    Ok(charged) => self.limiter.drain(
                        &rate_limit_key(from_ip),
                        u32::try_from(charged).unwrap_or(u32::MAX),
                        now,
                    ),
                }
                let mut seen = HashSet::new();
                let descriptors = want
                    .iter()
                    .filter(|key| seen.insert(**key))
                    .filter_map(|key| self.fresh_descriptor(key, now))
                    .collect();
                Ok(GossipResponse::Descriptors(descriptors))
            }
        }
    }

    /// The client side: takes `from`'s answer to this node's gossip and returns the
    /// follow-up request to send to `from`, if any.
    pub fn handle_gossip_response<R: Rng + ?Sized>(
        &mut self,
        from: &PeerUrl,
        response: GossipResponse,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Option<GossipRequest>, GossipError> {
        // `from` is not trusted for anything; it only names the exchange in logs.
        let _ = from;
        match response {
            GossipResponse::InSync => Ok(None),
            GossipResponse::Diff { buckets, entries } => {
                check_len("entries", entries.len(), MAX_ENTRIES_PER_MESSAGE)?;
                check_len("buckets", buckets.len(), BUCKETS)?;
                let mut mask = [false; BUCKETS];
                for &b in &buckets {
                    *mask
                        .get_mut(usize::from(b))
                        .ok_or(GossipError::BadBucket(b))? = true;
                }
                Ok(self.reconcile(&mask, &entries, now, rng))
            }
            GossipResponse::Descriptors(descriptors) => {
                check_len(
                    "descriptors",
                    descriptors.len(),
                    MAX_DESCRIPTORS_PER_MESSAGE,
                )?;
                self.merge_all(&descriptors, now)
                    .map_err(|(index, err)| GossipError::rejected(index, &err))?;
                Ok(None)
            }
        }
    }

    /// Compares the peer's entries in the differing buckets with ours: push what it lacks
    /// or holds older, want what we lack or hold older.
    pub(super) fn reconcile<R: Rng + ?Sized>(
        &mut self,
        mask: &[bool; BUCKETS],
        entries: &[Entry],
        now: Timestamp,
        rng: &mut R,
    ) -> Option<GossipRequest> {
        // A merge of two key-sorted lists; the peer's is sorted here rather than trusted,
        // which costs nothing when it already is.
        let mut theirs: Vec<(PublicKey, Timestamp)> = entries
            .iter()
            .filter(|Entry(key, _)| mask[bucket_of(key)])
            .map(|&Entry(key, t)| (key, t))
            .collect();
        theirs.sort_unstable();
        theirs.dedup_by_key(|(key, _)| *key);
        let ours = self.entries_in(mask);
        let own_key = self.own.key();
        let mut want: Vec<PublicKey> = Vec::new();
        let mut push: Vec<PublicKey> = Vec::new();
        let (mut a, mut b) = (0, 0);
        while a < ours.len() || b < theirs.len() {
            let mine = ours.get(a).map(|Entry(k, t)| (*k, *t));
            let other = theirs.get(b).copied();
            match (mine, other) {
                (Some((key, t)), Some((their_key, their_t))) if key == their_key => {
                    if their_t > t {
                        want.push(key);
                    } else if t > their_t {
                        push.push(key);
                    }
                    a += 1;
                    b += 1;
                }
                (Some((key, _)), Some((their_key, _))) if key < their_key => {
                    push.push(key);
                    a += 1;
                }
                (Some((key, _)), None) => {
                    push.push(key);
                    a += 1;
                }
                (_, Some((key, t))) => {
                    // A node we don't hold: worth fetching unless we forgot it on purpose
                    // or it is too old anyway.
                    if key != own_key
                        && self.worth_fetching(&key, t)
                        && check_freshness(t, now, &self.freshness).is_ok()
                    {
                        want.push(key);
                    }
                    b += 1;
                }
                (None, None) => break,
            }
        }
        // Our own key wanted back only as proof of a newer copy: see MergeOutcome::OwnReissued.
        if self.own.leaving() {
            want.retain(|key| *key != own_key);
        }
        push.retain(|key| {
            self.held(key)
                .is_some_and(|t| check_freshness(t, now, &self.freshness).is_ok())
        });
        let want = sample(rng, &mut want, MAX_WANTS_PER_MESSAGE);
        let push: Vec<SignedDescriptor> = sample(rng, &mut push, MAX_DESCRIPTORS_PER_MESSAGE)
            .iter()
            .filter_map(|key| self.fresh_descriptor(key, now))
            .collect();
        if want.is_empty() && push.is_empty() {
            return None;
        }
        Some(GossipRequest::Sync { push, want })
    }

    pub(super) fn fresh_descriptor(
        &self,
        key: &PublicKey,
        now: Timestamp,
    ) -> Option<SignedDescriptor> {
        let desc = if *key == self.own.key() {
            &self.own
        } else {
            &self.members.get(key)?.desc
        };
        check_freshness(desc.issued_at(), now, &self.freshness).ok()?;
        Some(desc.to_signed())
    }

    /// The signature checks that merging `descriptors` now would do: those of descriptors
    /// newer than the one held for their key and not forgotten at their issue time (older
    /// and replayed ones are refused without a check, so an attacker replaying them gets
    /// none). Empty when the core has no [`SignatureCache`] to carry the results in, or when
    /// the message is over the protocol's limit and will be refused whole.
    ///
    /// Cheap: no cryptography happens here. The driver runs the returned checks without
    /// holding the core, then merges as usual.
    pub fn signature_checks(&self, descriptors: &[SignedDescriptor]) -> SignatureChecks {
        let Some(cache) = &self.signature_cache else {
            return SignatureChecks::default();
        };
        if descriptors.len() > MAX_DESCRIPTORS_PER_MESSAGE {
            return SignatureChecks::default();
        }
        // A full list with nobody to make room refuses newcomers before their check.
        let room = self.members.len() < self.settings.max_members
            || self.members.values().any(super::merge::is_evictable);
        let pending = descriptors
            .iter()
            .filter(|descriptor| {
                let Ok(key) = descriptor.peek_key() else {
                    return false;
                };
                let issued_at = Timestamp::from_unix_ms(descriptor.issued_at);
                match self.held(&key) {
                    Some(held) => issued_at > held,
                    None => room && !self.forgotten.blocks(&key, issued_at),
                }
            })
            .cloned()
            .collect();
        SignatureChecks {
            pending,
            freshness: Some(self.freshness),
            cache: Some(Arc::clone(cache)),
        }
    }

    /// The current set digest, recomputing only buckets changed since the last call.
    pub fn digest(&mut self) -> SetDigest {
        for bucket in 0..BUCKETS {
            if self.dirty_buckets & (1 << bucket) != 0 {
                let mut mask = [false; BUCKETS];
                mask[bucket] = true;
                let entries = self.entries_in(&mask);
                self.buckets[bucket] = bucket_hash(entries.into_iter().map(|Entry(k, t)| (k, t)));
            }
        }
        self.dirty_buckets = 0;
        SetDigest::from_buckets(self.buckets)
    }

    /// Everything held in the buckets of `mask` (self included), sorted by key.
    pub(super) fn entries_in(&self, mask: &[bool; BUCKETS]) -> Vec<Entry> {
        let mut out = Vec::new();
        for (bucket, _) in mask.iter().enumerate().filter(|(_, on)| **on) {
            let mut low = [0u8; 32];
            low[0] = (bucket as u8) << 4;
            let range = self.members.range(PublicKey::from_bytes(low)..);
            out.extend(
                range
                    .take_while(|(key, _)| bucket_of(key) == bucket)
                    .map(|(key, m)| Entry(*key, m.desc.issued_at())),
            );
            if bucket_of(&self.own.key()) == bucket {
                // Buckets are key ranges in ascending order and the map is sorted, so only
                // our own entry needs placing.
                let own = Entry(self.own.key(), self.own.issued_at());
                let at = out.partition_point(|Entry(key, _)| *key < own.0);
                out.insert(at, own);
            }
        }
        out.truncate(MAX_ENTRIES_PER_MESSAGE);
        out
    }

    pub(super) fn mark_dirty(&mut self, key: &PublicKey) {
        self.dirty_buckets |= 1 << bucket_of(key);
    }
}
