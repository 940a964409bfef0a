//! The controllers at fleet scale: a FirmwareUpgrade of 10,000 devices with `maxConcurrent: 500`,
//! on the in-memory API and the virtual clock. Reports wall and CPU time, peak memory, status
//! writes per task against the minimum, and the makespan against the ideal schedule.
//!
//! Run with `cargo bench --bench fleet` (options after `--`: `--devices N`, `--max-concurrent C`).

use std::time::Instant;

/// The allocator the `upkeep` binary uses (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use jiff::SignedDuration;
use serde_json::Value;
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::runner::{Scenario, World};

/// One healthy device's execution: a 600Mi upload at 50Mi/s, a 30s quiesce, a 15m upgrade.
const DEVICE_SECONDS: i64 = 12 + 30 + 15 * 60;
/// The fewest status writes a task can make: its creation, one per visible wait (queued for a
/// slot, uploading, quiescing, upgrading), and its end.
const MINIMUM_WRITES: u64 = 1 + 4 + 1;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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

/// User and system CPU seconds of this process, and its peak resident memory in MiB (Linux).
fn process_figures() -> (f64, f64) {
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

fn main() {
    let devices = arg("--devices", 10_000);
    let max_concurrent = arg("--max-concurrent", 500);
    let scenario = scenario(devices, max_concurrent);
    let start = scenario.start;
    let end_at = start + scenario.horizon;
    let began = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let (report, writes) = runtime.block_on(async {
        let world = World::new(&scenario).await.expect("the scenario seeds");
        world.run_until_finished(end_at, None).await;
        (
            world.report(start, end_at),
            world.server.write_counts_by_object(),
        )
    });
    let wall = began.elapsed().as_secs_f64();
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
