//! The fleet's hosts in a simulation: their objects in the in-memory API (Host, and for a node
//! its Node with a workload pod, a DaemonSet pod and a mirror pod, and the PodDisruptionBudget
//! that refuses its drain while the fleet file says so) and, for each online host, the real
//! agent loop (`agent::run::run`, as `upkeep agent` runs it) on the host's simulated machine
//! ([`super::hostsim`]), with its state directory's journals in memory (kept across the
//! agent's runs) and its fetched packages in the simulation's temporary directory.
//!
//! Around the agent this plays what the machine and the cluster do: a reboot drops the agent's
//! run (the machine is down for the host's reboot time; no Lease renewal, no step) and starts
//! it again after the boot with the same state directory and a new boot id; an agent that goes
//! away (`agentOfflineFrom`) is dropped for good; a drain guard is lifted when its time comes;
//! the Host's defer-reboot annotation is dropped once the host deferred as often as the fleet
//! file says.
//!
//! Invariants: the rules of a host task are the engine's, run by the real agent, never
//! restated here; the writes the agents (and the simulated cluster around them) make go through
//! a client that counts them apart ([`AgentWrites`]) so the report's `apiWrites` stays the
//! controllers'.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, ResourceExt as _};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::apiserver::{ApiService, ResponseBody};
use super::fleet_file::Fleet;
use super::fleet_file::hosts::{AgentMode, FleetHost};
use crate::agent::backends::simulated::SimulatedHost;
use crate::agent::run::AgentConfig;
use crate::agent::state_dir::MemoryFiles;
use crate::api::host::DEFER_REBOOT_ANNOTATION;
use crate::api::upgrade_task::LABEL_TARGET;
use crate::api::{Host, UpgradeTask};
use crate::clock::Clock;
use crate::controller::kit::naming::label_value;

/// How long a simulated agent's Lease lasts.
const LEASE: Duration = Duration::from_secs(120);
/// How often a simulated agent renews its Lease.
const RENEW: Duration = Duration::from_secs(40);
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

/// One fleet host in a simulation: as the fleet file describes it, and its machine.
#[derive(Clone, Debug)]
pub struct SimHost {
    /// The fleet file's entry.
    pub host: FleetHost,
    /// The simulated machine the agent runs on.
    pub machine: SimulatedHost,
    /// The agent's state directory (its fetched packages).
    pub state_dir: PathBuf,
    /// The journals and records of its state directory, kept across the agent's runs.
    pub state: MemoryFiles,
}

/// The simulated hosts of a fleet, by namespace and name.
pub type Machines = BTreeMap<(String, String), SimHost>;

/// The machines of `fleet`'s hosts for a simulation starting at `start` on `clock`, their
/// files under `dir` (state directories, roots, the package repository); the repository's
/// directory when the fleet has one.
pub fn machines(
    fleet: &Fleet,
    dir: &std::path::Path,
    start: Timestamp,
    clock: Clock,
) -> Result<(Machines, Option<PathBuf>), super::hostsim::SetupError> {
    let repository = (!fleet.repository.is_empty()).then(|| dir.join("repository"));
    if let Some(repo) = &repository {
        super::hostsim::build_repository(repo, &fleet.repository)?;
    }
    let now: crate::agent::installers::Now = Arc::new(move || clock.now());
    let mut machines = Machines::new();
    for host in &fleet.hosts {
        let namespace = host.namespace().to_string();
        let machine = super::hostsim::machine(
            host,
            &fleet.repository,
            &dir.join("roots"),
            start,
            now.clone(),
        )?;
        let state_dir = dir.join("state").join(&namespace).join(&host.name);
        machines.insert(
            (namespace, host.name.clone()),
            SimHost {
                host: host.clone(),
                machine,
                state_dir,
                state: MemoryFiles::default(),
            },
        );
    }
    Ok((machines, repository))
}

/// A client on the in-memory API whose successful writes are counted into `writes`.
pub fn counted_client(service: ApiService, writes: Arc<AgentWrites>) -> Client {
    Client::new(
        Counted {
            inner: service,
            writes,
        },
        "default",
    )
}

/// The in-memory API's service, counting the successful write requests through it.
#[derive(Clone)]
struct Counted {
    inner: ApiService,
    writes: Arc<AgentWrites>,
}

