//! The controller's half of a started host task, as a sans-IO step: the reboot of a host whose
//! agent reports `2034 Pending Reboot` (drain the node, defer, or grant), the window's close
//! for a reboot not yet granted, an agent that went away mid-task, and the uncordon of a node
//! upkeep cordoned once the task has ended.
//!
//! Invariants: a node is cordoned by upkeep only if it was schedulable before, and then the
//! task records it (`progress.cordoned`, written before the cordon) and the node carries
//! upkeep's annotation; only such a node is ever uncordoned, and it always is once its task
//! has ended or is deferred; a reboot is granted only with the node drained (when it is one and
//! `drain.enabled`), inside the window, and not while a deferral's interval runs; a
//! PodDisruptionBudget is always honoured, the defer annotation only `maxDeferrals` times.

use jiff::{SignedDuration, Timestamp};

use super::state::{HostTask, time};
use crate::api::codes::{PatchCode, PatchReason};
use crate::api::patch_job::PatchJobSpec;

/// How long an agent may be offline mid-task before the task fails.
pub const AGENT_GRACE: SignedDuration = SignedDuration::from_mins(10);
/// How long an agent may be offline after its reboot was granted (the host is rebooting).
pub const REBOOT_GRACE: SignedDuration = SignedDuration::from_mins(30);
/// How often a drain under way is looked at again.
pub const DRAIN_POLL: SignedDuration = SignedDuration::from_secs(10);

/// The Node a host is, as the coordinator sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// The node carries upkeep's cordon annotation for this task.
    pub cordoned_by_us: bool,
}

/// What the coordinator reads besides the task.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The PatchJob's spec.
    pub spec: &'a PatchJobSpec,
    /// The host's Node, when the host is one.
    pub node: Option<NodeState>,
    /// When the host's agent's Lease runs out unless renewed (its renew time plus its
    /// duration, [`super::lease_expires`]): the agent is online before that instant, and a
    /// started task is looked at again then, so an agent that goes silent is noticed even
    /// when nothing else changes. `None`: the agent has no valid Lease (offline).
    pub lease_expires: Option<Timestamp>,
    /// When the agent last renewed its Lease.
    pub agent_seen: Option<Timestamp>,
    /// The Host asks to defer its reboot (`upkeep.dev/defer-reboot`).
    pub defer_requested: bool,
}

/// What the controller is asked to do for the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Cordon the node and mark it as cordoned by upkeep for this task.
    Cordon,
    /// Evict every pod of the node that a drain evicts (not DaemonSet or mirror pods) through
    /// the Eviction API, and report ([`Observation::Drain`]).
    Drain,
    /// Uncordon the node and remove upkeep's mark.
    Uncordon,
}

/// What a drain found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Pods still on the node that a drain must evict.
    pub remaining: u32,
    /// The PodDisruptionBudget that refused an eviction, if one did.
    pub blocked_by: Option<String>,
}

/// The answer to an [`Action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// After [`Action::Cordon`]: whether it was done.
    Cordoned(Result<(), String>),
    /// After [`Action::Drain`].
    Drain(Result<DrainReport, String>),
    /// After [`Action::Uncordon`]: whether it was done.
    Uncordoned(Result<(), String>),
}

/// The coordinator's next move.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// What to do now, if anything.
    pub action: Option<Action>,
    /// Write the task's status before performing the action.
    pub persist_first: bool,
    /// When to step again if nothing happens before.
    pub wake_at: Option<Timestamp>,
}

impl Step {
    fn act(action: Action, persist_first: bool) -> Self {
        Self {
            action: Some(action),
            persist_first,
            wake_at: None,
        }
    }

    fn wait(at: Timestamp) -> Self {
        Self {
            wake_at: Some(at),
            ..Default::default()
        }
    }
}

