//! A test per rule of the FirmwareUpgrade plan, with no API server: the freeze rule, resolution
//! problems, task creation, the rollout decisions and their counted codes, when to look again,
//! and the status (summary, first failures, phases, the suspended override).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use jiff::SignedDuration;

use super::*;
use crate::api::FirmwareUpgradeSpec;
use crate::api::common::TargetSelector;
use crate::api::conditions::{READY, RECONCILING, STALLED, get};
use crate::engine::parent;
use crate::engine::rollout::{Decision, EndReason};
use crate::engine::targets::{Candidate, ResourceOutcome};
use crate::schedule::gate::Gate;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn open() -> Gate {
    Gate {
        open: true,
        reason: "no maintenance window is required".into(),
        blackout: false,
        next_change: None,
    }
}

fn upgrade(names: &[&str]) -> FirmwareUpgrade {
    let mut fw = FirmwareUpgrade::new(
        "fw",
        FirmwareUpgradeSpec {
            image: "idg7519.oradco.scrypt4".into(),
            targets: TargetSelector {
                names: names.iter().map(|n| n.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    fw.metadata.namespace = Some("default".into());
    fw.metadata.generation = Some(1);
    fw
}

fn child(target: &str, code: FirmwareCode) -> Child<'_> {
    Child {
        target,
        code,
        counted: code,
        result: code.result(),
        created_at: at(0),
        finished_at: code.is_terminal().then(|| at(100)),
        message: "",
    }
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

fn run(upgrade: &FirmwareUpgrade, tasks: &[Child<'_>], devices: Option<&[Candidate<'_>]>) -> Plan {
    plan(&Input {
        parent: upgrade,
        resource: "default/fw",
        tasks,
        candidates: devices,
        gate: &open(),
        now: at(10),
    })
}

#[test]
fn a_finished_upgrade_is_frozen_until_its_spec_changes() {
    let mut fw = upgrade(&["dp-1"]);
    let done = [child("dp-1", FirmwareCode::Success)];
    let running = [child("dp-1", FirmwareCode::ExecutionWaitingForUploadImage)];
    assert!(resolves_targets(&fw, &[]), "no tasks yet: resolve");
    assert!(resolves_targets(&fw, &running), "unfinished: resolve");
    assert!(
        resolves_targets(&fw, &done),
        "status not yet written for this generation"
    );
    fw.status = Some(FirmwareUpgradeStatus {
        observed_generation: Some(1),
        ..Default::default()
    });
    assert!(
        !resolves_targets(&fw, &done),
        "finished and observed: frozen"
    );
    fw.metadata.generation = Some(2);
    assert!(resolves_targets(&fw, &done), "a new spec reopens it");
}

#[test]
fn every_resolved_target_without_a_task_gets_one() {
    let fw = upgrade(&["dp-1", "dp-2", "dp-9"]);
    let devices = candidates(&["dp-1", "dp-2"]);
    let tasks = [child("dp-1", FirmwareCode::ReadyForExecution)];
    let plan = run(&fw, &tasks, Some(&devices));
    // A named target without a Device still gets a task (it ends "does not exist").
    assert_eq!(plan.create, ["dp-2", "dp-9"]);
    assert_eq!(plan.outcome, None);
    assert!(
        run(&fw, &tasks, None).create.is_empty(),
        "not resolved: nothing to create"
    );
}

#[test]
fn a_resolution_problem_matters_only_while_there_are_no_tasks() {
    let mut fw = upgrade(&[]);
    fw.spec.targets.pattern = Some("dp-*".into());
    let none: Vec<Candidate<'_>> = candidates(&["web-1"]);
    let plan_without = run(&fw, &[], Some(&none));
    let outcome = plan_without.outcome.expect("no device matches");
    assert_eq!(outcome.code, FirmwareCode::SkippedNoDevicesMatchingPattern);
    let tasks = [child("dp-1", FirmwareCode::ReadyForExecution)];
    assert_eq!(run(&fw, &tasks, Some(&none)).outcome, None);

    fw.spec.targets.pattern = Some("dp-[".into());
    let bad = run(&fw, &[], Some(&none)).outcome.expect("a bad glob");
    assert_eq!(bad.code, FirmwareCode::SkippedInternalException);
    assert!(bad.incident_id.is_some(), "{bad:?}");
}

#[test]
fn an_unusable_max_concurrent_stalls_the_rollout_with_skipped_internal_exception() {
    let mut fw = upgrade(&["dp-1"]);
    fw.spec.rollout.max_concurrent = IntOrString::String("0%".into());
    let tasks = [child("dp-1", FirmwareCode::ReadyForExecution)];
    let plan = run(&fw, &tasks, None);
    assert!(plan.decisions.is_empty());
    let outcome = plan.outcome.clone().expect("a rollout problem");
    assert_eq!(outcome.code, FirmwareCode::SkippedInternalException);
    // With tasks, the resource stalls but keeps no whole-resource code.
    let status = status(&fw, &tasks, Some(&outcome), &open(), at(10));
    assert_eq!(status.code, None);
    let stalled = get(&status.conditions, STALLED).unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "InvalidRollout")
    );
}

#[test]
fn the_rollout_counts_the_codes_the_controller_wrote_and_the_cache_lags() {
    let fw = upgrade(&["dp-1", "dp-2"]);
    let mut granted = child("dp-1", FirmwareCode::ReadyForExecution);
    granted.counted = FirmwareCode::SentToMdb;
    let tasks = [granted, child("dp-2", FirmwareCode::ReadyForExecution)];
    // maxConcurrent 1 is taken by dp-1, whose grant the cache does not show yet.
    assert!(run(&fw, &tasks, None).decisions.is_empty());
    let fresh = [
        child("dp-1", FirmwareCode::ReadyForExecution),
        child("dp-2", FirmwareCode::ReadyForExecution),
    ];
    assert_eq!(run(&fw, &fresh, None).decisions, [(0, Decision::Grant)]);
}

#[test]
fn decisions_apply_to_unstarted_tasks_only() {
    let mut ready = TaskState::new(at(0));
    ready.enter(FirmwareCode::ReadyForExecution, "ready", at(1));
    assert!(decide(&mut ready, &Decision::Grant, at(2)));
    assert_eq!(ready.code, FirmwareCode::SentToMdb);
    assert_eq!(ready.started_at, Some(at(2)));
    let end = Decision::End(
        FirmwareCode::ExecutionCanceledBecauseErrorPolicy,
        EndReason::ErrorPolicy,
        "dp-2 failed".into(),
    );
    assert!(
        !decide(&mut ready, &end, at(3)),
        "a started task is not ended by the rollout"
    );
}

#[test]
fn an_unfinished_upgrade_looks_again_within_the_resolve_interval() {
    let later = at(10) + SignedDuration::from_secs(300);
    let running = [child("dp-1", FirmwareCode::ExecutionWaitingForUploadImage)];
    assert_eq!(next_look(&running, None, at(10)), Some(later));
    assert_eq!(next_look(&running, Some(at(20)), at(10)), Some(at(20)));
    assert_eq!(
        next_look::<FirmwareCode>(&[], None, at(10)),
        Some(later),
        "no tasks yet"
    );
    let done = [child("dp-1", FirmwareCode::Success)];
    assert_eq!(next_look(&done, None, at(10)), None);
    assert_eq!(next_look(&done, Some(at(20)), at(10)), Some(at(20)));
}

#[test]
fn the_status_summarizes_and_lists_the_first_failures_in_order() {
    let fw = upgrade(&[]);
    let names: Vec<String> = (0..14).map(|i| format!("dp-{i:02}")).collect();
    let mut tasks: Vec<Child<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut c = child(n, FirmwareCode::ErrorDowngradeNotSupported);
            c.finished_at = Some(at(100 - i as i64));
            c
        })
        .collect();
    tasks.push(child("ok", FirmwareCode::Success));
    tasks.push(child("skip", FirmwareCode::SkippedDeviceNotAvailable));
    tasks.push(child("run", FirmwareCode::ExecutionUpgradeStarted));
    tasks.push(child("wait", FirmwareCode::ReadyForExecution));
    let status = status(&fw, &tasks, None, &open(), at(200));
    let s = &status.summary;
    assert_eq!(
        (s.total, s.succeeded, s.failed, s.running, s.waiting),
        (18, 1, 14, 1, 1)
    );
    assert_eq!(s.by_code["ERROR_DOWNGRADE_NOT_SUPPORTED"], 14);
    let first: Vec<&str> = status
        .first_failures
        .iter()
        .map(|f| f.target.as_str())
        .collect();
    assert_eq!(first.len(), parent::FIRST_FAILURES);
    assert_eq!(first[0], "dp-13", "the earliest failure first");
    let reconciling = get(&status.conditions, RECONCILING).unwrap();
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        ("True", "RollingOut")
    );
}

