//! What `upkeep simulate` prints: the resources and tasks at the end of the run, as one JSON
//! document, as a readable timeline with a summary, or as one self-contained HTML page
//! ([`html`]). The windows that gated the run are kept for the page only: the JSON document is
//! the contract's and carries no more than it names.

mod html;

use std::fmt::Write as _;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use serde::Serialize;
use serde_json::Value;

use crate::api::common::Summary;
use crate::api::maintenance_window::WindowType;
use crate::api::patch_job::ProductConsistency;
use crate::api::upgrade_task::{Deferrals, HistoryEntry, PackageOutcome, ParentKind};
use crate::api::{
    DevicePatch, FirmwareUpgrade, FirmwareUpgradeStatus, MaintenanceWindow, PatchJob, UpgradeTask,
};
use crate::schedule::window::{Occurrence, Window};

/// The most occurrences of one window the report keeps.
const OCCURRENCE_LIMIT: usize = 1_000;

/// A parent resource at the end of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceReport {
    /// The kind, e.g. `FirmwareUpgrade`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its whole-resource code, if any.
    pub code: Option<String>,
    /// Its conditions.
    pub conditions: Vec<Condition>,
    /// Its summary.
    pub summary: Summary,
    /// PatchJob: for every product an Install or Uninstall touched, the levels its hosts are
    /// at (absent for other kinds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Vec<ProductConsistency>>,
    /// The MaintenanceWindows it names (for the HTML timeline; not in the JSON).
    #[serde(skip)]
    pub maintenance_windows: Vec<String>,
}

/// A MaintenanceWindow and its occurrences during the run (for the HTML timeline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowReport {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Maintenance or Blackout.
    pub kind: WindowType,
    /// Its occurrences that overlap the run, in order.
    pub occurrences: Vec<Occurrence>,
}

/// A task at the end of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskReport {
    /// `Kind/namespace/name` of the parent.
    pub parent: String,
    /// The target's name.
    pub target: String,
    /// The final (or current) code.
    pub code: Option<String>,
    /// How it counts.
    pub result: String,
    /// The incident id of an unexpected failure.
    pub incident_id: Option<String>,
    /// When it left the queue.
    pub started_at: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
    /// The codes it passed.
    pub history: Vec<HistoryEntry>,
    /// PatchJob tasks: the code's number, state, reason, deferrals and package results.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchTaskReport>,
}

/// What a PatchJob task adds to its report, as in UpgradeTask status.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchTaskReport {
    /// The code's number (2031–2060).
    pub status_code: Option<u16>,
    /// The seed's state column of the code.
    pub state: Option<u8>,
    /// Why it timed out, was skipped or failed.
    pub reason: Option<String>,
    /// Reboot deferrals used and allowed.
    pub deferrals: Option<Deferrals>,
    /// Install / Uninstall: each package's result.
    pub packages: Vec<PackageOutcome>,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// When the run started (virtual time).
    pub start: String,
    /// When it ended: when the last task ended, or the horizon.
    pub end: String,
    /// The parent resources.
    pub resources: Vec<ResourceReport>,
    /// The tasks.
    pub tasks: Vec<TaskReport>,
    /// Writes the controllers made to the API.
    pub api_writes: u64,
    /// The MaintenanceWindows and their occurrences during the run (for the HTML timeline; not
    /// in the JSON).
    #[serde(skip)]
    pub windows: Vec<WindowReport>,
}