/// Moves a started task on by one step of the controller's.
pub fn step(
    ctx: &Context<'_>,
    task: &mut HostTask,
    input: Option<Observation>,
    now: Timestamp,
) -> Step {
    match input {
        Some(Observation::Cordoned(Ok(()))) => return Step::act(Action::Drain, false),
        Some(Observation::Uncordoned(Ok(()))) => {
            // `progress.cordoned` stays: it records that upkeep cordoned the node for this
            // task, and the node (no longer marked) says it is released, so an ended task is
            // not written again for the uncordon.
            return if task.is_terminal() {
                Step::default()
            } else {
                Step::wait(now)
            };
        }
        Some(Observation::Cordoned(Err(error)) | Observation::Uncordoned(Err(error))) => {
            task.message = format!("changing the node failed: {error}; trying again");
            return Step::wait(now + DRAIN_POLL);
        }
        Some(Observation::Drain(report)) => return drained(ctx, task, report, now),
        None => {}
    }
    if task.is_terminal() {
        return release_node(ctx);
    }
    if !task.is_started() {
        return Step::default();
    }
    if let Some(step) = agent_gone(ctx, task, now) {
        return step;
    }
    let step = reboot(ctx, task, now);
    match ctx.lease_expires {
        // While the agent is online, look again when its Lease runs out.
        Some(expires) if step.action.is_none() && !task.is_terminal() => Step {
            wake_at: Some(step.wake_at.map_or(expires, |at| at.min(expires))),
            ..step
        },
        _ => step,
    }
}

/// The reboot of a started task whose agent is online: defer it, drain the node, or grant it;
/// end the task when the window closed first.
fn reboot(ctx: &Context<'_>, task: &mut HostTask, now: Timestamp) -> Step {
    let waiting_for_reboot = task.progress.reboot_due
        && !task.progress.reboot_granted
        && matches!(
            task.code,
            PatchCode::PendingReboot | PatchCode::RebootDeferred
        );
    if !waiting_for_reboot {
        return Step::default();
    }
    if let Some(until) = task.progress.until.clone()
        && now >= until.0
    {
        task.end(
            PatchCode::TimedOut,
            Some(PatchReason::RebootOutsideWindow),
            format!(
                "the window closed at {} before the reboot could start; the host still needs it",
                until.0
            ),
            now,
        );
        return release_node(ctx);
    }
    if let Some(next) = task.progress.next_attempt.clone()
        && now < next.0
    {
        return Step::wait(next.0);
    }
    let deferrals_left = task.deferrals.used < task.deferrals.max;
    if ctx.defer_requested && deferrals_left {
        return defer(
            ctx,
            task,
            "the Host asks to defer its reboot (annotation upkeep.dev/defer-reboot)",
            now,
        );
    }
    match ctx.node.filter(|_| ctx.spec.drain.enabled) {
        None => grant(task, now),
        Some(node) if !node.unschedulable => {
            // The cordon and upkeep's annotation naming this task are one write to the node:
            // a crash right after it still finds the node marked as ours and uncordons it, so
            // the task need not be written first (it is written with the drain's outcome).
            task.progress.cordoned = true;
            task.progress.drain_since = Some(time(now));
            Step::act(Action::Cordon, false)
        }
        Some(_) => {
            if task.progress.drain_since.is_none() {
                task.progress.drain_since = Some(time(now));
            }
            Step::act(Action::Drain, false)
        }
    }
}

fn grant(task: &mut HostTask, now: Timestamp) -> Step {
    task.progress.reboot_granted = true;
    task.progress.drain_since = None;
    task.progress.next_attempt = None;
    let message = "the reboot is granted; the agent reboots the host".to_string();
    if task.code == PatchCode::PendingReboot {
        task.message = message;
    } else {
        task.enter(PatchCode::PendingReboot, message, now);
    }
    Step::default()
}

