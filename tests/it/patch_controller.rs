//! The PatchJob controller and the controller's half of host tasks, against the in-memory API
//! on the virtual clock, with the agents' part scripted by the test (it writes the codes an
//! agent writes): tasks and the codes set before a start (2032, 2039, 2060, 2057, 2038, 2037),
//! the host lock, the drain through the Eviction API with a PodDisruptionBudget that refuses,
//! deferrals, the reboot grant, the uncordon, and the Host controller's liveness and clean-up.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use upkeep::api::codes::PatchCode;
use upkeep::api::host::LEASE_LABEL;
use upkeep::api::{Host, UpgradeTask};
use upkeep::controller::kit::metrics::Metrics;
use upkeep::engine::patch::state::HostTask;
use upkeep::engine::task_status::render;
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::runner::{Scenario, World};

use crate::common::on_virtual_clock;

const START: &str = "2026-11-23T09:00:00Z";

async fn world() -> World {
    let fleet = Fleet::from_yaml("apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\n").unwrap();
    World::new(&Scenario {
        fleet,
        manifests: Vec::new(),
        start: START.parse().unwrap(),
        horizon: SignedDuration::from_hours(48),
    })
    .await
    .unwrap()
}

async fn apply(world: &World, object: Value) {
    let client = world.server.client();
    let resource = upkeep::sim::runner::resource_of(&object).unwrap_or_else(|| {
        let kind = object["kind"].as_str().unwrap();
        match kind {
            // The simulation takes Hosts from the fleet file; tests apply them themselves.
            "Host" => kube::api::ApiResource::erase::<Host>(&()),
            "Node" => kube::api::ApiResource::erase::<Node>(&()),
            "Pod" => kube::api::ApiResource::erase::<Pod>(&()),
            "Lease" => kube::api::ApiResource::erase::<Lease>(&()),
            "PodDisruptionBudget" => kube::api::ApiResource::erase::<
                k8s_openapi::api::policy::v1::PodDisruptionBudget,
            >(&()),
            other => panic!("no resource for {other}"),
        }
    });
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    let api: Api<kube::api::DynamicObject> = if resource.kind == "Node" {
        Api::all_with(client, &resource)
    } else {
        Api::namespaced_with(client, "default", &resource)
    };
    let dynamic: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
    let created = api.create(&PostParams::default(), &dynamic).await.unwrap();
    // Pods are created Pending: make them Running and Ready as a kubelet would.
    if resource.kind == "Pod" {
        let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
    let _ = created;
}

fn host(name: &str, node: Option<&str>, disabled: bool) -> Value {
    let mut spec = json!({});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    if disabled {
        spec["patchManagement"] = json!("Disabled");
    }
    json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "Host",
           "metadata": {"name": name, "labels": {"role": "web"}}, "spec": spec})
}

fn job(name: &str, extra: Value) -> Value {
    let mut spec = json!({"hosts": {"pattern": "web-*"}, "rollout": {"maxConcurrent": 5}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "PatchJob",
           "metadata": {"name": name}, "spec": spec})
}

/// Keeps the Leases of `hosts` fresh, as their agents would, until `stop`.
fn agents_alive(
    world: &World,
    hosts: &[&str],
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let api: Api<Lease> = Api::namespaced(world.server.client(), "default");
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let clock = world.clock;
    tokio::spawn(async move {
        loop {
            for host in &hosts {
                let lease = Lease {
                    metadata: kube::api::ObjectMeta {
                        name: Some(format!("upkeep-host-{host}")),
                        labels: Some([(LEASE_LABEL.to_string(), host.clone())].into()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(host.clone()),
                        lease_duration_seconds: Some(40),
                        renew_time: Some(MicroTime(clock.now())),
                        ..Default::default()
                    }),
                };
                let params = PatchParams::apply("test-agent").force();
                let _ = api
                    .patch(
                        &format!("upkeep-host-{host}"),
                        &params,
                        &Patch::Apply(&lease),
                    )
                    .await;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(10)) => {}
                () = stop.cancelled() => return,
            }
        }
    })
}

fn task_of(world: &World, host: &str) -> Option<Value> {
    world
        .server
        .snapshot("UpgradeTask")
        .into_iter()
        .find(|t| t.pointer("/spec/target") == Some(&json!(host)))
}

