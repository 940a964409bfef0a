//! What the FirmwareUpgrade controller does in one round, decided without a client: which
//! targets get a task, which queued tasks start or end, when to look again, and the resource's
//! own status. The controller resolves what this needs from its caches (the tasks, the Devices
//! when [`resolves_targets`] says so, the window gate), calls [`plan`], writes the decisions, and
//! writes [`status`] of the tasks as they then stand.
//!
//! Rules here: once every task has ended and the spec is unchanged, the target set is frozen (a
//! Device that starts matching later does not reopen a finished upgrade); while the resource is
//! unfinished it looks for new Devices at least every [`RESOLVE_INTERVAL`]; a resolution
//! problem (nothing matches, a bad selector) matters only while there are no tasks — existing
//! tasks go on; a `maxConcurrent` that cannot be used stalls the rollout with
//! `SKIPPED_INTERNAL_EXCEPTION`, as the whole-resource code when there are no tasks yet.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::state::TaskState;
use super::{ResourceOutcome, resource_outcome};
use crate::api::codes::FirmwareCode;
use crate::api::conditions::{Phase, reason_of};
use crate::api::{FirmwareUpgrade, FirmwareUpgradeStatus};
use crate::engine::parent::{self, ChildTask, Progress};
use crate::engine::rollout::{
    self, BlackoutRule, Decision, EndReason, Policy, Queued, RolloutCode,
};
use crate::engine::targets::{Candidate, Resolution, resolve};
use crate::schedule::gate::Gate;

/// How often an unfinished FirmwareUpgrade looks for new Devices.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(300);

impl RolloutCode for FirmwareCode {
    fn is_ready(self) -> bool {
        self == Self::ReadyForExecution
    }

    fn is_unstarted(self) -> bool {
        FirmwareCode::is_unstarted(self)
    }

    fn is_executing(self) -> bool {
        FirmwareCode::is_executing(self)
    }

    fn is_failure(self) -> bool {
        FirmwareCode::is_failure(self)
    }

    fn is_terminal(self) -> bool {
        FirmwareCode::is_terminal(self)
    }

    fn ended_by(self, why: EndReason) -> Option<Self> {
        use FirmwareCode::*;
        match (why, self) {
            (EndReason::ErrorPolicy, WaitingForPreValidation) => Some(SkippedBecauseErrorPolicy),
            (EndReason::ErrorPolicy, ReadyForExecution) => {
                Some(ExecutionCanceledBecauseErrorPolicy)
            }
            (EndReason::NotStartedInTime, ReadyForExecution) => {
                Some(ExecutionCanceledBecauseADayPassed)
            }
            (EndReason::OutsideWindow, ReadyForExecution) => {
                Some(ExecutionCanceledBecauseMaintenanceWindow)
            }
            _ => None,
        }
    }
}

/// A task of the FirmwareUpgrade, as the plan sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child<'a> {
    /// Its target's name.
    pub target: &'a str,
    /// Its current code (`WAITING_FOR_PRE_VALIDATION` before its first status).
    pub code: FirmwareCode,
    /// The code the rollout counts: the code the controller last wrote to the task while its
    /// cache may not show it yet (a task granted a moment ago holds its slot), else `code`.
    pub counted: FirmwareCode,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// Its message.
    pub message: &'a str,
}

impl<'a> Child<'a> {
    fn as_child_task(&self) -> ChildTask<'a, FirmwareCode> {
        ChildTask {
            target: self.target,
            code: self.code,
            finished_at: self.finished_at,
            message: self.message,
        }
    }
}

/// Whether this round must resolve the targets: not once every task ended for the spec as it
/// is (the set is frozen then).
pub fn resolves_targets(upgrade: &FirmwareUpgrade, tasks: &[Child<'_>]) -> bool {
    let observed = upgrade.status.as_ref().and_then(|s| s.observed_generation);
    let frozen = !tasks.is_empty()
        && tasks.iter().all(|t| t.code.is_terminal())
        && observed == upgrade.metadata.generation;
    !frozen
}

/// What one round needs.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The FirmwareUpgrade.
    pub upgrade: &'a FirmwareUpgrade,
    /// `namespace/name` of the FirmwareUpgrade, for incident ids.
    pub resource: &'a str,
    /// Its tasks.
    pub tasks: &'a [Child<'a>],
    /// The Devices of its namespace, when [`resolves_targets`] asked for them.
    pub candidates: Option<&'a [Candidate<'a>]>,
    /// The window gate now.
    pub gate: &'a Gate,
    /// Now.
    pub now: Timestamp,
}

/// What the controller does this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Targets that get a task (none of them has one).
    pub create: Vec<String>,
    /// Rollout decisions, by index into the tasks.
    pub decisions: Vec<(usize, Decision<FirmwareCode>)>,
    /// A code for the resource as a whole, when it has one.
    pub outcome: Option<ResourceOutcome>,
    /// When the rollout may change with time alone (a waiting limit, the gate).
    pub wake_at: Option<Timestamp>,
}

