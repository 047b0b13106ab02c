//! Probing: which nodes are due, and what a probe's outcome does to a node's score.
//!
//! Three rules keep a real network's noise from deciding who is listed (docs/GOSSIP.md,
//! "Health on a lossy network"):
//!
//! - a failed probe of a listed node is retried at once by the driver, up to twice
//!   ([`Core::wants_retry`]); only a probe whose retries failed too counts as failed;
//! - when most listed nodes fail at once, this node doubts its own link first and does not
//!   count those failures, for at most [`DOUBT_LIMIT_INTERVALS`] probe intervals;
//! - a run of failures costs at most two failures' worth of score, however long it lasts,
//!   and a node that has passed probes is probed every interval while it fails.

use super::*;

impl Core {
    pub(super) fn due_probes(&mut self, now: Timestamp, actions: &mut Vec<Action>) {
        // A scan rather than a timer queue: a few nanoseconds per known URL, and no second
        // structure to keep in step with the member map.
        let mut forbidden = Vec::new();
        let mut actions_pool = Vec::new();
        for (url, slot) in self.by_url.iter_mut() {
            if slot.next_probe.is_none_or(|due| due > now) {
                continue;
            }
            // A node seen healthy before is probed every interval while it fails, so it is
            // listed again within a few intervals of answering, however long it was down.
            let shift = if slot.proven {
                0
            } else {
                slot.failures
                    .saturating_sub(BACKOFF_AFTER_FAILURES)
                    .min(MAX_BACKOFF_SHIFT)
            };
            let interval = self.settings.probe_interval.saturating_mul(1 << shift);
            slot.next_probe = Some(now.saturating_add(interval));
            if !self.settings.allow_private_peers
                && (url.literal_ip().is_some_and(is_forbidden_probe_target)
                    || url.is_localhost_name())
            {
                // Decided without asking the driver: the URL names a forbidden address.
                forbidden.push(url.clone());
                continue;
            }
            actions.push(Action::Probe { url: url.clone() });
            // The pool addresses of the nodes here that serve the pool and have shown
            // themselves (not those of every made-up descriptor), at the pool port, as
            // the pool's clients reach them.
            for member in slot
                .keys
                .as_slice()
                .iter()
                .filter_map(|k| self.members.get(k))
            {
                if self.settings.answers_pool_dns
                    && !member.desc.leaving()
                    && (member.good_probes > 0 || member.seed)
                {
                    push_pool_probes(&self.settings, member.desc.pool(), &mut actions_pool);
                }
            }
        }
        for url in forbidden {
            self.on_probe_result(&url, ProbeOutcome::forbidden(url.literal_ip()), now);
        }
        if self.settings.answers_pool_dns
            && !self.own.leaving()
            && !self.own.pool().is_empty()
            && now >= self.next_own_pool_probe
        {
            self.next_own_pool_probe = now.saturating_add(self.settings.probe_interval);
            push_pool_probes(&self.settings, self.own.pool(), &mut actions_pool);
        }
        actions_pool.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        actions_pool.dedup();
        actions.extend(
            actions_pool
                .into_iter()
                .map(|url| Action::ProbePool { url }),
        );
    }

    /// Whether the driver should probe the pool address `url` again at once before
    /// reporting `outcome`, as for a listed node's URL ([`Core::wants_retry`]): one lost
    /// request must not take a node (this one included) out of the DNS answers.
    pub fn wants_pool_retry(&self, outcome: &ProbeOutcome) -> bool {
        (!outcome.answered || outcome.latency > self.settings.probe_timeout) && !outcome.forbidden
    }

    /// A probe of a pool address at the pool port ([`Action::ProbePool`]) came back: the
    /// address is good for this node itself, or for each node that signed it, only if
    /// `/health` answered there in time with that node's key.
    pub fn on_pool_probe_result(&mut self, url: &PeerUrl, outcome: ProbeOutcome, now: Timestamp) {
        let Some(ip) = url.literal_ip().map(canonical_ip) else {
            return;
        };
        let in_time = outcome.answered && outcome.latency <= self.settings.probe_timeout;
        let good_for = |key: PublicKey| in_time && outcome.key_seen == Some(key);
        if self.own.pool().contains(&ip) {
            record_pool_probe(&mut self.own_pool_good, ip, good_for(self.own.key()), now);
        }
        for (key, member) in &mut self.members {
            if member.desc.pool().contains(&ip) {
                record_pool_probe(&mut member.pool_good, ip, good_for(*key), now);
            }
        }
    }

