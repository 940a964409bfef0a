//! What the simulation benchmarks share: their `--name value` options, one run of a scenario
//! to its end on the virtual clock, and the process's own figures (CPU time and peak resident
//! memory, from `/proc/self`; zero where it cannot be read).

use std::time::Instant;

use upkeep::sim::report::Report;
use upkeep::sim::runner::{Scenario, World};

/// Runs `scenario` to its end (or its horizon) on a paused current-thread runtime, then reads
/// what the bench needs from the world with `read`: the report, what `read` gave, and the wall
/// seconds the run took.
pub fn run<T>(scenario: &Scenario, read: impl FnOnce(&World) -> T) -> (Report, T, f64) {
    let start = scenario.start;
    let end_at = start + scenario.horizon;
    let began = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let (report, read) = runtime.block_on(async {
        let world = World::new(scenario).await.expect("the scenario seeds");
        world.run_until_finished(end_at, None).await;
        (world.report(start, end_at), read(&world))
    });
    (report, read, began.elapsed().as_secs_f64())
}

/// The value of option `name` (`--hosts 5000`), or `default` when it is absent or no number.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User and system CPU seconds of this process, and its peak resident memory in MiB (Linux).
pub fn process_figures() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(14) + ticks(15)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, peak_kib / 1024.0)
}
