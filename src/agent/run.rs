//! The agent loop (`upkeep agent`): registers the machine's Host (creating it when absent),
//! renews its Lease `upkeep-host-<name>`, watches its own tasks (UpgradeTasks labelled
//! `upkeep.dev/target=<host>` of parent kind PatchJob), drives each task that has work
//! (`engine::patch::agent::has_work`) through the engine on the [`Machine`] ([`Driver`]), and
//! keeps the Host's status current: agent version and boot id, OS, reboot signal, updates,
//! products and their bounded history. A pass reads the tasks from the watch; only a task with
//! work has its PatchJob read, and an Install / Uninstall task its Host (the products it acts
//! on, as its spec names them now).
//!
//! One watch per agent: its own Host is read once every `resync_every` (and again at once when
//! a status write finds it gone, to register it again), not watched. The Host's spec changes
//! rarely, a watch costs a connection and its buffers on every host of the fleet, and a
//! watch of its Host would wake the agent for each of its own writes and the operator's.
//!
//! What it writes, each with the field manager `upkeep-agent` by server-side apply: its tasks'
//! status (with compare-and-swap on the task: a write that loses is decided again from the task
//! as stored), the Host's status fields the agent owns (never `agent.online`, `conditions` or
//! `heldBy`, which the operator writes), and its Lease. Liveness is the Lease, renewed every
//! `renew_every`; the Host's status is written only when what it reports changed.
//!
//! Invariants: a kill at any moment (the future dropped, the process killed, the host rebooted)
//! loses nothing — the journal in the state directory resumes every task, and no install,
//! action or reboot runs twice for one task (see [`super::driver`]); a failure to reach the API
//! is retried, never fatal once the loop runs.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::driver::{DriveError, Driven, Driver, Hook, Saved, TaskStore};
use super::machine::Machine;
use super::state_dir::{MemoryFiles, StateDir, StateError};
use crate::api::host::{HostSpec, LEASE_LABEL, LEASE_PREFIX, UpdatesStatus};
use crate::api::upgrade_task::{LABEL_PARENT_KIND, LABEL_TARGET, ParentKind, UpgradeTaskStatus};
use crate::api::{Host, PatchJob, UpgradeTask};
use crate::clock::Clock;
use crate::controller::kit::metadata::metadata_opt;
use crate::controller::kit::naming::label_value;
use crate::controller::kit::watched::Watched;
use crate::engine::patch::agent;
use crate::engine::patch::state::HostTask;
use crate::engine::task_status::render;

/// The field manager of everything the agent writes.
pub const FIELD_MANAGER: &str = "upkeep-agent";

/// How soon a scan that failed (the package manager's lock held, a repository unreachable) is
/// tried again.
const FACTS_RETRY: Duration = Duration::from_secs(60);

