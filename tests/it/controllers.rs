//! The real controllers (kube-runtime Controllers, watches and all) against the in-memory API and
//! the simulated fleet on the virtual clock: what they write to objects, Events and the API.

use std::time::Duration;

use crate::common::on_virtual_clock;
use futures::FutureExt as _;
use jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use upkeep::api::{Device, DeviceSpec, MaintenanceWindow};
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::runner::{Scenario, World};

const START: &str = "2026-11-23T09:00:00Z";

fn fleet(devices: &[&str]) -> Fleet {
    let mut yaml = String::from(
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nimages:\n  - { name: idg7519.oradco.scrypt4, size: 600Mi }\ndevices:\n",
    );
    for d in devices {
        yaml.push_str(&format!("  - {d}\n"));
    }
    Fleet::from_yaml(&yaml).unwrap()
}

fn manifests(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap()
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn scenario(devices: &[&str], yaml: &str) -> Scenario {
    Scenario {
        fleet: fleet(devices),
        manifests: manifests(yaml),
        start: START.parse().unwrap(),
        horizon: SignedDuration::from_hours(48),
    }
}

async fn run(world: &World) {
    let end = world.clock.now() + SignedDuration::from_hours(48);
    tokio::time::timeout(
        Duration::from_secs(49 * 3600),
        world.run_until_finished(end, None),
    )
    .await
    .expect("the run ends");
}

fn code_of(world: &World, target: &str) -> String {
    world
        .server
        .snapshot("UpgradeTask")
        .iter()
        .find(|t| t.pointer("/spec/target") == Some(&json!(target)))
        .and_then(|t| {
            t.pointer("/status/code")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "(no task)".into())
}

const UPGRADE: &str = "apiVersion: upkeep.dev/v1alpha1\nkind: FirmwareUpgrade\nmetadata: { name: fw, namespace: default }\nspec:\n  image: idg7519.oradco.scrypt4\n  targets: { pattern: \"dp-*\" }\n  rollout: { maxConcurrent: 2 }\n";

#[test]
fn malformed_objects_do_not_stop_the_others() {
    on_virtual_clock(|| async {
        let world = World::new(&scenario(&["{ name: dp-1 }", "{ name: dp-2 }"], UPGRADE))
            .await
            .unwrap();
        // An UpgradeTask of an older version: an enum value this version does not know.
        world
            .server
            .insert_raw(json!({
                "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
                "metadata": {"name": "legacy", "namespace": "default"},
                "spec": {"parentKind": "FirmwareUpgrade", "parent": "fw", "target": "dp-1"},
                "status": {"code": "SUCCESS", "result": "Done"}
            }))
            .unwrap();
        // A task whose code this version does not know.
        world
            .server
            .insert_raw(json!({
                "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
                "metadata": {"name": "odd", "namespace": "default"},
                "spec": {"parentKind": "FirmwareUpgrade", "parent": "other", "target": "dp-9"},
                "status": {"code": "HALF_DONE", "createdAt": START}
            }))
            .unwrap();
        // A FirmwareUpgrade and a Device that cannot be read at all.
        world
            .server
            .insert_raw(json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "FirmwareUpgrade", "metadata": {"name": "broken", "namespace": "default"}, "spec": {"image": 42}}))
            .unwrap();
        world
            .server
            .insert_raw(json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "Device", "metadata": {"name": "dp-0", "namespace": "default"}, "spec": {"driver": "telnet"}}))
            .unwrap();
        run(&world).await;
        assert_eq!(code_of(&world, "dp-1"), "SUCCESS");
        assert_eq!(code_of(&world, "dp-2"), "SUCCESS");
        let odd = world.server.get("UpgradeTask", "default", "odd").unwrap();
        let stalled = odd["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Stalled")
            .unwrap();
        assert_eq!(stalled["status"], "True");
        assert_eq!(stalled["reason"], "UnreadableStatus");
        assert!(
            stalled["message"].as_str().unwrap().contains("HALF_DONE"),
            "{stalled}"
        );
    });
}

