//! The fleet file's hosts and maintenance-package repository: the machines a simulation plays
//! (each with a simulated agent), what their package manager offers, the products installed on
//! them, how they behave (timings, faults, a drain a PodDisruptionBudget refuses, a reboot they
//! ask to defer, a package manager another job holds) and the packages their agents can fetch.
//!
//! Every host field but `name` has a default: an online Debian 12 node with nothing to update.
//! Validation ([`validate_hosts`]) names the field that is wrong and what to write instead.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DEFAULT_NAMESPACE, FleetError};
use crate::api::common::GoDuration;
use crate::api::host::{PackageManagerKind, PatchManagement};
use crate::api::patch_job::PackageType;
use crate::engine::packages::version::{AppliesTo, DottedVersion};
use crate::engine::size::parse_bytes;
use crate::engine::updates::package_manager_for;

/// The operating system of a simulated host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetOs {
    /// os-release `ID`: `debian`/`ubuntu` (apt), `rhel`/`rocky`/`fedora` (dnf),
    /// `sles`/`opensuse` (zypper); any other has no package manager upkeep drives. Default
    /// `debian`.
    #[serde(default = "default_os_id")]
    pub id: String,
    /// os-release `VERSION_ID`. Default `12`.
    #[serde(default = "default_os_version")]
    pub version_id: String,
}

fn default_os_id() -> String {
    "debian".into()
}

fn default_os_version() -> String {
    "12".into()
}

impl Default for FleetOs {
    fn default() -> Self {
        Self {
            id: default_os_id(),
            version_id: default_os_version(),
        }
    }
}

impl FleetOs {
    /// The package manager upkeep drives on this OS, if any.
    pub fn package_manager(&self) -> Option<PackageManagerKind> {
        package_manager_for(&self.id, &[])
    }
}

/// Whether a simulated host's agent runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AgentMode {
    /// The agent runs and renews its Lease.
    #[default]
    Online,
    /// No agent runs: no Lease, the Host has no status from it.
    Offline,
}

/// An update the host's package manager offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetUpdate {
    /// The package's name.
    pub name: String,
    /// The installed version; absent for a package the update newly installs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The version the update brings.
    pub to: String,
    /// Whether it is a security update. Default false.
    #[serde(default)]
    pub security: bool,
    /// Whether installing it makes the host need a reboot. Default false.
    #[serde(default)]
    pub reboot_required: bool,
}

/// A maintenance package installed on a simulated product from the start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetInstalledPackage {
    /// The package id, e.g. `9.0.5-WS-WAS-IFPH12345`.
    pub id: String,
    /// `InterimFix`, `FixPack` or `RefreshPack`.
    #[serde(rename = "type")]
    pub type_: PackageType,
    /// Whether its backup is present (an uninstall needs it). Default true.
    #[serde(default = "default_true")]
    pub backup: bool,
}

fn default_true() -> bool {
    true
}

/// A product installed on a simulated host that takes maintenance packages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetProduct {
    /// The product id, as packages name it, e.g. `was`.
    pub id: String,
    /// Its dotted version, e.g. `9.0.5.22`.
    pub version: String,
    /// Its name. Default: the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where it is installed (an absolute path). Default `/opt/<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Its installed maintenance packages, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<FleetInstalledPackage>,
}

impl FleetProduct {
    /// Where the product is installed.
    pub fn location(&self) -> String {
        self.location
            .clone()
            .unwrap_or_else(|| format!("/opt/{}", self.id))
    }
}

/// How long a simulated host's steps take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostTimings {
    /// Fetching the updates or packages. Default `30s`.
    #[serde(default = "thirty_seconds")]
    pub download: GoDuration,
    /// Installing the updates, or one maintenance package. Default `2m`.
    #[serde(default = "two_minutes")]
    pub install: GoDuration,
    /// Running one pre or post action. Default `10s`.
    #[serde(default = "ten_seconds")]
    pub action: GoDuration,
    /// From the reboot until the agent runs again. Default `3m`.
    #[serde(default = "three_minutes")]
    pub reboot: GoDuration,
}

fn thirty_seconds() -> GoDuration {
    GoDuration::from_secs(30)
}

fn two_minutes() -> GoDuration {
    GoDuration::from_mins(2)
}

fn ten_seconds() -> GoDuration {
    GoDuration::from_secs(10)
}

