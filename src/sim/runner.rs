//! The simulation runner: the real controllers against the in-memory API and the simulated
//! fleet, on a virtual clock (tokio's paused time on a current-thread runtime), until every task
//! has ended or the horizon passes. The same input always gives the same output.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::agents::{self, AgentWrites, Machines};
use super::apiserver::ApiServer;
use super::driver::FleetDriver;
use super::fleet::FleetModel;
use super::fleet_file::{DEFAULT_NAMESPACE, Fleet};
use super::report::{Report, ResourceReport, TaskReport, WindowReport};
use crate::api::{self, Device};
use crate::clock::Clock;
use crate::controller::connections::Connections;
use crate::controller::kit::context::Settings;
use crate::controller::kit::metrics::Metrics;
use crate::controller::operator::{self, Parts};
use crate::drivers::DeviceDriver;
use crate::images::repository::StaticRepository;

/// How often the runner looks whether everything ended (virtual time).
const CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The fleet: images, devices, hosts and the package repository.
    pub fleet: Fleet,
    /// The manifests to apply, in order (already checked).
    pub manifests: Vec<Value>,
    /// When the virtual clock starts.
    pub start: Timestamp,
    /// How long the simulation may run at most.
    pub horizon: SignedDuration,
}

/// How to run it.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Serve the in-memory API over HTTP here while the simulation runs, and after it until the
    /// returned future is dropped.
    pub serve: Option<SocketAddr>,
    /// With `serve`: how many virtual seconds pass per real second, so a watcher can follow.
    pub speed: f64,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// A manifest could not be applied to the in-memory API.
    #[error("applying {object}: {source}")]
    Apply {
        /// The object.
        object: String,
        /// The API's answer.
        source: kube::Error,
    },
    /// A manifest's `simulate.upkeep.dev/apply-after` is not a duration.
    #[error(transparent)]
    Later(#[from] super::later::BadDelay),
    /// The runtime or the HTTP listener could not start.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A fleet host's simulated machine could not be set up.
    #[error(transparent)]
    Hosts(#[from] super::hostsim::SetupError),
}

/// What a simulated host was asked to do over a run (for crash tests: an install or a reboot
/// never runs twice for one task).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostOperations {
    /// Package installs started (of updates, or of a job's maintenance packages); an attempt
    /// refused at once, as for a package manager lock another job holds, is none.
    pub installs: usize,
    /// Reboots started.
    pub reboots: usize,
    /// Pre or post actions started and cut off before their end (their agent stopped).
    pub actions_cut_off: usize,
}

/// Drivers onto the simulated fleet.
struct FleetConnections {
    model: Arc<FleetModel>,
    clock: Clock,
}

impl Connections for FleetConnections {
    fn driver<'a>(&'a self, device: &'a Device) -> BoxFuture<'a, Arc<dyn DeviceDriver>> {
        let key = (
            device.metadata.namespace.clone().unwrap_or_default(),
            device.metadata.name.clone().unwrap_or_default(),
        );
        futures::future::ready(
            Arc::new(FleetDriver::new(self.model.clone(), key, self.clock))
                as Arc<dyn DeviceDriver>,
        )
        .boxed()
    }
}

/// Runs the scenario to its end on a fresh virtual-clock runtime.
/// It runs on a thread of its own with an 8 MiB stack, as a main thread has: the operator's
/// future is deep, and a caller's thread (a test's has 2 MiB) may be too small for it.
pub fn simulate(scenario: Scenario, options: Options) -> Result<Report, SimulateError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("upkeep-simulate".into())
            .stack_size(8 << 20)
            .spawn_scoped(scope, move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()?;
                runtime.block_on(run(scenario, options))
            })?;
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A seeded simulation: the in-memory API holding the fleet's Devices and the manifests, the
/// simulated devices, and the clock. Operators started on it share that state, so a test can
/// stop one at any moment and start another, as after a crash.
pub struct World {
    /// The in-memory API.
    pub server: ApiServer,
    /// The simulated devices.
    pub model: Arc<FleetModel>,
    /// The virtual clock.
    pub clock: Clock,
    /// The simulated hosts' machines.
    pub machines: Machines,
    /// The writes the simulated agents made (left out of the report's `apiWrites`).
    pub agent_writes: Arc<AgentWrites>,
    /// The fleet's package repository as the agents find it.
    package_repository: Option<std::path::PathBuf>,
    /// When the simulation started.
    start: Timestamp,
    /// The hosts' files (state directories, roots, repository), removed with the world.
    _files: tempfile::TempDir,
    repository: Arc<StaticRepository>,
    /// Manifests still to apply (`simulate.upkeep.dev/apply-after`), earliest first.
    later: std::sync::Mutex<Vec<(Timestamp, Value)>>,
}

