//! The rollout: which ready tasks of a resource may start now, and which tasks that have not
//! started end because of the waiting limit, a closed window, a blackout or the error policy.
//! One rollout for every parent kind: it reads a task's code only through [`RolloutCode`], and
//! each kind's codes say which of them are ready, executing or failures and what an unstarted
//! task ends with.
//!
//! Rules, in order: under `errorPolicy: Fail`, once any task failed, every task not yet started
//! ends (executing ones run on); a ready task not started within `maxWait` of its creation ends;
//! nothing starts while suspended; a blackout either closes the gate like any closed window or,
//! for kinds whose blackouts cancel, ends every ready task; with the gate closed, ready tasks
//! wait or end (`outsideWindow`); otherwise ready tasks of the current wave start in the order
//! of their target names, at most `maxConcurrent` executing at once (counted over tasks that left
//! the queue and have not ended, or been released).

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::common::ErrorPolicy;
use crate::api::firmware_upgrade::OutsideWindow;
use crate::schedule::gate::Gate;

/// What the rollout needs to know of a kind's codes.
pub trait RolloutCode: Copy + Eq + fmt::Display {
    /// The task waits in the queue for a slot and an open window.
    fn is_ready(self) -> bool;
    /// The task has not started: it is validating or queued.
    fn is_unstarted(self) -> bool;
    /// The task left the queue and has not ended: it holds a slot.
    fn is_executing(self) -> bool;
    /// The task ended in a failure that counts for `errorPolicy: Fail`.
    fn is_failure(self) -> bool;
    /// The task has ended for good.
    fn is_terminal(self) -> bool;
    /// The code an unstarted task with this code ends with when the rollout ends it for `why`;
    /// `None` when that rule does not end it.
    fn ended_by(self, why: EndReason) -> Option<Self>;
}

/// Why the rollout ends a task that has not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Another task failed under `errorPolicy: Fail`.
    ErrorPolicy,
    /// It did not start within `maxWait` of its creation.
    NotStartedInTime,
    /// The gate was closed and `outsideWindow` is `Cancel`.
    OutsideWindow,
    /// A blackout window was open, for kinds whose blackouts cancel.
    Blackout,
}

/// What an open blackout does to ready tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BlackoutRule {
    /// It closes the gate like any closed window (firmware upgrades, device patches).
    #[default]
    CloseGate,
    /// It ends every ready task (patch jobs: a blackout cancels the hosts not yet started).
    Cancel,
}

/// The rollout settings of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// How many tasks may execute at once (already resolved against the number of targets).
    pub max_concurrent: usize,
    /// What a failure does to the tasks not yet started.
    pub error_policy: ErrorPolicy,
    /// What a ready task does when the gate is closed.
    pub outside_window: OutsideWindow,
    /// What an open blackout does.
    pub blackout: BlackoutRule,
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
pub struct Queued<'a, C> {
    /// Its target's name (tasks start in this order).
    pub target: &'a str,
    /// Its current code.
    pub code: C,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its wave: a wave starts only when every task of the earlier waves has ended (0 for kinds
    /// without waves).
    pub wave: u32,
    /// The task has not ended but no longer holds its slot or its wave (a host left pending a
    /// reboot it will not get from upkeep).
    pub released: bool,
    /// The task may not start now for a reason of its own (its host is held by another job):
    /// it keeps its place in the queue and its waiting limit, but takes no slot.
    pub blocked: bool,
}

impl<C: RolloutCode> Queued<'_, C> {
    /// Whether the task holds a slot.
    pub fn is_executing(&self) -> bool {
        self.code.is_executing() && !self.released
    }

    /// Whether the task no longer keeps its wave open.
    fn is_done(&self) -> bool {
        self.code.is_terminal() || self.released
    }
}

/// What happens to one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision<C> {
    /// It may start now.
    Grant,
    /// It ends with this code, for this reason, with this message, without starting.
    End(C, EndReason, String),
}

/// The rollout's decisions at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan<C> {
    /// Decisions by index into the task list; tasks not listed stay as they are.
    pub decisions: Vec<(usize, Decision<C>)>,
    /// When the plan may change with time alone (a waiting limit, the gate).
    pub wake_at: Option<Timestamp>,
}

impl<C> Default for Plan<C> {
    fn default() -> Self {
        Self {
            decisions: Vec::new(),
            wake_at: None,
        }
    }
}

impl<C: RolloutCode> Plan<C> {
    /// Ends each task of `indices` whose code `why` ends, with `message`.
    fn end_all(
        &mut self,
        tasks: &[Queued<'_, C>],
        indices: impl IntoIterator<Item = usize>,
        why: EndReason,
        message: &str,
    ) {
        for i in indices {
            if let Some(code) = tasks[i].code.ended_by(why) {
                self.decisions
                    .push((i, Decision::End(code, why, message.to_string())));
            }
        }
    }
}

/// Decides, at `now`, which tasks start and which end unstarted.
pub fn plan<C: RolloutCode>(
    policy: &Policy,
    tasks: &[Queued<'_, C>],
    gate: &Gate,
    now: Timestamp,
) -> Plan<C> {
    let mut plan = Plan::default();
    if policy.error_policy == ErrorPolicy::Fail
        && let Some(failed) = tasks.iter().find(|t| t.code.is_failure())
    {
        let why = format!(
            "target {} failed with {} and errorPolicy is Fail",
            failed.target, failed.code
        );
        let unstarted = (0..tasks.len()).filter(|i| tasks[*i].code.is_unstarted());
        plan.end_all(tasks, unstarted, EndReason::ErrorPolicy, &why);
        return plan;
    }

    let mut ready: Vec<usize> = Vec::new();
    let mut late: Vec<usize> = Vec::new();
    for (i, task) in tasks.iter().enumerate().filter(|(_, t)| t.code.is_ready()) {
        let deadline = task
            .created_at
            .checked_add(policy.max_wait)
            .unwrap_or(Timestamp::MAX);
        if now >= deadline {
            late.push(i);
        } else {
            plan.wake_at = earliest(plan.wake_at, deadline);
            ready.push(i);
        }
    }
    let why = format!(
        "not started within maxWait ({}) of its creation",
        friendly(policy.max_wait)
    );
    plan.end_all(tasks, late, EndReason::NotStartedInTime, &why);
    if ready.is_empty() {
        return plan;
    }
    if let Some(next) = gate.next_change {
        plan.wake_at = earliest(plan.wake_at, next);
    }
    if policy.suspend {
        return plan;
    }
    if gate.blackout && policy.blackout == BlackoutRule::Cancel {
        let why = format!("the window gate is closed: {}", gate.reason);
        plan.end_all(tasks, ready, EndReason::Blackout, &why);
        return plan;
    }
    if !gate.open {
        if policy.outside_window == OutsideWindow::Cancel {
            let why = format!("the window gate is closed: {}", gate.reason);
            plan.end_all(tasks, ready, EndReason::OutsideWindow, &why);
        }
        return plan;
    }
    // The current wave: the first that still has a task not done.
    let wave = tasks.iter().filter(|t| !t.is_done()).map(|t| t.wave).min();
    ready.retain(|i| Some(tasks[*i].wave) == wave && !tasks[*i].blocked);
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
