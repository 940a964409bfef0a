//! One round of a rollout parent's controller, decided without a client, for every kind whose
//! targets are Devices and whose tasks roll out by the shared queue codes (FirmwareUpgrade,
//! DevicePatch): which targets get a task, which queued tasks start or end, when to look again,
//! and the resource's own status. The controller resolves what this needs from its caches (the
//! tasks, the Devices when [`resolves_targets`] says so, the window gate), calls [`plan`], writes
//! the decisions ([`decide`]), and writes [`status`] of the tasks as they then stand.
//!
//! Rules here: once every task has ended and the spec is unchanged, the target set is frozen (a
//! Device that starts matching later does not reopen a finished rollout); while the resource is
//! unfinished it looks for new Devices at least every [`RESOLVE_INTERVAL`]; a resolution
//! problem (nothing matches, a bad selector) matters only while there are no tasks — existing
//! tasks go on; a `maxConcurrent` that cannot be used stalls the rollout with the kind's
//! internal code, as the whole-resource code when there are no tasks yet. A task that ended
//! with a code the catalogue does not call terminal (a DevicePatch left `PATCH_ACTIVATED` with
//! `confirm: false`) holds neither a slot nor the rollout open.

use std::collections::HashSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::api::codes::{CatalogueCode, TaskResult};
use crate::api::common::{GoDuration, Rollout, TargetSelector};
use crate::api::conditions::{Phase, reason_of};
use crate::api::firmware_upgrade::{FirmwareUpgradeStatus, OutsideWindow};
use crate::engine::parent::{self, ChildTask, Progress};
use crate::engine::rollout::{self, BlackoutRule, Decision, Policy, Queued, RolloutCode};
use crate::engine::targets::{self, Candidate, Resolution, ResourceOutcome, resolve};
use crate::schedule::gate::Gate;

/// How often an unfinished rollout parent looks for new Devices.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(300);

/// The settings of a parent's spec the round reads.
#[derive(Clone, Copy, Debug)]
pub struct Settings<'a> {
    /// The targets.
    pub targets: &'a TargetSelector,
    /// Concurrency and error policy.
    pub rollout: &'a Rollout,
    /// What a ready task does when the gate is closed.
    pub outside_window: OutsideWindow,
    /// How long a task may wait after its creation before it must have started.
    pub max_wait: GoDuration,
    /// Hold the rollout.
    pub suspend: bool,
}

/// A parent kind that rolls out by this round.
pub trait RolloutParent {
    /// Its tasks' codes.
    type Code: RolloutCode + CatalogueCode;
    /// The whole-resource code when no Device matches.
    const NONE_MATCHING: Self::Code;
    /// The whole-resource code when the targets cannot be resolved or the rollout cannot be
    /// used.
    const INTERNAL: Self::Code;
    /// The settings of its spec.
    fn settings(&self) -> Settings<'_>;
    /// Its `metadata.generation`.
    fn generation(&self) -> Option<i64>;
    /// Its status as stored.
    fn rollout_status(&self) -> Option<&FirmwareUpgradeStatus>;
}

/// A task's state as the round changes it (grants and ends of unstarted tasks).
pub trait RoundTask {
    /// Its codes.
    type Code: Copy + Eq;
    /// Its current code.
    fn code(&self) -> Self::Code;
    /// The slot was granted: the task leaves the queue (nothing for a task not ready).
    fn grant(&mut self, now: Timestamp);
    /// Ends a task that has not started (nothing for one that started or ended).
    fn end_unstarted(&mut self, code: Self::Code, message: String, now: Timestamp);
}

