//! A host task driven through both halves of the engine against a scripted host and node, as
//! the agent and the controller drive it: a case per code and per reason that ends a task, and
//! a crash-anywhere property (the agent and the controller restarted at any step resume from
//! what they stored, and no install or reboot runs twice).

mod cases;
mod world;

use super::*;

#[test]
fn an_agent_is_online_until_its_lease_runs_out_and_not_at_that_instant() {
    let renewed: Timestamp = "2026-11-23T09:00:00Z".parse().expect("a time");
    let expires = lease_expires(Some(renewed), Some(40));
    let at = |secs: i64| renewed + jiff::SignedDuration::from_secs(secs);
    assert_eq!(expires, Some(at(40)));
    assert!(agent_online(expires, at(39)));
    assert!(!agent_online(expires, at(40)));
    assert!(!agent_online(None, at(0)));
    assert_eq!(lease_expires(Some(renewed), Some(0)), None);
    assert_eq!(lease_expires(None, Some(40)), None);
}

#[test]
fn the_rollout_counts_a_blocked_host_as_queued_and_a_locked_one_as_executing() {
    let before = HostCode {
        code: PatchCode::ExecutionBlocked,
        started: false,
    };
    assert!(before.is_ready() && before.is_unstarted() && !before.is_executing());
    let after = HostCode {
        started: true,
        ..before
    };
    assert!(!after.is_ready() && !after.is_unstarted() && after.is_executing());
    let done = HostCode {
        code: PatchCode::Completed,
        started: true,
    };
    assert!(done.is_terminal() && !done.is_failure());
    assert_eq!(
        before.ended_by(EndReason::Blackout).map(|c| c.code),
        Some(PatchCode::CanceledBlackout)
    );
    assert_eq!(
        before.ended_by(EndReason::OutsideWindow),
        None,
        "hosts wait for the window"
    );
}
