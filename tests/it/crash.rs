//! Crash safety: the whole operator is dropped at random points between API writes and a fresh
//! one starts on the same API state, again and again, while a FirmwareUpgrade runs on appliances
//! and a DevicePatch on network elements. Every task must end in the same code as in an
//! uninterrupted run, no device may see two upgrade starts, and no element may load or activate
//! a patch twice. The hosts twin does the same to a PatchJob on 50 simulated hosts (reboots,
//! drains a PodDisruptionBudget holds for a while, deferrals, faults, a node cordoned before the
//! job), dropping the operator, the simulated agents or both: every task ends in the same code
//! and reason, no host installs or reboots twice, no node stays cordoned by upkeep and the node
//! cordoned before the job stays cordoned.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::on_virtual_clock;
use futures::{FutureExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use upkeep::api::UpgradeTask;
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::runner::{Scenario, World};

const DEVICES: usize = 100;
/// Network elements, patched by the DevicePatch.
const ELEMENTS: usize = 10;

/// A fleet of healthy devices with a sprinkling of trouble, so that the codes differ.
fn fleet() -> Fleet {
    let mut yaml = String::from(
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nimages:\n  - { name: idg7519.oradco.scrypt4, size: 600Mi }\n  - { name: SPH106.pkg, size: 50Mi }\ndevices:\n",
    );
    for i in 0..DEVICES {
        let trouble = match i % 10 {
            3 => "    faults: [ { step: upload, kind: error } ]\n",
            5 => "    faults: [ { step: secondQuiesce, kind: hang } ]\n",
            7 => "    firmwareChangesTo: 7.5.2.0\n",
            9 if i % 20 == 9 => "    hooks: { post: { exitCode: 1 } }\n",
            _ => "",
        };
        yaml.push_str(&format!(
            "  - name: dp-{i:03}\n    timings: {{ upgrade: 10m, restart: 2m }}\n{trouble}"
        ));
    }
    for i in 0..ELEMENTS {
        let trouble = match i % 5 {
            1 => "    patchBehaviour: { activationDelay: 24h }\n",
            2 => "    faults: [ { step: patchConfirm, kind: error } ]\n",
            3 => "    patches: [ { id: SPH106, state: running } ]\n",
            4 => "    faults: [ { step: patchActivate, kind: hang } ]\n",
            _ => "",
        };
        yaml.push_str(&format!(
            "  - name: ne-{i:02}\n    family: NetworkElement\n    timings: {{ patchLoad: 20s, patchActivate: 30s, patchConfirm: 10s }}\n{trouble}"
        ));
    }
    Fleet::from_yaml(&yaml).unwrap()
}

const UPGRADE: &str = r#"
apiVersion: upkeep.dev/v1alpha1
kind: FirmwareUpgrade
metadata: { name: crashy, namespace: default }
spec:
  image: idg7519.oradco.scrypt4
  targets: { pattern: "dp-*" }
  firstQuiesce: true
  restart: { enabled: true, waitAfter: 20s }
  rollout: { maxConcurrent: 20 }
  hooks:
    post:
      spec:
        template:
          spec:
            restartPolicy: Never
            containers: [ { name: post, image: busybox } ]
"#;

/// Elements whose own 24h delay is overridden, so each task passes every step.
const PATCH: &str = r#"
apiVersion: upkeep.dev/v1alpha1
kind: DevicePatch
metadata: { name: crashy-patch, namespace: default }
spec:
  patch: SPH106
  package: SPH106.pkg
  targets: { pattern: "ne-*" }
  activation: { delay: 30s, timeout: 5m }
  rollout: { maxConcurrent: 10 }
"#;

fn scenario() -> Scenario {
    Scenario {
        fleet: fleet(),
        manifests: vec![
            serde_saphyr::from_str::<Value>(UPGRADE).unwrap(),
            serde_saphyr::from_str::<Value>(PATCH).unwrap(),
        ],
        start: "2026-11-23T09:00:00Z".parse().unwrap(),
        horizon: jiff::SignedDuration::from_hours(48),
    }
}

/// A small deterministic generator for the crash points.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Resolves after `n` more UpgradeTask writes have been seen.
async fn after_task_writes(world: &World, n: u64) {
    let events = watcher(
        Api::<UpgradeTask>::all(world.server.client()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    // The first listing replays every task once; count writes after it.
    let existing = world.server.snapshot("UpgradeTask").len() as u64;
    events
        .take((existing + n) as usize)
        .for_each(|_| async {})
        .await;
}

/// What one crash takes down.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// The operator.
    Operator,
    /// Every simulated agent (the machines, with the agents' journals, stay).
    Agents,
    /// Both at once.
    Both,
}

/// How long the world runs on after everything ended (so that a node upkeep cordoned is seen
/// uncordoned), unless a crash comes first.
const GRACE: Duration = Duration::from_secs(5 * 60);

/// Runs the world to its end, and `GRACE` after it, with the operator and the simulated
/// agents; when `crashes` is given, at random points (after 1 to `most` task writes) one of its
/// kinds of crash drops what it names and fresh ones start. Returns how many times it crashed.
async fn drive(world: &World, mut crashes: Option<(Lcg, &[Kill], u64)>) -> usize {
    let jobs = world.jobs().fuse();
    let mut jobs = std::pin::pin!(jobs);
    let mut operator = None;
    let mut agents = None;
    let mut count = 0;
    loop {
        let running_operator =
            operator.get_or_insert_with(|| world.operator(CancellationToken::new()));
        let running_agents = agents.get_or_insert_with(|| world.agents());
        let crash = match crashes.as_mut() {
            Some((rng, kinds, most)) => {
                let kill = match kinds.len() {
                    1 => kinds[0],
                    n => kinds[rng.below(n as u64) as usize],
                };
                after_task_writes(world, 1 + rng.below(*most))
                    .map(move |()| kill)
                    .boxed_local()
            }
            None => futures::future::pending().boxed_local(),
        };
        let done = async {
            while !world.finished() {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            tokio::time::sleep(GRACE).await;
        };
        let kill = tokio::select! {
            biased;
            () = done => return count,
            kill = crash => kill,
            () = running_operator => panic!("the operator stopped by itself"),
            () = running_agents => panic!("the simulated agents stopped by themselves"),
            () = &mut jobs => panic!("the job runner stopped"),
        };
        count += 1;
        // Dropped here: everything the operator or the agents had in flight is gone.
        match kill {
            Kill::Operator => operator = None,
            Kill::Agents => agents = None,
            Kill::Both => (operator, agents) = (None, None),
        }
    }
}

fn outcome(world: &World) -> BTreeMap<String, String> {
    world
        .server
        .snapshot("UpgradeTask")
        .iter()
        .map(|t| {
            let target = t
                .pointer("/spec/target")
                .and_then(Value::as_str)
                .unwrap()
                .to_string();
            let code = t
                .pointer("/status/code")
                .and_then(Value::as_str)
                .unwrap_or("(none)")
                .to_string();
            (target, code)
        })
        .collect()
}

#[test]
fn a_crash_anywhere_changes_nothing_and_never_starts_an_upgrade_or_loads_a_patch_twice() {
    on_virtual_clock(crash_many_times);
}

async fn crash_many_times() {
    let baseline = World::new(&scenario()).await.unwrap();
    let run = tokio::time::timeout(Duration::from_secs(48 * 3600), drive(&baseline, None)).await;
    assert!(run.is_ok(), "the uninterrupted run did not finish");
    let expected = outcome(&baseline);
    assert_eq!(expected.len(), DEVICES + ELEMENTS);
    let patched: Vec<&String> = expected
        .iter()
        .filter(|(target, _)| target.starts_with("ne-"))
        .map(|(_, code)| code)
        .collect();
    for code in [
        "PATCH_RUNNING",
        "PATCH_ALREADY_RUNNING",
        "ERROR_PATCH_CONFIRM_FAILED",
        "ERROR_PATCH_ACTIVATION_TIMEOUT",
    ] {
        assert!(
            patched.iter().any(|c| *c == code),
            "the elements should end in {code} too: {patched:?}"
        );
    }
    for key in baseline.model.keys() {
        if expected.get(&key.1).is_some_and(|c| c == "PATCH_RUNNING") {
            assert_eq!(baseline.model.patch_counts(&key), (1, 1), "{key:?}");
        }
    }
    let mut kinds: Vec<&String> = expected.values().collect();
    kinds.sort();
    kinds.dedup();
    assert!(
        kinds.len() >= 4,
        "the fleet should end in several different codes: {kinds:?}"
    );

    let mut total = 0;
    for seed in [7, 1234] {
        let world = World::new(&scenario()).await.unwrap();
        let crashes = tokio::time::timeout(
            Duration::from_secs(48 * 3600),
            drive(&world, Some((Lcg(seed), &[Kill::Operator], 15))),
        )
        .await
        .expect("the crashing run did not finish");
        total += crashes;
        assert_eq!(
            outcome(&world),
            expected,
            "seed {seed}: codes differ after {crashes} crashes"
        );
        for key in world.model.keys() {
            let starts = world.model.upgrade_starts(&key);
            assert!(
                starts <= 1,
                "seed {seed}: {key:?} saw {starts} upgrade starts"
            );
            let upgraded = expected
                .get(&key.1)
                .is_some_and(|c| c == "SUCCESS" || c.contains("UPGRADE"));
            assert_eq!(
                starts == 1,
                upgraded,
                "seed {seed}: {key:?} ({starts} starts)"
            );
            let (loads, activations) = world.model.patch_counts(&key);
            let (loads_before, activations_before) = baseline.model.patch_counts(&key);
            assert!(
                loads <= 1 && activations <= 1,
                "seed {seed}: {key:?} loaded {loads} and activated {activations} times"
            );
            assert_eq!(
                (loads, activations),
                (loads_before, activations_before),
                "seed {seed}: {key:?} patched otherwise than without crashes"
            );
        }
    }
    eprintln!("{total} crashes over two runs of {DEVICES} devices and {ELEMENTS} elements");
    assert!(total >= 100, "only {total} crashes");
}

/// The hosts of the PatchJob crash test.
const HOSTS: usize = 50;
/// The node cordoned by someone else before the job (it needs a reboot, so it is drained).
const PRE_CORDONED: &str = "h-12";

/// What makes a host special, by index; the rest get a security update and, every third, a
/// kernel that needs a reboot.
fn host_trouble(i: usize) -> &'static str {
    match i {
        // Canary hosts whose node's PodDisruptionBudget refuses the drain for the first 6m:
        // their reboot is deferred (1 or 2 times, every 4m) and then goes ahead.
        0 | 3 => "    drainBlockedFor: 6m\n",
        // Another job holds the package manager for 2m: 2057, then the install after it.
        1 => "    runningJob: backup\n    busyFor: 2m\n",
        4 => "    faults: [ { step: download, kind: error } ]\n",
        8 => "    faults: [ { step: install, kind: error } ]\n",
        15 => "    faults: [ { step: reboot, kind: error } ]\n",
        20 => "    faults: [ { step: postAction, kind: error } ]\n",
        // The host asks to put its reboot off: once, twice, and more often than allowed.
        9 => "    deferReboot: 1\n",
        21 => "    deferReboot: 2\n",
        30 => "    deferReboot: 5\n",
        25 => "    agent: offline\n",
        35 => "    patchManagement: Disabled\n",
        // A budget that never allows the eviction: deferred until maxDeferrals, then 2046.
        42 => "    faults: [ { step: drain, kind: error } ]\n",
        _ => "",
    }
}

/// 50 hosts (most of them Nodes), a third needing a reboot, with drains, deferrals and faults.
fn host_fleet() -> Fleet {
    let mut yaml = String::from("apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nhosts:\n");
    for i in 0..HOSTS {
        let wave = if i < 5 { ", wave: canary" } else { "" };
        let node = if i % 7 == 6 { "    node: false\n" } else { "" };
        let updates = if i == 10 {
            // Nothing the job's classification selects: no install, only the post action.
            "      - { name: curl, from: 7.88.1-10, to: 7.88.1-10+deb12u5, security: false }\n"
                .to_string()
        } else {
            let mut u = String::from(
                "      - { name: openssl, from: 3.0.11-1~deb12u2, to: 3.0.13-1~deb12u1, security: true }\n",
            );
            if i.is_multiple_of(3) {
                u.push_str("      - { name: linux-image-amd64, from: 6.1.0-25, to: 6.1.0-26, security: true, rebootRequired: true }\n");
            }
            u
        };
        yaml.push_str(&format!(
            "  - name: h-{i:02}\n    labels: {{ role: app{wave} }}\n    timings: {{ download: 10s, install: 40s, action: 5s, reboot: 1m }}\n{node}{}    updates:\n{updates}",
            host_trouble(i)
        ));
    }
    Fleet::from_yaml(&yaml).unwrap()
}

const PATCH_JOB: &str = r#"
apiVersion: upkeep.dev/v1alpha1
kind: PatchJob
metadata: { name: crashy-hosts, namespace: default }
spec:
  hosts: { selector: { matchLabels: { role: app } } }
  operation: Patch
  patch: { classification: Security }
  actions:
    post: [ { name: health, command: "systemctl is-system-running", timeout: 1m, rerunIfInterrupted: true } ]
  reboot: { policy: IfRequired, maxDeferrals: 3, deferralInterval: 4m }
  drain: { enabled: true, timeout: 10m }
  waves:
    - { name: canary, selector: { matchLabels: { wave: canary } } }
    - { name: rest, selector: { matchLabels: { role: app } } }
  rollout: { maxConcurrent: 10, errorPolicy: Continue }
  maxWait: 48h
"#;

fn host_scenario() -> Scenario {
    Scenario {
        fleet: host_fleet(),
        manifests: vec![serde_saphyr::from_str::<Value>(PATCH_JOB).unwrap()],
        start: "2026-11-23T09:00:00Z".parse().unwrap(),
        horizon: jiff::SignedDuration::from_hours(48),
    }
}

/// A host world with `PRE_CORDONED`'s node cordoned by someone else before the job starts.
async fn host_world() -> World {
    let world = World::new(&host_scenario()).await.unwrap();
    let nodes = Api::<Node>::all(world.server.client());
    nodes
        .patch(
            PRE_CORDONED,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    world
}

/// Each host's task: its code and reason, and the reboot deferrals it used.
fn host_outcome(world: &World) -> BTreeMap<String, (String, Option<String>, u64)> {
    world
        .server
        .snapshot("UpgradeTask")
        .iter()
        .map(|t| {
            let field = |p: &str| t.pointer(p).and_then(Value::as_str).map(str::to_string);
            (
                field("/spec/target").unwrap(),
                (
                    field("/status/code").unwrap_or_else(|| "(none)".into()),
                    field("/status/reason"),
                    t.pointer("/status/deferrals/used")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                ),
            )
        })
        .collect()
}

/// The codes each host's task passed through.
fn codes_passed(world: &World) -> BTreeMap<String, Vec<String>> {
    world
        .server
        .snapshot("UpgradeTask")
        .iter()
        .map(|t| {
            let codes = t
                .pointer("/status/history")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|h| h["code"].as_str().map(str::to_string))
                .collect();
            (t["spec"]["target"].as_str().unwrap().to_string(), codes)
        })
        .collect()
}

/// Every node as upkeep must leave it: none carries upkeep's cordon, and only `PRE_CORDONED`
/// is unschedulable.
fn assert_nodes_released(world: &World, run: &str) {
    let nodes = world.server.snapshot("Node");
    assert_eq!(
        nodes.len(),
        (0..HOSTS).filter(|i| i % 7 != 6).count(),
        "{run}"
    );
    for node in &nodes {
        let name = node["metadata"]["name"].as_str().unwrap();
        assert!(
            node.pointer("/metadata/annotations/upkeep.dev~1cordoned-by")
                .is_none(),
            "{run}: {name} is left cordoned by upkeep: {node:#}"
        );
        let unschedulable = node.pointer("/spec/unschedulable") == Some(&json!(true));
        assert_eq!(
            unschedulable,
            name == PRE_CORDONED,
            "{run}: {name} unschedulable {unschedulable}"
        );
    }
}

#[test]
fn a_crash_of_the_operator_or_the_agents_changes_no_host_task_and_never_installs_or_reboots_twice()
{
    on_virtual_clock(crash_hosts_many_times);
}

async fn crash_hosts_many_times() {
    let baseline = host_world().await;
    let run = tokio::time::timeout(Duration::from_secs(48 * 3600), drive(&baseline, None)).await;
    assert!(run.is_ok(), "the uninterrupted run did not finish");
    let expected = host_outcome(&baseline);
    assert_eq!(expected.len(), HOSTS, "{expected:#?}");
    let passed = codes_passed(&baseline);
    let ops = baseline.host_operations();
    // The rollout is the one the fleet describes: reboots, deferrals, faults.
    let ended = |host: &str| expected[host].0.as_str();
    for (host, code) in [
        ("h-00", "Completed"),
        ("h-01", "Completed"),
        ("h-04", "Downloading - Failed"),
        ("h-08", "Job Failed"),
        ("h-10", "Completed"),
        ("h-15", "Job Failed"),
        ("h-20", "Job Failed"),
        ("h-25", "Skipped"),
        ("h-30", "Completed"),
        ("h-35", "Not Licensed"),
        ("h-42", "Job Failed"),
        (PRE_CORDONED, "Completed"),
    ] {
        assert_eq!(ended(host), code, "{host}: {:?}", passed[host]);
    }
    let deferred: Vec<&String> = passed
        .iter()
        .filter(|(_, codes)| codes.iter().any(|c| c == "Reboot Deferred"))
        .map(|(host, _)| host)
        .collect();
    for host in ["h-00", "h-03", "h-09", "h-21", "h-30", "h-42"] {
        assert!(
            deferred.iter().any(|d| *d == host),
            "{host} should defer: {deferred:?}"
        );
    }
    assert!(passed["h-01"].iter().any(|c| c == "Execution Blocked"));
    for (i, host) in (0..HOSTS).map(|i| (i, format!("h-{i:02}"))) {
        let completed = expected[&host].0 == "Completed";
        if completed {
            assert_eq!(ops[&host].installs, usize::from(i != 10), "{host}");
            assert_eq!(
                ops[&host].reboots,
                usize::from(i.is_multiple_of(3)),
                "{host} reboots once if it needs to"
            );
        }
    }
    assert_nodes_released(&baseline, "uninterrupted");

    let mut total = 0;
    let mut cut_offs = 0;
    for seed in [11, 4242] {
        let world = host_world().await;
        let crashes = tokio::time::timeout(
            Duration::from_secs(48 * 3600),
            drive(
                &world,
                // More often than the firmware test: a host task makes fewer writes.
                Some((Lcg(seed), &[Kill::Operator, Kill::Agents, Kill::Both], 8)),
            ),
        )
        .await
        .expect("the crashing run did not finish");
        total += crashes;
        let outcome = host_outcome(&world);
        let operations = world.host_operations();
        for (host, (code, reason, deferrals)) in &expected {
            let (c, r, d) = &outcome[host];
            assert_eq!(
                (c, r),
                (code, reason),
                "seed {seed}: {host} ended otherwise after {crashes} crashes"
            );
            // A budget's deferrals depend on when the drain was tried; the host's own do not.
            if !["h-00", "h-03"].contains(&host.as_str()) {
                assert_eq!(d, deferrals, "seed {seed}: {host}'s deferrals");
            }
        }
        for (host, o) in &operations {
            assert!(
                o.installs <= 1 && o.reboots <= 1,
                "seed {seed}: {host} installed {} and rebooted {} times",
                o.installs,
                o.reboots
            );
            assert_eq!(
                (o.installs, o.reboots),
                (ops[host].installs, ops[host].reboots),
                "seed {seed}: {host} otherwise than without crashes"
            );
        }
        // The job's post action is `rerunIfInterrupted`: one an agent's stop cut off runs
        // again, and its task ends as without crashes.
        let cut: usize = operations.values().map(|o| o.actions_cut_off).sum();
        eprintln!("seed {seed}: {crashes} crashes, {cut} action(s) cut off and run again");
        cut_offs += cut;
        assert_nodes_released(&world, &format!("seed {seed}"));
    }
    eprintln!("{total} crashes over two runs of {HOSTS} hosts");
    assert!(total >= 100, "only {total} crashes");
    assert!(cut_offs > 0, "no crash cut an action off");
}