fn code(world: &World, host: &str) -> String {
    task_of(world, host)
        .and_then(|t| {
            t.pointer("/status/code")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "(none)".into())
}

fn reason(world: &World, host: &str) -> Option<String> {
    task_of(world, host)?
        .pointer("/status/reason")
        .and_then(Value::as_str)
        .map(str::to_string)
}

async fn settle(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

/// Writes what an agent writes: `change` applied to the task of `host`, with compare-and-swap.
async fn as_agent(world: &World, host: &str, change: impl Fn(&mut HostTask, Timestamp)) {
    let api: Api<UpgradeTask> = Api::namespaced(world.server.client(), "default");
    for _ in 0..10 {
        let name = task_of(world, host).unwrap()["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let task = api.get(&name).await.unwrap();
        let mut state = HostTask::from_status(task.status.as_ref().unwrap()).unwrap();
        let now = world.clock.now();
        change(&mut state, now);
        let status = render(&state, task.status.as_ref(), task.metadata.generation, now);
        let body = json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
            "metadata": {"name": name, "resourceVersion": task.metadata.resource_version}, "status": status});
        if api
            .patch_status(
                &name,
                &PatchParams::apply("upkeep-agent").force(),
                &Patch::Apply(&body),
            )
            .await
            .is_ok()
        {
            return;
        }
    }
    panic!("the agent's write kept losing");
}

#[test]
fn tasks_and_the_codes_before_a_start() {
    on_virtual_clock(|| async {
        let world = world().await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        let agents = agents_alive(&world, &["web-1", "web-3"], stop.clone());
        apply(&world, host("web-1", None, false)).await;
        apply(&world, host("web-2", None, false)).await; // no agent: offline
        apply(&world, host("web-3", None, true)).await; // patch management disabled
        apply(&world, job("patch", json!({}))).await;
        settle(120).await;
        // web-1 started (its agent is online); the test plays no agent, so it stays started.
        let web1 = task_of(&world, "web-1").unwrap();
        assert!(web1.pointer("/status/startedAt").is_some(), "{web1:#}");
        assert_eq!(code(&world, "web-2"), "Skipped");
        assert_eq!(reason(&world, "web-2").as_deref(), Some("AgentOffline"));
        assert_eq!(code(&world, "web-3"), "Not Licensed");
        assert_eq!(
            reason(&world, "web-3").as_deref(),
            Some("PatchManagementDisabled")
        );
        // The history carries the numbers.
        let history = task_of(&world, "web-2").unwrap()["status"]["history"].clone();
        assert_eq!(history[0]["statusCode"], json!(2032));
        // web-1's Host is held by the job.
        let hosts: Api<Host> = Api::namespaced(world.server.client(), "default");
        let held = hosts.get("web-1").await.unwrap().status.unwrap().held_by;
        assert_eq!(held.as_deref(), Some("PatchJob/default/patch"));
        stop.cancel();
        let _ = tokio::join!(operator, agents);
    });
}

#[test]
fn another_jobs_hold_blocks_the_host_until_it_is_released() {
    on_virtual_clock(|| async {
        let world = world().await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        let agents = agents_alive(&world, &["web-1"], stop.clone());
        apply(&world, host("web-1", None, false)).await;
        apply(&world, job("first", json!({}))).await;
        settle(60).await;
        apply(
            &world,
            job("second", json!({"hosts": {"names": ["web-1"]}})),
        )
        .await;
        settle(60).await;
        let second = world
            .server
            .snapshot("UpgradeTask")
            .into_iter()
            .find(|t| t.pointer("/spec/parent") == Some(&json!("second")))
            .unwrap();
        assert_eq!(second["status"]["code"], json!("Execution Blocked"));
        let message = second["status"]["message"].as_str().unwrap();
        assert!(message.contains("PatchJob/default/first"), "{message}");
        // The first job's task ends: the host is released, and the second starts.
        as_agent(&world, "web-1", |t, now| {
            if t.history.iter().all(|(c, _)| *c != PatchCode::JobStarted) {
                t.enter(PatchCode::JobStarted, "started", now);
            }
            t.end(PatchCode::NoPatchAvailable, None, "current", now);
        })
        .await;
        settle(120).await;
        let second = world
            .server
            .snapshot("UpgradeTask")
            .into_iter()
            .find(|t| t.pointer("/spec/parent") == Some(&json!("second")))
            .unwrap();
        assert!(second.pointer("/status/startedAt").is_some(), "{second:#}");
        let hosts: Api<Host> = Api::namespaced(world.server.client(), "default");
        let held = hosts.get("web-1").await.unwrap().status.unwrap().held_by;
        assert_eq!(held.as_deref(), Some("PatchJob/default/second"));
        stop.cancel();
        let _ = tokio::join!(operator, agents);
    });
}

fn node(name: &str, unschedulable: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "spec": {"unschedulable": unschedulable}})
}

