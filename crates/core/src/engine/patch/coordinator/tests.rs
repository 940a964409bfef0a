//! Unit tests of the coordinator's own rules; see `../tests/cases.rs` for the cases that drive
//! tasks through both halves.

use jiff::Timestamp;

use super::{AGENT_GRACE, Context, Step, step};
use crate::api::codes::{PatchCode, PatchReason};
use crate::api::patch_job::PatchJobSpec;
use crate::engine::patch::state::HostTask;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_795_000_000 + secs).unwrap()
}

/// A task the agent is installing (started at 0).
fn installing() -> HostTask {
    let mut task = HostTask::new(at(0), 3);
    task.started_at = Some(at(0));
    task.enter(PatchCode::Patching, "installing", at(0));
    task
}

/// A host outside the cluster whose agent last renewed its Lease at 0, for 120 s.
fn renewed_at_0(spec: &PatchJobSpec) -> Context<'_> {
    Context {
        spec,
        node: None,
        lease_expires: Some(at(120)),
        agent_seen: Some(at(0)),
        defer_requested: false,
    }
}

#[test]
fn a_started_task_is_looked_at_again_when_its_agents_lease_runs_out() {
    let spec = PatchJobSpec::default();
    // The agent renewed its Lease at 0 for 120 s, and then went silent.
    let ctx = renewed_at_0(&spec);
    let mut task = installing();
    // Nothing to do while the Lease holds, but a wake when it runs out: without it, a silent
    // agent would go unnoticed until something else changed the task.
    assert_eq!(
        step(&ctx, &mut task, None, at(10)),
        Step {
            wake_at: Some(at(120)),
            ..Step::default()
        }
    );
    assert_eq!(task.code, PatchCode::Patching);
    // At the Lease's end the agent is offline: the task waits out the grace from the last
    // renewal, then fails saying so.
    let grace_ends = at(0) + AGENT_GRACE;
    assert_eq!(
        step(&ctx, &mut task, None, at(120)).wake_at,
        Some(grace_ends)
    );
    assert_eq!(task.code, PatchCode::Patching);
    step(&ctx, &mut task, None, grace_ends);
    assert_eq!(task.code, PatchCode::JobFailed);
    assert_eq!(task.reason, Some(PatchReason::AgentOffline));
}

#[test]
fn an_earlier_wake_is_kept_and_an_ended_task_is_not_woken() {
    let spec = PatchJobSpec::default();
    let ctx = renewed_at_0(&spec);
    // A deferred reboot asked again at 60 wakes at 60, before the Lease runs out.
    let mut task = installing();
    task.progress.reboot_due = true;
    task.enter(PatchCode::RebootDeferred, "deferred", at(0));
    task.progress.next_attempt = Some(crate::engine::patch::state::time(at(60)));
    assert_eq!(step(&ctx, &mut task, None, at(10)).wake_at, Some(at(60)));
    // An ended task is never looked at again for its agent.
    let mut ended = installing();
    ended.end(PatchCode::Completed, None, "done", at(5));
    assert_eq!(step(&ctx, &mut ended, None, at(10)), Step::default());
}
