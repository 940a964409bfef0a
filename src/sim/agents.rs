//! The fleet's hosts in a simulation: their objects in the in-memory API (Host, and for a node
//! its Node with a workload pod, a DaemonSet pod and a mirror pod, and the PodDisruptionBudget
//! that refuses its drain while the fleet file says so) and one simulated agent per online host.
//!
//! A simulated agent does what `upkeep agent` does, over a simulated machine
//! ([`super::hostsim::Machine`]): it reports the Host's facts, renews its Lease, watches its own
//! tasks and runs each through the agent half of the pure engine (`engine::patch::agent::step`),
//! writing the task's status with its own field manager and compare-and-swap, and its journal
//! on the machine before every host-changing action. While the host reboots the agent is down
//! (no Lease renewal, no step); after the boot it starts again from its journal and the task's
//! status, as after a crash.
//!
//! Invariants: no host-changing operation starts twice for one task (the journal is kept before
//! the action, and a lost status write discards the round's journal change with the action);
//! the agent never writes a task that is not its host's; the writes it makes are counted apart
//! ([`AgentWrites`]) so the report's `apiWrites` stays the controllers'.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, ResourceExt as _};
use serde_json::{Value, json};

use super::fleet_file::Fleet;
use super::fleet_file::hosts::{AgentMode, FleetHost};
use super::hostsim::Machine;
use crate::api::host::{DEFER_REBOOT_ANNOTATION, LEASE_LABEL, LEASE_PREFIX};
use crate::api::upgrade_task::{LABEL_TARGET, ParentKind};
use crate::api::{Host, PatchJob, UpgradeTask};
use crate::clock::Clock;
use crate::engine::patch::agent;
use crate::engine::patch::state::HostTask;
use crate::engine::task_status::render;

/// The agent's field manager.
pub const FIELD_MANAGER: &str = "upkeep-agent";
/// How long a simulated agent's Lease lasts.
const LEASE_SECONDS: i32 = 120;
/// How often a simulated agent renews its Lease.
const RENEW: SignedDuration = SignedDuration::from_secs(40);
/// The version a simulated agent reports.
const AGENT_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "-sim");

/// The writes the simulated agents (and the simulated cluster around them) made.
#[derive(Debug, Default)]
pub struct AgentWrites(AtomicU64);

impl AgentWrites {
    /// How many.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The simulated machines of a fleet's hosts, by namespace and name.
pub type Machines = BTreeMap<(String, String), Arc<Mutex<Machine>>>;

/// The machines of `fleet`'s hosts for a simulation starting at `start`.
pub fn machines(fleet: &Fleet, start: Timestamp) -> Machines {
    fleet
        .hosts
        .iter()
        .map(|h| {
            (
                (h.namespace().to_string(), h.name.clone()),
                Arc::new(Mutex::new(Machine::new(h, &fleet.repository, start))),
            )
        })
        .collect()
}

/// The label of the pod a host's drain guard protects.
const GUARD_LABEL: &str = "upkeep.dev/sim-guard";

/// The objects of the fleet's hosts: Hosts, Nodes, their pods and drain guards.
pub fn objects(fleet: &Fleet) -> Vec<(String, Value)> {
    fleet.hosts.iter().flat_map(host_objects).collect()
}

fn host_objects(host: &FleetHost) -> Vec<(String, Value)> {
    let namespace = host.namespace().to_string();
    let name = &host.name;
    let mut spec = json!({ "patchManagement": host.patch_management });
    if host.node {
        spec["nodeName"] = json!(name);
    }
    if !host.products.is_empty() {
        spec["products"] = host
            .products
            .iter()
            .map(|p| json!({"id": p.id, "location": p.location(), "installer": "builtin"}))
            .collect();
    }
    let mut metadata = json!({ "name": name, "namespace": namespace, "labels": host.labels });
    if host.defer_reboot > 0 {
        metadata["annotations"] = json!({ DEFER_REBOOT_ANNOTATION: "simulated" });
    }
    let mut out = vec![(
        "Host".to_string(),
        json!({"apiVersion": crate::api::API_VERSION, "kind": "Host", "metadata": metadata, "spec": spec}),
    )];
    if !host.node {
        return out;
    }
    out.push((
        "Node".into(),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": host.labels}, "spec": {}}),
    ));
    let container = json!([{"name": "main", "image": "registry.invalid/app:1"}]);
    out.push((
        "Pod".into(),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": format!("{name}-app"), "namespace": namespace, "labels": {GUARD_LABEL: name}},
               "spec": {"nodeName": name, "containers": container}}),
    ));
    out.push((
        "Pod".into(),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": format!("{name}-node-exporter"), "namespace": namespace,
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "node-exporter",
                                                 "uid": "", "controller": true}]},
               "spec": {"nodeName": name, "containers": container}}),
    ));
    out.push((
        "Pod".into(),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": format!("{name}-static-proxy"), "namespace": namespace,
                            "annotations": {"kubernetes.io/config.mirror": "simulated"}},
               "spec": {"nodeName": name, "containers": container}}),
    ));
    let machine_guard = host
        .fault(super::fleet_file::hosts::HostFaultStep::Drain)
        .is_some()
        || host.drain_blocked_for.is_some();
    if machine_guard {
        out.push((
            "PodDisruptionBudget".into(),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                   "metadata": {"name": guard_name(name), "namespace": namespace},
                   "spec": {"minAvailable": 1, "selector": {"matchLabels": {GUARD_LABEL: name}}}}),
        ));
    }
    out
}