fn pod(name: &str, node: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
}

fn node_of(world: &World, name: &str) -> Value {
    world
        .server
        .snapshot("Node")
        .into_iter()
        .find(|n| n.pointer("/metadata/name") == Some(&json!(name)))
        .unwrap()
}

#[test]
fn the_drain_honours_a_budget_defers_then_reboots_and_uncordons() {
    on_virtual_clock(|| async {
        let world = world().await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        let agents = agents_alive(&world, &["web-1"], stop.clone());
        apply(&world, node("node-1", false)).await;
        apply(&world, pod("db-0", "node-1", "db")).await;
        apply(&world, pod("web-0", "node-1", "web")).await;
        apply(&world, json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "db"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})).await;
        apply(&world, host("web-1", Some("node-1"), false)).await;
        apply(
            &world,
            job("patch", json!({"reboot": {"deferralInterval": "10m"}})),
        )
        .await;
        settle(30).await;
        // The agent installs and asks for the reboot.
        as_agent(&world, "web-1", |t, now| {
            t.progress.received = true;
            t.enter(PatchCode::JobStarted, "started", now);
            t.enter(PatchCode::Patching, "installed", now);
            t.progress.reboot_due = true;
            t.progress.boot_id = Some("boot-1".into());
            t.enter(PatchCode::PendingReboot, "needs a reboot", now);
        })
        .await;
        settle(30).await;
        assert_eq!(code(&world, "web-1"), "Reboot Deferred");
        let message = task_of(&world, "web-1").unwrap()["status"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains("default/db"), "{message}");
        assert!(message.contains("Deferral count: (1 of 3)"), "{message}");
        // The evictable pod went; the budget's pod stayed; the node serves again meanwhile.
        let pods: Vec<String> = world
            .server
            .snapshot("Pod")
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(pods, ["db-0"]);
        assert_ne!(
            node_of(&world, "node-1").pointer("/spec/unschedulable"),
            Some(&json!(true))
        );
        // The budget goes; after the interval the drain succeeds and the reboot is granted.
        let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
            Api::namespaced(world.server.client(), "default");
        pdbs.delete("db", &DeleteParams::default()).await.unwrap();
        settle(11 * 60).await;
        let task = task_of(&world, "web-1").unwrap();
        assert_eq!(
            task.pointer("/status/patch/rebootGranted"),
            Some(&json!(true)),
            "{task:#}"
        );
        let n = node_of(&world, "node-1");
        assert_eq!(n.pointer("/spec/unschedulable"), Some(&json!(true)));
        assert!(
            n.pointer("/metadata/annotations/upkeep.dev~1cordoned-by")
                .is_some(),
            "{n:#}"
        );
        assert!(world.server.snapshot("Pod").is_empty());
        // The agent reboots and completes: the node is uncordoned.
        as_agent(&world, "web-1", |t, now| {
            t.enter(PatchCode::Rebooted, "booted", now);
            t.enter(PatchCode::JobResumed, "resumed", now);
            t.end(PatchCode::Completed, None, "done", now);
        })
        .await;
        settle(30).await;
        let n = node_of(&world, "node-1");
        assert_ne!(
            n.pointer("/spec/unschedulable"),
            Some(&json!(true)),
            "{n:#}"
        );
        assert!(
            n.pointer("/metadata/annotations/upkeep.dev~1cordoned-by")
                .is_none(),
            "{n:#}"
        );
        // An Event for each code, the agent's (Completed) as well as the controller's (Reboot
        // Deferred): Pending Reboot twice, before and after the deferral.
        let reasons: Vec<String> = world
            .server
            .snapshot("Event")
            .iter()
            .filter(|e| e.pointer("/regarding/kind") == Some(&json!("UpgradeTask")))
            .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
            .collect();
        for (reason, n) in [
            ("Pending", 1),
            ("PendingReboot", 2),
            ("RebootDeferred", 1),
            ("Completed", 1),
        ] {
            assert_eq!(
                reasons.iter().filter(|r| *r == reason).count(),
                n,
                "{reason} in {reasons:?}"
            );
        }
        stop.cancel();
        let _ = tokio::join!(operator, agents);
    });
}

