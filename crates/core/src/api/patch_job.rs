//! `PatchJob`: patch the operating system of matching hosts, or install / uninstall maintenance
//! packages (interim fixes, fix packs, refresh packs) on products installed on them.
//!
//! Each target host gets an `UpgradeTask` (see `upgrade_task`); the host's agent and the PatchJob
//! controller move it through the codes 2031–2060 of the catalogue.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{GoDuration, NAME_PATTERN, Rollout, Summary, TargetFailure, TargetSelector};

/// What the job does on each host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Operation {
    /// Apply operating-system updates.
    #[default]
    Patch,
    /// Install maintenance packages.
    Install,
    /// Uninstall maintenance packages (each needs the backup its install made).
    Uninstall,
}

/// Which OS updates to apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Classification {
    /// Security updates only.
    #[default]
    Security,
    /// Every available update.
    All,
}

/// The OS updates of a `Patch` operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchSelection {
    /// `Security` (default) or `All`.
    #[serde(default)]
    pub classification: Classification,
    /// Limit the update to these packages (globs allowed); empty means every package.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// Never update these packages (globs allowed), e.g. `kernel*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// The kind of a maintenance package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PackageType {
    /// A single fix for one or a few defects.
    InterimFix,
    /// A cumulative set of fixes for a release.
    FixPack,
    /// A package that moves a product to a new modification level.
    RefreshPack,
}

/// A maintenance package to install or uninstall.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("!has(self.source) || !(self.source.startsWith('http://') || self.source.startsWith('https://')) || has(self.sha256)")
        .message("an http(s) source needs the package's sha256: the agent installs no download it cannot verify; give sha256 (64 hex digits, e.g. the output of sha256sum FILE.pak), or put the package in the agent's package repository and name it relative to it")
        .field_path(".sha256")
)]
pub struct MaintenancePackage {
    /// The package identifier, e.g. `9.0.5-WS-WAS-FP023`.
    #[schemars(length(min = 1, max = 253))]
    pub id: String,
    /// `InterimFix`, `FixPack` or `RefreshPack`.
    #[serde(rename = "type")]
    pub type_: PackageType,
    /// The installed product it applies to, e.g. `was`.
    #[schemars(length(min = 1, max = 128))]
    pub product: String,
    /// Where the agent fetches the package from: a path relative to the agent's package
    /// repository (a directory or an HTTP base URL), e.g. `fixpacks/9.0.5-FP023.pak`, or an
    /// absolute `http://` / `https://` URL (with `sha256`). Not needed to uninstall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub source: Option<String>,
    /// The SHA-256 of the package file, 64 hex digits (`sha256sum FILE.pak`). Required for an
    /// `http://` or `https://` source (an absolute URL, or one relative to an HTTP package
    /// repository); checked before the package is used whenever it is given. A package whose
    /// bytes differ is never installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub sha256: Option<String>,
}

/// A command the agent runs on the host before or after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Action {
    /// A name for logs and status.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The command line, run by the agent's shell.
    #[schemars(length(min = 1, max = 4096))]
    pub command: String,
    /// How long the command may run. Default `10m`.
    #[serde(default = "default_action_timeout")]
    pub timeout: GoDuration,
    /// The command is safe to run again (a health check, say): when the agent stops while it
    /// runs (a crash, a restart of the agent), the restarted agent runs it again instead of
    /// failing the task. Default `false`: an interrupted action fails the task, for an action
    /// that changes the host must not run twice.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rerun_if_interrupted: bool,
}

fn default_action_timeout() -> GoDuration {
    GoDuration::from_mins(10)
}

/// Commands run on each host around the change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Actions {
    /// Run before the change, in order; a failure fails the host's task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<Action>,
    /// Run after the change (and after a reboot), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<Action>,
}

/// When a host reboots after the change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RebootPolicy {
    /// Reboot when the change requires it.
    #[default]
    IfRequired,
    /// Always reboot after the change.
    Always,
    /// Never reboot; the host reports that a reboot is pending.
    Never,
}

/// Reboot settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reboot {
    /// `IfRequired` (default), `Always` or `Never`.
    #[serde(default)]
    pub policy: RebootPolicy,
    /// How often a reboot may be deferred (a drain blocked by a PodDisruptionBudget, or the host
    /// annotated `upkeep.dev/defer-reboot`). Default 3.
    #[serde(default = "default_max_deferrals")]
    #[schemars(range(min = 0, max = 100))]
    pub max_deferrals: u32,
    /// How long to wait before asking again after a deferral. Default `1h`.
    #[serde(default = "default_deferral_interval")]
    pub deferral_interval: GoDuration,
}

fn default_max_deferrals() -> u32 {
    3
}

fn default_deferral_interval() -> GoDuration {
    GoDuration::from_hours(1)
}

impl Default for Reboot {
    fn default() -> Self {
        Self {
            policy: RebootPolicy::default(),
            max_deferrals: default_max_deferrals(),
            deferral_interval: default_deferral_interval(),
        }
    }
}