fn guard_name(host: &str) -> String {
    format!("{host}-guard")
}

/// Creates the fleet's host objects; pods are made Running and Ready, as a kubelet would, and
/// a DaemonSet's pods belong to a DaemonSet `node-exporter` in their namespace.
pub async fn seed(client: &Client, fleet: &Fleet) -> Result<(), kube::Error> {
    let mut daemon_sets: BTreeMap<String, String> = BTreeMap::new();
    for (kind, mut object) in objects(fleet) {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let post = PostParams::default();
        match kind.as_str() {
            "Host" => {
                let host: Host = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
                Api::<Host>::namespaced(client.clone(), &namespace)
                    .create(&post, &host)
                    .await?;
            }
            "Node" => {
                let node: Node = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
                Api::<Node>::all(client.clone())
                    .create(&post, &node)
                    .await?;
            }
            "Pod" => {
                if let Some(owner) = object.pointer_mut("/metadata/ownerReferences/0") {
                    let uid = match daemon_sets.get(&namespace) {
                        Some(uid) => uid.clone(),
                        None => {
                            let uid = daemon_set(client, &namespace).await?;
                            daemon_sets.insert(namespace.clone(), uid.clone());
                            uid
                        }
                    };
                    owner["uid"] = json!(uid);
                }
                let pod: Pod = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
                let api = Api::<Pod>::namespaced(client.clone(), &namespace);
                let created = api.create(&post, &pod).await?;
                let status = json!({"status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}]}});
                api.patch_status(
                    &created.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&status),
                )
                .await?;
            }
            _ => {
                let pdb: PodDisruptionBudget =
                    serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
                Api::<PodDisruptionBudget>::namespaced(client.clone(), &namespace)
                    .create(&post, &pdb)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Creates the DaemonSet whose pods run on every simulated node of `namespace`; its uid.
async fn daemon_set(client: &Client, namespace: &str) -> Result<String, kube::Error> {
    let daemon_set: k8s_openapi::api::apps::v1::DaemonSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "node-exporter", "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": "node-exporter"}},
                 "template": {"metadata": {"labels": {"app": "node-exporter"}},
                              "spec": {"containers": [{"name": "main", "image": "registry.invalid/node-exporter:1"}]}}}
    }))
    .map_err(kube::Error::SerdeError)?;
    let created = Api::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &daemon_set)
        .await?;
    Ok(created.metadata.uid.unwrap_or_default())
}

/// Runs the simulated agents of every online host and lifts the drain guards when their time
/// comes, until dropped.
pub fn run(
    client: Client,
    machines: &Machines,
    clock: Clock,
    writes: Arc<AgentWrites>,
) -> BoxFuture<'static, ()> {
    let mut futures: Vec<BoxFuture<'static, ()>> = Vec::new();
    for ((namespace, name), machine) in machines {
        let (online, guard) = {
            let Ok(m) = machine.lock() else { continue };
            (m.host().agent == AgentMode::Online, m.drain_guard())
        };
        if let Some(Some(at)) = guard {
            futures.push(
                lift_guard(
                    client.clone(),
                    namespace.clone(),
                    name.clone(),
                    at,
                    clock,
                    writes.clone(),
                )
                .boxed(),
            );
        }
        if online {
            let agent = Agent {
                client: client.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
                machine: machine.clone(),
                clock,
                writes: writes.clone(),
            };
            futures.push(agent.run().boxed());
        }
    }
    async move {
        futures::future::join_all(futures).await;
        std::future::pending::<()>().await;
    }
    .boxed()
}

