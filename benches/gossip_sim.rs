//! Gossip simulation benchmark: for N = 10, 100 and 1,000 nodes, each started with one
//! seed, the rounds until every node holds every descriptor (goal: 2·log2(N)+4) and the
//! gossip bytes once nothing changes (goal: under 1 KB per exchange), printed with their
//! ratio to the goal. The figures are counts in virtual time, so they do not depend on the
//! machine; only the wall-clock column does.

use std::time::Instant;

use dockerhub_build_status::driver::transport::memory::Traffic;
use dockerhub_build_status::testkit::sim::{Seeding, Simulation};

const SEEDS: [u64; 3] = [1, 2, 3];
const QUIET_ROUNDS: u64 = 10;
const MAX_ROUNDS: u64 = 200;
const KB: f64 = 1024.0;

struct Run {
    converge: u64,
    list: u64,
    join: Traffic,
    quiet: Traffic,
    wall_ms: u128,
}

fn run(n: usize, seeding: Seeding, seed: u64) -> Option<Run> {
    let started = Instant::now();
    let mut sim = Simulation::new(n, seeding, seed);
    let converge = sim.run_until(MAX_ROUNDS, Simulation::converged)?;
    let join = sim.net().traffic();
    let list = converge + sim.run_until(MAX_ROUNDS, Simulation::all_listed)?;
    sim.net().reset_traffic();
    for _ in 0..QUIET_ROUNDS {
        sim.round();
    }
    Some(Run {
        converge,
        list,
        join,
        quiet: sim.net().traffic(),
        wall_ms: started.elapsed().as_millis(),
    })
}

fn main() {
    println!("gossip simulation, seeds {SEEDS:?}, rounds of one gossip interval (10 s virtual)");
    println!();
    println!(
        "| N | seeding | rounds to converge (min–max) | goal 2·log2(N)+4 | worst/goal | rounds until all list all | join bytes/node/round | quiet bytes/exchange | /1 KB | quiet bytes/node/round | wall ms (release) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut all_met = true;
    for n in [10usize, 100, 1000] {
        for seeding in [Seeding::First, Seeding::RandomEarlier] {
            let runs: Vec<Run> = SEEDS.iter().filter_map(|&s| run(n, seeding, s)).collect();
            if runs.len() != SEEDS.len() {
                println!(
                    "| {n} | {seeding:?} | did not converge within {MAX_ROUNDS} rounds | | | | | | | | |"
                );
                all_met = false;
                continue;
            }
            let goal = 2.0 * (n as f64).log2() + 4.0;
            let min = runs.iter().map(|r| r.converge).min().unwrap_or(0);
            let max = runs.iter().map(|r| r.converge).max().unwrap_or(0);
            let list = runs.iter().map(|r| r.list).max().unwrap_or(0);
            let join: u64 = runs
                .iter()
                .map(|r| r.join.bytes / (r.converge.max(1) * n as u64))
                .sum::<u64>()
                / runs.len() as u64;
            let quiet_bytes: u64 = runs.iter().map(|r| r.quiet.bytes).sum();
            let quiet_exchanges: u64 = runs.iter().map(|r| r.quiet.exchanges).sum();
            let per_exchange = quiet_bytes as f64 / quiet_exchanges.max(1) as f64;
            let per_node_round =
                quiet_bytes as f64 / (runs.len() as f64 * QUIET_ROUNDS as f64 * n as f64);
            let wall = runs.iter().map(|r| r.wall_ms).sum::<u128>() / runs.len() as u128;
            all_met &= (max as f64) <= goal && per_exchange < KB;
            println!(
                "| {n} | {seeding:?} | {min}–{max} | {goal:.1} | {:.2} | {list} | {join} | {per_exchange:.0} | {:.2} | {per_node_round:.0} | {wall} |",
                max as f64 / goal,
                per_exchange / KB,
            );
        }
    }
    println!();
    println!("goals {}", if all_met { "met" } else { "NOT met" });
}
