//! `UpgradeTask`: one target of a FirmwareUpgrade, DevicePatch or PatchJob. Created and owned by its parent,
//! read-only for users; its status is where the target's progress lives.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::codes::FirmwareCode;
pub use super::codes::TaskResult;

/// Label on every task: the kind of its parent.
pub const LABEL_PARENT_KIND: &str = "upkeep.dev/parent-kind";
/// Label on every task: the name of its parent.
pub const LABEL_PARENT: &str = "upkeep.dev/parent";
/// Label on every task: the name of its target (Device or Host).
pub const LABEL_TARGET: &str = "upkeep.dev/target";

/// The kind of resource a task belongs to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum ParentKind {
    /// A firmware upgrade of a Device.
    FirmwareUpgrade,
    /// A patch job on a Host.
    PatchJob,
    /// A patch on a network element (a Device).
    DevicePatch,
}

impl ParentKind {
    /// The kind's name as Kubernetes spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FirmwareUpgrade => "FirmwareUpgrade",
            Self::PatchJob => "PatchJob",
            Self::DevicePatch => "DevicePatch",
        }
    }
}

/// The target of one parent resource. Written by the parent's controller only.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "UpgradeTask",
    doc = "One target of a FirmwareUpgrade, DevicePatch or PatchJob; created by its parent, read-only for users.",
    namespaced,
    shortname = "ut",
    category = "upkeep",
    status = "UpgradeTaskStatus",
    cel,
    printcolumn(
        name = "Parent",
        type_ = "string",
        json_path = ".spec.parent",
        priority = 1
    ),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.target"),
    printcolumn(name = "Code", type_ = "string", json_path = ".status.code"),
    printcolumn(name = "Result", type_ = "string", json_path = ".status.result"),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self == oldSelf").message("an UpgradeTask's spec is immutable: it is written by its parent's controller"))]
pub struct UpgradeTaskSpec {
    /// `FirmwareUpgrade`, `DevicePatch` or `PatchJob`.
    pub parent_kind: ParentKind,
    /// The parent's name (same namespace).
    #[schemars(length(min = 1, max = 253))]
    pub parent: String,
    /// The target's name: a Device for a FirmwareUpgrade or DevicePatch, a Host for a PatchJob.
    #[schemars(length(min = 1, max = 253))]
    pub target: String,
}

/// A code a task passed, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The code.
    pub code: String,
    /// PatchJob tasks: the code's number (2031–2060).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// When the task reached it.
    pub at: Time,
}

/// Where the target stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeTaskStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The current code, e.g. `EXECUTION_WAITING_FOR_UPLOAD_IMAGE` or `Completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What the code means for this target.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Whether the task has ended; an ended task never changes again.
    #[serde(default)]
    pub terminal: bool,
    /// `InProgress`, or how the task ended.
    #[serde(default)]
    pub result: TaskResult,
    /// For internal failures: the id to search the operator's log for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// When the task was created; `maxWait` counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// When the task left the queue and started executing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the task ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The codes the task passed, oldest first; the last is the current code. Bounded: when long,
    /// the first and the latest entries are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// FirmwareUpgrade tasks: what the engine remembers between steps, so that a restarted
    /// controller resumes exactly where the last one stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareProgress>,
    /// PatchJob tasks: what the controller and the host's agent remember between steps (the
    /// window deadline of the start, the reboot and drain progress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchProgress>,
    /// DevicePatch tasks: what the engine remembers between steps (the current step's clock,
    /// whether the element acknowledged its operation, the end of the activation delay), so that
    /// a restarted controller never loads or activates twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_patch: Option<DevicePatchProgress>,
    /// PatchJob tasks: the numeric status code (2031–2060).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// PatchJob tasks: the state column of the status code (0, 1 or 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<u8>,
    /// PatchJob tasks: why the task timed out, was skipped or failed, as a CamelCase word, e.g.
    /// `PatchingOutsideWindow`, `AgentOffline`, `DrainBlocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// PatchJob tasks: the reboot deferrals used of those allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferrals: Option<Deferrals>,
    /// PatchJob Install / Uninstall tasks: each package's result on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PackageOutcome>,
    /// kstatus conditions: `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The memory of a PatchJob task between steps. The controller writes the fields marked C, the