async fn lift_guard(
    client: Client,
    namespace: String,
    host: String,
    at: Timestamp,
    clock: Clock,
    writes: Arc<AgentWrites>,
) {
    tokio::time::sleep(clock.until(at)).await;
    let api = Api::<PodDisruptionBudget>::namespaced(client, &namespace);
    if api
        .delete(&guard_name(&host), &DeleteParams::default())
        .await
        .is_ok()
    {
        writes.add();
    }
}

/// One simulated agent.
struct Agent {
    client: Client,
    namespace: String,
    name: String,
    machine: Arc<Mutex<Machine>>,
    clock: Clock,
    writes: Arc<AgentWrites>,
}

/// A round that lost a write: try again at once with fresh objects.
struct Lost;

impl Agent {
    async fn run(self) {
        let gone_at = self.with(|m| m.agent_gone_at()).flatten();
        let tasks_api = Api::<UpgradeTask>::namespaced(self.client.clone(), &self.namespace);
        let config = watcher::Config::default().labels(&format!("{LABEL_TARGET}={}", self.name));
        let mut events = watcher(tasks_api.clone(), config)
            .default_backoff()
            .touched_objects()
            .boxed();
        let mut facts_written: Option<Value> = None;
        let mut renew_at = self.clock.now();
        let mut wake: Option<Timestamp> = None;
        loop {
            let now = self.clock.now();
            if gone_at.is_some_and(|g| now >= g) {
                return;
            }
            if let Some(up) = self.with(|m| m.down_until(now)).flatten() {
                // Rebooting: nothing runs on the host.
                tokio::time::sleep(self.clock.until(up)).await;
                renew_at = self.clock.now();
                continue;
            }
            if now >= renew_at {
                self.renew(now).await;
                renew_at = now + RENEW;
            }
            let mut next = self.round(&tasks_api).await;
            for _ in 0..3 {
                if next.is_ok() {
                    break;
                }
                next = self.round(&tasks_api).await;
            }
            let retry = now + SignedDuration::from_secs(10);
            wake = next.unwrap_or(Some(retry)).or(wake.filter(|w| *w > now));
            self.report_facts(&mut facts_written).await;
            let mut until = renew_at;
            if let Some(w) = wake {
                until = until.min(w);
            }
            if let Some(g) = gone_at {
                until = until.min(g);
            }
            let sleep = self.clock.until(until).max(Duration::from_millis(1));
            tokio::select! {
                biased;
                () = tokio::time::sleep(sleep) => {}
                event = events.next() => {
                    if event.is_none() {
                        return;
                    }
                }
            }
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Machine) -> T) -> Option<T> {
        self.machine.lock().ok().map(|mut m| f(&mut m))
    }

