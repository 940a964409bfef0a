//! The rollout: which ready tasks of a resource may start now, and which queued tasks end
//! because of the waiting limit, a closed window or the error policy.
//!
//! Tasks start in the order of their target names, at most `maxConcurrent` executing at once
//! (counted over tasks that left the queue and have not ended).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::codes::{FirmwareCode, Stage};
use crate::api::common::ErrorPolicy;
use crate::api::firmware_upgrade::OutsideWindow;
use crate::schedule::gate::Gate;

/// The rollout settings of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// How many tasks may execute at once (already resolved against the number of targets).
    pub max_concurrent: usize,
    /// What a failure does to the tasks not yet started.
    pub error_policy: ErrorPolicy,
    /// What a ready task does when the gate is closed.
    pub outside_window: OutsideWindow,
    /// How long a task may wait after its creation before it must have started.
    pub max_wait: SignedDuration,
    /// Hold: grant nothing, cancel nothing for the window.
    pub suspend: bool,
}

/// Why `maxConcurrent` cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("maxConcurrent {0:?} is neither an integer of at least 1 nor a percentage from 1% to 100%")]
pub struct MaxConcurrentError(pub String);

/// Resolves `maxConcurrent` for `total` targets: an integer as is, a percentage of the targets
/// rounded down but at least 1.
pub fn max_concurrent(value: &IntOrString, total: usize) -> Result<usize, MaxConcurrentError> {
    let err = || {
        MaxConcurrentError(match value {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s.clone(),
        })
    };
    match value {
        IntOrString::Int(n) => usize::try_from(*n).ok().filter(|n| *n >= 1).ok_or_else(err),
        IntOrString::String(s) => match s.strip_suffix('%') {
            Some(percent) => {
                let p: usize = percent.parse().map_err(|_| err())?;
                if !(1..=100).contains(&p) {
                    return Err(err());
                }
                Ok((total * p / 100).max(1))
            }
            None => s.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(err),
        },
    }
}

/// A task as the rollout sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued<'a> {
    /// Its target's name (tasks start in this order).
    pub target: &'a str,
    /// Its current code.
    pub code: FirmwareCode,
    /// When it was created.
    pub created_at: Timestamp,
}

impl Queued<'_> {
    /// Whether the task left the queue and has not ended.
    pub fn is_executing(&self) -> bool {
        self.code.stage() == Stage::Execution && !self.code.is_terminal()
    }
}

/// What happens to one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It may start now.
    Grant,
    /// It ends with this code and message without starting.
    End(FirmwareCode, String),
}

/// The rollout's decisions at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Decisions by index into the task list; tasks not listed stay as they are.
    pub decisions: Vec<(usize, Decision)>,
    /// When the plan may change with time alone (a waiting limit, the gate).
    pub wake_at: Option<Timestamp>,
}

/// Decides, at `now`, which tasks start and which end unstarted.
pub fn plan(policy: &Policy, tasks: &[Queued<'_>], gate: &Gate, now: Timestamp) -> Plan {
    let mut plan = Plan::default();
    if policy.error_policy == ErrorPolicy::Fail
        && let Some(failed) = tasks.iter().find(|t| t.code.is_failure())
    {
        let why = format!(
            "target {} failed with {} and errorPolicy is Fail",
            failed.target, failed.code
        );
        for (i, task) in tasks.iter().enumerate() {
            let code = match task.code {
                FirmwareCode::WaitingForPreValidation => FirmwareCode::SkippedBecauseErrorPolicy,
                FirmwareCode::ReadyForExecution => {
                    FirmwareCode::ExecutionCanceledBecauseErrorPolicy
                }
                _ => continue,
            };
            plan.decisions.push((i, Decision::End(code, why.clone())));
        }
        return plan;
    }

    let mut ready: Vec<usize> = Vec::new();
    for (i, task) in tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.code == FirmwareCode::ReadyForExecution)
    {
        let deadline = task
            .created_at
            .checked_add(policy.max_wait)
            .unwrap_or(Timestamp::MAX);
        if now >= deadline {
            let why = format!(
                "not started within maxWait ({}) of its creation",
                friendly(policy.max_wait)
            );
            plan.decisions.push((
                i,
                Decision::End(FirmwareCode::ExecutionCanceledBecauseADayPassed, why),
            ));
        } else {
            plan.wake_at = earliest(plan.wake_at, deadline);
            ready.push(i);
        }
    }
    if ready.is_empty() {
        return plan;
    }
    if let Some(next) = gate.next_change {
        plan.wake_at = earliest(plan.wake_at, next);
    }
    if policy.suspend {
        return plan;
    }
    if !gate.open {
        match policy.outside_window {
            OutsideWindow::Cancel => {
                for i in ready {
                    let why = format!("the window gate is closed: {}", gate.reason);
                    plan.decisions.push((
                        i,
                        Decision::End(FirmwareCode::ExecutionCanceledBecauseMaintenanceWindow, why),
                    ));
                }
            }
            OutsideWindow::Wait => {}
        }
        return plan;
    }
    ready.sort_by_key(|i| tasks[*i].target);
    let executing = tasks.iter().filter(|t| t.is_executing()).count();
    let slots = policy.max_concurrent.saturating_sub(executing);
    for i in ready.into_iter().take(slots) {
        plan.decisions.push((i, Decision::Grant));
    }
    plan
}

fn earliest(current: Option<Timestamp>, candidate: Timestamp) -> Option<Timestamp> {
    Some(current.map_or(candidate, |c| c.min(candidate)))
}

fn friendly(d: SignedDuration) -> String {
    crate::api::common::GoDuration(d.unsigned_abs()).to_string()
}

#[cfg(test)]
mod tests;