/// How the agent runs.
#[derive(Clone)]
pub struct AgentConfig {
    /// The Host's name.
    pub host: String,
    /// The Host's namespace (where its tasks and Lease are).
    pub namespace: String,
    /// The Kubernetes Node this machine is, written into a Host the agent creates.
    pub node_name: Option<String>,
    /// The state directory (journals of tasks under way).
    pub state_dir: PathBuf,
    /// The version the agent reports.
    pub version: String,
    /// The Lease's `leaseDurationSeconds`.
    pub lease_duration: Duration,
    /// How often the Lease is renewed.
    pub renew_every: Duration,
    /// How often the facts (updates, reboot signal, products) are read again when no task runs.
    pub facts_every: Duration,
    /// How often the tasks are looked at again when nothing happens.
    pub resync_every: Duration,
    /// A hook that may stop the agent at a checkpoint (tests, simulation).
    pub hook: Option<Hook>,
    /// The package repository maintenance packages are fetched from (a directory or an
    /// http(s) base URL).
    pub package_repository: Option<super::package_fetch::PackageRepository>,
    /// A simulated machine's state: the journals and records kept in memory, not in
    /// `state_dir` (its crashes and reboots drop the agent, never the machine's state).
    pub memory_state: Option<MemoryFiles>,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("host", &self.host)
            .field("namespace", &self.namespace)
            .field("node_name", &self.node_name)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl AgentConfig {
    /// The agent of Host `host` in `namespace`, keeping its journals in `state_dir`, with the
    /// default intervals: a 40 s Lease renewed every 10 s, facts every 30 min, a resync every
    /// minute.
    pub fn new(
        host: impl Into<String>,
        namespace: impl Into<String>,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            host: host.into(),
            namespace: namespace.into(),
            node_name: None,
            state_dir: state_dir.into(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            lease_duration: Duration::from_secs(40),
            renew_every: Duration::from_secs(10),
            facts_every: Duration::from_secs(30 * 60),
            resync_every: Duration::from_secs(60),
            hook: None,
            package_repository: None,
            memory_state: None,
        }
    }
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The state directory cannot be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// The Host could not be registered.
    #[error(
        "registering Host {namespace}/{host}: {source}; check the agent's credentials (it must create and read its Host)"
    )]
    Register {
        /// The Host's namespace.
        namespace: String,
        /// The Host.
        host: String,
        /// The API error.
        source: kube::Error,
    },
}

/// Runs the agent of `config.host` on `machine` until `stop` is cancelled (or a hook stops it,
/// as a kill would).
///
/// Not an `async fn`: the agent is built before the future, which then holds it once. (An
/// `async fn` keeps the room of its arguments for its whole life, beside the agent they are
/// moved into: at fleet scale, on every simulated host.)
pub fn run(
    client: Client,
    config: AgentConfig,
    machine: Machine,
    clock: Clock,
    stop: CancellationToken,
) -> impl Future<Output = Result<(), AgentError>> + Send + 'static {
    let span = tracing::info_span!("run", host = %config.host);
    let state = match &config.memory_state {
        None => StateDir::open(&config.state_dir),
        Some(files) => Ok(StateDir::in_memory(&config.state_dir, files.clone())),
    };
    match state {
        Ok(state) => {
            let mut driver = Driver::new(machine, state, clock);
            driver.hook = config.hook.clone();
            driver.repository = config.package_repository.clone();
            let agent = Agent {
                client,
                config,
                driver,
                clock,
            };
            agent.serve(stop).instrument(span).left_future()
        }
        Err(error) => futures::future::ready(Err(error.into())).right_future(),
    }
}

struct Agent {
    client: Client,
    config: AgentConfig,
    driver: Driver,
    clock: Clock,
}

impl Agent {
    /// Registers the Host, then renews the Lease and drives the tasks until `stop`.
    async fn serve(self, stop: CancellationToken) -> Result<(), AgentError> {
        let mut host = Box::pin(self.register()).await?;
        drop_managed_fields(&mut host);
        tokio::select! {
            () = stop.cancelled() => {}
            () = self.renew_lease_forever() => {}
            // Boxed, so that the future keeps the Host once (in the loop), not also here.
            () = self.tasks_forever(Box::new(host)) => {}
        }
        Ok(())
    }

    fn hosts(&self) -> Api<Host> {
        Api::namespaced(self.client.clone(), &self.config.namespace)
    }

