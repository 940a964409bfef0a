//! The controllers at fleet scale: a FirmwareUpgrade of 10,000 devices with `maxConcurrent: 500`,
//! on the in-memory API and the virtual clock. Reports wall and CPU time, peak memory, status
//! writes per task against the minimum, and the makespan against the ideal schedule.
//!
//! Run with `cargo bench --bench fleet` (options after `--`: `--devices N`, `--max-concurrent C`).

/// The allocator the `upkeep` binary uses (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use jiff::SignedDuration;
use serde_json::Value;
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::runner::Scenario;

#[path = "support/mod.rs"]
mod support;
use support::{arg, process_figures};

/// One healthy device's execution: a 600Mi upload at 50Mi/s, a 30s quiesce, a 15m upgrade.
const DEVICE_SECONDS: i64 = 12 + 30 + 15 * 60;
/// The fewest status writes a task can make: its creation, one per visible wait (queued for a
/// slot, uploading, quiescing, upgrading), and its end.
const MINIMUM_WRITES: u64 = 1 + 4 + 1;

fn scenario(devices: usize, max_concurrent: usize) -> Scenario {
    let mut yaml = String::from(
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nimages:\n  - { name: idg7519.oradco.scrypt4, size: 600Mi }\ndevices:\n",
    );
    for i in 0..devices {
        yaml.push_str(&format!("  - {{ name: dp-{i:05} }}\n"));
    }
    let upgrade = format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: FirmwareUpgrade\nmetadata: {{ name: fleet, namespace: default }}\nspec:\n  image: idg7519.oradco.scrypt4\n  targets: {{ pattern: \"dp-*\" }}\n  maxWait: 168h\n  rollout: {{ maxConcurrent: {max_concurrent} }}\n"
    );
    Scenario {
        fleet: Fleet::from_yaml(&yaml).expect("a valid fleet"),
        manifests: vec![serde_saphyr::from_str::<Value>(&upgrade).expect("a valid manifest")],
        start: "2026-11-23T09:00:00Z".parse().expect("a time"),
        horizon: SignedDuration::from_hours(24 * 7),
    }
}

fn main() {
    let devices = arg("--devices", 10_000);
    let max_concurrent = arg("--max-concurrent", 500);
    let scenario = scenario(devices, max_concurrent);
    let start = scenario.start;
    let (report, writes, wall) =
        support::run(&scenario, |world| world.server.write_counts_by_object());
    let (cpu, peak_mib) = process_figures();

    let succeeded = report
        .tasks
        .iter()
        .filter(|t| t.code.as_deref() == Some("SUCCESS"))
        .count();
    let per_task: Vec<u64> = writes
        .iter()
        .filter(|(key, _)| key.kind == "UpgradeTask")
        .map(|(_, counts)| counts.creates + counts.status_writes)
        .collect();
    let mean = per_task.iter().sum::<u64>() as f64 / per_task.len().max(1) as f64;
    let worst = per_task.iter().max().copied().unwrap_or(0);
    let makespan = report
        .end
        .parse::<jiff::Timestamp>()
        .expect("end")
        .duration_since(start)
        .as_secs();
    let ideal = devices.div_ceil(max_concurrent) as i64 * DEVICE_SECONDS;

    println!("fleet benchmark: {devices} devices, maxConcurrent {max_concurrent}, virtual clock");
    println!(
        "  tasks ended SUCCESS      {succeeded} of {}",
        report.tasks.len()
    );
    println!("  wall time                {wall:.1} s");
    println!("  CPU time                 {cpu:.1} s");
    println!("  peak RSS                 {peak_mib:.0} MiB");
    println!(
        "  status writes per task   mean {mean:.2}, max {worst} (minimum {MINIMUM_WRITES}, goal ≤ {})",
        MINIMUM_WRITES + 2
    );
    println!("  API writes in total      {}", report.api_writes);
    println!(
        "  makespan                 {makespan} s against the ideal {ideal} s = {:.4} × ideal (goal ≤ 1.01)",
        makespan as f64 / ideal as f64
    );
    if succeeded != devices {
        eprintln!("not every task succeeded");
        std::process::exit(1);
    }
}