impl tower::Service<http::Request<kube::client::Body>> for Counted {
    type Response = http::Response<ResponseBody>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<http::Request<kube::client::Body>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> Self::Future {
        let write = request.method() != http::Method::GET;
        let writes = self.writes.clone();
        let response = self.inner.call(request);
        async move {
            let response = response.await?;
            if write && response.status().is_success() {
                writes.add();
            }
            Ok(response)
        }
        .boxed()
    }
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

/// Runs the agents of every online host and lifts the drain guards when their time comes, until
/// dropped; `client` counts their writes apart, `repository` is the package repository.
pub fn run(
    client: Client,
    machines: &Machines,
    repository: Option<PathBuf>,
    start: Timestamp,
    clock: Clock,
) -> BoxFuture<'static, ()> {
    let mut futures: Vec<BoxFuture<'static, ()>> = Vec::new();
    for ((namespace, name), sim) in machines {
        let host = &sim.host;
        let guard = if host
            .fault(super::fleet_file::hosts::HostFaultStep::Drain)
            .is_some()
        {
            None
        } else {
            host.drain_blocked_for.map(|d| start + signed(d.get()))
        };
        if let Some(at) = guard {
            futures.push(
                lift_guard(client.clone(), namespace.clone(), name.clone(), at, clock).boxed(),
            );
        }
        if host.defer_reboot > 0 {
            futures.push(
                honour_deferrals(
                    client.clone(),
                    namespace.clone(),
                    name.clone(),
                    host.defer_reboot,
                )
                .boxed(),
            );
        }
        if host.agent == AgentMode::Online {
            let mut config = AgentConfig::new(name.clone(), namespace.clone(), &sim.state_dir);
            config.node_name = host.node.then(|| name.clone());
            config.version = AGENT_VERSION.into();
            config.lease_duration = LEASE;
            config.renew_every = RENEW;
            config.package_repository = repository
                .clone()
                .map(crate::agent::package_fetch::PackageRepository::Dir);
            config.memory_state = Some(sim.state.clone());
            let gone_at = host.agent_offline_from.map(|d| start + signed(d.get()));
            futures.push(
                agent(
                    client.clone(),
                    config,
                    sim.machine.clone(),
                    host.timings.reboot.get(),
                    gone_at,
                    clock,
                )
                .boxed(),
            );
        }
    }
    async move {
        futures::future::join_all(futures).await;
        std::future::pending::<()>().await;
    }
    .boxed()
}

fn signed(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// One host's agent: run, dropped while the host reboots and started again after the boot,
/// dropped for good when it goes away.
async fn agent(
    client: Client,
    config: AgentConfig,
    machine: SimulatedHost,
    reboot: Duration,
    gone_at: Option<Timestamp>,
    clock: Clock,
) {
    let gone = async {
        match gone_at {
            Some(at) => tokio::time::sleep(clock.until(at)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(gone);
    let mut boots = machine.boots();
    loop {
        // Boxed: inline, the loop's future would keep room for it twice (the local and the
        // select's copy), about 6 KiB more per simulated host.
        let run = Box::pin(crate::agent::run::run(
            client.clone(),
            config.clone(),
            machine.machine(),
            clock,
            CancellationToken::new(),
        ));
        tokio::select! {
            biased;
            () = &mut gone => return,
            changed = boots.changed() => {
                if changed.is_err() {
                    return;
                }
                // The machine is down: nothing runs until it is up again.
                tokio::select! {
                    () = &mut gone => return,
                    () = tokio::time::sleep(reboot) => {}
                }
            }
            result = run => {
                if let Err(error) = result {
                    tracing::warn!(host = %config.host, %error, "the simulated agent stopped; starting it again");
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        }
    }
}

async fn lift_guard(client: Client, namespace: String, host: String, at: Timestamp, clock: Clock) {
    tokio::time::sleep(clock.until(at)).await;
    let api = Api::<PodDisruptionBudget>::namespaced(client, &namespace);
    let _ = api
        .delete(&guard_name(&host), &DeleteParams::default())
        .await;
}

/// Drops the Host's defer-reboot annotation once one of its tasks deferred `wanted` times.
async fn honour_deferrals(client: Client, namespace: String, host: String, wanted: u32) {
    let tasks = Api::<UpgradeTask>::namespaced(client.clone(), &namespace);
    let config =
        watcher::Config::default().labels(&format!("{LABEL_TARGET}={}", label_value(&host)));
    let mut events = watcher(tasks, config)
        .default_backoff()
        .touched_objects()
        .boxed();
    while let Some(event) = events.next().await {
        let Ok(task) = event else { continue };
        let used = task
            .status
            .as_ref()
            .and_then(|s| s.deferrals.as_ref())
            .map_or(0, |d| d.used);
        if used < wanted {
            continue;
        }
        let api: Api<Host> = Api::namespaced(client.clone(), &namespace);
        let Ok(found) = api.get(&host).await else {
            continue;
        };
        if !found.annotations().contains_key(DEFER_REBOOT_ANNOTATION) {
            return;
        }
        let patch = json!({"metadata": {"annotations": {DEFER_REBOOT_ANNOTATION: null}}});
        if api
            .patch(&host, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .is_ok()
        {
            return;
        }
    }
}