#[test]
fn events_status_and_writes_follow_each_code() {
    on_virtual_clock(|| async {
        let world = World::new(&scenario(&["{ name: dp-1 }"], UPGRADE))
            .await
            .unwrap();
        run(&world).await;
        assert_eq!(code_of(&world, "dp-1"), "SUCCESS");
        let task = &world.server.snapshot("UpgradeTask")[0];
        let name = task["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            task["metadata"]["labels"]["upkeep.dev/parent-kind"],
            "FirmwareUpgrade"
        );
        assert_eq!(task["metadata"]["labels"]["upkeep.dev/parent"], "fw");
        assert_eq!(task["metadata"]["labels"]["upkeep.dev/target"], "dp-1");
        assert_eq!(
            task["metadata"]["ownerReferences"][0]["kind"],
            "FirmwareUpgrade"
        );
        assert_eq!(task["status"]["terminal"], true);
        assert_eq!(task["status"]["result"], "Succeeded");
        let ready = task["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("True"), Some("Success"))
        );

        // One Event per change of code a write made visible, stamped with the virtual clock.
        let events: Vec<Value> = world
            .server
            .snapshot("Event")
            .into_iter()
            .filter(|e| e["regarding"]["name"] == name)
            .collect();
        let reasons: Vec<&str> = events
            .iter()
            .map(|e| e["reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons.first(), Some(&"ReadyForExecution"), "{reasons:?}");
        assert_eq!(reasons.last(), Some(&"Success"), "{reasons:?}");
        assert!(
            reasons.contains(&"ExecutionUpgradeWaitingForUpgrade"),
            "{reasons:?}"
        );
        for e in &events {
            let at: Timestamp = e["eventTime"].as_str().unwrap().parse().unwrap();
            assert!(
                at >= START.parse().unwrap() && at < "2026-11-23T10:00:00Z".parse().unwrap(),
                "{at}"
            );
        }

        // Status writes: creation, ready, granted, the three visible waits, the upgrade's
        // start (stored before it is sent), and the end.
        let counts = world
            .server
            .object_write_counts("UpgradeTask", "default", name);
        assert_eq!(counts.creates + counts.status_writes, 8, "{counts:?}");

        let upgrade = world
            .server
            .get("FirmwareUpgrade", "default", "fw")
            .unwrap();
        assert_eq!(upgrade["status"]["summary"]["succeeded"], 1);
        assert_eq!(upgrade["status"]["observedGeneration"], 1);
    });
}

#[test]
fn windows_and_devices_report_their_state() {
    on_virtual_clock(|| async {
        let yaml = "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: { name: nightly, namespace: default }\nspec: { schedule: \"0 22 * * *\", duration: 2h }\n---\napiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: { name: bad-zone, namespace: default }\nspec: { schedule: \"0 22 * * *\", timeZone: Mars/Olympus, duration: 2h }\n";
        let world = World::new(&scenario(
            &[
                "{ name: dp-1, firmware: 7.5.1.7 }",
                "{ name: dp-2, available: false }",
            ],
            yaml,
        ))
        .await
        .unwrap();
        let stop = CancellationToken::new();
        let operator = world.operator(stop.clone());
        let look = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let client = world.server.client();
            let nightly = Api::<MaintenanceWindow>::namespaced(client.clone(), "default")
                .get("nightly")
                .await
                .unwrap();
            let status = nightly.status.unwrap();
            assert!(!status.open);
            assert_eq!(
                status.next_open.unwrap().0,
                "2026-11-23T22:00:00Z".parse::<Timestamp>().unwrap()
            );
            assert_eq!(
                status.next_close.unwrap().0,
                "2026-11-24T00:00:00Z".parse::<Timestamp>().unwrap()
            );
            let bad = Api::<MaintenanceWindow>::namespaced(client.clone(), "default")
                .get("bad-zone")
                .await
                .unwrap();
            let stalled = bad
                .status
                .unwrap()
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Stalled")
                .unwrap();
            assert_eq!(
                (stalled.status.as_str(), stalled.reason.as_str()),
                ("True", "InvalidSchedule")
            );
            assert!(
                stalled.message.contains("Mars/Olympus"),
                "{}",
                stalled.message
            );

            // Thirteen hours later the window is open, and its status says so.
            tokio::time::sleep(Duration::from_secs(13 * 3600)).await;
            let nightly = Api::<MaintenanceWindow>::namespaced(client.clone(), "default")
                .get("nightly")
                .await
                .unwrap();
            assert!(nightly.status.unwrap().open);

            let devices = Api::<Device>::namespaced(client, "default");
            let dp1 = devices.get("dp-1").await.unwrap().status.unwrap();
            assert!(dp1.reachable);
            let facts = dp1.facts.unwrap();
            assert_eq!(
                (facts.model.as_deref(), facts.firmware.as_deref()),
                (Some("IDG"), Some("7.5.1.7"))
            );
            assert_eq!(facts.free_space.unwrap().encrypted.unwrap().0, "2Gi");
            assert!(
                dp1.conditions
                    .iter()
                    .any(|c| c.type_ == "Reachable" && c.status == "True")
            );
            let dp2 = devices.get("dp-2").await.unwrap().status.unwrap();
            assert!(!dp2.reachable);
            assert!(
                dp2.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "False")
            );
            assert_eq!(
                dp2.history.last().map(|e| e.event.as_str()),
                Some("Unreachable")
            );
        };
        tokio::select! {
            () = look => {}
            () = operator => panic!("the operator stopped"),
        }
        stop.cancel();
    });
}