fn three_minutes() -> GoDuration {
    GoDuration::from_mins(3)
}

impl Default for HostTimings {
    fn default() -> Self {
        Self {
            download: thirty_seconds(),
            install: two_minutes(),
            action: ten_seconds(),
            reboot: three_minutes(),
        }
    }
}

/// Where a host fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HostFaultStep {
    /// Fetching the updates or packages.
    Download,
    /// Installing the updates or a package.
    Install,
    /// A pre action.
    PreAction,
    /// A post action.
    PostAction,
    /// The reboot.
    Reboot,
    /// The node's drain (a PodDisruptionBudget that never allows an eviction, whatever the
    /// kind).
    Drain,
}

/// What a host fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HostFaultKind {
    /// The step fails with an error.
    Error,
    /// The step never completes (a reboot that never happens: the host keeps its boot).
    Hang,
}

/// A fault of a simulated host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostFault {
    /// The step.
    pub step: HostFaultStep,
    /// The kind.
    pub kind: HostFaultKind,
}

/// A simulated host. Every field but `name` has a default: an online Debian 12 node with
/// nothing to update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetHost {
    /// The Host's name (and its Node's, when it is one).
    pub name: String,
    /// Its namespace. Default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels of the Host object (and its Node).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Whether it is a Kubernetes Node (a drain applies). Default true.
    #[serde(default = "default_true")]
    pub node: bool,
    /// Its operating system. Default Debian 12.
    #[serde(default)]
    pub os: FleetOs,
    /// `Enabled` (default) or `Disabled`.
    #[serde(default)]
    pub patch_management: PatchManagement,
    /// `online` (default) or `offline` (no agent, no Lease).
    #[serde(default)]
    pub agent: AgentMode,
    /// The agent goes away this long after the simulation starts (stops renewing its Lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_offline_from: Option<GoDuration>,
    /// What the package manager offers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<FleetUpdate>,
    /// Packages installed besides those the updates name (applicability of `patch.packages`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub installed: Vec<String>,
    /// Products that take maintenance packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<FleetProduct>,
    /// A PodDisruptionBudget refuses evictions from the node for this long after the
    /// simulation starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_blocked_for: Option<GoDuration>,
    /// The host asks to defer its reboot (`upkeep.dev/defer-reboot`) this many times.
    #[serde(default)]
    pub defer_reboot: u32,
    /// Another job holds the host's package manager for `busyFor` after the simulation starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_job: Option<String>,
    /// How long `runningJob` holds the package manager. Default `30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_for: Option<GoDuration>,
    /// How long its steps take.
    #[serde(default)]
    pub timings: HostTimings,
    /// Its faults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<HostFault>,
}

impl FleetHost {
    /// The namespace the host lives in.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    /// The fault at `step`, if any.
    pub fn fault(&self, step: HostFaultStep) -> Option<HostFaultKind> {
        self.faults.iter().find(|f| f.step == step).map(|f| f.kind)
    }

    /// How long `runningJob` holds the package manager.
    pub fn busy_for(&self) -> GoDuration {
        self.busy_for.unwrap_or(GoDuration::from_mins(30))
    }
}

/// A maintenance package in the simulated repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetPackage {
    /// Its path in the repository, as a PatchJob's `packages[].source` names it.
    pub source: String,
    /// The package id.
    pub id: String,
    /// `InterimFix`, `FixPack` or `RefreshPack`.
    #[serde(rename = "type")]
    pub type_: PackageType,
    /// The product it applies to.
    pub product: String,
    /// Comparators on the product's dotted version, e.g. `>=9.0.5.0 <9.0.6.0`.
    pub applies_to: String,
    /// Fix and refresh packs: the product's version after the install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The defects it fixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<String>,
    /// Its size, e.g. `1Gi`. Default `100Mi`.
    #[serde(default = "default_package_size")]
    pub size: String,
}

fn default_package_size() -> String {
    "100Mi".into()
}