    /// Creates the Host when it does not exist; the Host as read or created.
    async fn register(&self) -> Result<Host, AgentError> {
        let error = |source| AgentError::Register {
            namespace: self.config.namespace.clone(),
            host: self.config.host.clone(),
            source,
        };
        let hosts = self.hosts();
        if let Some(found) = hosts.get_opt(&self.config.host).await.map_err(error)? {
            return Ok(found);
        }
        let host = Host {
            metadata: ObjectMeta {
                name: Some(self.config.host.clone()),
                ..Default::default()
            },
            spec: HostSpec {
                node_name: self.config.node_name.clone(),
                ..Default::default()
            },
            status: None,
        };
        match hosts.create(&PostParams::default(), &host).await {
            Ok(created) => {
                tracing::info!("created the Host");
                Ok(created)
            }
            // Created meanwhile (by another run of this agent, or a person): read it.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                hosts.get(&self.config.host).await.map_err(error)
            }
            Err(e) => Err(error(e)),
        }
    }

    /// Whether the Host is no longer `known` as the agent uses it: another object (deleted, and
    /// maybe created again), or its spec changed (a new generation). A metadata read of two
    /// fields, so the resync of an unchanged Host decodes nothing else; true when it cannot be
    /// read (the full read then says why).
    async fn host_changed(&self, known: &Host) -> bool {
        #[derive(serde::Deserialize)]
        struct Identity {
            metadata: IdentityMeta,
        }
        #[derive(serde::Deserialize, PartialEq)]
        struct IdentityMeta {
            uid: Option<String>,
            generation: Option<i64>,
        }
        let read = metadata_opt::<Host, Identity>(
            &self.client,
            Some(&self.config.namespace),
            &self.config.host,
        )
        .await;
        !matches!(read, Ok(Some(Identity { metadata })) if metadata == IdentityMeta {
            uid: known.metadata.uid.clone(),
            generation: known.metadata.generation,
        })
    }

    /// The Host as it is now, registered again when it was deleted; `None` when it cannot be
    /// read (the caller keeps what it had, and tries again with the next resync).
    async fn read_host(&self) -> Option<Host> {
        let read = match self.hosts().get_opt(&self.config.host).await {
            Ok(Some(host)) => Ok(host),
            Ok(None) => {
                tracing::info!("the Host was deleted; registering it again");
                self.register().await.map_err(|e| e.to_string())
            }
            Err(error) => Err(error.to_string()),
        };
        match read {
            Ok(mut host) => {
                drop_managed_fields(&mut host);
                Some(host)
            }
            Err(error) => {
                tracing::warn!(%error, "reading the Host failed; trying again with the next resync");
                None
            }
        }
    }

    /// Renews the Lease every `renew_every` with a server-side apply, which creates it when
    /// missing (deleted, say) and takes its fields back. (Merge patches after a first apply
    /// were tried and measured slower: the hosts bench took about 15 % more CPU.)
    async fn renew_lease_forever(&self) {
        // Its answer is read without `managedFields` (the agent never looks at it).
        let leases: Api<Watched<Lease>> =
            Api::namespaced(self.client.clone(), &self.config.namespace);
        let name = format!("{LEASE_PREFIX}{}", self.config.host);
        let seconds = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        loop {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some([(LEASE_LABEL.to_string(), self.config.host.clone())].into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.host.clone()),
                    lease_duration_seconds: Some(seconds),
                    renew_time: Some(MicroTime(self.clock.now())),
                    ..Default::default()
                }),
            };
            // Boxed, here and for each step of the task loop: the request's state is held only
            // while it runs, not for the agent's whole life (at fleet scale, on every host).
            if let Err(error) = Box::pin(leases.patch(&name, &params, &Patch::Apply(&lease))).await
            {
                tracing::warn!(%error, "renewing the Lease failed; trying again");
            }
            tokio::time::sleep(self.config.renew_every).await;
        }
    }

    /// Watches the tasks and drives them, `host` being the Host as registered.
    async fn tasks_forever(&self, host: Box<Host>) {
        let tasks: Api<Watched<UpgradeTask>> =
            Api::namespaced(self.client.clone(), &self.config.namespace);
        let selector = format!(
            "{LABEL_TARGET}={},{LABEL_PARENT_KIND}={}",
            label_value(&self.config.host),
            ParentKind::PatchJob.as_str()
        );
        // The watch's copies are kept without `metadata.managedFields` (skipped unparsed): the
        // agent never reads field ownership (its writes are server-side applies), and they are
        // most of an object. A task that cannot be read is kept as such and not driven.
        // The store is kept from the watch's events here, not by `reflector::reflector`: its
        // stream would keep one more event and its own state in every agent, all its life.
        let (store, mut writer) = reflector::store();
        let mut feed = watcher(tasks, watcher::Config::default().labels(&selector))
            .default_backoff()
            .boxed();
        let mut host = Some(*host);
        let mut reporter = Reporter::default();
        let mut forgotten = HashSet::new();
        let mut facts_due = self.clock.now();
        let mut host_due = self.clock.now() + signed(self.config.resync_every);
        loop {
            if self.clock.now() >= facts_due {
                let again = if Box::pin(self.refresh_facts()).await {
                    self.config.facts_every
                } else {
                    FACTS_RETRY
                };
                facts_due = self.clock.now() + signed(again);
            }
            if self.clock.now() >= host_due {
                let changed = match &host {
                    Some(known) => Box::pin(self.host_changed(known)).await,
                    None => true,
                };
                if changed {
                    host = Box::pin(self.read_host()).await.or(host);
                }
                host_due = self.clock.now() + signed(self.config.resync_every);
            }
            let Some(wake) = Box::pin(self.pass(&store, &mut forgotten)).await else {
                // A hook stopped the agent as a kill would: nothing more happens.
                return;
            };
            if let Some(known) = &host
                && Box::pin(reporter.report(self, known)).await == Reported::HostGone
            {
                // Deleted since it was read: read (and register) it again now.
                host = Box::pin(self.read_host()).await;
                host_due = self.clock.now() + signed(self.config.resync_every);
            }
            let wake = wake
                .unwrap_or(self.clock.now() + signed(self.config.resync_every))
                .min(facts_due)
                .min(host_due);
            let sleep = tokio::time::sleep(self.clock.until(wake));
            tokio::pin!(sleep);
            tokio::select! {
                () = &mut sleep => {}
                event = feed.next() => match event {
                    Some(Ok(event)) => writer.apply_watcher_event(&event),
                    Some(Err(error)) => {
                        tracing::warn!(%error, "watching the tasks failed; retrying");
                    }
                    None => {}
                },
            }
        }
    }

    /// Drives every task of the host that has work (`engine::patch::agent::has_work`) once: the
    /// earliest instant one wants to be stepped again (inner `None`: none does), or `None` when
    /// a hook stopped the agent. `forgotten` holds the ended tasks whose journals are removed
    /// (once each, not on every pass), among the tasks the watch still shows.
    async fn pass(
        &self,
        store: &Store<Watched<UpgradeTask>>,
        forgotten: &mut HashSet<String>,
    ) -> Option<Option<Timestamp>> {
        let mut tasks = store.state();
        tasks.sort_by_key(|t| t.name_any());
        let mut wake: Option<Timestamp> = None;
        let mut shown = HashSet::new();
        // A task that cannot be read is the operator's to report (its reconcile says why).
        let readable = tasks.iter().filter_map(|t| t.0.as_ref().ok());
        for task in readable.filter(|t| t.spec.target == self.config.host) {
            let key = format!(
                "{}/{}/{}",
                task.namespace().unwrap_or_default(),
                task.name_any(),
                task.uid().unwrap_or_default()
            );
            let ended = task.status.as_ref().is_some_and(|s| s.terminal);
            if ended {
                if !forgotten.contains(&key) {
                    match self.driver.state.forget(&key) {
                        Ok(()) => {
                            forgotten.insert(key.clone());
                        }
                        Err(error) => {
                            tracing::warn!(%error, "removing an ended task's journal failed");
                        }
                    }
                }
                shown.insert(key);
                continue;
            }
            if !has_work(task) {
                continue;
            }
            let next = match self.drive(task, &key).await {
                Ok(Driven::WakeAt(at)) => Some(at),
                Ok(Driven::Halted) => return None,
                Ok(Driven::Terminal) => {
                    // The updates and the reboot signal changed: read them again (a failed
                    // scan is tried again with the next resync).
                    self.refresh_facts().await;
                    None
                }
                Ok(Driven::Idle | Driven::Gone) => None,
                Err(error) => {
                    tracing::warn!(task = %task.name_any(), %error, "driving the task failed; trying again");
                    Some(self.clock.now() + signed(Duration::from_secs(30)))
                }
            };
            wake = match (wake, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        forgotten.retain(|key| shown.contains(key));
        Some(wake)
    }

    async fn drive(&self, task: &UpgradeTask, key: &str) -> Result<Driven, DriveError> {
        let namespace = task.namespace().unwrap_or_default();
        let jobs: Api<PatchJob> = Api::namespaced(self.client.clone(), &namespace);
        let Some(job) = jobs.get_opt(&task.spec.parent).await.map_err(|e| {
            DriveError::Store(format!("reading PatchJob {}: {e}", task.spec.parent))
        })?
        else {
            return Ok(Driven::Gone);
        };
        if job.spec.operation != crate::api::patch_job::Operation::Patch {
            // Install / Uninstall act on the Host's products as its spec names them now.
            let host = self.hosts().get(&self.config.host).await.map_err(|e| {
                DriveError::Store(format!("reading Host {}: {e}", self.config.host))
            })?;
            if let Ok(mut products) = self.driver.products.lock() {
                *products = host.spec.products;
            }
        }
        let mut store = KubeTaskStore {
            api: Api::namespaced(self.client.clone(), &namespace),
            name: task.name_any(),
            seen: Some(task.clone()),
            current: None,
            clock: self.clock,
        };
        self.driver.drive(key, &job.spec, &mut store).await
    }

    /// Scans the package manager and reads the reboot signal again; whether the scan worked.
    async fn refresh_facts(&self) -> bool {
        let Some(pm) = &self.driver.machine.packages else {
            return true;
        };
        let updates = pm.refresh_and_scan().await;
        let reboot = pm.reboot_required().await;
        let now = self.clock.now();
        let scanned = updates.is_ok();
        if let Ok(mut learnt) = self.driver.learnt.lock() {
            match updates {
                Ok(updates) => learnt.updates = Some((updates, now)),
                Err(error) => {
                    tracing::warn!(%error, "listing the updates failed; trying again in a minute");
                }
            }
            learnt.reboot = Some(reboot);
        }
        scanned
    }
}

/// Whether the engine has work for `task` as the watch saw it: not for one the controller has
/// not written yet, nor for one waiting for its start grant; one whose status cannot be read
/// is driven (the driver reports why).
fn has_work(task: &UpgradeTask) -> bool {
    task.status
        .as_ref()
        .filter(|s| s.code.is_some())
        .is_some_and(|status| HostTask::from_status(status).map_or(true, |t| agent::has_work(&t)))
}

/// Clears what a watched object says of its fields' managers.
fn drop_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

fn signed(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// Writes the Host's status when what it reports changed, or the Host is another one (deleted
/// and registered again).
#[derive(Default)]
struct Reporter {
    /// The uid of the Host last written and what was written, as its JSON text (kept by every
    /// agent: the parsed value took about 2.7 KiB of heap, its text a fraction of that).
    last: Option<(String, String)>,
}

/// What a report found.
#[derive(Debug, PartialEq, Eq)]
enum Reported {
    /// Written, unchanged, or failed for a reason a later report may not have.
    Done,
    /// The Host does not exist (it was deleted): it must be registered again.
    HostGone,
}

impl Reporter {
    /// Reports what changed; `host` is the Host as the agent last read it (its products, its
    /// generation).
    async fn report(&mut self, agent: &Agent, host: &Host) -> Reported {
        let hosts = agent.hosts();
        let machine = &agent.driver.machine;
        let os = match machine.facts.os() {
            Ok(os) => os,
            Err(error) => {
                tracing::warn!(%error, "the OS cannot be read");
                Default::default()
            }
        };
        let boot_id = machine.facts.boot_id().unwrap_or_default();
        let learnt = agent
            .driver
            .learnt
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let (reboot, by) = super::driver::reboot_of(&learnt);
        let updates = learnt.updates.as_ref().map(|(list, at)| UpdatesStatus {
            available: u32::try_from(list.len()).unwrap_or(u32::MAX),
            security: u32::try_from(list.iter().filter(|u| u.security).count()).unwrap_or(u32::MAX),
            checked_at: Some(Time(*at)),
        });
        let products = machine.facts.products(&host.spec.products);
        let history = machine.facts.history(&host.spec.products);
        let mut status = json!({
            "agent": {"version": agent.config.version, "bootId": boot_id},
            "os": os,
            "rebootRequired": reboot,
            "rebootRequiredBy": by,
            "products": products,
            "history": history,
        });
        if let Some(updates) = updates {
            status["updates"] = json!(updates);
        }
        if let Some(generation) = host.metadata.generation {
            status["observedGeneration"] = json!(generation);
        }
        let uid = host.uid().unwrap_or_default();
        let text = status.to_string();
        if self
            .last
            .as_ref()
            .is_some_and(|(was, last)| *was == uid && *last == text)
        {
            return Reported::Done;
        }
        let body = json!({
            "apiVersion": "upkeep.dev/v1alpha1",
            "kind": "Host",
            "metadata": {"name": agent.config.host},
            "status": status,
        });
        match hosts
            .patch_status(
                &agent.config.host,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => self.last = Some((uid, text)),
            Err(kube::Error::Api(s)) if s.code == 404 => return Reported::HostGone,
            Err(error) => tracing::warn!(%error, "writing the Host's status failed"),
        }
        Reported::Done
    }
}

/// A task kept in its UpgradeTask's status.
struct KubeTaskStore {
    api: Api<UpgradeTask>,
    name: String,
    /// The task as the watch delivered it: the first load's answer (a write from a stale copy
    /// loses its compare-and-swap, and the next load reads the task).
    seen: Option<UpgradeTask>,
    current: Option<UpgradeTask>,
    clock: Clock,
}

impl TaskStore for KubeTaskStore {
    fn load(&mut self) -> futures::future::BoxFuture<'_, Result<Option<HostTask>, DriveError>> {
        Box::pin(async move {
            let task = match self.seen.take() {
                Some(seen) => Some(seen),
                None => self.api.get_opt(&self.name).await.map_err(|e| {
                    DriveError::Store(format!("reading UpgradeTask {}: {e}", self.name))
                })?,
            };
            let Some(task) = task else {
                self.current = None;
                return Ok(None);
            };
            // A task the controller has not written yet is not the agent's to start.
            let state = match task.status.as_ref().filter(|s| s.code.is_some()) {
                None => None,
                Some(status) => Some(HostTask::from_status(status).map_err(|e| {
                    DriveError::Store(format!(
                        "the status of UpgradeTask {} cannot be read: {e}",
                        self.name
                    ))
                })?),
            };
            self.current = Some(task);
            Ok(state)
        })
    }

    fn save<'a>(
        &'a mut self,
        task: &'a HostTask,
    ) -> futures::future::BoxFuture<'a, Result<Saved, DriveError>> {
        Box::pin(async move {
            let Some(current) = &self.current else {
                return Ok(Saved::Lost);
            };
            let status: UpgradeTaskStatus = render(
                task,
                current.status.as_ref(),
                current.metadata.generation,
                self.clock.now(),
            );
            let body = json!({
                "apiVersion": "upkeep.dev/v1alpha1",
                "kind": "UpgradeTask",
                "metadata": {"name": self.name, "resourceVersion": current.resource_version()},
                "status": status,
            });
            match self
                .api
                .patch_status(
                    &self.name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await
            {
                Ok(updated) => {
                    tracing::info!(code = %task.code, message = %task.message, "task status written");
                    self.current = Some(updated);
                    Ok(Saved::Done)
                }
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(Saved::Lost),
                Err(e) => Err(DriveError::Store(format!(
                    "writing the status of UpgradeTask {}: {e}",
                    self.name
                ))),
            }
        })
    }
}