/// RFC 3339 in UTC to the second, as Kubernetes writes times.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl ResourceReport {
    /// The report of a stored FirmwareUpgrade (as JSON); None if it does not deserialize.
    pub fn of(object: Value) -> Option<Self> {
        let upgrade = serde_json::from_value::<FirmwareUpgrade>(object).ok()?;
        Some(Self::rollout(
            "FirmwareUpgrade",
            upgrade.metadata,
            upgrade.status,
            upgrade.spec.maintenance_windows,
        ))
    }

    /// The report of a stored DevicePatch (as JSON); None if it does not deserialize.
    pub fn of_device_patch(object: Value) -> Option<Self> {
        let patch = serde_json::from_value::<DevicePatch>(object).ok()?;
        Some(Self::rollout(
            "DevicePatch",
            patch.metadata,
            patch.status,
            patch.spec.maintenance_windows,
        ))
    }

    /// A rollout parent's report from its parts (FirmwareUpgrade and DevicePatch share the
    /// status).
    fn rollout(
        kind: &str,
        metadata: ObjectMeta,
        status: Option<FirmwareUpgradeStatus>,
        maintenance_windows: Vec<String>,
    ) -> Self {
        let status = status.unwrap_or_default();
        Self {
            kind: kind.into(),
            namespace: metadata.namespace.unwrap_or_default(),
            name: metadata.name.unwrap_or_default(),
            code: status.code,
            conditions: status.conditions,
            summary: status.summary,
            consistency: None,
            maintenance_windows,
        }
    }

    /// The report of a stored PatchJob (as JSON); None if it does not deserialize.
    pub fn of_patch_job(object: Value) -> Option<Self> {
        let job = serde_json::from_value::<PatchJob>(object).ok()?;
        let status = job.status.unwrap_or_default();
        Some(Self {
            kind: "PatchJob".into(),
            namespace: job.metadata.namespace.unwrap_or_default(),
            name: job.metadata.name.unwrap_or_default(),
            code: status.code,
            conditions: status.conditions,
            summary: status.summary,
            consistency: Some(status.consistency),
            maintenance_windows: job.spec.maintenance_windows,
        })
    }
}

impl WindowReport {
    /// The report of a stored MaintenanceWindow (as JSON) between `start` and `end`; None if it
    /// does not deserialize or its schedule cannot be evaluated.
    pub fn of(object: Value, start: Timestamp, end: Timestamp) -> Option<Self> {
        let window = serde_json::from_value::<MaintenanceWindow>(object).ok()?;
        let name = window.metadata.name.unwrap_or_default();
        let arithmetic = Window::from_spec(&name, &window.spec).ok()?;
        let occurrences = arithmetic
            .occurrences_from(start)
            .take_while(|o| o.start < end)
            .take(OCCURRENCE_LIMIT)
            .collect();
        Some(Self {
            namespace: window.metadata.namespace.unwrap_or_default(),
            name,
            kind: window.spec.type_,
            occurrences,
        })
    }
}

impl TaskReport {
    /// The report of a stored UpgradeTask (as JSON); None if it does not deserialize.
    pub fn of(object: Value) -> Option<Self> {
        let task = serde_json::from_value::<UpgradeTask>(object).ok()?;
        let status = task.status.unwrap_or_default();
        let namespace = task.metadata.namespace.unwrap_or_default();
        let patch = (task.spec.parent_kind == ParentKind::PatchJob).then(|| PatchTaskReport {
            status_code: status.status_code,
            state: status.state,
            reason: status.reason.clone(),
            deferrals: status.deferrals,
            packages: status.packages.clone(),
        });
        Some(Self {
            parent: format!(
                "{}/{namespace}/{}",
                task.spec.parent_kind.as_str(),
                task.spec.parent
            ),
            target: task.spec.target,
            code: status.code,
            result: status.result.as_str().to_string(),
            incident_id: status.incident_id,
            started_at: status.started_at.map(|t| rfc3339(t.0)),
            finished_at: status.finished_at.map(|t| rfc3339(t.0)),
            history: status.history,
            patch,
        })
    }
}

/// A code with its number when it has one (`2036 Completed`); firmware codes have none.
fn numbered(number: Option<u16>, code: &str) -> String {
    match number {
        Some(n) => format!("{n} {code}"),
        None => code.to_string(),
    }
}