#[test]
fn a_device_that_appears_later_joins_an_unfinished_upgrade_but_not_a_finished_one() {
    on_virtual_clock(|| async {
        let yaml = "apiVersion: upkeep.dev/v1alpha1\nkind: FirmwareUpgrade\nmetadata: { name: fw, namespace: default }\nspec:\n  image: idg7519.oradco.scrypt4\n  targets: { names: [dp-1, gone], pattern: \"dp-*\" }\n  rollout: { maxConcurrent: 1 }\n";
        let world = World::new(&scenario(
            &["{ name: dp-1 }", "{ name: dp-2 }", "{ name: dp-3 }"],
            yaml,
        ))
        .await
        .unwrap();
        // Only dp-1 exists as a Device at first (the fleet has the others' simulated hardware).
        let client = world.server.client();
        let devices = Api::<Device>::namespaced(client.clone(), "default");
        for late in ["dp-2", "dp-3"] {
            devices.delete(late, &Default::default()).await.unwrap();
        }
        let stop = CancellationToken::new();
        let operator = world.operator(stop.clone()).fuse();
        let jobs = world.jobs().fuse();
        let script = async {
            // dp-2 appears while dp-1 is still upgrading.
            tokio::time::sleep(Duration::from_secs(120)).await;
            create_device(&client, "dp-2").await;
            while !world.finished() {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            // dp-3 appears after everything ended: the finished upgrade stays finished.
            create_device(&client, "dp-3").await;
            tokio::time::sleep(Duration::from_secs(900)).await;
        };
        tokio::select! {
            () = script => {}
            () = operator => panic!("the operator stopped"),
            () = jobs => panic!("the jobs stopped"),
        }
        stop.cancel();
        assert_eq!(code_of(&world, "dp-1"), "SUCCESS");
        assert_eq!(code_of(&world, "dp-2"), "SUCCESS");
        assert_eq!(code_of(&world, "gone"), "SKIPPED_DEVICE_DOES_NOT_EXIST");
        assert_eq!(code_of(&world, "dp-3"), "(no task)");
    });
}

async fn create_device(client: &kube::Client, name: &str) {
    let spec = DeviceSpec {
        address: format!("https://fleet.upkeep.invalid/devices/default/{name}"),
        ..Default::default()
    };
    Api::<Device>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &Device::new(name, spec))
        .await
        .unwrap();
}

/// Network elements patched by a DevicePatch: a healthy one, one whose load fails.
fn element_scenario(dpatch: &str) -> Scenario {
    let fleet = Fleet::from_yaml(
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nimages:\n  - { name: SPH106.pkg, size: 50Mi }\ndevices:\n  - { name: ne-1, family: NetworkElement }\n  - { name: ne-2, family: NetworkElement, faults: [ { step: patchLoad, kind: error } ] }\n",
    )
    .unwrap();
    Scenario {
        fleet,
        manifests: manifests(dpatch),
        start: START.parse().unwrap(),
        horizon: SignedDuration::from_hours(48),
    }
}

