//! `Host`: a machine that runs the upkeep agent (a Kubernetes node, or a machine outside the
//! cluster), the products installed on it that take maintenance packages, and the facts its agent
//! reports.
//!
//! Who writes what: a person or GitOps writes `spec` (the agent creates the object with an empty
//! spec on first start when none exists); the host's agent writes `status` with its own field
//! manager, except `status.heldBy`, which the PatchJob controller writes with its own. Agent
//! liveness is a Lease (`upkeep-host-<name>`), not a status write per heartbeat: `agent.online`
//! is the agent's last word, the Lease decides.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::GoDuration;
use super::patch_job::PackageType;

/// The prefix of the Lease an agent renews for its Host: `upkeep-host-<name>`.
pub const LEASE_PREFIX: &str = "upkeep-host-";

/// The label on an agent's Lease naming its Host, by which the operator watches agent Leases.
pub const LEASE_LABEL: &str = "upkeep.dev/host";

/// The annotation upkeep puts on a Node it cordoned, naming the task (`<namespace>/<task>`):
/// only a node with it is ever uncordoned by upkeep.
pub const CORDONED_BY_ANNOTATION: &str = "upkeep.dev/cordoned-by";

/// The annotation a Host carries while it asks to put off its reboot (any value).
pub const DEFER_REBOOT_ANNOTATION: &str = "upkeep.dev/defer-reboot";

/// Whether the host takes patch jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PatchManagement {
    /// Jobs run on the host.
    #[default]
    Enabled,
    /// Jobs end `2039 Not Licensed` on the host.
    Disabled,
}

/// How maintenance packages are applied to a product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstallerKind {
    /// upkeep's own installer of `.pak` packages, with a backup of every file it replaces.
    #[default]
    Builtin,
    /// A vendor tool run as a command line (see `command`).
    Command,
}

/// A vendor installer run as a command. `{package}`, `{location}`, `{id}` and `{responseFile}`
/// are substituted; exit 0 is `success`, 1 `partialSuccess`, anything else `failure`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandInstaller {
    /// The install command line, run by `/bin/sh -c`, e.g.
    /// `{location}/bin/update.sh -install {package} -response {responseFile}`.
    #[schemars(length(min = 1, max = 4096))]
    pub install: String,
    /// The uninstall command line; `{id}` is the package to remove.
    #[schemars(length(min = 1, max = 4096))]
    pub uninstall: String,
    /// A response file template written before each run (same substitutions); its path is
    /// `{responseFile}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub response_file: Option<String>,
    /// How long one run of the tool may take before it is killed (`failure`). Default `1h`.
    #[serde(default = "default_command_timeout")]
    pub timeout: GoDuration,
}

fn default_command_timeout() -> GoDuration {
    GoDuration::from_hours(1)
}

/// An installed product that takes maintenance packages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.installer != 'command' || has(self.command)")
        .message("installer: command needs a command block (install and uninstall command lines)")
        .field_path(".command"),
    validation = Rule::new("self.installer == 'command' || !has(self.command)")
        .message("the command block applies to installer: command only: remove it, or set installer: command")
        .field_path(".command")
)]
pub struct HostProduct {
    /// The product's id, as packages name it, e.g. `was`.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9][-A-Za-z0-9_.]*$")
    )]
    pub id: String,
    /// Where the product is installed, an absolute path on the host, e.g.
    /// `/opt/IBM/WebSphere/AppServer`.
    #[schemars(length(min = 1, max = 4096), regex(pattern = r"^/"))]
    pub location: String,
    /// `builtin` (default) or `command`.
    #[serde(default)]
    pub installer: InstallerKind,
    /// For `installer: command`: the vendor tool's command lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInstaller>,
}

/// A machine with the upkeep agent and the facts it reports.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "Host",
    doc = "A machine that runs the upkeep agent: its OS, pending updates, reboot state and installed products.",
    namespaced,
    shortname = "host",
    category = "upkeep",
    status = "HostStatus",
    cel,
    printcolumn(name = "OS", type_ = "string", json_path = ".status.os.prettyName"),
    printcolumn(
        name = "Reboot",
        type_ = "string",
        json_path = ".status.rebootRequired"
    ),
    printcolumn(
        name = "Updates",
        type_ = "integer",
        json_path = ".status.updates.available"
    ),
    printcolumn(
        name = "Security",
        type_ = "integer",
        json_path = ".status.updates.security",
        priority = 1
    ),
    printcolumn(
        name = "Online",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"AgentOnline\")].status"
    ),
    printcolumn(name = "Held By", type_ = "string", json_path = ".status.heldBy"),
    printcolumn(
        name = "Node",
        type_ = "string",
        json_path = ".spec.nodeName",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("!has(self.products) || self.products.all(p, self.products.exists_one(q, q.id == p.id))")
        .message("each product id may appear once")
        .field_path(".products")
)]
pub struct HostSpec {
    /// The Kubernetes Node this host is; absent for a machine outside the cluster (no drain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub node_name: Option<String>,
    /// `Enabled` (default) or `Disabled`: jobs end `2039 Not Licensed` on a disabled host.
    #[serde(default)]
    pub patch_management: PatchManagement,
    /// Installed products that take maintenance packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub products: Vec<HostProduct>,
}

