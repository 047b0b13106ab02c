//! How far this node trusts one node that fills its cache, from what its own checks of that
//! node's fills against Docker Hub found: which of its fills are checked, and how long what it
//! supplied lives. Plain state; the randomness is passed in.
//!
//! A supplier's fills are taken in blocks, and one fill of each block, at a position drawn
//! at random, is checked. The blocks grow with the checks that agreed ([`WINDOWS`]): every
//! fill of a node never checked, then one in each block of 4, then one in each block of 64.
//! No fill of the next block is used before the check of this one was made, so a supplier
//! that lies in every fill from some moment on has at most `2 × 64 − 1` of its fills used
//! before a check catches it, however it times its lies (it cannot see which fill was
//! checked: checks go to Docker Hub, not to it), and one that lies now and then has each
//! lie checked with a chance of at least one in 64.
//!
//! Beside the schedules, what this node remembers of each node it asked or served
//! ([`Suppliers`]: an index per key, the counts `/servers?all=true` shows, when an unusable
//! answer passed it over until) and until when each is distrusted ([`Distrusted`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use rand::RngExt as _;

use super::filler::SupplierId;
use crate::federation::PublicKey;
use crate::tools::clock::{Instant, Timestamp};

/// Nodes remembered as suppliers (an index each); beyond this, new nodes are not asked.
pub const MAX_SUPPLIERS: usize = 4096;

/// Block sizes by the number of checks that agreed: a node never checked has every fill
/// checked, one with one good check one fill in each 4, later one in each 64.
pub const WINDOWS: [u32; 3] = [1, 4, 64];

/// The most of one supplier's fills used before a check that catches a supplier lying in
/// every fill from some moment on: the rest of the block in which it began, and the whole
/// next block.
pub const MAX_UNCHECKED: u32 = 2 * WINDOWS[WINDOWS.len() - 1] - 1;

/// Checks that must agree before what a supplier fills lives as long as what this node
/// fetched itself; until then its entries live (agreed + 1) quarters of that.
pub const FULL_LIFE_AFTER: u32 = 3;

/// What to do with one fill that reads well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Use it.
    Use,
    /// Use it and check it against Docker Hub: the check this block owes.
    Check,
    /// Do not use it: the check of the last block was not made yet.
    Wait,
}

/// One supplier's check schedule and history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Checks of its fills that agreed with Docker Hub.
    agreed: u32,
    /// The current block: its size, the fills taken in it, and which of them (from 1) is
    /// checked.
    block: u32,
    taken: u32,
    pick: u32,
    /// The picked fill was taken and its check has not been made yet.
    owed: bool,
    /// The first fill of the next block is checked (a check could not be made).
    check_first: bool,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::new()
    }
}

impl Schedule {
    /// A supplier never checked: its first fill is checked.
    pub fn new() -> Schedule {
        Schedule {
            agreed: 0,
            block: WINDOWS[0],
            taken: 0,
            pick: 1,
            owed: false,
            check_first: false,
        }
    }

    /// The size of the blocks for a supplier with this history.
    pub fn window(&self) -> u32 {
        let index = usize::try_from(self.agreed)
            .unwrap_or(usize::MAX)
            .min(WINDOWS.len() - 1);
        WINDOWS[index]
    }

    /// Checks of its fills that agreed.
    pub fn agreed(&self) -> u32 {
        self.agreed
    }

    /// Whether its fills wait for an owed check: it is not asked until the check is made.
    pub fn waiting(&self) -> bool {
        self.owed && self.taken >= self.block
    }

    /// One fill of this supplier that reads well: use it, use and check it, or wait.
    pub fn take(&mut self, rng: &mut impl Rng) -> Take {
        if self.taken >= self.block {
            if self.owed {
                return Take::Wait;
            }
            self.block = self.window();
            self.pick = if std::mem::take(&mut self.check_first) {
                1
            } else {
                rng.random_range(1..=self.block)
            };
            self.taken = 0;
        }
        self.taken += 1;
        if self.taken == self.pick {
            self.owed = true;
            return Take::Check;
        }
        Take::Use
    }

    /// A check of one of its fills agreed; `scheduled` when it was the one a block owed.
    pub fn agreed_with(&mut self, scheduled: bool) {
        self.agreed = self.agreed.saturating_add(1);
        if scheduled {
            self.owed = false;
        }
    }

    /// The check a block owed could not be made (Docker Hub did not answer, or this node
    /// had no room for it in time): the next fill is checked instead.
    pub fn not_made(&mut self) {
        self.owed = false;
        if self.taken < self.block {
            self.pick = self.taken + 1;
        } else {
            self.check_first = true;
        }
    }

    /// Its fills disagreed with Docker Hub: when trust returns, it starts afresh.
    pub fn reset(&mut self) {
        *self = Schedule::new();
    }

