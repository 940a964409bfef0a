//! The PatchJob path at fleet scale: 5,000 simulated hosts (Nodes, each drained before its
//! reboot), a third of them needing a reboot, patched by one PatchJob with `maxConcurrent: 250`,
//! on the in-memory API and the virtual clock, with the simulated agents. Reports wall and CPU
//! time, peak memory, UpgradeTask status writes per host task against the minimum, and the
//! makespan against the ideal schedule.
//!
//! The minimum of a task's status writes is one per externally visible code it passes through
//! (its `status.history`: `2032 Pending`, `2055 Job Received`, `2044 Job Started`, `2031
//! Downloaded`, `2033 Patching`, for a reboot `2034 Pending Reboot`, `2035 Rebooted`, `2045 Job
//! Resumed`, and `2036 Completed`); every status write counts, the controller's and the agent's.
//!
//! The ideal schedule: a host's duration is its download (30s), install (2m) and, when it needs
//! one, its reboot (3m) — the fleet file's default timings; a drain of pods no budget guards
//! takes no virtual time. The hosts start in the order the rollout starts them (by name), each
//! on the first of the 250 slots to free, with no time between one host's end and the next
//! one's start: slot `k` frees at `f_k`, the next host `h` takes `min_k f_k` and frees it at
//! `min_k f_k + d_h`; the ideal makespan is the last end. (The bound `max(Σ d_h / 250, max d_h)`
//! no schedule can beat is printed beside it; the list schedule is within one host's duration
//! of it.)
//!
//! Run with `cargo bench --bench hosts` (options after `--`: `--hosts N`, `--max-concurrent C`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// The allocator the `upkeep` binary uses (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use upkeep::sim::apiserver::ObjectKey;
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::runner::Scenario;

#[path = "support/mod.rs"]
mod support;

/// A host's download and install (the fleet file's default timings).
const PATCH_SECONDS: i64 = 30 + 2 * 60;
/// A reboot (the default timing).
const REBOOT_SECONDS: i64 = 3 * 60;

/// Whether host `i` gets an update that needs a reboot.
fn needs_reboot(i: usize) -> bool {
    i.is_multiple_of(3)
}

