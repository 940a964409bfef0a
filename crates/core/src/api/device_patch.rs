//! `DevicePatch`: load, activate and confirm one patch on matching network elements, until each
//! element itself reports the patch `running`.
//!
//! Each target gets an `UpgradeTask` (see `upgrade_task`) whose codes are the DevicePatch codes
//! of the catalogue (`codes::DevicePatchCode`); the engine is `engine::devicepatch`.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{GoDuration, NAME_PATTERN, Rollout, TargetSelector};
use super::firmware_upgrade::{FirmwareUpgradeStatus, IMAGE_NAME_PATTERN, OutsideWindow};

/// The pattern of a patch id as an element reports it, e.g. `V100R004C01SPH106`: letters,
/// digits, `.`, `_` and `-`.
pub const PATCH_ID_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._-]*$";

/// When and how long the element activates the loaded patch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivationSpec {
    /// The wait between load and activation, told to the element (`0s`: activate at once).
    /// Unset: the element keeps its own delay (24h on some elements), and upkeep waits for the
    /// delay the element reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<GoDuration>,
    /// How long the element may take to report the patch activated, counted from the end of the
    /// delay. Default `30m`.
    #[serde(default = "default_activation_timeout")]
    pub timeout: GoDuration,
}

fn default_activation_timeout() -> GoDuration {
    GoDuration::from_mins(30)
}

impl Default for ActivationSpec {
    fn default() -> Self {
        Self {
            delay: None,
            timeout: default_activation_timeout(),
        }
    }
}

/// Load, activate and confirm `patch` from `package` on the target network elements.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "DevicePatch",
    doc = "Load, activate and confirm a patch on matching network elements until each reports it running, gated by maintenance and blackout windows.",
    namespaced,
    shortname = "dpatch",
    category = "upkeep",
    status = "DevicePatchStatus",
    cel,
    printcolumn(name = "Patch", type_ = "string", json_path = ".spec.patch"),
    printcolumn(
        name = "Targets",
        type_ = "integer",
        json_path = ".status.summary.total"
    ),
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
        name = "Running",
        type_ = "integer",
        json_path = ".status.summary.running",
        priority = 1
    ),
    printcolumn(
        name = "Package",
        type_ = "string",
        json_path = ".spec.package",
        priority = 1
    ),
    printcolumn(
        name = "Code",
        type_ = "string",
        json_path = ".status.code",
        priority = 1
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
pub struct DevicePatchSpec {
    /// The patch id the element reports once the package is loaded, e.g. `V100R004C01SPH106`.
    #[schemars(length(min = 1, max = 128), regex(pattern = PATCH_ID_PATTERN))]
    pub patch: String,
    /// The package's file name in the image repository, e.g. `V100R004C01SPH106.pkg`.
    #[schemars(length(min = 1, max = 255), regex(pattern = IMAGE_NAME_PATTERN))]
    pub package: String,
    /// The elements to patch: the named Devices plus those matching every given filter.
    pub targets: TargetSelector,
    /// The activation delay and timeout.
    #[serde(default)]
    pub activation: ActivationSpec,
    /// Confirm the patch after activation, so that it becomes `running`. Default true; with
    /// false a task ends `PATCH_ACTIVATED` (Succeeded, with a warning: the patch does not take
    /// effect until it is confirmed).
    #[serde(default = "default_true")]
    pub confirm: bool,
    /// How long the transfer and load of the package may take. Default `30m`.
    #[serde(default = "default_load_timeout")]
    pub load_timeout: GoDuration,
    /// How long the element may take to report the patch running after the confirm. Default
    /// `10m`.
    #[serde(default = "default_confirm_timeout")]
    pub confirm_timeout: GoDuration,
    /// Names of MaintenanceWindows in the namespace; when any is given, a target starts only while
    /// one of the Maintenance windows is open. Blackouts always apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253), regex(pattern = NAME_PATTERN)))]
    pub maintenance_windows: Vec<String>,
    /// `Wait` (default): queue until a window opens; `Cancel`: end a ready task that finds the gate
    /// closed with `EXECUTION_CANCELED_BECAUSE_MAINTENANCE_WINDOW`.
    #[serde(default)]
    pub outside_window: OutsideWindow,
    /// Concurrency and error policy. Default one element at a time, `errorPolicy: Continue`.
    #[serde(default)]
    pub rollout: Rollout,
    /// A task not started this long after its creation ends
    /// `EXECUTION_CANCELED_BECAUSE_A_DAY_PASSED`. Default `24h`.
    #[serde(default = "default_max_wait")]
    pub max_wait: GoDuration,
    /// Hold the rollout: no new target starts while true; started targets run to their end.
    #[serde(default)]
    pub suspend: bool,
}

fn default_true() -> bool {
    true
}

fn default_load_timeout() -> GoDuration {
    GoDuration::from_mins(30)
}

fn default_confirm_timeout() -> GoDuration {
    GoDuration::from_mins(10)
}

fn default_max_wait() -> GoDuration {
    GoDuration::from_hours(24)
}

impl Default for DevicePatchSpec {
    /// The spec a manifest gets with only `patch`, `package` and `targets` set (all empty here).
    fn default() -> Self {
        Self {
            patch: String::new(),
            package: String::new(),
            targets: TargetSelector::default(),
            activation: ActivationSpec::default(),
            confirm: true,
            load_timeout: default_load_timeout(),
            confirm_timeout: default_confirm_timeout(),
            maintenance_windows: Vec::new(),
            outside_window: OutsideWindow::Wait,
            rollout: Rollout::default(),
            max_wait: default_max_wait(),
            suspend: false,
        }
    }
}

/// Where the rollout stands: the same shape as a FirmwareUpgrade's (summary by code, the first
/// failures, a whole-resource code such as `SKIPPED_NO_DEVICES_MATCHING_PATTERN`, conditions).
pub type DevicePatchStatus = FirmwareUpgradeStatus;
