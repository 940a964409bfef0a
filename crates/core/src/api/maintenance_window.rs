//! `MaintenanceWindow`: a recurring or one-time window in which upgrades may start (`Maintenance`)
//! or must not start (`Blackout`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::GoDuration;

/// Whether a window allows upgrades to start or forbids it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum WindowType {
    /// Upgrades of resources that reference this window may start while it is open.
    #[default]
    Maintenance,
    /// No upgrade may start while it is open: those that reference it, and every upgrade in its
    /// namespace.
    Blackout,
}

/// A window is either recurring (`schedule` + `duration`, evaluated in `timeZone`) or one-time
/// (`start` + `end`).
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "MaintenanceWindow",
    doc = "A recurring or one-time window in which upgrades may start (Maintenance) or must not start (Blackout).",
    namespaced,
    shortname = "mw",
    category = "upkeep",
    status = "MaintenanceWindowStatus",
    cel,
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Open", type_ = "boolean", json_path = ".status.open"),
    printcolumn(
        name = "Next Open",
        type_ = "string",
        format = "date-time",
        json_path = ".status.nextOpen"
    ),
    printcolumn(
        name = "Next Close",
        type_ = "string",
        format = "date-time",
        json_path = ".status.nextClose",
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
    validation = Rule::new("(has(self.schedule) && has(self.duration) && !has(self.start) && !has(self.end)) || (!has(self.schedule) && !has(self.duration) && has(self.start) && has(self.end))")
        .message("a window is either recurring (set schedule and duration) or one-time (set start and end), not both and not neither"),
    validation = Rule::new("!has(self.timeZone) || has(self.schedule)")
        .message("timeZone applies to a recurring window only: remove it, or set schedule and duration")
        .field_path(".timeZone"),
    validation = Rule::new("!has(self.start) || !has(self.end) || self.end > self.start")
        .message("end must be after start")
        .field_path(".end")
)]
pub struct MaintenanceWindowSpec {
    /// `Maintenance` (upgrades may start while open) or `Blackout` (none may start while open).
    #[serde(rename = "type", default)]
    pub type_: WindowType,
    /// When a recurring window opens: a 5-field cron expression (minute hour day-of-month month
    /// day-of-week), e.g. `0 22 * * SAT`, evaluated in `timeZone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\s*\S+(\s+\S+){4}\s*$"))]
    pub schedule: Option<String>,
    /// The IANA time zone of `schedule`, e.g. `Europe/Berlin`; default `UTC`. A local opening time
    /// that does not exist (spring-forward gap) opens at the first instant after the gap; one that
    /// occurs twice (fall-back) opens at its first occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
    /// How long a recurring window stays open, as elapsed time (e.g. `6h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('[1-9]')").message("duration must be longer than zero, e.g. 6h"))]
    pub duration: Option<GoDuration>,
    /// When a one-time window opens (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Time>,
    /// When a one-time window closes (RFC 3339); after `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Time>,
}

/// One occurrence of a window: open from `start` (inclusive) to `end` (exclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowOccurrence {
    /// When the occurrence opens.
    pub start: Time,
    /// When it closes.
    pub end: Time,
}

/// What the controller computed for the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindowStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether the window is open now.
    #[serde(default)]
    pub open: bool,
    /// The occurrence open now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_window: Option<WindowOccurrence>,
    /// When the window opens next (absent if it never opens again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_open: Option<Time>,
    /// When the window closes next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_close: Option<Time>,
    /// `Ready` once the schedule is understood; `Stalled` when it cannot be evaluated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