/// The rollout's end of an unstarted task, for kinds that share the FirmwareUpgrade queue codes
/// (same variant names): one mapping, not one per kind.
#[macro_export]
#[doc(hidden)]
macro_rules! queue_rollout_code {
    ($code:ident) => {
        impl $crate::engine::rollout::RolloutCode for $code {
            fn is_ready(self) -> bool {
                self == Self::ReadyForExecution
            }

            fn is_unstarted(self) -> bool {
                $code::is_unstarted(self)
            }

            fn is_executing(self) -> bool {
                $code::is_executing(self)
            }

            fn is_failure(self) -> bool {
                $code::is_failure(self)
            }

            fn is_terminal(self) -> bool {
                $code::is_terminal(self)
            }

            fn ended_by(self, why: $crate::engine::rollout::EndReason) -> Option<Self> {
                use $crate::engine::rollout::EndReason;
                match (why, self) {
                    (EndReason::ErrorPolicy, Self::WaitingForPreValidation) => {
                        Some(Self::SkippedBecauseErrorPolicy)
                    }
                    (EndReason::ErrorPolicy, Self::ReadyForExecution) => {
                        Some(Self::ExecutionCanceledBecauseErrorPolicy)
                    }
                    (EndReason::NotStartedInTime, Self::ReadyForExecution) => {
                        Some(Self::ExecutionCanceledBecauseADayPassed)
                    }
                    (EndReason::OutsideWindow, Self::ReadyForExecution) => {
                        Some(Self::ExecutionCanceledBecauseMaintenanceWindow)
                    }
                    _ => None,
                }
            }
        }
    };
}

/// A task of the parent, as the round sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child<'a, C> {
    /// Its target's name.
    pub target: &'a str,
    /// Its current code (`WAITING_FOR_PRE_VALIDATION` before its first status).
    pub code: C,
    /// The code the rollout counts: the code the controller last wrote to the task while its
    /// cache may not show it yet (a task granted a moment ago holds its slot), else `code`.
    pub counted: C,
    /// How it counts (its stored result).
    pub result: TaskResult,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// Its message.
    pub message: &'a str,
}

impl<'a, C: RolloutCode + CatalogueCode> Child<'a, C> {
    /// A task with `code` that counts as the code says (ended when the code is terminal).
    pub fn of(target: &'a str, code: C, created_at: Timestamp) -> Self {
        Self {
            target,
            code,
            counted: code,
            result: CatalogueCode::result(code),
            created_at,
            finished_at: None,
            message: "",
        }
    }

    /// Whether the task has ended for good: a terminal code, or a finishing time.
    pub fn ended(&self) -> bool {
        RolloutCode::is_terminal(self.code) || self.finished_at.is_some()
    }

    fn as_child_task(&self) -> ChildTask<'a, C> {
        ChildTask {
            target: self.target,
            code: self.code,
            result: self.result,
            finished_at: self.finished_at,
            message: self.message,
        }
    }
}

/// Whether this round must resolve the targets: not once every task ended for the spec as it
/// is (the set is frozen then).
pub fn resolves_targets<P: RolloutParent>(parent: &P, tasks: &[Child<'_, P::Code>]) -> bool {
    let observed = parent.rollout_status().and_then(|s| s.observed_generation);
    let frozen =
        !tasks.is_empty() && tasks.iter().all(Child::ended) && observed == parent.generation();
    !frozen
}

/// What one round needs.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a, P: RolloutParent> {
    /// The parent.
    pub parent: &'a P,
    /// `namespace/name` of the parent, for incident ids.
    pub resource: &'a str,
    /// Its tasks.
    pub tasks: &'a [Child<'a, P::Code>],
    /// The Devices of its namespace, when [`resolves_targets`] asked for them.
    pub candidates: Option<&'a [Candidate<'a>]>,
    /// The window gate now.
    pub gate: &'a Gate,
    /// Now.
    pub now: Timestamp,
}

/// What the controller does this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan<C> {
    /// Targets that get a task (none of them has one).
    pub create: Vec<String>,
    /// Rollout decisions, by index into the tasks.
    pub decisions: Vec<(usize, Decision<C>)>,
    /// A code for the resource as a whole, when it has one.
    pub outcome: Option<ResourceOutcome<C>>,
    /// When the rollout may change with time alone (a waiting limit, the gate).
    pub wake_at: Option<Timestamp>,
}