    /// Recomputes the summary of the nodes at `url` after any of them changed.
    pub(super) fn refresh_slot(&mut self, url: &PeerUrl) {
        let Some(slot) = self.by_url.get_mut(url) else {
            return;
        };
        let mut summary = SlotSummary::default();
        for member in slot
            .keys
            .as_slice()
            .iter()
            .filter_map(|k| self.members.get(k))
        {
            summary.add(member);
        }
        summary.apply(slot);
    }

    /// Whether the driver should probe `url` again at once before reporting `outcome`: the
    /// probe got no answer (or a late one) and a node at `url` is listed. One lost request
    /// must not cost a listed node its place; a node not listed proves itself with probes
    /// as they come (a retry there would only help a flapping node climb). Drivers retry
    /// at most [`PROBE_RETRIES`] times and report the last outcome.
    pub fn wants_retry(&self, url: &PeerUrl, outcome: &ProbeOutcome) -> bool {
        let lost = !outcome.answered || outcome.latency > self.settings.probe_timeout;
        lost && !outcome.forbidden && self.url_is_watched(url)
    }

    /// A node at `url` is listable: its probes tell this node about its own link too.
    fn url_is_watched(&self, url: &PeerUrl) -> bool {
        self.by_url
            .get(url)
            .is_some_and(|slot| self.slot_is_watched(slot))
    }

    fn slot_is_watched(&self, slot: &UrlSlot) -> bool {
        slot.keys
            .as_slice()
            .iter()
            .filter_map(|k| self.members.get(k))
            .any(Member::is_listable)
    }

    /// Whether this node doubts its own link: most listed nodes got no answer to their
    /// latest probe. Worked out when a listed node's probe fails (and, while doubting, when
    /// one answers), never on the common path of a good probe.
    fn doubts_itself(&mut self, now: Timestamp) -> bool {
        let (mut watched, mut failing) = (0usize, 0usize);
        for slot in self.by_url.values() {
            if slot.last_answered.is_none() || !self.slot_is_watched(slot) {
                continue;
            }
            watched += 1;
            if slot.last_answered == Some(false) {
                failing += 1;
            }
        }
        let unhealthy =
            failing >= DOUBT_MIN_FAILING && failing as f64 > DOUBT_SHARE * watched as f64;
        if !unhealthy {
            self.doubting_since = None;
            return false;
        }
        let since = *self.doubting_since.get_or_insert(now);
        let limit = self
            .settings
            .probe_interval
            .saturating_mul(DOUBT_LIMIT_INTERVALS);
        now.duration_since(since) < limit
    }

    /// Whether this node doubts its own link right now (for `/metrics` and tests).
    pub fn is_doubting(&self) -> bool {
        self.doubting_since.is_some()
    }