/// Decides one round of the FirmwareUpgrade controller.
pub fn plan(input: &Input<'_>) -> Plan {
    let Input {
        upgrade,
        resource,
        tasks,
        candidates,
        gate,
        now,
    } = *input;
    let mut plan = Plan {
        create: Vec::new(),
        decisions: Vec::new(),
        outcome: None,
        wake_at: None,
    };
    if let Some(candidates) = candidates {
        let resolution = resolve(&upgrade.spec.targets, candidates);
        plan.outcome = resource_outcome(&resolution, resource, now).filter(|_| tasks.is_empty());
        if let Ok(Resolution::Targets(targets)) = &resolution {
            let existing: BTreeSet<&str> = tasks.iter().map(|t| t.target).collect();
            plan.create = targets
                .iter()
                .filter(|t| !existing.contains(t.name.as_str()))
                .map(|t| t.name.clone())
                .collect();
        }
    }
    if !tasks.is_empty() {
        match policy(upgrade, tasks.len()) {
            Ok(policy) => {
                let queued: Vec<Queued<'_, FirmwareCode>> = tasks
                    .iter()
                    .map(|t| Queued {
                        target: t.target,
                        code: t.counted,
                        created_at: t.created_at,
                        wave: 0,
                        released: false,
                        blocked: false,
                    })
                    .collect();
                let rollout = rollout::plan(&policy, &queued, gate, now);
                plan.decisions = rollout.decisions;
                plan.wake_at = rollout.wake_at;
            }
            Err(problem) => plan.outcome = Some(problem),
        }
    }
    plan
}

/// When to look at the FirmwareUpgrade again, its tasks standing as they do after the round:
/// at `wake_at`, and within [`RESOLVE_INTERVAL`] while it is unfinished (to find new Devices);
/// `None` once every task has ended (only a change brings it back).
pub fn next_look(
    tasks: &[Child<'_>],
    wake_at: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let ended = !tasks.is_empty() && tasks.iter().all(|t| t.code.is_terminal());
    let recheck = (!ended).then(|| {
        now.checked_add(SignedDuration::try_from(RESOLVE_INTERVAL).unwrap_or(SignedDuration::ZERO))
            .unwrap_or(now)
    });
    match (recheck, wake_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Applies a rollout decision to a task's state; returns whether it changed.
pub fn decide(state: &mut TaskState, decision: &Decision<FirmwareCode>, now: Timestamp) -> bool {
    let before = state.code;
    match decision {
        Decision::Grant => state.grant(now),
        Decision::End(code, _, why) => state.end_unstarted(*code, why.clone(), now),
    }
    state.code != before
}

/// The rollout settings of `upgrade` for `total` tasks.
fn policy(upgrade: &FirmwareUpgrade, total: usize) -> Result<Policy, ResourceOutcome> {
    let spec = &upgrade.spec;
    let max_concurrent =
        rollout::max_concurrent(&spec.rollout.max_concurrent, total).map_err(|e| {
            ResourceOutcome {
                code: FirmwareCode::SkippedInternalException,
                message: e.to_string(),
                incident_id: None,
            }
        })?;
    Ok(Policy {
        max_concurrent,
        error_policy: spec.rollout.error_policy,
        outside_window: spec.outside_window,
        blackout: BlackoutRule::CloseGate,
        max_wait: SignedDuration::try_from(spec.max_wait.get()).unwrap_or(SignedDuration::MAX),
        suspend: spec.suspend,
    })
}

/// The FirmwareUpgrade's status with its tasks as they stand and the round's `outcome`,
/// keeping the conditions' transition times of the status it has.
pub fn status(
    upgrade: &FirmwareUpgrade,
    tasks: &[Child<'_>],
    outcome: Option<&ResourceOutcome>,
    gate: &Gate,
    now: Timestamp,
) -> FirmwareUpgradeStatus {
    let generation = upgrade.metadata.generation;
    let previous = upgrade.status.clone().unwrap_or_default();
    let children: Vec<ChildTask<'_, FirmwareCode>> =
        tasks.iter().map(Child::as_child_task).collect();
    let mut status = FirmwareUpgradeStatus {
        observed_generation: generation,
        summary: parent::summarize(&children),
        first_failures: parent::first_failures(&children),
        code: None,
        message: None,
        conditions: previous.conditions,
    };
    let progress = match outcome {
        Some(o) if tasks.is_empty() => {
            status.code = Some(o.code.name().to_string());
            status.message = Some(o.message.clone());
            Progress::new(Phase::Stalled, reason_of(o.code.name()), o.message.clone())
        }
        Some(o) => Progress::new(Phase::Stalled, "InvalidRollout", o.message.clone()),
        None => parent::progress(&status.summary, upgrade.spec.suspend, gate),
    };
    parent::set_conditions(
        &mut status.conditions,
        &progress,
        upgrade.spec.suspend,
        generation,
        now,
    );
    status
}

#[cfg(test)]
mod tests;