/// A job deleted while its host's node is drained: its tasks go with it, and the Host
/// controller uncordons the node upkeep cordoned for a task that no longer exists.
#[test]
fn a_job_deleted_mid_reboot_leaves_no_node_cordoned_by_upkeep() {
    on_virtual_clock(|| async {
        let world = world().await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        let agents = agents_alive(&world, &["web-1"], stop.clone());
        apply(&world, node("node-1", false)).await;
        apply(&world, host("web-1", Some("node-1"), false)).await;
        apply(&world, job("patch", json!({}))).await;
        settle(30).await;
        as_agent(&world, "web-1", |t, now| {
            t.progress.received = true;
            t.enter(PatchCode::JobStarted, "started", now);
            t.enter(PatchCode::Patching, "installed", now);
            t.progress.reboot_due = true;
            t.progress.boot_id = Some("boot-1".into());
            t.enter(PatchCode::PendingReboot, "needs a reboot", now);
        })
        .await;
        settle(30).await;
        let n = node_of(&world, "node-1");
        assert_eq!(
            n.pointer("/spec/unschedulable"),
            Some(&json!(true)),
            "{n:#}"
        );
        assert!(
            n.pointer("/metadata/annotations/upkeep.dev~1cordoned-by")
                .is_some(),
            "{n:#}"
        );

        let jobs: Api<upkeep::api::PatchJob> = Api::namespaced(world.server.client(), "default");
        jobs.delete("patch", &DeleteParams::default())
            .await
            .unwrap();
        settle(3 * 60).await;
        assert!(
            task_of(&world, "web-1").is_none(),
            "the job's task went with it"
        );
        let n = node_of(&world, "node-1");
        assert_ne!(
            n.pointer("/spec/unschedulable"),
            Some(&json!(true)),
            "{n:#}"
        );
        assert!(
            n.pointer("/metadata/annotations/upkeep.dev~1cordoned-by")
                .is_none(),
            "{n:#}"
        );
        stop.cancel();
        let _ = tokio::join!(operator, agents);
    });
}

#[test]
fn a_node_cordoned_before_the_job_stays_cordoned_and_a_deleted_job_releases_its_hold() {
    on_virtual_clock(|| async {
        let world = world().await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        let agents = agents_alive(&world, &["web-1"], stop.clone());
        apply(&world, node("node-1", true)).await;
        apply(&world, host("web-1", Some("node-1"), false)).await;
        apply(&world, job("patch", json!({}))).await;
        settle(30).await;
        as_agent(&world, "web-1", |t, now| {
            t.progress.received = true;
            t.enter(PatchCode::JobStarted, "started", now);
            t.progress.reboot_due = true;
            t.progress.boot_id = Some("boot-1".into());
            t.enter(PatchCode::PendingReboot, "needs a reboot", now);
        })
        .await;
        settle(30).await;
        let task = task_of(&world, "web-1").unwrap();
        assert_eq!(
            task.pointer("/status/patch/rebootGranted"),
            Some(&json!(true)),
            "{task:#}"
        );
        assert_eq!(task.pointer("/status/patch/cordoned"), Some(&json!(false)));
        as_agent(&world, "web-1", |t, now| {
            t.end(PatchCode::Completed, None, "done", now)
        })
        .await;
        settle(30).await;
        let n = node_of(&world, "node-1");
        assert_eq!(
            n.pointer("/spec/unschedulable"),
            Some(&json!(true)),
            "someone else's cordon stays"
        );
        // A second job holds the host; deleting it releases the hold.
        apply(&world, job("again", json!({}))).await;
        settle(30).await;
        let hosts: Api<Host> = Api::namespaced(world.server.client(), "default");
        assert_eq!(
            hosts
                .get("web-1")
                .await
                .unwrap()
                .status
                .unwrap()
                .held_by
                .as_deref(),
            Some("PatchJob/default/again")
        );
        let jobs: Api<upkeep::api::PatchJob> = Api::namespaced(world.server.client(), "default");
        jobs.delete("again", &DeleteParams::default())
            .await
            .unwrap();
        settle(60).await;
        assert_eq!(
            hosts.get("web-1").await.unwrap().status.unwrap().held_by,
            None
        );
        stop.cancel();
        let _ = tokio::join!(operator, agents);
    });
}