/// host's agent those marked A; both write with compare-and-swap, so neither loses the other's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchProgress {
    /// C: no step may start at or after this instant (the window gate's close, given with the
    /// start grant and kept current); absent when no window bounds the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
    /// A: the host's agent took the task: it is not offline for this task.
    #[serde(default)]
    pub received: bool,
    /// A: a reboot is due (the reboot policy, and the host's reboot signal).
    #[serde(default)]
    pub reboot_due: bool,
    /// C: the reboot was granted (the node, if any, is drained).
    #[serde(default)]
    pub reboot_granted: bool,
    /// A: the boot id of the system before the reboot; a different one means it rebooted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// A: the host is released: it needs a reboot that upkeep will not do (`policy: Never`);
    /// the task ends when the host boots by other means.
    #[serde(default)]
    pub released: bool,
    /// C: upkeep cordoned the node for this task (it was schedulable before). It stays true
    /// after the uncordon: whether the node is still cordoned for the task is the node's
    /// `upkeep.dev/cordoned-by` annotation, set and removed in the same write as the cordon.
    #[serde(default)]
    pub cordoned: bool,
    /// C: when the current drain began; `drain.timeout` counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_since: Option<Time>,
    /// C: when to ask for the reboot again after a deferral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<Time>,
}

/// Reboot deferrals of a host task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deferrals {
    /// Deferrals used so far.
    pub used: u32,
    /// Deferrals allowed (`reboot.maxDeferrals`).
    pub max: u32,
}

/// One maintenance package's result on a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageOutcome {
    /// The package id.
    pub id: String,
    /// `success`, `partialSuccess`, `failure` or `cancelled`; absent while it has not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Why it failed, e.g. `BackupMissing`, `NotApplicable`, `ProcessesRunning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a firmware task will end, decided before the steps that still run (unquiesce on error,
/// the post hook).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingOutcome {
    /// The code the task ends with.
    pub code: FirmwareCode,
    /// The message it ends with.
    pub message: String,
    /// Its incident id, for the codes of unexpected failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
}

/// The engine's memory of a firmware task between steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FirmwareProgress {
    /// The firmware the device ran when it passed validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_firmware: Option<String>,
    /// The version the image installs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    /// A quiesce was requested and not undone: a failure before the upgrade unquiesces first.
    #[serde(default)]
    pub quiesced: bool,
    /// When the current step (its first code) began; step timeouts count from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_since: Option<Time>,
    /// The device acknowledged the start of the current step's operation.
    #[serde(default)]
    pub acknowledged: bool,
    /// The upgrade operation finished; the device's version is being confirmed.
    #[serde(default)]
    pub verifying: bool,
    /// The post hook was started for the pending outcome.
    #[serde(default)]
    pub post_hook: bool,
    /// The outcome decided while unquiesce-on-error or the post hook still run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingOutcome>,
}

/// The engine's memory of a DevicePatch task between steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevicePatchProgress {
    /// When the current step's clock started: its first code, or for the activation the end of
    /// the delay. The step's timeout counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_since: Option<Time>,
    /// The element acknowledged the current step's operation (it knows its key).
    #[serde(default)]
    pub acknowledged: bool,
    /// The current step's operation finished; the patch state the element reports is being
    /// checked.
    #[serde(default)]
    pub verifying: bool,
    /// When the activation delay ends (set on entering `PATCH_WAITING_FOR_ACTIVATION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate_at: Option<Time>,
    /// The resource's `activation.delay` was told to the element.
    #[serde(default)]
    pub delay_told: bool,
    /// The patch state the element last reported, e.g. `activating`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_state: Option<String>,
}
