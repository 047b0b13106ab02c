//! Health on a lossy network, in the simulator: random probe loss must not unlist healthy
//! nodes, a node answering half its probes is never listed, a node cut off from the
//! network for a while does not unlist everyone, an outage of any length costs a few
//! probe intervals, and a node whose seeds are down keeps trying them, ever less often.
//! Each test prints the numbers docs/GOSSIP.md shows.

use dockerhub_build_status::driver::transport::memory::Wire;
use dockerhub_build_status::testkit::sim::{Seeding, Simulation};

/// Ten nodes (one gossip and probe interval of 10 s per round) that know and list each
/// other, run long enough that every score is near the ceiling.
fn settled(seed: u64) -> Simulation {
    let mut sim = Simulation::new(10, Seeding::First, seed);
    sim.net().set_wire(Wire::Direct);
    assert!(
        sim.run_until(40, Simulation::all_listed).is_some(),
        "ten nodes did not list each other"
    );
    for _ in 0..40 {
        sim.round();
    }
    sim
}

/// Runs `rounds` rounds; returns, for node `target`, the share of (observer, round) pairs
/// in which an observer that is up listed it, and whether any ever did.
fn listed_share(sim: &mut Simulation, target: usize, rounds: u64) -> (f64, bool) {
    let (mut listed, mut polls) = (0usize, 0usize);
    for _ in 0..rounds {
        sim.round();
        let up = (0..sim.len())
            .filter(|&i| i != target && sim.node(i).up)
            .count();
        listed += sim.listed_by(target);
        polls += up;
    }
    (listed as f64 / polls as f64, listed > 0)
}

/// Rounds until every other node that is up lists node `i`, at most `max`.
fn rounds_until_listed_everywhere(sim: &mut Simulation, i: usize, max: u64) -> Option<u64> {
    let others = (0..sim.len()).filter(|&j| j != i && sim.node(j).up).count();
    sim.run_until(max, |s| s.listed_by(i) == others)
}

#[test]
fn five_percent_random_probe_loss_keeps_healthy_nodes_listed() {
    let mut sim = settled(31);
    // Every probe attempt (a retry is another draw) and every exchange request lose 5 %.
    sim.net().set_probe_loss(0.05);
    sim.net().set_drop_probability(0.05);
    let rounds = 1000;
    let (mut listed, mut polls) = (0usize, 0usize);
    for _ in 0..rounds {
        sim.round();
        for i in 0..sim.len() {
            listed += sim.listed_by(i);
            polls += sim.len() - 1;
        }
    }
    let share = listed as f64 / polls as f64;
    eprintln!("5 % probe loss: healthy nodes listed in {share:.5} of {polls} polls");
    assert!(share >= 0.99, "{share}");
}

#[test]
fn a_node_answering_half_its_probes_is_never_listed() {
    for (available, seed) in [(0.5, 32), (0.8, 33)] {
        let mut sim = settled(seed);
        // Node 10 joins through node 0 on a link that loses 1 - `available` of
        // everything to or from it, probes of it included.
        let flaky = sim.add_node(&[0]);
        sim.net()
            .set_node_loss(&sim.node(flaky).url.clone(), 1.0 - available);
        let (share, ever) = listed_share(&mut sim, flaky, 2000);
        eprintln!("{available} available: listed in {share:.4} of polls (ever: {ever})");
        if available <= 0.5 {
            assert!(!ever, "a half-available node was listed ({share})");
        }
    }
}

#[test]
fn a_prober_cut_off_for_30_seconds_delists_no_one_who_was_healthy() {
    let mut sim = settled(34);
    let prober = 4;
    let url = sim.node(prober).url.clone();
    sim.net().set_node_loss(&url, 1.0);
    let mut least = usize::MAX;
    for _ in 0..3 {
        sim.round();
        let lists = sim
            .with_core(prober, |c| c.listed_keys(sim.now()).len())
            .expect("node");
        least = least.min(lists);
    }
    let doubted = sim
        .with_core(prober, |c| c.stats().probes_doubted)
        .expect("node");
    sim.net().set_node_loss(&url, 0.0);
    for _ in 0..10 {
        sim.round();
        let lists = sim
            .with_core(prober, |c| c.listed_keys(sim.now()).len())
            .expect("node");
        least = least.min(lists);
    }
    eprintln!("cut off 30 s: listed at least {least} of 9 throughout; {doubted} failures doubted");
    assert_eq!(least, 9, "the cut-off node unlisted healthy nodes");
    assert!(doubted > 0, "it doubted itself");
    // The others rightly unlisted the node they could not reach, and list it again.
    assert!(rounds_until_listed_everywhere(&mut sim, prober, 5).is_some());
}

#[test]
fn an_outage_of_any_length_costs_at_most_five_probe_intervals() {
    // 1 minute, 1 hour and 1 day at 10 s per round. The day outlasts the descriptor's
    // maximum age: everyone forgets the node's descriptor, and it comes back with a new one.
    for (label, rounds) in [("1 minute", 6u64), ("1 hour", 360), ("1 day", 8640)] {
        let mut sim = settled(35);
        sim.crash(3);
        for _ in 0..rounds {
            sim.round();
        }
        assert_eq!(sim.listed_by(3), 0, "{label}: unlisted while down");
        sim.resume(3);
        let back = rounds_until_listed_everywhere(&mut sim, 3, 60);
        eprintln!("back after {label}: listed everywhere after {back:?} rounds");
        let back = back.unwrap_or_else(|| panic!("{label}: not listed again"));
        assert!(back <= 5, "{label}: {back} rounds");
    }
}

#[test]
fn a_newcomer_that_met_a_seed_while_it_was_down_lists_it_promptly() {
    let mut sim = settled(36);
    sim.crash(5);
    for _ in 0..360 {
        sim.round();
    }
    // The newcomer names node 5 (down for an hour) and node 1 in its peers.toml.
    let newcomer = sim.add_node(&[5, 1]);
    for _ in 0..360 {
        sim.round();
    }
    let knows = sim
        .with_core(newcomer, |c| c.held(&sim.node(5).key).is_some())
        .expect("node");
    assert!(knows, "the newcomer learned of node 5 while it was down");
    sim.resume(5);
    let back = rounds_until_listed_everywhere(&mut sim, 5, 60);
    eprintln!("newcomer: node 5 listed everywhere after {back:?} rounds");
    assert!(back.is_some_and(|b| b <= 5), "{back:?}");
}

#[test]
fn a_node_whose_seeds_are_down_backs_off_and_joins_when_one_returns() {
    // Node 0 is down; node 1 names only node 0 and knows no one else.
    let mut sim = Simulation::new(1, Seeding::First, 37);
    sim.crash(0);
    let lone = sim.add_node(&[0]);
    sim.net().reset_traffic();
    let rounds = 64;
    for _ in 0..rounds {
        sim.round();
    }
    let attempts = sim.net().traffic().exchanges;
    eprintln!("seed down: {attempts} exchanges in {rounds} rounds");
    assert_eq!(sim.with_core(lone, |c| c.member_count()).expect("node"), 0);
    // Three tries in a row, then 2, 4, 8, 16 and 32 rounds apart: a handful, not 64.
    assert!((6..=10).contains(&attempts), "{attempts} exchanges");
    sim.resume(0);
    let joined = sim.run_until(40, |s| {
        s.with_core(lone, |c| c.member_count()).unwrap_or(0) == 1
    });
    eprintln!("seed back: joined after {joined:?} rounds");
    assert!(joined.is_some_and(|r| r <= 33), "{joined:?}");
}
