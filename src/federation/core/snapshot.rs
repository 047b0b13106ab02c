//! The core's persisted state, restoring from it, leaving, and pruning old records.

use super::*;

/// The persisted part of a core: known nodes and what the probes found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    /// Whose state this is; a state saved under another key is not restored.
    pub key: PublicKey,
    /// Issue time of the node's last descriptor, so a restart issues a later one even if
    /// the clock went back.
    pub own_issued_at: Timestamp,
    pub members: Vec<SavedMember>,
}

/// One known node in a [`State`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedMember {
    pub descriptor: SignedDescriptor,
    pub score: f64,
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub resolved_ip: Option<IpAddr>,
    pub first_seen: Timestamp,
    /// The score before the current run of failed probes, if the node had passed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing: Option<f64>,
    /// Was listed by this node at some point (never evicted for a newcomer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ever_listed: bool,
}

/// What [`Core::restore`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub restored: usize,
    /// Saved descriptors refused, by [`MergeError::kind`] (expired ones are the usual case).
    pub rejected: BTreeMap<&'static str, usize>,
    /// The state was saved by another key or in an unknown format, and was ignored.
    pub ignored: Option<String>,
}

impl Core {
    /// Signs a leave and returns it as a push to every known node, so each drops this node
    /// at once; gossip carries it to any that miss the push. After this, [`Core::tick`]
    /// returns nothing. Calling it again pushes the same leave again.
    pub fn leave(&mut self, now: Timestamp) -> Vec<Action> {
        if !self.own.leaving() {
            self.reissue(now, true);
        }
        let leave = self.own.to_signed();
        let mut targets: BTreeSet<&PeerUrl> = self
            .members
            .values()
            .filter(|m| !m.desc.leaving())
            .map(|m| m.desc.url())
            .collect();
        targets.extend(
            self.seeds
                .keys()
                .filter(|url| !self.by_url.contains_key(*url)),
        );
        targets
            .into_iter()
            .map(|url| Action::Gossip {
                to: url.clone(),
                request: GossipRequest::push(vec![leave.clone()]),
            })
            .collect()
    }

    /// Forgets descriptors past the maximum age, and old rate-limit state.
    pub(super) fn prune(&mut self, now: Timestamp) {
        let expired: Vec<PublicKey> = self
            .members
            .iter()
            .filter(|(_, m)| check_freshness(m.desc.issued_at(), now, &self.freshness).is_err())
            .map(|(key, _)| *key)
            .collect();
        for key in expired {
            self.keep_record(key, now);
            self.remove(&key);
        }
        self.prune_records(now);
        self.forgotten
            .prune(now.saturating_sub(self.settings.descriptor_max_age));
        self.evicted
            .prune(now.saturating_sub(self.settings.descriptor_max_age));
        self.limiter.prune(now);
    }

    /// What to persist.
    pub fn snapshot(&self) -> State {
        State {
            format: STATE_FORMAT,
            key: self.own.key(),
            own_issued_at: self.own.issued_at(),
            members: self
                .members
                .values()
                .map(|m| SavedMember {
                    descriptor: m.desc.to_signed(),
                    // Six decimals parse back exactly with any JSON reader.
                    score: (m.score.value() * 1e6).round() / 1e6,
                    consecutive_failures: m.consecutive_failures,
                    latency_ms: m.latency.map(millis),
                    resolved_ip: m.resolved_ip,
                    first_seen: m.first_seen,
                    standing: m.standing.map(|s| (s.value() * 1e6).round() / 1e6),
                    ever_listed: m.ever_listed,
                })
                .collect(),
        }
    }

    /// Takes back a saved state after a restart. Every descriptor is verified again (the
    /// file is not trusted more than a peer); scores are kept, but a node is listed again
    /// only after a fresh good probe. This node's descriptor is re-issued later than the
    /// saved one.
    pub fn restore(&mut self, state: State, now: Timestamp) -> RestoreReport {
        let mut report = RestoreReport::default();
        if state.format != STATE_FORMAT {
            report.ignored = Some(format!("unknown state format {}", state.format));
            return report;
        }
        if state.key != self.own.key() {
            report.ignored = Some(format!("saved by another key ({})", state.key));
            return report;
        }
        if state.own_issued_at >= self.own.issued_at() {
            let leaving = self.own.leaving();
            self.reissue(
                state
                    .own_issued_at
                    .saturating_add(Duration::from_millis(1))
                    .max(now),
                leaving,
            );
        }
        let mut victims = Victims::default();
        for saved in state.members {
            // Restored scores change who may be evicted, so each pick is worked out afresh.
            victims.invalidate();
            match self.merge_inner(&saved.descriptor, now, &mut victims) {
                Ok(_) => {
                    report.restored += 1;
                    let key = saved.descriptor.peek_key().ok();
                    if let Some(member) = key.and_then(|k| self.members.get_mut(&k)) {
                        member.score = Score::new(saved.score);
                        member.consecutive_failures = saved.consecutive_failures;
                        member.latency = saved.latency_ms.map(Duration::from_millis);
                        member.resolved_ip = saved.resolved_ip;
                        member.first_seen = saved.first_seen.min(now);
                        member.standing = saved.standing.map(Score::new);
                        member.ever_listed = saved.ever_listed;
                        let url = member.desc.url().clone();
                        self.refresh_slot(&url);
                    }
                }
                Err(err) => *report.rejected.entry(err.kind()).or_default() += 1,
            }
        }
        report
    }
}