    /// A probe of `url` came back (after the retry [`Core::wants_retry`] asked for): scores
    /// every node claiming that URL.
    pub fn on_probe_result(&mut self, url: &PeerUrl, outcome: ProbeOutcome, now: Timestamp) {
        let Some(watched) = self.by_url.get(url).map(|slot| self.slot_is_watched(slot)) else {
            return;
        };
        if let Some(slot) = self.by_url.get_mut(url)
            && !outcome.forbidden
        {
            slot.last_answered = Some(outcome.answered);
        }
        let doubted = if !watched || outcome.forbidden {
            false
        } else if outcome.answered {
            if self.doubting_since.is_some() {
                self.doubts_itself(now);
            }
            false
        } else {
            self.doubts_itself(now)
        };
        let Some(slot) = self.by_url.get_mut(url) else {
            return;
        };
        let timeout = self.settings.probe_timeout;
        let mut summary = SlotSummary::default();
        for key in slot.keys.as_slice() {
            let Some(member) = self.members.get_mut(key) else {
                continue;
            };
            if member.desc.leaving() {
                continue;
            }
            let verdict = if outcome.forbidden {
                ProbeVerdict::Forbidden
            } else if !outcome.answered {
                ProbeVerdict::NoAnswer
            } else if outcome.latency > timeout {
                ProbeVerdict::TooSlow
            } else if outcome.key_seen != Some(*key) {
                ProbeVerdict::WrongKey
            } else if !outcome.cors {
                ProbeVerdict::NoCors
            } else {
                ProbeVerdict::Good
            };
            let good = verdict == ProbeVerdict::Good;
            if !good && doubted && member.is_listable() {
                // Most listed nodes failed at once: this node's own link is the likelier
                // culprit. The failure is not counted; the next probe decides.
                member.last_probe_at = Some(now);
                self.stats.probes_doubted += 1;
                summary.add(member);
                continue;
            }
            if member.probes == 0
                && let Some((record, _)) = self.records.remove(key)
            {
                // Known before its descriptor expired during an outage: back like a
                // restarted node, one failure below what it had earned.
                let forgiven = record.after_probe(false);
                if forgiven.value() > member.score.value() {
                    member.score = forgiven;
                    self.stats.outages_forgiven += 1;
                }
            }
            if !good && member.consecutive_failures == 0 && member.good_probes > 0 {
                // A run of failures begins: remember what the node had earned before it.
                member.standing = Some(member.score);
            }
            let before = member.score;
            member.score = member.score.after_probe(good);
            if !good {
                member.score = Score::new(
                    member
                        .score
                        .value()
                        .max(outage_floor(member).min(before.value())),
                );
            }
            if good
                && member
                    .standing
                    .is_some_and(|s| member.score.value() >= s.after_probe(false).value())
            {
                // Back where a restart would put it: nothing left to give back.
                member.standing = None;
            }
            member.probes = member.probes.saturating_add(1);
            member.last_verdict = Some(verdict);
            member.last_probe_at = Some(now);
            if let Some(ip) = outcome.resolved_ip {
                member.resolved_ip = Some(canonical_ip(ip));
            }
            if good {
                member.good_probes = member.good_probes.saturating_add(1);
                member.consecutive_failures = 0;
                member.latency = Some(outcome.latency);
                self.stats.probes_good += 1;
            } else {
                member.consecutive_failures = member.consecutive_failures.saturating_add(1);
                self.stats.probes_failed += 1;
            }
            summary.add(member);
        }
        summary.apply(slot);
    }

    /// Remembers what a node whose descriptor expires had earned, if it had passed probes,
    /// so that it is not a stranger when it comes back with a new descriptor.
    pub(super) fn keep_record(&mut self, key: PublicKey, now: Timestamp) {
        let Some(member) = self.members.get(&key) else {
            return;
        };
        let earned = match member.standing {
            Some(standing) => standing,
            None if member.good_probes > 0 => member.score,
            None => return,
        };
        let cap = self.settings.max_members.saturating_mul(RECORDS_PER_MEMBER);
        while self.records.len() >= cap {
            let oldest = self
                .records
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(key, _)| *key);
            match oldest {
                Some(oldest) => self.records.remove(&oldest),
                None => break,
            };
        }
        self.records.insert(key, (earned, now));
    }

    /// Forgets records older than the descriptor maximum age: a node away for two days
    /// has to prove itself again.
    pub(super) fn prune_records(&mut self, now: Timestamp) {
        let horizon = now.saturating_sub(self.settings.descriptor_max_age);
        self.records.retain(|_, (_, at)| *at >= horizon);
    }
}

/// Adds the URLs at which `addresses` serve the pool (`http://address:pool port`), those
/// this node may send requests to.
fn push_pool_probes(settings: &Settings, addresses: &[IpAddr], urls: &mut Vec<PeerUrl>) {
    for ip in addresses {
        if !settings.allow_private_peers && is_forbidden_probe_target(*ip) {
            continue;
        }
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        if let Ok(url) = PeerUrl::parse(&format!("http://{host}:{}", settings.pool_port)) {
            urls.push(url);
        }
    }
}

/// Keeps `ip` in `good` (with the time) after a good probe, drops it after a failed one.
fn record_pool_probe(good: &mut Vec<(IpAddr, Timestamp)>, ip: IpAddr, ok: bool, now: Timestamp) {
    good.retain(|(at, _)| *at != ip);
    if ok {
        good.push((ip, now));
    }
}

/// The lowest score a run of failed probes can leave a node at: two failures below what
/// it had earned when the run began (listing takes one more good probe than the restart
/// rule's one failure would), or, for a node never seen healthy, where it started. An
/// outage costs what it takes to be unlisted, however long it lasts.
fn outage_floor(member: &Member) -> f64 {
    // A latency is only ever measured by a good probe: a node without one never answered.
    let never_healthy = member.good_probes == 0 && member.latency.is_none();
    match member.standing {
        Some(standing) => standing.after_probe(false).after_probe(false).value(),
        None if never_healthy => {
            if member.seed {
                score::SEED_START
            } else {
                score::GOSSIP_START
            }
        }
        None => score::MIN,
    }
}
