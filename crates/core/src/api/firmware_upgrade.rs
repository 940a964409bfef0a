//! `FirmwareUpgrade`: upgrade the firmware of matching devices to one image.

use k8s_openapi::api::batch::v1::JobTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{GoDuration, NAME_PATTERN, Rollout, Summary, TargetFailure, TargetSelector};

/// The pattern of an image file name: no path separators, no leading dot.
pub const IMAGE_NAME_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._+-]*$";

/// What a ready task does when the window gate is closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum OutsideWindow {
    /// Queue until a window opens (or `maxWait` passes).
    #[default]
    Wait,
    /// End the task at once with `EXECUTION_CANCELED_BECAUSE_MAINTENANCE_WINDOW`.
    Cancel,
}

/// The optional restart of the device before the image is uploaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestartSpec {
    /// Restart the device before uploading the image. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// How long to wait for the device to come back. Default `10m`.
    #[serde(default = "default_restart_timeout")]
    pub timeout: GoDuration,
    /// How long to wait after the device is back, before uploading. Default `0s`.
    #[serde(default)]
    pub wait_after: GoDuration,
}

fn default_restart_timeout() -> GoDuration {
    GoDuration::from_mins(10)
}

impl Default for RestartSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            timeout: default_restart_timeout(),
            wait_after: GoDuration::default(),
        }
    }
}

/// Jobs run around the upgrade, from templates (as a CronJob's `jobTemplate`). A Job that ends
/// with a failed pod counts as a non-zero exit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hooks {
    /// Run once per target during validation; failing ends the task `PLAN_FAILED_PRE_SCRIPT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::job_template_schema")]
    pub pre_plan: Option<JobTemplateSpec>,
    /// Run once per target after the execution pre-checks; failing ends the task
    /// `EXECUTION_PRE_SCRIPT_ERROR` (the post hook still runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::job_template_schema")]
    pub pre: Option<JobTemplateSpec>,
    /// Run once per target when its execution ends, after success or failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::job_template_schema")]
    pub post: Option<JobTemplateSpec>,
}

/// Upgrade the firmware of the target devices to `image`.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "FirmwareUpgrade",
    doc = "Upgrade the firmware of matching devices to one image, gated by maintenance and blackout windows.",
    namespaced,
    shortname = "fwu",
    category = "upkeep",
    status = "FirmwareUpgradeStatus",
    cel,
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image"),
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
pub struct FirmwareUpgradeSpec {
    /// The image's file name in the image repository, e.g. `idg7519.oradco.scrypt4`.
    #[schemars(length(min = 1, max = 255), regex(pattern = IMAGE_NAME_PATTERN))]
    pub image: String,
    /// The devices to upgrade: the named ones plus those matching every given filter.
    pub targets: TargetSelector,
    /// Approve a downgrade within the same release (a.b.c). Default false.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// Approve an image that lacks licensed features the device has. Default false.
    #[serde(default)]
    pub allow_missing_device_features: bool,
    /// Quiesce before the optional restart and the upload (the first quiesce). Default false.
    #[serde(default)]
    pub first_quiesce: bool,
    /// Timeout of every quiesce and unquiesce; a grace of 3 minutes is added. Default `60s`.
    #[serde(default = "default_quiesce_timeout")]
    pub quiesce_timeout: GoDuration,
    /// The optional restart before the upload.
    #[serde(default)]
    pub restart: RestartSpec,
    /// How long the device may take to upgrade and report the new version. Default `30m`.
    #[serde(default = "default_upgrade_timeout")]
    pub upgrade_timeout: GoDuration,
    /// A task executing longer than this ends `EXECUTION_FAILED_LONG_RUNNING`. Default `60m`.
    #[serde(default = "default_max_run_duration")]
    pub max_run_duration: GoDuration,
    /// A task not started this long after its creation ends
    /// `EXECUTION_CANCELED_BECAUSE_A_DAY_PASSED`. Default `24h`.
    #[serde(default = "default_max_wait")]
    pub max_wait: GoDuration,
    /// Names of MaintenanceWindows in the namespace; when any is given, a target starts only while
    /// one of the Maintenance windows is open. Blackouts always apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253), regex(pattern = NAME_PATTERN)))]
    pub maintenance_windows: Vec<String>,
    /// `Wait` (default): queue until a window opens; `Cancel`: end a ready task that finds the gate
    /// closed with `EXECUTION_CANCELED_BECAUSE_MAINTENANCE_WINDOW`.
    #[serde(default)]
    pub outside_window: OutsideWindow,
    /// Concurrency and error policy.
    #[serde(default)]
    pub rollout: Rollout,
    /// Jobs run before planning, before execution and after execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    /// Hold the rollout: no new target starts while true; executing targets run to their end.
    #[serde(default)]
    pub suspend: bool,
}

impl Default for FirmwareUpgradeSpec {
    /// The spec a manifest gets with only `image` and `targets` set (both empty here).
    fn default() -> Self {
        Self {
            image: String::new(),
            targets: TargetSelector::default(),
            allow_downgrade: false,
            allow_missing_device_features: false,
            first_quiesce: false,
            quiesce_timeout: default_quiesce_timeout(),
            restart: RestartSpec::default(),
            upgrade_timeout: default_upgrade_timeout(),
            max_run_duration: default_max_run_duration(),
            max_wait: default_max_wait(),
            maintenance_windows: Vec::new(),
            outside_window: OutsideWindow::Wait,
            rollout: Rollout::default(),
            hooks: None,
            suspend: false,
        }
    }
}

fn default_quiesce_timeout() -> GoDuration {
    GoDuration::from_secs(60)
}

fn default_upgrade_timeout() -> GoDuration {
    GoDuration::from_mins(30)
}

fn default_max_run_duration() -> GoDuration {
    GoDuration::from_mins(60)
}

fn default_max_wait() -> GoDuration {
    GoDuration::from_hours(24)
}

/// Where the rollout stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FirmwareUpgradeStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Counts of the tasks by code and outcome.
    #[serde(default)]
    pub summary: Summary,
    /// The first few failed targets, in the order they failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_failures: Vec<TargetFailure>,
    /// A code for the resource as a whole, e.g. `SKIPPED_NO_DEVICES_MATCHING_PATTERN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Details of `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// kstatus conditions: `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
