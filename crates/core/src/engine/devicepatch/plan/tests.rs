//! A test per rule of the DevicePatch plan, with no API server: the queue codes each rollout
//! rule ends a task with, task creation and the whole-resource codes, the slot and the freeze of
//! a task that ended `PATCH_ACTIVATED` (`confirm: false`), the grant into `PATCH_LOADING`, and
//! the status it counts.

use std::collections::BTreeMap;

use jiff::SignedDuration;

use super::*;
use crate::api::DevicePatchSpec;
use crate::api::codes::TaskResult;
use crate::api::common::{ErrorPolicy, TargetSelector};
use crate::api::conditions::{READY, STALLED, get};
use crate::api::firmware_upgrade::OutsideWindow;
use crate::engine::rollout::{Decision, EndReason, RolloutCode};
use crate::engine::targets::Candidate;
use crate::schedule::gate::Gate;

use DevicePatchCode::*;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn gate(open: bool) -> Gate {
    Gate {
        open,
        reason: if open {
            "open"
        } else {
            "outside saturday-night"
        }
        .into(),
        blackout: false,
        next_change: None,
    }
}

fn dpatch(names: &[&str]) -> DevicePatch {
    let mut dp = DevicePatch::new(
        "sph106",
        DevicePatchSpec {
            patch: "V100R004C01SPH106".into(),
            package: "V100R004C01SPH106.pkg".into(),
            targets: TargetSelector {
                names: names.iter().map(|n| n.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    dp.metadata.namespace = Some("default".into());
    dp.metadata.generation = Some(1);
    dp
}

fn child(target: &str, code: DevicePatchCode) -> Child<'_> {
    let mut c = Child::of(target, code, at(0));
    if code.is_terminal() {
        c.finished_at = Some(at(100));
    }
    c
}

/// A task that ended `PATCH_ACTIVATED` with `confirm: false`, as its stored status says.
fn unconfirmed(target: &str) -> Child<'_> {
    let mut c = child(target, PatchActivated);
    c.finished_at = Some(at(100));
    c.result = TaskResult::Succeeded;
    c
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

fn candidates<'a>(names: &[&'a str]) -> Vec<Candidate<'a>> {
    names
        .iter()
        .map(|name| Candidate {
            name,
            labels: &NO_LABELS,
        })
        .collect()
}