impl Report {
    /// The report of a run from `start` to `end`, with its resources and tasks in any order.
    pub fn new(
        start: Timestamp,
        end: Timestamp,
        mut resources: Vec<ResourceReport>,
        mut tasks: Vec<TaskReport>,
        api_writes: u64,
    ) -> Self {
        resources.sort_by(|a, b| {
            (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name))
        });
        tasks.sort_by(|a, b| (&a.parent, &a.target).cmp(&(&b.parent, &b.target)));
        Self {
            start: rfc3339(start),
            end: rfc3339(end),
            resources,
            tasks,
            api_writes,
            windows: Vec::new(),
        }
    }

    /// The report with the windows of the run, in any order.
    pub fn with_windows(mut self, mut windows: Vec<WindowReport>) -> Self {
        windows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.windows = windows;
        self
    }

    /// The run as one self-contained HTML page: the timeline of every task, grouped by parent,
    /// with the windows shaded, and the summary per resource.
    pub fn html(&self) -> String {
        html::render(self)
    }

    /// Whether every task ended.
    pub fn complete(&self) -> bool {
        self.tasks.iter().all(|t| t.result != "InProgress")
    }

    /// The timeline and summary tables.
    pub fn text(&self) -> String {
        let mut out = format!("simulated {} → {} (virtual time)\n\n", self.start, self.end);
        // By time, then by task, then in the order each task passed its codes.
        let mut lines: Vec<(String, &str, &str, usize, String)> = self
            .tasks
            .iter()
            .flat_map(|t| {
                t.history.iter().enumerate().map(move |(i, h)| {
                    (
                        rfc3339(h.at.0),
                        t.parent.as_str(),
                        t.target.as_str(),
                        i,
                        numbered(h.status_code, &h.code),
                    )
                })
            })
            .collect();
        lines.sort();
        let parent_width = lines.iter().map(|l| l.1.len()).max().unwrap_or(0);
        let target_width = lines.iter().map(|l| l.2.len()).max().unwrap_or(0);
        for (at, parent, target, _, code) in &lines {
            let _ = writeln!(
                out,
                "{at}  {parent:<parent_width$}  {target:<target_width$}  {code}"
            );
        }
        out.push_str("\nRESOURCES\n");
        for r in &self.resources {
            let ready = r
                .conditions
                .iter()
                .find(|c| c.status == "True")
                .map(|c| format!("{}: {}", c.type_, c.message))
                .unwrap_or_default();
            let code = r
                .code
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            let s = &r.summary;
            let _ = writeln!(
                out,
                "{}/{}/{}:{code} {} targets, {} succeeded, {} failed, {} running, {} waiting. {ready}",
                r.kind, r.namespace, r.name, s.total, s.succeeded, s.failed, s.running, s.waiting
            );
            for product in r.consistency.iter().flatten() {
                let levels: Vec<String> = product
                    .levels
                    .iter()
                    .map(|(level, hosts)| format!("{level} on {}", hosts.join(", ")))
                    .collect();
                let _ = writeln!(out, "  {}: {}", product.product, levels.join("; "));
            }
        }
        out.push_str("\nTASKS\n");
        let width = self
            .tasks
            .iter()
            .map(|t| t.parent.len() + t.target.len() + 1)
            .max()
            .unwrap_or(0);
        for t in &self.tasks {
            let name = format!("{}/{}", t.parent, t.target);
            let incident = t
                .incident_id
                .as_deref()
                .map(|i| format!("  incident {i}"))
                .unwrap_or_default();
            let code = match (t.code.as_deref(), &t.patch) {
                (Some(code), Some(patch)) => {
                    let reason = patch
                        .reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    format!("{}{reason}", numbered(patch.status_code, code))
                }
                (code, _) => code.unwrap_or("-").to_string(),
            };
            let _ = writeln!(out, "{name:<width$}  {:<10}  {code}{incident}", t.result);
        }
        let _ = writeln!(out, "\nAPI writes by the controllers: {}", self.api_writes);
        if !self.complete() {
            out.push_str("not every task ended within the horizon\n");
        }
        out
    }
}