impl World {
    /// Seeds a world for `scenario`; must run on a runtime with paused time.
    pub async fn new(scenario: &Scenario) -> Result<Self, SimulateError> {
        let clock = Clock::starting_at(scenario.start);
        // Watchers here read events as they happen; keeping the last 2,000 events per kind is
        // plenty to resume (one that falls behind relists), and keeps old versions of objects
        // from filling memory at fleet scale.
        let server = ApiServer::builder(move || clock.now())
            .crds(api::crds())
            .event_log_capacity(2_000)
            .build();
        seed(&server.client(), scenario).await?;
        server.reset_write_counts();
        let mut later = Vec::new();
        for manifest in &scenario.manifests {
            if let Some(at) = super::later::apply_at(manifest, scenario.start)? {
                later.push((at, manifest.clone()));
            }
        }
        later.sort_by_key(|(at, _)| *at);
        let files = tempfile::Builder::new()
            .prefix("upkeep-simulate-")
            .tempdir()?;
        let (machines, package_repository) =
            agents::machines(&scenario.fleet, files.path(), scenario.start, clock)?;
        Ok(Self {
            server,
            model: Arc::new(FleetModel::new(&scenario.fleet)),
            clock,
            machines,
            agent_writes: Arc::default(),
            package_repository,
            start: scenario.start,
            _files: files,
            repository: Arc::new(scenario.fleet.repository()),
            later: std::sync::Mutex::new(later),
        })
    }

    /// A fresh operator (own client, caches and expectations), running until `stop`. Boxed: the
    /// operator's future is too large for a thread's stack.
    pub fn operator(&self, stop: CancellationToken) -> BoxFuture<'static, ()> {
        self.operator_with_metrics(stop, Metrics::new())
    }

    /// [`World::operator`], counting into `metrics` (to serve its `/metrics`).
    pub fn operator_with_metrics(
        &self,
        stop: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> BoxFuture<'static, ()> {
        let parts = Parts {
            client: self.server.client(),
            clock: self.clock,
            repository: self.repository.clone(),
            connections: Arc::new(FleetConnections {
                model: self.model.clone(),
                clock: self.clock,
            }),
            settings: Settings {
                // Inventory is not what a simulation is about: read facts daily.
                device_refresh: Duration::from_secs(24 * 3600),
                ..Settings::default()
            },
            instance: "upkeep-simulate".into(),
            namespace: None,
            metrics,
        };
        operator::run(parts, stop).boxed()
    }

    /// The simulated Job controller that completes hook Jobs, until dropped.
    pub fn jobs(&self) -> BoxFuture<'static, ()> {
        super::jobs::run(self.server.client(), self.model.clone(), self.clock).boxed()
    }

    /// The agents of the fleet's online hosts (the real agent loop on each simulated machine),
    /// until dropped; dropped and run again, they resume from their state directories, as
    /// after a crash.
    pub fn agents(&self) -> BoxFuture<'static, ()> {
        agents::run(
            agents::counted_client(self.server.service(), self.agent_writes.clone()),
            &self.machines,
            self.package_repository.clone(),
            self.start,
            self.clock,
        )
    }

    /// The installs and reboots each simulated host made so far, by host name (a crash test
    /// checks that none ran twice for one task): an install counts when it changed the
    /// machine (a rerun of pins already in place does not), a maintenance package when the
    /// installer installed or uninstalled it, a reboot when the host went down.
    pub fn host_operations(&self) -> BTreeMap<String, HostOperations> {
        self.machines
            .iter()
            .map(|((_, name), sim)| {
                (
                    name.clone(),
                    HostOperations {
                        installs: sim.machine.installs(),
                        reboots: sim.machine.reboots(),
                        actions_cut_off: sim.machine.actions_cut_off(),
                    },
                )
            })
            .collect()
    }

    /// Whether every manifest was applied, every FirmwareUpgrade, DevicePatch and PatchJob
    /// settled and every task ended.
    pub fn finished(&self) -> bool {
        self.next_later().is_none() && finished(&self.server)
    }

    /// When the next deferred manifest is due.
    fn next_later(&self) -> Option<Timestamp> {
        let later = self.later.lock().unwrap_or_else(|p| p.into_inner());
        later.first().map(|(at, _)| *at)
    }

    /// Applies the deferred manifests that are due.
    pub async fn apply_due(&self) -> Result<(), SimulateError> {
        let due: Vec<Value> = {
            let mut later = self.later.lock().unwrap_or_else(|p| p.into_inner());
            let now = self.clock.now();
            let split = later.partition_point(|(at, _)| *at <= now);
            later.drain(..split).map(|(_, m)| m).collect()
        };
        let client = self.server.client();
        for manifest in &due {
            apply(&client, manifest).await?;
        }
        Ok(())
    }

    /// The report of the run so far, which started at `start` and may go on until `end_at`.
    pub fn report(&self, start: Timestamp, end_at: Timestamp) -> Report {
        let mut tasks = Vec::new();
        self.server
            .each("UpgradeTask", |t| tasks.extend(TaskReport::of(t)));
        let mut resources = Vec::new();
        self.server.each("FirmwareUpgrade", |u| {
            resources.extend(ResourceReport::of(u))
        });
        self.server.each("DevicePatch", |p| {
            resources.extend(ResourceReport::of_device_patch(p))
        });
        self.server.each("PatchJob", |j| {
            resources.extend(ResourceReport::of_patch_job(j))
        });
        let end = if self.finished() {
            tasks
                .iter()
                .filter_map(|t| t.finished_at.as_deref()?.parse::<Timestamp>().ok())
                .max()
                .unwrap_or(start)
        } else {
            self.clock.now().min(end_at)
        };
        let mut windows = Vec::new();
        self.server.each("MaintenanceWindow", |w| {
            windows.extend(WindowReport::of(w, start, end))
        });
        Report::new(
            start,
            end,
            resources,
            tasks,
            self.server
                .write_counts()
                .total()
                .saturating_sub(self.agent_writes.get()),
        )
        .with_windows(windows)
    }
}

