//! Crash safety: the whole operator is dropped at random points between API writes and a fresh
//! one starts on the same API state, again and again, while a FirmwareUpgrade runs on appliances
//! and a DevicePatch on network elements. Every task must end in the same code as in an
//! uninterrupted run, no device may see two upgrade starts, and no element may load or activate
//! a patch twice.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::on_virtual_clock;
use futures::{FutureExt as _, StreamExt as _};
use kube::Api;
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::Value;
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

/// Runs the world to its end, crashing the operator at random points when `crashes` is given;
/// returns how many times it crashed.
async fn drive(world: &World, mut crashes: Option<Lcg>) -> usize {
    let jobs = world.jobs().fuse();
    let mut jobs = std::pin::pin!(jobs);
    let mut count = 0;
    loop {
        let stop = CancellationToken::new();
        let operator = world.operator(stop.clone());
        let crash = match crashes.as_mut() {
            Some(rng) => after_task_writes(world, 1 + rng.below(15)).boxed_local(),
            None => futures::future::pending().boxed_local(),
        };
        let done = async {
            while !world.finished() {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        };
        tokio::select! {
            biased;
            () = done => return count,
            () = crash => count += 1,
            () = operator => panic!("the operator stopped by itself"),
            () = &mut jobs => panic!("the job runner stopped"),
        }
        // The operator future is dropped here: everything it had in flight is gone.
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
            drive(&world, Some(Lcg(seed))),
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
