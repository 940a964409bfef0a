//! What every reconcile shares: the API client, the clock, stores of the kinds it reads, the
//! device connections, hooks, events, metrics and the rollout's expectations.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};

use super::events::Events;
use super::index::TaskIndex;
use super::metrics::Metrics;
use super::watched::Watched;
use crate::api::codes::{DevicePatchCode, FirmwareCode};
use k8s_openapi::api::coordination::v1::Lease;

use crate::api::{Device, DevicePatch, FirmwareUpgrade, Host, MaintenanceWindow, PatchJob};
use crate::clock::Clock;
use crate::controller::connections::Connections;
use crate::controller::hooks::JobHooks;
use crate::engine::patch::HostCode;
use crate::engine::rollout::RolloutCode;
use crate::images::repository::ImageRepository;

/// Tunables of the controllers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How often a Device's facts are read again.
    pub device_refresh: Duration,
    /// How many Devices are read at once (at least 1). Without a bound, an operator that starts
    /// with 10,000 Devices, or whose refreshes fall due together, opens a connection to each at
    /// the same moment and holds every reconcile's state in memory until all have answered.
    pub device_concurrency: u16,
    /// How soon to retry after a lost compare-and-swap or an API error.
    pub retry: Duration,
    /// The least time between two rounds of one PatchJob (see [`super::pacing`]).
    pub patch_job_round_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            device_refresh: Duration::from_secs(600),
            device_concurrency: 64,
            retry: Duration::from_secs(5),
            patch_job_round_every: Duration::from_secs(1),
        }
    }
}

/// Read-only caches of the kinds the reconciles look up. Objects that cannot be read are kept
/// as such and skipped by lookups, so one malformed object never stops a watch.
#[derive(Clone)]
pub struct Stores {
    /// FirmwareUpgrades.
    pub upgrades: Store<Watched<FirmwareUpgrade>>,
    /// Devices.
    pub devices: Store<Watched<Device>>,
    /// MaintenanceWindows.
    pub windows: Store<Watched<MaintenanceWindow>>,
    /// DevicePatches.
    pub device_patches: Store<Watched<DevicePatch>>,
    /// PatchJobs.
    pub patch_jobs: Store<Watched<PatchJob>>,
    /// Hosts.
    pub hosts: Store<Watched<Host>>,
    /// The Leases of host agents (labelled `upkeep.dev/host`).
    pub leases: Store<Watched<Lease>>,
    /// UpgradeTasks by parent.
    pub tasks: TaskIndex,
}

/// A readable object of a guarded store, shared with the store (not copied).
#[derive(Clone, Debug)]
pub struct Cached<K>(Arc<Watched<K>>);

impl<K> std::ops::Deref for Cached<K> {
    type Target = K;

    fn deref(&self) -> &K {
        match &self.0.0 {
            Ok(object) => object,
            // `lookup` hands out readable objects only.
            Err(_) => unreachable!("a Cached object is readable"),
        }
    }
}

/// The readable object `namespace/name` of a guarded store.
pub fn lookup<K>(store: &Store<Watched<K>>, namespace: &str, name: &str) -> Option<Cached<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    let guard = store.get(&ObjectRef::new(name).within(namespace))?;
    guard.0.is_ok().then_some(Cached(guard))
}

/// The readable objects of a namespace in a guarded store.
pub fn in_namespace<K>(store: &Store<Watched<K>>, namespace: &str) -> Vec<Arc<Watched<K>>>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    store.state_filter(|g| {
        g.0.as_ref()
            .is_ok_and(|k| k.meta().namespace.as_deref() == Some(namespace))
    })
}

/// Rollout decisions written but perhaps not yet seen in the task cache: a task that left the
/// queue is counted as executing (or ended) until the cache shows it, so a second reconcile on a
/// stale cache cannot grant more than `maxConcurrent`.
#[derive(Debug)]
pub struct Expectations<C>(Mutex<HashMap<String, HashMap<String, C>>>);

impl<C> Default for Expectations<C> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<C: RolloutCode> Expectations<C> {
    /// Records that task `namespace/name` was moved to `code`.
    pub fn expect(&self, namespace: &str, name: &str, code: C) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(namespace.to_string())
            .or_default()
            .insert(name.to_string(), code);
    }

    /// The code to count for a task whose cache shows `cached`: the code written, while the
    /// cache still shows it unstarted.
    pub fn view(&self, namespace: &str, name: &str, cached: C) -> C {
        // Looked up by reference, not by an owned key: a round views every task of its parent.
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(names) = map.get_mut(namespace) else {
            return cached;
        };
        match names.get(name) {
            Some(written) if cached.is_unstarted() => *written,
            Some(_) => {
                names.remove(name);
                if names.is_empty() {
                    map.remove(namespace);
                }
                cached
            }
            None => cached,
        }
    }
}

