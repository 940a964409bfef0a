//! Prometheus metrics: tasks by code and result (a PatchJob's tasks are its hosts by code),
//! rollouts in progress, hosts pending a reboot and agents offline, reconciles, errors and their
//! durations, API writes. Every name starts with `upkeep_`; the chart's Grafana dashboard
//! queries them (a test checks that it queries nothing else).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use kube::runtime::reflector::Store;

use super::index::TaskIndex;
use super::watched::Watched;
use crate::api::Host;
use crate::api::conditions::is_true;
use crate::api::host::RebootRequired;
use crate::engine::patch::host::AGENT_ONLINE;

/// The controller a metric is about.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// The kind the controller reconciles.
    pub controller: &'static str,
}

/// An API write.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// The kind written.
    pub kind: &'static str,
    /// `status`, `object` or `event`.
    pub target: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    parent_kind: &'static str,
    code: String,
    result: &'static str,
}

/// The operator's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    durations: Family<ControllerLabels, Histogram>,
    writes: Family<WriteLabels, Counter>,
    tasks: TaskCollector,
    hosts: HostCollector,
}

/// Counts tasks by code, and the parents with unfinished tasks, at scrape time, from the task
/// indexes of every running operator.
#[derive(Debug, Clone, Default)]
struct TaskCollector(Arc<RwLock<Vec<TaskIndex>>>);

impl prometheus_client::collector::Collector for TaskCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let mut counts: BTreeMap<(String, &'static str, &'static str), i64> = BTreeMap::new();
        let indexes = self.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        for task in indexes.iter().flat_map(TaskIndex::all) {
            let code = task.code.clone().unwrap_or_default();
            *counts
                .entry((code, task.result.as_str(), task.parent_kind.as_str()))
                .or_default() += 1;
        }
        let family = Family::<TaskLabels, Gauge>::default();
        for ((code, result, parent_kind), n) in counts {
            family
                .get_or_create(&TaskLabels {
                    parent_kind,
                    code,
                    result,
                })
                .set(n);
        }
        let metric = encoder.encode_descriptor(
            "upkeep_tasks",
            "UpgradeTasks by current code",
            None,
            family.metric_type(),
        )?;
        family.encode(metric)?;

        let rollouts = Family::<KindLabels, Gauge>::default();
        for (kind, n) in indexes.iter().flat_map(TaskIndex::unfinished_parents) {
            rollouts
                .get_or_create(&KindLabels {
                    kind: kind.as_str(),
                })
                .inc_by(n);
        }
        let metric = encoder.encode_descriptor(
            "upkeep_rollouts_in_progress",
            "Parent resources (FirmwareUpgrades, DevicePatches, PatchJobs) with a task that has not ended",
            None,
            rollouts.metric_type(),
        )?;
        rollouts.encode(metric)
    }
}

/// Counts, at scrape time, the Hosts that need a reboot (`status.rebootRequired: Yes`) and those
/// whose agent is offline (their `AgentOnline` condition is not True, as the Host controller
/// writes it from the Lease), from the Host caches of every running operator.
#[derive(Debug, Clone, Default)]
struct HostCollector(Arc<RwLock<Vec<Store<Watched<Host>>>>>);

impl prometheus_client::collector::Collector for HostCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let stores = self.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        let (mut pending_reboot, mut offline) = (0, 0);
        for watched in stores.iter().flat_map(Store::state) {
            let Ok(host) = &watched.0 else { continue };
            let status = host.status.as_ref();
            if status.is_some_and(|s| s.reboot_required == RebootRequired::Yes) {
                pending_reboot += 1;
            }
            if !status.is_some_and(|s| is_true(&s.conditions, AGENT_ONLINE)) {
                offline += 1;
            }
        }
        for (name, help, value) in [
            (
                "upkeep_hosts_pending_reboot",
                "Hosts whose OS says a reboot is needed",
                pending_reboot,
            ),
            (
                "upkeep_agents_offline",
                "Hosts whose agent has not renewed its Lease",
                offline,
            ),
        ] {
            let gauge = Gauge::<i64>::default();
            gauge.set(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// Empty metrics; tasks are counted from the indexes given to [`Metrics::count_tasks_of`].
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let errors = Family::<ControllerLabels, Counter>::default();
        let durations = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 9))
        });
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register("upkeep_reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "upkeep_reconcile_errors",
            "Reconciles that failed",
            errors.clone(),
        );
        registry.register(
            "upkeep_reconcile_duration_seconds",
            "How long reconciles take",
            durations.clone(),
        );
        registry.register(
            "upkeep_api_writes",
            "Writes to the Kubernetes API",
            writes.clone(),
        );
        let tasks = TaskCollector::default();
        registry.register_collector(Box::new(tasks.clone()));
        let hosts = HostCollector::default();
        registry.register_collector(Box::new(hosts.clone()));
        Arc::new(Self {
            registry,
            reconciles,
            errors,
            durations,
            writes,
            tasks,
            hosts,
        })
    }

    /// Counts the tasks of `index` in `upkeep_tasks`.
    pub fn count_tasks_of(&self, index: TaskIndex) {
        self.tasks
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(index);
    }

    /// Counts the Hosts of `store` in `upkeep_hosts_pending_reboot` and `upkeep_agents_offline`.
    pub fn count_hosts_of(&self, store: Store<Watched<Host>>) {
        self.hosts
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(store);
    }

    /// Records one reconcile of `controller` that took `took`.
    pub fn reconciled(&self, controller: &'static str, took: Duration, failed: bool) {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        // The error counter exists from the first reconcile on, at zero, so that a rate over
        // it reads 0 rather than no data.
        let errors = self.errors.get_or_create(&labels);
        if failed {
            errors.inc();
        }
    }

    /// Records one API write.
    pub fn wrote(&self, kind: &'static str, target: &'static str) {
        self.writes
            .get_or_create(&WriteLabels { kind, target })
            .inc();
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