/// Decides one round of a rollout parent's controller.
pub fn plan<P: RolloutParent>(input: &Input<'_, P>) -> Plan<P::Code> {
    let Input {
        parent,
        resource,
        tasks,
        candidates,
        gate,
        now,
    } = *input;
    let settings = parent.settings();
    let mut plan = Plan {
        create: Vec::new(),
        decisions: Vec::new(),
        outcome: None,
        wake_at: None,
    };
    if let Some(candidates) = candidates {
        let resolution = resolve(settings.targets, candidates);
        plan.outcome = targets::resource_outcome(
            &resolution,
            resource,
            now,
            P::NONE_MATCHING,
            (P::INTERNAL, CatalogueCode::name(P::INTERNAL)),
        )
        .filter(|_| tasks.is_empty());
        if let Ok(Resolution::Targets(targets)) = &resolution {
            let existing: HashSet<&str> = tasks.iter().map(|t| t.target).collect();
            plan.create = targets
                .iter()
                .filter(|t| !existing.contains(t.name.as_str()))
                .map(|t| t.name.clone())
                .collect();
        }
    }
    if !tasks.is_empty() {
        match policy::<P>(&settings, tasks.len()) {
            Ok(policy) => {
                let queued: Vec<Queued<'_, P::Code>> = tasks
                    .iter()
                    .map(|t| Queued {
                        target: t.target,
                        code: t.counted,
                        created_at: t.created_at,
                        wave: 0,
                        released: t.ended() && !RolloutCode::is_terminal(t.code),
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

/// When to look at the parent again, its tasks standing as they do after the round: at
/// `wake_at`, and within [`RESOLVE_INTERVAL`] while it is unfinished (to find new Devices);
/// `None` once every task has ended (only a change brings it back).
pub fn next_look<C: RolloutCode + CatalogueCode>(
    tasks: &[Child<'_, C>],
    wake_at: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let ended = !tasks.is_empty() && tasks.iter().all(Child::ended);
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
pub fn decide<T: RoundTask>(state: &mut T, decision: &Decision<T::Code>, now: Timestamp) -> bool {
    let before = state.code();
    match decision {
        Decision::Grant => state.grant(now),
        Decision::End(code, _, why) => state.end_unstarted(*code, why.clone(), now),
    }
    state.code() != before
}

/// The rollout settings for `total` tasks.
fn policy<P: RolloutParent>(
    settings: &Settings<'_>,
    total: usize,
) -> Result<Policy, ResourceOutcome<P::Code>> {
    let max_concurrent =
        rollout::max_concurrent(&settings.rollout.max_concurrent, total).map_err(|e| {
            ResourceOutcome {
                code: P::INTERNAL,
                message: e.to_string(),
                incident_id: None,
            }
        })?;
    Ok(Policy {
        max_concurrent,
        error_policy: settings.rollout.error_policy,
        outside_window: settings.outside_window,
        blackout: BlackoutRule::CloseGate,
        max_wait: SignedDuration::try_from(settings.max_wait.get()).unwrap_or(SignedDuration::MAX),
        suspend: settings.suspend,
    })
}

/// The parent's status with its tasks as they stand and the round's `outcome`, keeping the
/// conditions' transition times of the status it has.
pub fn status<P: RolloutParent>(
    parent: &P,
    tasks: &[Child<'_, P::Code>],
    outcome: Option<&ResourceOutcome<P::Code>>,
    gate: &Gate,
    now: Timestamp,
) -> FirmwareUpgradeStatus {
    let generation = parent.generation();
    let suspend = parent.settings().suspend;
    let previous = parent.rollout_status().cloned().unwrap_or_default();
    let children: Vec<ChildTask<'_, P::Code>> = tasks.iter().map(Child::as_child_task).collect();
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
            let name = CatalogueCode::name(o.code);
            status.code = Some(name.to_string());
            status.message = Some(o.message.clone());
            Progress::new(Phase::Stalled, reason_of(name), o.message.clone())
        }
        Some(o) => Progress::new(Phase::Stalled, "InvalidRollout", o.message.clone()),
        None => parent::progress(&status.summary, suspend, gate),
    };
    parent::set_conditions(&mut status.conditions, &progress, suspend, generation, now);
    status
}
