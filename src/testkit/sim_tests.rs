//! Simulations of one node's outage, in rounds of one gossip and probe interval: how soon
//! the others list it again depends on whether it came back as a restarted process (a new
//! descriptor) or as the same process reachable again.

use super::*;

/// Ten nodes that know and list each other, run long enough that every score is near
/// the ceiling.
fn settled_network(seed: u64) -> Simulation {
    let mut sim = Simulation::new(10, Seeding::First, seed);
    assert!(
        sim.run_until(40, Simulation::all_listed).is_some(),
        "ten nodes did not list each other"
    );
    for _ in 0..40 {
        sim.round();
    }
    sim
}

/// The settled network (seed 21) after node 3 crashed and stayed down six rounds.
fn settled_network_with_node_3_down_six_rounds() -> Simulation {
    let mut sim = settled_network(21);
    sim.crash(3);
    for _ in 0..6 {
        sim.round();
    }
    sim
}

/// Rounds until every other node that is up lists node `i`, at most `max`.
fn rounds_until_listed_everywhere(sim: &mut Simulation, i: usize, max: u64) -> Option<u64> {
    let others = sim.len() - 1;
    sim.run_until(max, |s| s.listed_by(i) == others)
}

#[test]
fn a_restarted_node_is_listed_again_within_a_few_rounds() {
    let mut sim = settled_network_with_node_3_down_six_rounds();
    assert_eq!(sim.listed_by(3), 0, "down six rounds: unlisted everywhere");
    sim.restart(3);
    // A round for its new descriptor to spread, one for the probe it triggers, one of
    // slack. Before outages were forgiven this took 30 rounds.
    let back = rounds_until_listed_everywhere(&mut sim, 3, 40).expect("listed again");
    assert!(back <= 3, "{back} rounds");
    let forgiven: u64 = (0..sim.len())
        .filter(|&i| i != 3)
        .filter_map(|i| sim.with_core(i, |c| c.stats().outages_forgiven))
        .sum();
    assert_eq!(forgiven, 9, "every other node forgave the outage once");
}

#[test]
fn a_node_reachable_again_without_a_restart_climbs_back_from_its_failures() {
    // The same outage without a new descriptor (a network cut, a hung process): nothing
    // tells the others it was a restart, but the outage costs at most two failures' worth
    // of score, so it climbs back in a few good probes (31 rounds before that bound).
    let mut sim = settled_network_with_node_3_down_six_rounds();
    sim.resume(3);
    let back = rounds_until_listed_everywhere(&mut sim, 3, 60).expect("listed again");
    assert!(back <= 5, "{back} rounds");
}
