//! Times one Argon2id hash at the service's cost on this machine: the figure the login
//! target is made of (80% of the cores ÷ one hash's time). Hashes ROUNDS times on one
//! thread, then on as many threads as there are cores at once, and prints the medians.
//!
//! cargo run --release --example hash_time -- [ROUNDS]

use std::time::{Duration, Instant};

use paywall::auth::password::hash_blocking;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn hash_times(rounds: usize) -> Vec<Duration> {
    (0..rounds)
        .map(|round| {
            let started = Instant::now();
            hash_blocking(&format!("timing passphrase {round}")).expect("hash");
            started.elapsed()
        })
        .collect()
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("ROUNDS is a number"))
        .unwrap_or(20)
        .max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    hash_times(2); // the thread's Argon2 memory, mapped once
    let alone = median(hash_times(rounds));
    let together: Vec<Duration> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..cores)
            .map(|_| scope.spawn(|| hash_times(rounds)))
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("hashing thread"))
            .collect()
    });
    let together = median(together);
    let target = 0.8 * cores as f64 / alone.as_secs_f64();
    println!(
        "one hash: {:.1} ms alone, {:.1} ms with {cores} at once; target 0.8 x {cores} cores / one hash = {target:.0} logins/s",
        alone.as_secs_f64() * 1e3,
        together.as_secs_f64() * 1e3,
    );
}