#[test]
fn phases_follow_the_tasks_and_a_suspended_upgrade_is_not_reconciling() {
    let mut fw = upgrade(&[]);
    let phase = |fw: &FirmwareUpgrade, tasks: &[Child<'_>]| {
        let status = status(fw, tasks, None, &open(), at(10));
        let true_ones: Vec<(String, String)> = status
            .conditions
            .iter()
            .filter(|c| c.status == "True")
            .map(|c| (c.type_.clone(), c.reason.clone()))
            .collect();
        true_ones
    };
    let pair = |t: &str, r: &str| vec![(t.to_string(), r.to_string())];
    assert_eq!(phase(&fw, &[]), pair(RECONCILING, "Resolving"));
    let done = [
        child("a", FirmwareCode::Success),
        child("b", FirmwareCode::SkippedDeviceNotAvailable),
    ];
    assert_eq!(phase(&fw, &done), pair(READY, "Completed"));
    let failed = [
        child("a", FirmwareCode::Success),
        child("b", FirmwareCode::ExecutionUploadImageError),
    ];
    assert_eq!(phase(&fw, &failed), pair(STALLED, "TargetsFailed"));
    fw.spec.suspend = true;
    let waiting = [child("a", FirmwareCode::ReadyForExecution)];
    assert_eq!(
        phase(&fw, &waiting),
        Vec::<(String, String)>::new(),
        "nothing True"
    );
    let status = status(&fw, &waiting, None, &open(), at(10));
    let reconciling = get(&status.conditions, RECONCILING).unwrap();
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        ("False", "Suspended")
    );
}

#[test]
fn no_devices_matching_is_a_stalled_whole_resource_code() {
    let fw = upgrade(&[]);
    let outcome = ResourceOutcome {
        code: FirmwareCode::SkippedNoDevicesMatchingPattern,
        message: "no Device matches".into(),
        incident_id: None,
    };
    let status = status(&fw, &[], Some(&outcome), &open(), at(10));
    assert_eq!(
        status.code.as_deref(),
        Some("SKIPPED_NO_DEVICES_MATCHING_PATTERN")
    );
    let stalled = get(&status.conditions, STALLED).unwrap();
    assert_eq!(stalled.reason, "SkippedNoDevicesMatchingPattern");
}