fn run_at(
    dp: &DevicePatch,
    tasks: &[Child<'_>],
    devices: Option<&[Candidate<'_>]>,
    gate: &Gate,
    now: Timestamp,
) -> Plan {
    plan(&Input {
        parent: dp,
        resource: "default/sph106",
        tasks,
        candidates: devices,
        gate,
        now,
    })
}

fn run(dp: &DevicePatch, tasks: &[Child<'_>]) -> Plan {
    run_at(dp, tasks, None, &gate(true), at(10))
}

#[test]
fn each_rollout_rule_ends_an_unstarted_task_with_its_devicepatch_code() {
    let cases = [
        (
            EndReason::ErrorPolicy,
            WaitingForPreValidation,
            Some(SkippedBecauseErrorPolicy),
        ),
        (
            EndReason::ErrorPolicy,
            ReadyForExecution,
            Some(ExecutionCanceledBecauseErrorPolicy),
        ),
        (
            EndReason::NotStartedInTime,
            ReadyForExecution,
            Some(ExecutionCanceledBecauseADayPassed),
        ),
        (
            EndReason::OutsideWindow,
            ReadyForExecution,
            Some(ExecutionCanceledBecauseMaintenanceWindow),
        ),
        (EndReason::Blackout, ReadyForExecution, None),
        (EndReason::ErrorPolicy, PatchLoading, None),
    ];
    for (why, code, ends) in cases {
        assert_eq!(code.ended_by(why), ends, "{why:?} on {code}");
    }
    assert!(RolloutCode::is_ready(ReadyForExecution));
    assert!(RolloutCode::is_executing(PatchActivating));
    assert!(!RolloutCode::is_executing(ReadyForExecution));
    assert!(RolloutCode::is_failure(ErrorPatchActivationTimeout));
    assert!(!RolloutCode::is_failure(PatchAlreadyRunning));
    assert!(!RolloutCode::is_failure(SkippedDeviceNotAvailable));
}

#[test]
fn every_resolved_target_gets_a_task_and_no_match_is_a_whole_resource_code() {
    let dp = dpatch(&["ne-1", "ne-9"]);
    let devices = candidates(&["ne-1", "ne-2"]);
    let plan = run_at(&dp, &[], Some(&devices), &gate(true), at(10));
    assert_eq!(plan.create, ["ne-1", "ne-9"]);
    assert_eq!(plan.outcome, None);

    let mut by_pattern = dpatch(&[]);
    by_pattern.spec.targets.pattern = Some("osn-*".into());
    let none = run_at(&by_pattern, &[], Some(&devices), &gate(true), at(10));
    let outcome = none.outcome.expect("nothing matches");
    assert_eq!(outcome.code, SkippedNoDevicesMatchingPattern);
    let status = status(&by_pattern, &[], Some(&outcome), &gate(true), at(10));
    assert_eq!(
        status.code.as_deref(),
        Some("SKIPPED_NO_DEVICES_MATCHING_PATTERN")
    );
    assert_eq!(get(&status.conditions, STALLED).unwrap().status, "True");

    by_pattern.spec.targets.pattern = Some("osn-[".into());
    let bad = run_at(&by_pattern, &[], Some(&devices), &gate(true), at(10));
    let bad = bad.outcome.expect("a bad glob");
    assert_eq!(bad.code, SkippedInternalException);
    assert!(bad.incident_id.is_some(), "{bad:?}");
}

#[test]
fn an_unusable_max_concurrent_stalls_with_skipped_internal_exception() {
    let mut dp = dpatch(&["ne-1"]);
    dp.spec.rollout.max_concurrent =
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("0".into());
    let plan = run(&dp, &[child("ne-1", ReadyForExecution)]);
    assert!(plan.decisions.is_empty());
    assert_eq!(plan.outcome.unwrap().code, SkippedInternalException);
}

#[test]
fn one_element_at_a_time_by_default_in_target_order() {
    let dp = dpatch(&[]);
    let tasks = [
        child("ne-2", ReadyForExecution),
        child("ne-1", ReadyForExecution),
    ];
    assert_eq!(run(&dp, &tasks).decisions, [(1, Decision::Grant)]);
    let busy = [
        child("ne-1", PatchWaitingForActivation),
        child("ne-2", ReadyForExecution),
    ];
    assert!(run(&dp, &busy).decisions.is_empty(), "the slot is held");
}

#[test]
fn a_task_that_ended_unconfirmed_holds_no_slot_and_counts_as_succeeded() {
    let mut dp = dpatch(&[]);
    dp.spec.confirm = false;
    let tasks = [unconfirmed("ne-1"), child("ne-2", ReadyForExecution)];
    assert_eq!(run(&dp, &tasks).decisions, [(1, Decision::Grant)]);

    let done = [unconfirmed("ne-1"), child("ne-2", PatchRunning)];
    let status = status(&dp, &done, None, &gate(true), at(200));
    let s = &status.summary;
    assert_eq!((s.total, s.succeeded, s.running, s.waiting), (2, 2, 0, 0));
    assert_eq!(s.by_code["PATCH_ACTIVATED"], 1);
    assert_eq!(get(&status.conditions, READY).unwrap().status, "True");
    assert_eq!(next_look(&done, None, at(200)), None, "every task ended");
    dp.status = Some(status);
    assert!(
        !resolves_targets(&dp, &done),
        "finished and observed: frozen"
    );
}

#[test]
fn an_activated_task_still_under_way_holds_its_slot_and_the_rollout_open() {
    let dp = dpatch(&[]);
    let tasks = [
        child("ne-1", PatchActivated),
        child("ne-2", ReadyForExecution),
    ];
    assert!(run(&dp, &tasks).decisions.is_empty());
    let later = at(10) + SignedDuration::try_from(RESOLVE_INTERVAL).unwrap();
    assert_eq!(next_look(&tasks, None, at(10)), Some(later));
    let status = status(&dp, &tasks, None, &gate(true), at(10));
    assert_eq!((status.summary.running, status.summary.waiting), (1, 1));
}

#[test]
fn queued_tasks_end_at_max_wait_outside_a_window_with_cancel_and_by_error_policy() {
    let mut dp = dpatch(&[]);
    let ready = [child("ne-1", ReadyForExecution)];
    let day = at(0) + SignedDuration::from_hours(24);
    let late = run_at(&dp, &ready, None, &gate(false), day);
    assert!(matches!(
        late.decisions[..],
        [(
            0,
            Decision::End(
                ExecutionCanceledBecauseADayPassed,
                EndReason::NotStartedInTime,
                _
            )
        )]
    ));
    let waiting = run_at(&dp, &ready, None, &gate(false), at(10));
    assert!(waiting.decisions.is_empty(), "Wait: queued");
    assert_eq!(waiting.wake_at, Some(day));

    dp.spec.outside_window = OutsideWindow::Cancel;
    let canceled = run_at(&dp, &ready, None, &gate(false), at(10));
    assert!(matches!(
        canceled.decisions[..],
        [(
            0,
            Decision::End(
                ExecutionCanceledBecauseMaintenanceWindow,
                EndReason::OutsideWindow,
                _
            )
        )]
    ));

    dp.spec.rollout.error_policy = ErrorPolicy::Fail;
    let tasks = [
        child("ne-1", ErrorPatchConfirmFailed),
        child("ne-2", WaitingForPreValidation),
        child("ne-3", ReadyForExecution),
        child("ne-4", PatchLoading),
    ];
    let ended: Vec<(usize, DevicePatchCode)> = run(&dp, &tasks)
        .decisions
        .into_iter()
        .map(|(i, d)| match d {
            Decision::End(code, EndReason::ErrorPolicy, message) => {
                assert!(message.contains("ne-1"), "{message}");
                (i, code)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ended,
        [
            (1, SkippedBecauseErrorPolicy),
            (2, ExecutionCanceledBecauseErrorPolicy)
        ]
    );
}

#[test]
fn a_grant_starts_loading_and_ends_never_touch_a_started_task() {
    let mut state = TaskState::new(at(0));
    state.enter(ReadyForExecution, "ready", at(1));
    assert!(decide(&mut state, &Decision::Grant, at(2)));
    assert_eq!(state.code, PatchLoading);
    assert_eq!(state.started_at, Some(at(2)));
    let end = Decision::End(
        ExecutionCanceledBecauseErrorPolicy,
        EndReason::ErrorPolicy,
        "ne-2 failed".into(),
    );
    assert!(!decide(&mut state, &end, at(3)));
    assert_eq!(state.code, PatchLoading);

    let mut queued = TaskState::new(at(0));
    queued.enter(ReadyForExecution, "ready", at(1));
    assert!(decide(&mut queued, &end, at(3)));
    assert!(queued.is_terminal());
    assert_eq!(queued.code, ExecutionCanceledBecauseErrorPolicy);
}