/// What the task controller last did to a task: the resourceVersion its write left, and when
/// the engine wants to look again. A reconcile of that same version before that time was
/// triggered by the write itself and has nothing to do.
#[derive(Debug, Default)]
pub struct Recent(Mutex<HashMap<TaskKey, (String, Option<jiff::Timestamp>)>>);

/// A task's namespace and name.
type TaskKey = (String, String);

/// The code each task under way was last announced with. Host tasks get most of their codes from their
/// agent: the controller announces a code when it first sees it. After a restart of the
/// operator, the first sight of a task announces its code again unless the task has ended (so
/// a restart does not repeat an Event for every finished task of the namespace).
#[derive(Debug, Default)]
pub struct Announced(Mutex<HashMap<TaskKey, String>>);

impl Announced {
    /// Records `code` for task `namespace/name`; returns whether it is new for the task (and
    /// so should be announced). `ended` says the task's code is terminal.
    pub fn record(&self, namespace: &str, name: &str, code: &str, ended: bool) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_string(), name.to_string());
        // An ended task's code never changes again: forget it (its first sight without an
        // entry announces nothing), so the map holds only tasks under way.
        let previous = if ended {
            map.remove(&key)
        } else {
            map.insert(key, code.to_string())
        };
        match previous {
            Some(previous) => previous != code,
            None => !ended,
        }
    }
}

impl Recent {
    /// Remembers the outcome of a reconcile of task `namespace/name`.
    pub fn remember(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<String>,
        wake_at: Option<jiff::Timestamp>,
    ) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_string(), name.to_string());
        match resource_version {
            Some(rv) => {
                map.insert(key, (rv, wake_at));
            }
            None => {
                map.remove(&key);
            }
        }
    }

    /// When to come back, if a reconcile of `resource_version` at `now` has nothing to do.
    pub fn idle_until(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
        now: jiff::Timestamp,
    ) -> Option<Option<jiff::Timestamp>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (rv, wake_at) = map.get(&(namespace.to_string(), name.to_string()))?;
        let same = resource_version == Some(rv.as_str());
        let early = wake_at.is_none_or(|at| now < at);
        (same && early).then_some(*wake_at)
    }
}

/// Everything a reconcile needs.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The clock: the only source of time.
    pub clock: Clock,
    /// The firmware images.
    pub repository: Arc<dyn ImageRepository>,
    /// Drivers for Devices.
    pub connections: Arc<dyn Connections>,
    /// Hook Jobs.
    pub hooks: JobHooks,
    /// Kubernetes Events.
    pub events: Events,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Caches of the kinds reconciles read.
    pub stores: Stores,
    /// FirmwareUpgrade rollout decisions not yet in the cache.
    pub expectations: Expectations<FirmwareCode>,
    /// DevicePatch rollout decisions not yet in the cache.
    pub device_patch_expectations: Expectations<DevicePatchCode>,
    /// PatchJob rollout decisions not yet in the cache.
    pub patch_expectations: Expectations<HostCode>,
    /// When each PatchJob's last round ran.
    pub patch_job_rounds: super::pacing::Pacing,
    /// The task controller's own last writes.
    pub recent: Recent,
    /// The code each task was last announced with (an Event), by whoever wrote it.
    pub announced: Announced,
    /// Tunables.
    pub settings: Settings,
}

#[cfg(test)]
mod tests {
    use super::Announced;

    #[test]
    fn a_code_is_announced_once_and_an_ended_task_is_forgotten() {
        let seen = Announced::default();
        assert!(
            seen.record("ns", "t", "Pending", false),
            "first sight under way"
        );
        assert!(
            !seen.record("ns", "t", "Pending", false),
            "the same code again"
        );
        assert!(seen.record("ns", "t", "Started", false), "a new code");
        assert!(seen.record("ns", "t", "Completed", true), "the end is new");
        assert!(
            !seen.record("ns", "t", "Completed", true),
            "an ended task is never again"
        );
        assert!(
            seen.0.lock().unwrap().is_empty(),
            "ended tasks are not kept"
        );
        // After a restart, an ended task seen first is not announced; one under way is.
        let restarted = Announced::default();
        assert!(!restarted.record("ns", "done", "Completed", true));
        assert!(restarted.record("ns", "busy", "Patching", false));
    }
}