    async fn renew(&self, now: Timestamp) {
        let name = format!("{LEASE_PREFIX}{}", self.name);
        let lease = Lease {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(LEASE_LABEL.to_string(), self.name.clone())].into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.name.clone()),
                lease_duration_seconds: Some(LEASE_SECONDS),
                renew_time: Some(MicroTime(now)),
                ..Default::default()
            }),
        };
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        if api
            .patch(&name, &params, &Patch::Apply(&lease))
            .await
            .is_ok()
        {
            self.writes.add();
        }
    }

    /// The Host's facts, written when they changed.
    async fn report_facts(&self, written: &mut Option<Value>) {
        let now = self.clock.now();
        let Some(facts) = self.with(|m| {
            let (reboot, by) = m.reboot_signal();
            let mut updates = serde_json::to_value(m.updates_status(now)).unwrap_or_default();
            json!({
                "agent": {"version": AGENT_VERSION, "bootId": m.boot_id()},
                "os": m.os(),
                "rebootRequired": reboot,
                "rebootRequiredBy": by,
                "products": m.products(),
                "history": m.history(),
                "updates": updates.take(),
            })
        }) else {
            return;
        };
        let unchanged = written.as_ref().is_some_and(|w| {
            let mut a = w.clone();
            let mut b = facts.clone();
            a["updates"]["checkedAt"] = Value::Null;
            b["updates"]["checkedAt"] = Value::Null;
            a == b
        });
        if unchanged {
            return;
        }
        let api: Api<Host> = Api::namespaced(self.client.clone(), &self.namespace);
        let patch = json!({ "status": facts });
        if api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .is_ok()
        {
            self.writes.add();
            *written = Some(facts);
        }
    }

    /// Steps every task of this host that has not ended; when to look again.
    async fn round(&self, api: &Api<UpgradeTask>) -> Result<Option<Timestamp>, Lost> {
        let selector = format!("{LABEL_TARGET}={}", self.name);
        let Ok(list) = api
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
        else {
            return Ok(Some(self.clock.now() + SignedDuration::from_secs(10)));
        };
        let mut tasks: Vec<UpgradeTask> = list
            .items
            .into_iter()
            .filter(|t| t.spec.parent_kind == ParentKind::PatchJob)
            .filter(|t| {
                t.status
                    .as_ref()
                    .is_some_and(|s| s.code.is_some() && !s.terminal)
            })
            .collect();
        tasks.sort_by_key(|t| {
            (
                t.metadata.creation_timestamp.clone().map(|c| c.0),
                t.name_any(),
            )
        });
        let mut wake: Option<Timestamp> = None;
        for task in &tasks {
            if let Some(at) = self.drive(task).await? {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        Ok(wake)
    }

    /// Runs one task through the engine until it waits.
    async fn drive(&self, task: &UpgradeTask) -> Result<Option<Timestamp>, Lost> {
        let Some(status) = task.status.as_ref() else {
            return Ok(None);
        };
        let Ok(mut state) = HostTask::from_status(status) else {
            return Ok(None);
        };
        let jobs: Api<PatchJob> = Api::namespaced(self.client.clone(), &self.namespace);
        let Ok(Some(job)) = jobs.get_opt(&task.spec.parent).await else {
            return Ok(None);
        };
        self.honour_deferrals(&state).await;
        let key = format!(
            "{}/{}/{}",
            self.namespace,
            task.name_any(),
            task.metadata.uid.clone().unwrap_or_default()
        );
        let Some((mut journal, boot_id)) = self.with(|m| (m.journal(&key), m.boot_id())) else {
            return Ok(None);
        };
        let ctx = agent::Context {
            task: &key,
            spec: &job.spec,
            boot_id: &boot_id,
        };
        let mut written = (state.clone(), status.clone(), task.resource_version());
        let mut input = None;
        loop {
            let now = self.clock.now();
            let step = agent::step(&ctx, &mut state, &mut journal, input.take(), now);
            if (step.persist_first || step.action.is_none()) && state != written.0 {
                let rendered = render(&state, Some(&written.1), task.metadata.generation, now);
                match self.write(task, &rendered, written.2.as_deref()).await {
                    Some(version) => written = (state.clone(), rendered, Some(version)),
                    None => return Err(Lost),
                }
            }
            if step.persist_first || step.action.is_none() {
                let kept = journal.clone();
                self.with(|m| m.keep_journal(&key, kept));
            }
            let Some(action) = step.action else {
                return Ok(step.wake_at);
            };
            let Some(observation) = self.with(|m| m.answer(&key, &job.spec, action, now)) else {
                return Ok(None);
            };
            if self.with(|m| m.down_until(now).is_some()).unwrap_or(false) {
                // The host went down under the agent: what it had not kept is lost.
                return Ok(None);
            }
            input = Some(observation);
        }
    }

    /// Drops the Host's defer-reboot annotation once the host deferred as often as the fleet
    /// file says.
    async fn honour_deferrals(&self, state: &HostTask) {
        let wanted = self.with(|m| m.host().defer_reboot).unwrap_or(0);
        if wanted == 0 || state.deferrals.used < wanted {
            return;
        }
        let api: Api<Host> = Api::namespaced(self.client.clone(), &self.namespace);
        let Ok(host) = api.get(&self.name).await else {
            return;
        };
        if !host.annotations().contains_key(DEFER_REBOOT_ANNOTATION) {
            return;
        }
        let patch = json!({"metadata": {"annotations": {DEFER_REBOOT_ANNOTATION: null}}});
        if api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .is_ok()
        {
            self.writes.add();
        }
    }

    /// Writes a task's status with compare-and-swap; its new resourceVersion, or `None` when
    /// it lost.
    async fn write(
        &self,
        task: &UpgradeTask,
        status: &crate::api::upgrade_task::UpgradeTaskStatus,
        version: Option<&str>,
    ) -> Option<String> {
        let name = task.name_any();
        let api: Api<UpgradeTask> = Api::namespaced(self.client.clone(), &self.namespace);
        let body = json!({"apiVersion": crate::api::API_VERSION, "kind": "UpgradeTask",
            "metadata": {"name": name, "resourceVersion": version}, "status": status});
        let written = api
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .ok()?;
        self.writes.add();
        written.resource_version()
    }
}