/// Checks the hosts and the repository: unique names, ids and sources; dotted versions;
/// `appliesTo` comparators; sizes; fields that only make sense together.
pub fn validate_hosts(hosts: &[FleetHost], repository: &[FleetPackage]) -> Result<(), FleetError> {
    let err = |field: String, message: String| Err(FleetError { field, message });
    let mut names = BTreeSet::new();
    for (i, host) in hosts.iter().enumerate() {
        let at = |field: &str| format!("hosts[{i}].{field}");
        if host.name.is_empty() {
            return err(at("name"), "a host needs a name".into());
        }
        if !names.insert((host.namespace(), host.name.as_str())) {
            return err(
                at("name"),
                format!("{}/{} is listed twice", host.namespace(), host.name),
            );
        }
        if host.agent == AgentMode::Offline && host.agent_offline_from.is_some() {
            return err(
                at("agentOfflineFrom"),
                "the agent is offline from the start (agent: offline): remove agentOfflineFrom, or set agent: online".into(),
            );
        }
        if host.busy_for.is_some() && host.running_job.is_none() {
            return err(
                at("busyFor"),
                "busyFor says how long runningJob holds the host: name the job in runningJob, or remove busyFor".into(),
            );
        }
        if !host.node
            && (host.drain_blocked_for.is_some() || host.fault(HostFaultStep::Drain).is_some())
        {
            return err(
                at("drainBlockedFor"),
                "only a Kubernetes node is drained: set node: true, or remove drainBlockedFor and the drain fault".into(),
            );
        }
        let mut updates = BTreeSet::new();
        for (j, update) in host.updates.iter().enumerate() {
            if update.name.is_empty() || update.to.is_empty() {
                return err(
                    at(&format!("updates[{j}]")),
                    "an update needs a name and the version it brings (to)".into(),
                );
            }
            if !updates.insert(update.name.as_str()) {
                return err(
                    at(&format!("updates[{j}].name")),
                    format!(
                        "{:?} is offered twice: keep one update per package",
                        update.name
                    ),
                );
            }
        }
        let mut steps = BTreeSet::new();
        for (j, fault) in host.faults.iter().enumerate() {
            if !steps.insert(fault.step as u8) {
                return err(
                    at(&format!("faults[{j}].step")),
                    "one fault per step: remove the repeated one".into(),
                );
            }
        }
        let mut products = BTreeSet::new();
        for (j, product) in host.products.iter().enumerate() {
            let at = |field: &str| format!("hosts[{i}].products[{j}].{field}");
            if !products.insert(product.id.as_str()) {
                return err(at("id"), format!("{:?} is listed twice", product.id));
            }
            if product.version.parse::<DottedVersion>().is_err() {
                return err(
                    at("version"),
                    format!(
                        "{:?} is not a dotted version: write numbers separated by dots, e.g. 9.0.5.22",
                        product.version
                    ),
                );
            }
            if let Some(location) = &product.location
                && !location.starts_with('/')
            {
                return err(
                    at("location"),
                    format!("{location:?} is not an absolute path: start it with /"),
                );
            }
            let mut packages = BTreeSet::new();
            for (k, package) in product.packages.iter().enumerate() {
                if !packages.insert(package.id.as_str()) {
                    return err(
                        at(&format!("packages[{k}].id")),
                        format!("{:?} is listed twice", package.id),
                    );
                }
            }
        }
    }
    let mut sources = BTreeSet::new();
    for (i, package) in repository.iter().enumerate() {
        let at = |field: &str| format!("repository[{i}].{field}");
        if !sources.insert(package.source.as_str()) {
            return err(
                at("source"),
                format!("{:?} is listed twice", package.source),
            );
        }
        if let Err(e) = package.applies_to.parse::<AppliesTo>() {
            return err(at("appliesTo"), e.to_string());
        }
        match (package.type_, &package.version) {
            (PackageType::InterimFix, Some(_)) => {
                return err(
                    at("version"),
                    "an interim fix leaves the product's version as it is: remove version, or make the package a FixPack or RefreshPack".into(),
                );
            }
            (PackageType::FixPack | PackageType::RefreshPack, None) => {
                return err(
                    at("version"),
                    "a fix or refresh pack sets the product's version: give the version after the install, e.g. 9.0.5.23".into(),
                );
            }
            (_, Some(version)) if version.parse::<DottedVersion>().is_err() => {
                return err(
                    at("version"),
                    format!("{version:?} is not a dotted version, e.g. 9.0.5.23"),
                );
            }
            _ => {}
        }
        if let Err(e) = parse_bytes(&package.size) {
            return err(at("size"), e.to_string());
        }
    }
    Ok(())
}
