//! Probing: which nodes are due, and what a probe's outcome does to a node's score.

use super::*;

impl Core {
    pub(super) fn due_probes(&mut self, now: Timestamp, actions: &mut Vec<Action>) {
        // A scan rather than a timer queue: a few nanoseconds per known URL, and no second
        // structure to keep in step with the member map.
        let mut forbidden = Vec::new();
        for (url, slot) in self.by_url.iter_mut() {
            if slot.next_probe.is_none_or(|due| due > now) {
                continue;
            }
            let shift = slot
                .failures
                .saturating_sub(BACKOFF_AFTER_FAILURES)
                .min(MAX_BACKOFF_SHIFT);
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
        }
        for url in forbidden {
            self.on_probe_result(&url, ProbeOutcome::forbidden(url.literal_ip()), now);
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

    /// A probe of `url` came back: scores every node claiming that URL.
    pub fn on_probe_result(&mut self, url: &PeerUrl, outcome: ProbeOutcome, now: Timestamp) {
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
            if !good && member.consecutive_failures == 0 && member.good_probes > 0 {
                // A run of failures begins: remember what the node had earned before it.
                member.standing = Some(member.score);
            }
            member.score = member.score.after_probe(good);
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
}