#[test]
fn a_blackout_cancels_hosts_not_started() {
    on_virtual_clock(|| async {
        let world = world().await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        let agents = agents_alive(&world, &["web-1", "web-2"], stop.clone());
        apply(&world, host("web-1", None, false)).await;
        apply(
            &world,
            json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "MaintenanceWindow",
            "metadata": {"name": "freeze"}, "spec": {"type": "Blackout",
            "start": "2026-11-23T08:00:00Z", "end": "2026-11-24T08:00:00Z"}}),
        )
        .await;
        apply(
            &world,
            job("frozen", json!({"hosts": {"names": ["web-1"]}})),
        )
        .await;
        settle(60).await;
        assert_eq!(code(&world, "web-1"), "Canceled - Blackout");
        stop.cancel();
        let _ = tokio::join!(operator, agents);
    });
}

#[test]
fn the_host_controller_writes_liveness_from_the_lease() {
    on_virtual_clock(|| async {
        let world = world().await;
        let stop = CancellationToken::new();
        let metrics = Metrics::new();
        let operator = tokio::spawn(world.operator_with_metrics(stop.clone(), metrics.clone()));
        let agent_stop = CancellationToken::new();
        let agents = agents_alive(&world, &["web-1"], agent_stop.clone());
        apply(&world, host("web-1", None, false)).await;
        apply(&world, host("web-2", None, false)).await;
        settle(30).await;
        let hosts: Api<Host> = Api::namespaced(world.server.client(), "default");
        let status = hosts.get("web-1").await.unwrap().status.unwrap();
        assert!(status.agent.online);
        // web-2 has no agent at all; web-1 says it needs a reboot (an agent applies its facts
        // with force: the fields the server defaulted belong to whoever wrote the status first).
        hosts
            .patch_status(
                "web-1",
                &PatchParams::apply("upkeep-agent").force(),
                &Patch::Apply(json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "Host",
                    "status": {"rebootRequired": "Yes"}})),
            )
            .await
            .unwrap();
        settle(5).await;
        let text = metrics.render();
        for sample in ["upkeep_agents_offline 1", "upkeep_hosts_pending_reboot 1"] {
            assert!(
                text.lines().any(|l| l == sample),
                "{sample} missing:\n{text}"
            );
        }
        let online = status
            .conditions
            .iter()
            .find(|c| c.type_ == "AgentOnline")
            .unwrap();
        assert_eq!(online.status, "True");
        agent_stop.cancel();
        let _ = agents.await;
        settle(120).await;
        let status = hosts.get("web-1").await.unwrap().status.unwrap();
        assert!(!status.agent.online);
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "AgentOffline")
        );
        let text = metrics.render();
        assert!(
            text.lines().any(|l| l == "upkeep_agents_offline 2"),
            "{text}"
        );
        stop.cancel();
        let _ = operator.await;
    });
}

#[test]
fn max_wait_times_out_a_host_whose_window_never_opens() {
    on_virtual_clock(|| async {
        let world = world().await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        let agents = agents_alive(&world, &["web-2"], stop.clone());
        apply(
            &world,
            json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "MaintenanceWindow",
            "metadata": {"name": "later"}, "spec": {"type": "Maintenance",
            "start": "2027-01-01T00:00:00Z", "end": "2027-01-02T00:00:00Z"}}),
        )
        .await;
        apply(&world, host("web-2", None, false)).await;
        apply(&world, job("waits", json!({"hosts": {"names": ["web-2"]}, "maintenanceWindows": ["later"], "maxWait": "30m"}))).await;
        settle(20 * 60).await;
        assert_eq!(code(&world, "web-2"), "Pending", "waits for the window");
        settle(20 * 60).await;
        assert_eq!(code(&world, "web-2"), "Timed Out");
        assert_eq!(reason(&world, "web-2").as_deref(), Some("NotStartedInTime"));
        stop.cancel();
        let _ = tokio::join!(operator, agents);
    });
}