/// Draining a Kubernetes node before the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Drain {
    /// Cordon and drain nodes before the change; uncordon after (a node cordoned before stays
    /// cordoned). Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How long the drain may take. Default `10m`.
    #[serde(default = "default_drain_timeout")]
    pub timeout: GoDuration,
}

fn default_max_wait() -> GoDuration {
    GoDuration::from_hours(24)
}

fn default_true() -> bool {
    true
}

fn default_drain_timeout() -> GoDuration {
    GoDuration::from_mins(10)
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout: default_drain_timeout(),
        }
    }
}

/// A group of hosts patched together; waves run in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Wave {
    /// The wave's name, e.g. `dmgr`.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The hosts (among the job's) in this wave.
    pub selector: LabelSelector,
}

/// Patch the OS of the target hosts, or install / uninstall maintenance packages on them.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "PatchJob",
    doc = "Patch the OS of matching hosts, or install or uninstall maintenance packages on them.",
    namespaced,
    shortname = "pj",
    category = "upkeep",
    status = "PatchJobStatus",
    cel,
    printcolumn(name = "Operation", type_ = "string", json_path = ".spec.operation"),
    printcolumn(name = "Hosts", type_ = "integer", json_path = ".status.summary.total"),
    printcolumn(
        name = "Succeeded",
        type_ = "integer",
        json_path = ".status.summary.succeeded"
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.summary.failed"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.operation == 'Patch' || (has(self.packages) && size(self.packages) > 0)")
        .message("operation Install and Uninstall need at least one entry in packages")
        .field_path(".packages"),
    validation = Rule::new("self.operation != 'Patch' || !has(self.packages) || size(self.packages) == 0")
        .message("packages apply to Install and Uninstall; for operation Patch use patch.packages")
        .field_path(".packages"),
    validation = Rule::new("self.operation == 'Patch' || !has(self.patch)")
        .message("patch applies to operation Patch only")
        .field_path(".patch"),
    validation = Rule::new("self.operation != 'Install' || !has(self.packages) || self.packages.all(p, has(p.source))")
        .message("every package to install needs a source")
        .field_path(".packages")
)]
pub struct PatchJobSpec {
    /// The hosts to patch: the named ones plus those matching every given filter.
    pub hosts: TargetSelector,
    /// `Patch` (OS updates, default), `Install` or `Uninstall` (maintenance packages).
    #[serde(default)]
    pub operation: Operation,
    /// For `Patch`: which updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchSelection>,
    /// For `Install` / `Uninstall`: the maintenance packages, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub packages: Vec<MaintenancePackage>,
    /// Commands run on each host before and after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Actions>,
    /// When hosts reboot.
    #[serde(default)]
    pub reboot: Reboot,
    /// Draining of Kubernetes nodes (ignored for hosts outside the cluster).
    #[serde(default)]
    pub drain: Drain,
    /// Groups of hosts patched one after the other; empty means one wave of all hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub waves: Vec<Wave>,
    /// Names of MaintenanceWindows in the namespace; when any is given, a host starts only while
    /// one of the Maintenance windows is open, and a job still running when it closes times out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253), regex(pattern = NAME_PATTERN)))]
    pub maintenance_windows: Vec<String>,
    /// Concurrency and error policy.
    #[serde(default)]
    pub rollout: Rollout,
    /// How long a host's task may wait after its creation for its start; past it the task ends
    /// `2037 Timed Out` (reason `NotStartedInTime`). Default `24h`.
    #[serde(default = "default_max_wait")]
    pub max_wait: GoDuration,
    /// Hold the job: no new host starts while true.
    #[serde(default)]
    pub suspend: bool,
}

impl Default for PatchJobSpec {
    /// The spec with every default of the CRD (those serde fills in for an empty manifest).
    fn default() -> Self {
        Self {
            hosts: TargetSelector::default(),
            operation: Operation::default(),
            patch: None,
            packages: Vec::new(),
            actions: None,
            reboot: Reboot::default(),
            drain: Drain::default(),
            waves: Vec::new(),
            maintenance_windows: Vec::new(),
            rollout: Rollout::default(),
            max_wait: default_max_wait(),
            suspend: false,
        }
    }
}

/// Where the job stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchJobStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Counts of the tasks by code and outcome.
    #[serde(default)]
    pub summary: Summary,
    /// The first few failed hosts, in the order they failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_failures: Vec<TargetFailure>,
    /// Install / Uninstall: for every product the job touched, the levels its hosts are at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consistency: Vec<ProductConsistency>,
    /// A code for the job as a whole, when it failed as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Details of `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// kstatus conditions: `Ready`, `Reconciling`, `Stalled`; for Install / Uninstall also
    /// `Consistent` (every product of the job at one level on all its hosts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The levels the hosts of one product are at. A level is the product version plus its installed
/// interim fixes, e.g. `9.0.5.23+PH12345`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductConsistency {
    /// The product's id.
    pub product: String,
    /// The hosts at each level, by level.
    #[serde(default)]
    pub levels: std::collections::BTreeMap<String, Vec<String>>,
}