    /// How long what it supplies lives, as a share of what this node fetched itself would
    /// (numerator, denominator).
    pub fn life_share(&self) -> (u32, u32) {
        (
            self.agreed.saturating_add(1).min(FULL_LIFE_AFTER + 1),
            FULL_LIFE_AFTER + 1,
        )
    }
}

/// What this node knows of one node as a supplier and an asker of fills.
#[derive(Debug)]
pub struct Supplier {
    pub url: String,
    /// Fills it supplied that this node used.
    pub supplied: u64,
    /// Fill requests of its that this node admitted.
    pub served: u64,
    /// Which of its fills are checked, and what the checks found.
    pub schedule: Schedule,
    pub passed_over_until: Option<Instant>,
}

/// Every node this node asked for fills or served, by key, at most [`MAX_SUPPLIERS`].
#[derive(Debug, Default)]
pub struct Suppliers {
    ids: HashMap<PublicKey, SupplierId>,
    nodes: Vec<Supplier>,
}

impl Suppliers {
    /// The index of the node holding `key`, now at `url`; `None` when the table is full.
    pub fn id_of(&mut self, key: PublicKey, url: &str) -> Option<SupplierId> {
        if let Some(&id) = self.ids.get(&key) {
            if let Some(node) = self.nodes.get_mut(usize::from(id.0)) {
                // A node may move; its key is what it is.
                url.clone_into(&mut node.url);
            }
            return Some(id);
        }
        if self.nodes.len() >= MAX_SUPPLIERS {
            return None;
        }
        let id = SupplierId(u16::try_from(self.nodes.len()).ok()?);
        self.nodes.push(Supplier {
            url: url.to_owned(),
            supplied: 0,
            served: 0,
            schedule: Schedule::new(),
            passed_over_until: None,
        });
        self.ids.insert(key, id);
        Some(id)
    }

    pub fn get(&mut self, id: SupplierId) -> Option<&mut Supplier> {
        self.nodes.get_mut(usize::from(id.0))
    }

    /// Every node remembered, with its index.
    pub fn iter(&self) -> impl Iterator<Item = (SupplierId, &Supplier)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| (SupplierId(u16::try_from(i).unwrap_or(u16::MAX)), node))
    }

    /// Nodes remembered.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Until when each supplier is distrusted, 0 if it is not: read on every cache hit of an
/// entry another node supplied, so an atomic load per supplier and no lock.
#[derive(Debug)]
pub struct Distrusted(Box<[AtomicU64]>);

impl Default for Distrusted {
    fn default() -> Self {
        Distrusted((0..MAX_SUPPLIERS).map(|_| AtomicU64::new(0)).collect())
    }
}

impl Distrusted {
    /// Whether `supplier`'s entries may be served at `now`.
    pub fn trusted(&self, supplier: SupplierId, now: Timestamp) -> bool {
        let until = self
            .0
            .get(usize::from(supplier.0))
            .map_or(0, |at| at.load(Ordering::Relaxed));
        until == 0 || now.as_unix_ms() >= until
    }