fn task_of<'a>(tasks: &'a [Value], target: &str) -> &'a Value {
    tasks
        .iter()
        .find(|t| t["spec"]["target"] == target)
        .unwrap()
}

fn condition<'a>(task: &'a Value, type_: &str) -> Option<&'a Value> {
    task["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
}

#[test]
fn device_patch_tasks_write_their_codes_events_and_the_patch_running_condition() {
    const DPATCH: &str = "apiVersion: upkeep.dev/v1alpha1\nkind: DevicePatch\nmetadata: { name: sph106, namespace: default }\nspec:\n  patch: SPH106\n  package: SPH106.pkg\n  targets: { pattern: \"ne-*\" }\n  activation: { delay: 0s }\n  rollout: { maxConcurrent: 2 }\n";
    on_virtual_clock(|| async {
        let world = World::new(&element_scenario(DPATCH)).await.unwrap();
        run(&world).await;
        let tasks = world.server.snapshot("UpgradeTask");
        let ok = task_of(&tasks, "ne-1");
        assert_eq!(ok["status"]["code"], "PATCH_RUNNING");
        assert_eq!(
            ok["metadata"]["labels"]["upkeep.dev/parent-kind"],
            "DevicePatch"
        );
        assert_eq!(ok["metadata"]["ownerReferences"][0]["kind"], "DevicePatch");
        assert_eq!(ok["status"]["result"], "Succeeded");
        let running = condition(ok, "PatchRunning").expect("PatchRunning");
        assert_eq!(running["status"], "True");
        let failed = task_of(&tasks, "ne-2");
        assert_eq!(failed["status"]["code"], "ERROR_PATCH_LOAD_FAILED");
        assert_eq!(failed["status"]["result"], "Failed");
        assert!(condition(failed, "PatchRunning").is_none());

        // One Event per code; a failure is a Warning.
        let events = world.server.snapshot("Event");
        let of = |task: &Value| -> Vec<(String, String)> {
            events
                .iter()
                .filter(|e| e["regarding"]["name"] == task["metadata"]["name"])
                .map(|e| {
                    assert_eq!(e["action"], "DevicePatch");
                    (
                        e["reason"].as_str().unwrap().to_string(),
                        e["type"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        // An Event for each code a write of the task controller made visible (the grant into
        // PATCH_LOADING is the DevicePatch controller's write, as SENT_TO_MDB is for firmware).
        let reasons: Vec<String> = of(ok).into_iter().map(|(r, _)| r).collect();
        assert_eq!(
            reasons.first().map(String::as_str),
            Some("ReadyForExecution")
        );
        assert_eq!(reasons.last().map(String::as_str), Some("PatchRunning"));
        for reason in ["PatchActivating", "PatchConfirming"] {
            assert!(reasons.iter().any(|r| r == reason), "{reason}: {reasons:?}");
        }
        assert!(of(ok).iter().all(|(_, kind)| kind == "Normal"));
        assert_eq!(
            of(failed).last(),
            Some(&("ErrorPatchLoadFailed".to_string(), "Warning".to_string()))
        );

        let dpatch = world
            .server
            .get("DevicePatch", "default", "sph106")
            .unwrap();
        let summary = &dpatch["status"]["summary"];
        assert_eq!(
            (&summary["succeeded"], &summary["failed"]),
            (&json!(1), &json!(1))
        );
        let stalled = dpatch["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Stalled")
            .unwrap();
        assert_eq!(stalled["status"], "True");
        assert_eq!(dpatch["status"]["firstFailures"][0]["target"], "ne-2");
        assert_eq!(
            world.model.patch_counts(&("default".into(), "ne-1".into())),
            (1, 1)
        );
    });
}

#[test]
fn a_device_patch_without_confirm_ends_activated_succeeded_and_frees_its_slot() {
    const DPATCH: &str = "apiVersion: upkeep.dev/v1alpha1\nkind: DevicePatch\nmetadata: { name: sph106, namespace: default }\nspec:\n  patch: SPH106\n  package: SPH106.pkg\n  targets: { names: [ne-1, ne-3] }\n  activation: { delay: 0s }\n  confirm: false\n";
    on_virtual_clock(|| async {
        let mut scenario = element_scenario(DPATCH);
        scenario.fleet = Fleet::from_yaml(
            "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nimages:\n  - { name: SPH106.pkg, size: 50Mi }\ndevices:\n  - { name: ne-1, family: NetworkElement }\n  - { name: ne-3, family: NetworkElement }\n",
        )
        .unwrap();
        let world = World::new(&scenario).await.unwrap();
        run(&world).await;
        let tasks = world.server.snapshot("UpgradeTask");
        // maxConcurrent 1: ne-3 starts only once ne-1 ended PATCH_ACTIVATED.
        for target in ["ne-1", "ne-3"] {
            let task = task_of(&tasks, target);
            assert_eq!(task["status"]["code"], "PATCH_ACTIVATED", "{target}");
            assert_eq!(task["status"]["terminal"], true);
            assert_eq!(task["status"]["result"], "Succeeded");
            let running = condition(task, "PatchRunning").expect("PatchRunning");
            assert_eq!(
                (running["status"].as_str(), running["reason"].as_str()),
                (Some("False"), Some("NotConfirmed"))
            );
        }
        let dpatch = world
            .server
            .get("DevicePatch", "default", "sph106")
            .unwrap();
        assert_eq!(dpatch["status"]["summary"]["succeeded"], 2);
        assert_eq!(dpatch["status"]["summary"]["running"], 0);
        let ready = dpatch["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
    });
}

/// Connections that count the Devices being read at once (a read takes a virtual second) and
/// answer that the device is not reachable.
#[derive(Default)]
struct CountingReads {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl upkeep::controller::connections::Connections for CountingReads {
    fn driver<'a>(
        &'a self,
        _device: &'a Device,
    ) -> futures::future::BoxFuture<'a, std::sync::Arc<dyn upkeep::drivers::DeviceDriver>> {
        use std::sync::atomic::Ordering::SeqCst;
        async move {
            let reading = self.now.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(reading, SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.now.fetch_sub(1, SeqCst);
            std::sync::Arc::new(upkeep::controller::connections::Unavailable(
                "not here".into(),
            )) as std::sync::Arc<dyn upkeep::drivers::DeviceDriver>
        }
        .boxed()
    }
}

#[test]
fn the_operator_reads_at_most_device_concurrency_devices_at_once() {
    on_virtual_clock(|| async {
        use upkeep::controller::kit::context::Settings;
        use upkeep::controller::operator::{self, Parts};

        let clock = upkeep::clock::Clock::starting_at(START.parse().unwrap());
        let server = upkeep::sim::apiserver::ApiServer::builder(move || clock.now())
            .crds(upkeep::api::crds())
            .build();
        for i in 0..10 {
            create_device(&server.client(), &format!("dp-{i}")).await;
        }
        let reads = std::sync::Arc::new(CountingReads::default());
        let stop = CancellationToken::new();
        let parts = Parts {
            client: server.client(),
            clock,
            repository: std::sync::Arc::new(upkeep::images::repository::StaticRepository::new([])),
            connections: reads.clone(),
            settings: Settings {
                device_concurrency: 3,
                ..Settings::default()
            },
            instance: "test".into(),
            namespace: None,
            metrics: upkeep::controller::kit::metrics::Metrics::new(),
        };
        let operator = tokio::spawn(operator::run(parts, stop.clone()));
        let all_read = || {
            server
                .snapshot("Device")
                .iter()
                .all(|d| d.pointer("/status/reachable") == Some(&json!(false)))
        };
        for _ in 0..60 {
            if all_read() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        stop.cancel();
        operator.await.unwrap();
        assert!(all_read(), "every Device has a status");
        // Ten Devices wait at start; three are read at a time, never more.
        let most = reads.most.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(most, 3, "the most Devices read at once");
    });
}