fn scenario(hosts: usize, max_concurrent: usize) -> Scenario {
    let mut yaml = String::from("apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nhosts:\n");
    for i in 0..hosts {
        yaml.push_str(&format!(
            "  - name: h-{i:05}\n    updates:\n      - {{ name: openssl, from: 3.0.11-1~deb12u2, to: 3.0.13-1~deb12u1, security: true }}\n"
        ));
        if needs_reboot(i) {
            yaml.push_str("      - { name: linux-image-amd64, from: 6.1.0-25, to: 6.1.0-26, security: true, rebootRequired: true }\n");
        }
    }
    let job = format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: PatchJob\nmetadata: {{ name: fleet, namespace: default }}\nspec:\n  hosts: {{ pattern: \"h-*\" }}\n  operation: Patch\n  patch: {{ classification: Security }}\n  maxWait: 168h\n  rollout: {{ maxConcurrent: {max_concurrent} }}\n"
    );
    Scenario {
        fleet: Fleet::from_yaml(&yaml).expect("a valid fleet"),
        manifests: vec![serde_saphyr::from_str::<Value>(&job).expect("a valid manifest")],
        start: "2026-11-23T09:00:00Z".parse().expect("a time"),
        horizon: SignedDuration::from_hours(24 * 7),
    }
}

/// The makespan of the ideal schedule (see the file's doc) of `durations` on `slots` slots.
fn ideal(durations: &[i64], slots: usize) -> i64 {
    let mut free: BinaryHeap<Reverse<i64>> = std::iter::repeat_n(Reverse(0), slots).collect();
    let mut end = 0;
    for d in durations {
        let Reverse(at) = free.pop().unwrap_or(Reverse(0));
        end = end.max(at + d);
        free.push(Reverse(at + d));
    }
    end
}

/// One task's figures at the end.
struct TaskFigures {
    reboot: bool,
    completed: bool,
    codes: u64,
    writes: u64,
}

fn main() {
    let hosts = support::arg("--hosts", 5_000);
    let max_concurrent = support::arg("--max-concurrent", 250);
    let scenario = scenario(hosts, max_concurrent);
    let start = scenario.start;
    let (report, tasks, wall) = support::run(&scenario, |world| {
        let writes = world.server.write_counts_by_object();
        let mut tasks = Vec::new();
        world.server.each("UpgradeTask", |t| {
            let field = |p: &str| t.pointer(p).and_then(Value::as_str).unwrap_or_default();
            let key = ObjectKey {
                kind: "UpgradeTask".into(),
                namespace: field("/metadata/namespace").into(),
                name: field("/metadata/name").into(),
            };
            let target = t.pointer("/spec/target").and_then(Value::as_str);
            let index: usize = target
                .and_then(|t| t.strip_prefix("h-")?.parse().ok())
                .unwrap_or(usize::MAX);
            let written = writes.get(&key).map_or(0, |counts| counts.status_writes);
            tasks.push(TaskFigures {
                reboot: needs_reboot(index),
                completed: t.pointer("/status/code").and_then(Value::as_str) == Some("Completed"),
                codes: t
                    .pointer("/status/history")
                    .and_then(Value::as_array)
                    .map_or(0, |h| h.len() as u64),
                writes: written,
            });
        });
        tasks
    });
    let (cpu, peak_mib) = support::process_figures();

    let completed = tasks.iter().filter(|t| t.completed).count();
    println!(
        "hosts benchmark: {hosts} hosts ({} needing a reboot), maxConcurrent {max_concurrent}, virtual clock",
        (0..hosts).filter(|i| needs_reboot(*i)).count()
    );
    println!("  tasks ended Completed    {completed} of {}", tasks.len());
    println!("  wall time                {wall:.1} s");
    println!("  CPU time                 {cpu:.1} s");
    println!("  peak RSS                 {peak_mib:.0} MiB");
    let mut by_kind: BTreeMap<bool, Vec<&TaskFigures>> = BTreeMap::new();
    for t in &tasks {
        by_kind.entry(t.reboot).or_default().push(t);
    }
    let mut worst_excess = 0;
    for (reboot, group) in &by_kind {
        let n = group.len().max(1) as f64;
        let mean = |f: fn(&TaskFigures) -> u64| group.iter().map(|t| f(t)).sum::<u64>() as f64 / n;
        let excess = group
            .iter()
            .map(|t| t.writes.saturating_sub(t.codes))
            .max()
            .unwrap_or(0);
        worst_excess = worst_excess.max(excess);
        println!(
            "  status writes per task   {}: mean {:.2} against a minimum of {:.2} (codes passed), at most {excess} over it (goal ≤ 2)",
            if *reboot {
                "with a reboot   "
            } else {
                "without a reboot"
            },
            mean(|t| t.writes),
            mean(|t| t.codes),
        );
    }
    println!(
        "  API writes in total      {} (the controllers')",
        report.api_writes
    );
    let makespan = report
        .end
        .parse::<Timestamp>()
        .expect("end")
        .duration_since(start)
        .as_secs();
    let durations: Vec<i64> = (0..hosts)
        .map(|i| PATCH_SECONDS + if needs_reboot(i) { REBOOT_SECONDS } else { 0 })
        .collect();
    let ideal = ideal(&durations, max_concurrent.max(1));
    let bound = (durations.iter().sum::<i64>() as f64 / max_concurrent.max(1) as f64)
        .max(durations.iter().copied().max().unwrap_or(0) as f64);
    println!(
        "  makespan                 {makespan} s against the ideal {ideal} s = {:.4} × ideal (goal ≤ 1.02); no schedule beats {bound:.0} s",
        makespan as f64 / ideal.max(1) as f64
    );
    if completed != hosts {
        eprintln!("not every task completed");
        std::process::exit(1);
    }
}