    /// Distrusts `supplier` until `until`; whether it was trusted at `now` before (so that a
    /// distrust is told once), `None` for a supplier without an index.
    pub fn distrust(&self, supplier: SupplierId, now: Timestamp, until: Timestamp) -> Option<bool> {
        let slot = self.0.get(usize::from(supplier.0))?;
        let before = slot.swap(until.as_unix_ms(), Ordering::Relaxed);
        Some(before == 0 || now.as_unix_ms() >= before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// Takes fills, making every owed check at once with the given result; returns the
    /// positions (from 1) of the fills that were checked.
    fn run(schedule: &mut Schedule, rng: &mut StdRng, fills: u32) -> Vec<u32> {
        let mut checked = Vec::new();
        for n in 1..=fills {
            match schedule.take(rng) {
                Take::Use => {}
                Take::Check => {
                    checked.push(n);
                    schedule.agreed_with(true);
                }
                Take::Wait => panic!("fill {n} waits though every check was made"),
            }
        }
        checked
    }

    #[test]
    fn the_first_fill_is_checked_then_one_in_four_then_one_in_sixty_four() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut schedule = Schedule::new();
        let checked = run(&mut schedule, &mut rng, 1 + 4 + 64 * 10);
        assert_eq!(checked[0], 1);
        assert!((2..=5).contains(&checked[1]), "{checked:?}");
        // Then exactly one in each block of 64.
        for (block, &at) in checked[2..].iter().enumerate() {
            let first = 6 + 64 * block as u32;
            assert!((first..first + 64).contains(&at), "{checked:?}");
        }
        assert_eq!(checked.len(), 12);
    }

    #[test]
    fn the_checked_fill_cannot_be_predicted() {
        // Over many suppliers, every position of a block of 64 is drawn.
        let mut rng = StdRng::seed_from_u64(2);
        let mut seen = [false; 64];
        for _ in 0..2000 {
            let mut schedule = Schedule::new();
            let checked = run(&mut schedule, &mut rng, 5 + 64);
            seen[(checked[2] - 6) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "positions never drawn");
    }

    #[test]
    fn no_fill_of_the_next_block_is_used_before_the_owed_check() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut schedule = Schedule::new();
        assert_eq!(schedule.take(&mut rng), Take::Check);
        // The check is slow: the next fill waits, and so the supplier is not asked.
        assert!(schedule.waiting());
        assert_eq!(schedule.take(&mut rng), Take::Wait);
        schedule.agreed_with(true);
        assert!(!schedule.waiting());
        assert_ne!(schedule.take(&mut rng), Take::Wait);
    }

    #[test]
    fn a_check_not_made_moves_to_the_next_fill() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut schedule = Schedule::new();
        assert_eq!(schedule.take(&mut rng), Take::Check);
        schedule.not_made();
        assert_eq!(schedule.agreed(), 0);
        // The next block's first fill is checked (a block of one: the next fill).
        assert_eq!(schedule.take(&mut rng), Take::Check);
        schedule.agreed_with(true);
        // In a block of four whose pick was its first fill, a check not made moves on.
        let mut schedule = Schedule {
            agreed: 1,
            block: 4,
            taken: 0,
            pick: 1,
            owed: false,
            check_first: false,
        };
        assert_eq!(schedule.take(&mut rng), Take::Check);
        schedule.not_made();
        assert_eq!(schedule.take(&mut rng), Take::Check);
    }

    #[test]
    fn a_liar_that_turns_is_caught_within_the_bound_however_it_times_it() {
        // A supplier honest for `honest` fills, lying in every fill after; the fills used
        // from its first lie up to the check that sees one.
        let mut worst = 0;
        for seed in 0..500 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut schedule = Schedule::new();
            let honest = 5 + (seed as u32 * 7919) % 400;
            let mut lies_used = 0;
            for n in 1.. {
                match schedule.take(&mut rng) {
                    Take::Wait => unreachable!("checks are made at once here"),
                    take => {
                        if n > honest {
                            lies_used += 1;
                        }
                        if take == Take::Check {
                            if n > honest {
                                break;
                            }
                            schedule.agreed_with(true);
                        }
                    }
                }
            }
            worst = worst.max(lies_used);
        }
        assert!(worst <= MAX_UNCHECKED, "{worst} lies used");
        assert!(worst > 64, "the bound is not loose: {worst}");
    }

    #[test]
    fn entries_live_longer_as_checks_agree() {
        let mut schedule = Schedule::new();
        assert_eq!(schedule.life_share(), (1, 4));
        for _ in 0..FULL_LIFE_AFTER {
            schedule.agreed_with(false);
        }
        assert_eq!(schedule.life_share(), (4, 4));
        schedule.agreed_with(false);
        assert_eq!(schedule.life_share(), (4, 4));
        schedule.reset();
        assert_eq!(schedule, Schedule::new());
    }

    #[test]
    fn suppliers_get_one_id_per_key_and_follow_a_moved_url() {
        let mut suppliers = Suppliers::default();
        let a = crate::federation::Identity::from_seed([1; 32]).public_key();
        let b = crate::federation::Identity::from_seed([2; 32]).public_key();
        let id_a = suppliers.id_of(a, "http://a").expect("an id");
        assert_eq!(suppliers.id_of(a, "http://a2"), Some(id_a));
        assert_ne!(suppliers.id_of(b, "http://b"), Some(id_a));
        assert_eq!(
            suppliers.get(id_a).map(|n| n.url.clone()),
            Some("http://a2".into())
        );
    }

    #[test]
    fn a_distrust_lasts_until_its_time_and_is_told_once() {
        let distrusted = Distrusted::default();
        let (id, t) = (SupplierId(3), Timestamp::from_unix_ms);
        assert!(distrusted.trusted(id, t(1_000)));
        assert_eq!(distrusted.distrust(id, t(1_000), t(5_000)), Some(true));
        assert_eq!(distrusted.distrust(id, t(2_000), t(6_000)), Some(false));
        assert!(!distrusted.trusted(id, t(5_999)));
        assert!(distrusted.trusted(id, t(6_000)));
        assert!(
            distrusted.trusted(SupplierId(7), t(2_000)),
            "others keep theirs"
        );
        assert_eq!(distrusted.distrust(SupplierId(u16::MAX), t(0), t(1)), None);
    }
}
