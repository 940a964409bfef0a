//! A parent resource's own status from its tasks, for every parent kind: the bounded summary,
//! the first failures, and where the rollout stands as kstatus conditions.
//!
//! Invariants: the summary's counts add up (`succeeded + failed + running + waiting` plus the
//! skipped and canceled tasks is `total`); `firstFailures` holds at most [`FIRST_FAILURES`]
//! entries, in the order the tasks failed; a suspended resource never shows `Reconciling` True
//! (kstatus would read it as stuck), but `Reconciling` False with reason `Suspended`.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::rollout::RolloutCode;
use crate::api::codes::{CatalogueCode, TaskResult};
use crate::api::common::{Summary, TargetFailure};
use crate::api::conditions::{self, Phase};
use crate::schedule::gate::Gate;

/// How many failed targets a parent's status lists.
pub const FIRST_FAILURES: usize = 10;

/// A task as its parent's status sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildTask<'a, C> {
    /// Its target's name.
    pub target: &'a str,
    /// Its current code.
    pub code: C,
    /// How it counts (the code's result, but Succeeded for a DevicePatch task that ended
    /// `PATCH_ACTIVATED` with `confirm: false`).
    pub result: TaskResult,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// Its message.
    pub message: &'a str,
}

/// Counts of `tasks` by code and outcome.
pub fn summarize<C: CatalogueCode + RolloutCode>(tasks: &[ChildTask<'_, C>]) -> Summary {
    let mut summary = Summary {
        total: u32::try_from(tasks.len()).unwrap_or(u32::MAX),
        ..Default::default()
    };
    for task in tasks {
        *summary
            .by_code
            .entry(CatalogueCode::name(task.code).to_string())
            .or_default() += 1;
        match task.result {
            TaskResult::Succeeded => summary.succeeded += 1,
            TaskResult::Failed => summary.failed += 1,
            TaskResult::InProgress if task.code.is_executing() => summary.running += 1,
            TaskResult::InProgress => summary.waiting += 1,
            TaskResult::Skipped | TaskResult::Canceled => {}
        }
    }
    summary
}

/// The first failed tasks, in the order they failed (then by target), at most
/// [`FIRST_FAILURES`].
pub fn first_failures<C: CatalogueCode>(tasks: &[ChildTask<'_, C>]) -> Vec<TargetFailure> {
    let mut failed: Vec<&ChildTask<'_, C>> = tasks
        .iter()
        .filter(|t| t.result == TaskResult::Failed)
        .collect();
    failed.sort_by(|a, b| {
        a.finished_at
            .cmp(&b.finished_at)
            .then(a.target.cmp(b.target))
    });
    failed
        .into_iter()
        .take(FIRST_FAILURES)
        .map(|t| TargetFailure {
            target: t.target.to_string(),
            code: CatalogueCode::name(t.code).to_string(),
            message: t.message.to_string(),
        })
        .collect()
}

/// Where a parent stands: its kstatus phase, the conditions' reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Reconciling, Ready or Stalled.
    pub phase: Phase,
    /// The conditions' CamelCase reason.
    pub reason: String,
    /// The conditions' message.
    pub message: String,
}

impl Progress {
    /// A phase with its reason and message.
    pub fn new(phase: Phase, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            phase,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Where the rollout of a parent with `summary` stands: resolving while it has no tasks,
/// rolling out (or suspended) while any task has not ended, stalled when any failed, ready
/// when every task ended without a failure.
pub fn progress(summary: &Summary, suspended: bool, gate: &Gate) -> Progress {
    let ended = summary.total - summary.running - summary.waiting;
    if summary.total == 0 {
        return Progress::new(Phase::Reconciling, "Resolving", "resolving the targets");
    }
    if ended < summary.total {
        let mut message = format!(
            "{ended} of {} targets done ({} succeeded, {} failed); {} running, {} waiting",
            summary.total, summary.succeeded, summary.failed, summary.running, summary.waiting
        );
        if summary.waiting > 0 {
            message.push_str(&format!("; window gate: {}", gate.reason));
        }
        let reason = if suspended { "Suspended" } else { "RollingOut" };
        return Progress::new(Phase::Reconciling, reason, message);
    }
    if summary.failed > 0 {
        let message = format!(
            "{} of {} targets failed; {} succeeded",
            summary.failed, summary.total, summary.succeeded
        );
        return Progress::new(Phase::Stalled, "TargetsFailed", message);
    }
    let skipped = summary.total - summary.succeeded;
    Progress::new(
        Phase::Ready,
        "Completed",
        format!(
            "all {} targets done: {} succeeded, {skipped} skipped or canceled",
            summary.total, summary.succeeded
        ),
    )
}

/// Sets the kstatus conditions of a parent to `progress`. A suspended parent that would be
/// reconciling shows `Reconciling` False with reason `Suspended` instead.
pub fn set_conditions(
    conditions: &mut Vec<Condition>,
    progress: &Progress,
    suspended: bool,
    generation: Option<i64>,
    now: Timestamp,
) {
    conditions::set_phase(
        conditions,
        progress.phase,
        &progress.reason,
        &progress.message,
        generation,
        now,
    );
    if suspended && progress.phase == Phase::Reconciling {
        conditions::set(
            conditions,
            conditions::Desired::new(
                conditions::RECONCILING,
                false,
                "Suspended",
                progress.message.clone(),
            ),
            generation,
            now,
        );
    }
}

pub mod round;

#[cfg(test)]
mod tests;