fn defer(ctx: &Context<'_>, task: &mut HostTask, why: &str, now: Timestamp) -> Step {
    task.deferrals.used += 1;
    task.progress.drain_since = None;
    let interval = SignedDuration::try_from(ctx.spec.reboot.deferral_interval.get())
        .unwrap_or(SignedDuration::ZERO);
    let next = now + interval;
    task.progress.next_attempt = Some(time(next));
    let message = format!(
        "the reboot was deferred: {why}; asked again at {next}. Deferral count: ({} of {})",
        task.deferrals.used, task.deferrals.max
    );
    if task.code == PatchCode::RebootDeferred {
        task.repeat(message, now);
    } else {
        task.enter(PatchCode::RebootDeferred, message, now);
    }
    // The node serves again while the reboot waits.
    match release_node(ctx) {
        step if step.action.is_some() => step,
        _ => Step::wait(next),
    }
}

fn drained(
    ctx: &Context<'_>,
    task: &mut HostTask,
    report: Result<DrainReport, String>,
    now: Timestamp,
) -> Step {
    let timeout =
        SignedDuration::try_from(ctx.spec.drain.timeout.get()).unwrap_or(SignedDuration::MAX);
    let since = task.progress.drain_since.as_ref().map_or(now, |t| t.0);
    let deferrals_left = task.deferrals.used < task.deferrals.max;
    match report {
        Ok(report) if report.remaining == 0 && report.blocked_by.is_none() => grant(task, now),
        Ok(DrainReport {
            blocked_by: Some(budget),
            ..
        }) => {
            if deferrals_left {
                defer(
                    ctx,
                    task,
                    &format!("PodDisruptionBudget {budget} allows no disruption now"),
                    now,
                )
            } else {
                task.end(
                    PatchCode::JobFailed,
                    Some(PatchReason::DrainBlocked),
                    format!(
                        "PodDisruptionBudget {budget} still refused the drain after {} deferral(s); the host was not rebooted",
                        task.deferrals.max
                    ),
                    now,
                );
                release_node(ctx)
            }
        }
        Ok(report) if now >= since.checked_add(timeout).unwrap_or(Timestamp::MAX) => {
            let why = format!(
                "the drain did not finish within drain.timeout ({}); {} pod(s) remain",
                ctx.spec.drain.timeout, report.remaining
            );
            if deferrals_left {
                defer(ctx, task, &why, now)
            } else {
                task.end(
                    PatchCode::JobFailed,
                    Some(PatchReason::DrainBlocked),
                    why,
                    now,
                );
                release_node(ctx)
            }
        }
        Ok(_) => Step::wait(now + DRAIN_POLL),
        Err(error) => {
            // The API refused or failed: look again soon; the drain's timeout bounds it.
            task.message = format!("draining the node failed: {error}; trying again");
            Step::wait(now + DRAIN_POLL)
        }
    }
}

/// Uncordons the node when it carries upkeep's mark for this task (made in the same write as
/// the cordon, so the node alone says whether upkeep still holds it).
fn release_node(ctx: &Context<'_>) -> Step {
    if ctx.node.is_some_and(|n| n.cordoned_by_us) {
        return Step::act(Action::Uncordon, false);
    }
    Step::default()
}

/// An agent that stopped renewing its Lease mid-task fails the task after a grace period (a
/// longer one while it reboots).
fn agent_gone(ctx: &Context<'_>, task: &mut HostTask, now: Timestamp) -> Option<Step> {
    if super::agent_online(ctx.lease_expires, now) {
        return None;
    }
    let grace = if task.progress.reboot_granted {
        REBOOT_GRACE
    } else {
        AGENT_GRACE
    };
    let seen = ctx
        .agent_seen
        .or(task.started_at)
        .unwrap_or(task.created_at);
    let deadline = seen + grace;
    if now < deadline {
        return Some(Step::wait(deadline));
    }
    task.end(
        PatchCode::JobFailed,
        Some(PatchReason::AgentOffline),
        format!(
            "the host's agent has not renewed its Lease since {seen} (at {}); check the agent on the host",
            task.code
        ),
        now,
    );
    Some(release_node(ctx))
}

#[cfg(test)]
mod tests;