/// The simulation itself, on the current runtime (which must have paused time).
pub async fn run(scenario: Scenario, options: Options) -> Result<Report, SimulateError> {
    let world = World::new(&scenario).await?;
    let http = match options.serve {
        Some(addr) => {
            // Served from a thread of its own, in real time, while the simulation runs paced.
            let http = world.server.serve_on_thread(addr)?;
            eprintln!(
                "serving the simulated API at {} (e.g. kubectl --server {} get ut -w)",
                http.url(),
                http.url()
            );
            Some(http)
        }
        None => None,
    };
    let end_at = scenario
        .start
        .checked_add(scenario.horizon)
        .unwrap_or(Timestamp::MAX);
    let pace = options.serve.map(|_| options.speed);
    world.run_until_finished(end_at, pace).await;
    let report = world.report(scenario.start, end_at);
    if let Some(http) = http {
        eprintln!(
            "simulation over; still serving {} until interrupted",
            http.url()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    Ok(report)
}

impl World {
    /// Runs an operator and the simulated Jobs until every task ended or `end_at` passed. With
    /// `pace`, the virtual clock runs at most that many seconds per real second.
    pub async fn run_until_finished(&self, end_at: Timestamp, pace: Option<f64>) {
        let token = CancellationToken::new();
        let operator = self.operator(token.clone());
        let jobs = self.jobs();
        let hosts = self.agents();
        let clock = self.clock;
        let watch = async {
            let mut seen = 0;
            loop {
                let step = match pace {
                    Some(speed) => {
                        // Block the runtime for a real moment, so a watcher can follow.
                        std::thread::sleep(Duration::from_secs_f64(1.0 / speed.max(1.0)));
                        Duration::from_secs(1)
                    }
                    None => CHECK_INTERVAL,
                };
                let due = self.next_later().map_or(step, |at| clock.until(at));
                tokio::time::sleep(
                    step.min(due)
                        .min(clock.until(end_at))
                        .max(Duration::from_millis(1)),
                )
                .await;
                if let Err(error) = self.apply_due().await {
                    eprintln!("warning: {error}");
                }
                // Nothing can have finished unless something was written since the last look.
                let version = self.server.resource_version();
                if clock.now() >= end_at || (version != seen && self.finished()) {
                    break;
                }
                seen = version;
            }
            token.cancel();
        };
        tokio::select! {
            biased;
            () = watch => {}
            () = operator => {}
            () = jobs => {}
            () = hosts => {}
        }
    }
}

/// Whether every FirmwareUpgrade, DevicePatch and PatchJob has settled: its status is current
/// and either it has a whole-resource code or all its tasks ended; and every task ended.
fn finished(server: &ApiServer) -> bool {
    let mut parents = server.snapshot("FirmwareUpgrade");
    parents.extend(server.snapshot("DevicePatch"));
    parents.extend(server.snapshot("PatchJob"));
    let settled = parents.iter().all(|u| {
        let current = u.pointer("/status/observedGeneration") == u.pointer("/metadata/generation");
        let code = u.pointer("/status/code").is_some_and(|c| !c.is_null());
        let summary = |field: &str| {
            u.pointer(&format!("/status/summary/{field}"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        current
            && (code
                || (summary("total") > 0 && summary("running") == 0 && summary("waiting") == 0))
    });
    if !settled {
        return false;
    }
    let mut ended = true;
    server.each("UpgradeTask", |t| {
        ended &= t.pointer("/status/terminal") == Some(&Value::Bool(true));
    });
    ended
}

/// Creates the fleet's Devices and the manifests' objects.
pub async fn seed(client: &Client, scenario: &Scenario) -> Result<(), SimulateError> {
    let devices = ApiResource::erase::<Device>(&());
    for device in &scenario.fleet.devices {
        let namespace = device.namespace();
        let mut object = json!({
            "apiVersion": api::API_VERSION,
            "kind": "Device",
            "metadata": { "name": device.name, "namespace": namespace, "labels": device.labels },
            "spec": { "driver": "upkeep", "address": format!("https://fleet.upkeep.invalid/devices/{namespace}/{}", device.name) },
        });
        if let Some(family) = device.family {
            object["spec"]["family"] = json!(family);
        }
        create(client, &devices, namespace, object).await?;
    }
    agents::seed(client, &scenario.fleet)
        .await
        .map_err(|source| SimulateError::Apply {
            object: "the fleet's hosts".into(),
            source,
        })?;
    for manifest in &scenario.manifests {
        if super::later::apply_at(manifest, scenario.start)?.is_none() {
            apply(client, manifest).await?;
        }
    }
    Ok(())
}

/// Creates a manifest's object (in `default` unless it names a namespace).
async fn apply(client: &Client, manifest: &Value) -> Result<(), SimulateError> {
    let Some(resource) = resource_of(manifest) else {
        return Ok(());
    };
    let namespace = manifest
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_NAMESPACE)
        .to_string();
    let mut object = manifest.clone();
    object["metadata"]["namespace"] = json!(namespace);
    create(client, &resource, &namespace, object).await
}

/// The API resource of a manifest the simulation applies; `None` for documents it leaves out
/// (Devices and Hosts come from the fleet file; kinds the simulation has no use for).
pub fn resource_of(manifest: &Value) -> Option<ApiResource> {
    let api_version = manifest.get("apiVersion").and_then(Value::as_str)?;
    let kind = manifest.get("kind").and_then(Value::as_str)?;
    if api_version == api::API_VERSION {
        return api::crds()
            .into_iter()
            .find(|crd| crd.spec.names.kind == kind && kind != "Device" && kind != "Host")
            .map(|crd| ApiResource {
                group: crd.spec.group.clone(),
                version: api::VERSION.into(),
                api_version: api::API_VERSION.into(),
                kind: kind.into(),
                plural: crd.spec.names.plural.clone(),
            });
    }
    match (api_version, kind) {
        ("v1", "Secret") => Some(ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&())),
        ("v1", "ConfigMap") => Some(ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(
            &(),
        )),
        _ => None,
    }
}

async fn create(
    client: &Client,
    resource: &ApiResource,
    namespace: &str,
    object: Value,
) -> Result<(), SimulateError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let dynamic: DynamicObject =
        serde_json::from_value(object).map_err(|e| SimulateError::Apply {
            object: format!("{}/{name}", resource.kind),
            source: kube::Error::SerdeError(e),
        })?;
    Api::<DynamicObject>::namespaced_with(client.clone(), namespace, resource)
        .create(&PostParams::default(), &dynamic)
        .await
        .map(|_| ())
        .map_err(|source| SimulateError::Apply {
            object: format!("{}/{namespace}/{name}", resource.kind),
            source,
        })
}