/// The agent on the host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The agent's version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The boot id of the running system (`/proc/sys/kernel/random/boot_id`); a new one means the
    /// host rebooted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub boot_id: String,
    /// Whether the agent's Lease is fresh (within its `leaseDurationSeconds`).
    #[serde(default)]
    pub online: bool,
}

/// The package manager a host's OS uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageManagerKind {
    /// Debian, Ubuntu: apt and dpkg.
    Apt,
    /// RHEL, Rocky, Alma, Fedora: dnf and rpm.
    Dnf,
    /// SLES, openSUSE: zypper and rpm.
    Zypper,
}

/// The operating system, from `/etc/os-release` and the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OsStatus {
    /// `ID` of os-release, e.g. `debian`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `VERSION_ID` of os-release, e.g. `12`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version_id: String,
    /// `PRETTY_NAME` of os-release.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pretty_name: String,
    /// The running kernel's release.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kernel: String,
    /// The machine architecture, e.g. `amd64`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// The package manager upkeep drives on this OS; absent when it supports none here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_manager: Option<PackageManagerKind>,
}

/// Whether the host needs a reboot: three-valued, and `Unknown` never triggers one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RebootRequired {
    /// The OS says a reboot is needed.
    Yes,
    /// The OS says none is needed.
    No,
    /// The OS gives no usable signal.
    #[default]
    Unknown,
}

/// The updates the package manager offers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatesStatus {
    /// Packages with an update available.
    pub available: u32,
    /// Of those, the security updates.
    pub security: u32,
    /// When the agent last asked the package manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Time>,
}

/// A maintenance package installed on a product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstalledPackage {
    /// The package id, e.g. `9.0.5-WS-WAS-IFPH12345`.
    pub id: String,
    /// `InterimFix`, `FixPack` or `RefreshPack`.
    #[serde(rename = "type")]
    pub type_: PackageType,
    /// When it was installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_at: Option<Time>,
    /// Whether its backup is present (an uninstall needs it).
    #[serde(default)]
    pub backup: bool,
    /// The defects it fixes, e.g. `PH12345`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<String>,
    /// Fix and refresh packs: the product's version before the install, which an uninstall
    /// restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
}

/// A product as the agent finds it on the host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductStatus {
    /// The product's id.
    pub id: String,
    /// Its name, from `properties/version/product.yaml`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its version, e.g. `9.0.5.23`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Where it is installed.
    pub location: String,
    /// Its installed maintenance packages, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<InstalledPackage>,
}

/// What a history event records: a package as a whole, or one of its components.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A maintenance package (an interim fix, fix pack or refresh pack).
    Ptf,
    /// One component of a package.
    Component,
}

/// Install or uninstall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HistoryAction {
    /// The package was installed.
    Install,
    /// The package was removed.
    Uninstall,
}

/// How a component changes the product's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpdateType {
    /// New files.
    Add,
    /// Files replaced.
    Replace,
    /// Files removed.
    Remove,
    /// Files patched in place.
    Patch,
}

/// One install or uninstall on a product, as its history records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// The product the event happened on, e.g. `was`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub product: String,
    /// `ptf` (the package) or `component`.
    pub event_type: EventType,
    /// The package (or component) id.
    pub id: String,
    /// `install` or `uninstall`.
    pub action: HistoryAction,
    /// How the files changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_type: Option<UpdateType>,
    /// What the event is about, e.g. the package file name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub primary_content: String,
    /// The update log's file name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_name: String,
    /// The backup's file name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backup_name: String,
    /// When it began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// `success`, `partialSuccess`, `failure` or `cancelled`.
    pub result: String,
}

/// The most history events a Host's status keeps (the newest).
pub const HISTORY_LIMIT: usize = 50;

/// What the agent reports about the host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The agent.
    #[serde(default)]
    pub agent: AgentStatus,
    /// The operating system.
    #[serde(default)]
    pub os: OsStatus,
    /// `Yes`, `No` or `Unknown` (which never triggers a reboot).
    #[serde(default)]
    pub reboot_required: RebootRequired,
    /// The packages that asked for the reboot, when the OS names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reboot_required_by: Vec<String>,
    /// The updates the package manager offers.
    #[serde(default)]
    pub updates: UpdatesStatus,
    /// The products found at the locations of `spec.products`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<ProductStatus>,
    /// Install and uninstall events, newest kept (at most [`HISTORY_LIMIT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEvent>,
    /// The job that holds the host now (`PatchJob/<namespace>/<name>`), if any; written by the
    /// PatchJob controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// `Ready`, `AgentOnline` and `RebootRequired`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
