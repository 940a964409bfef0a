//! One case per DevicePatch code: a world that drives a task to the code, and the exact history
//! the task must show. A test fails when a catalogue code has no case.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::world::{Element, Fault, Gate, Spot, World};
use crate::api::codes::DevicePatchCode::{self, *};
use crate::api::common::{ErrorPolicy, GoDuration, TargetSelector};
use crate::api::firmware_upgrade::OutsideWindow;
use crate::engine::devicepatch::observe::{FaultKind, PatchLifecycle, PatchOp};
use crate::engine::devicepatch::{ResourceOutcome, resource_outcome};
use crate::engine::targets::{Candidate, Resolution, ResolveError, resolve};

const QUEUED: &[DevicePatchCode] = &[WaitingForPreValidation, ReadyForExecution];
const LOADED: &[DevicePatchCode] = &[PatchLoading, PatchLoaded];
const ACTIVATED: &[DevicePatchCode] = &[PatchWaitingForActivation, PatchActivating, PatchActivated];

fn path(parts: &[&[DevicePatchCode]]) -> Vec<DevicePatchCode> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// A case: how to set the world up, which task to look at, and its expected history.
struct Case {
    name: &'static str,
    setup: fn() -> World,
    task: usize,
    history: Vec<DevicePatchCode>,
}

fn case(name: &'static str, setup: fn() -> World, history: Vec<DevicePatchCode>) -> Case {
    Case {
        name,
        setup,
        task: 0,
        history,
    }
}

fn fault(spot: Spot, fault: Fault) -> World {
    let mut w = World::single();
    w.elements[0].faults.push((spot, fault));
    w
}

fn validation_end(code: DevicePatchCode) -> Vec<DevicePatchCode> {
    vec![WaitingForPreValidation, code]
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "happy path",
            World::single,
            path(&[QUEUED, LOADED, ACTIVATED, &[PatchConfirming, PatchRunning]]),
        ),
        case(
            "device object missing",
            || {
                let mut w = World::single();
                w.elements[0].exists = false;
                w
            },
            validation_end(SkippedDeviceDoesNotExist),
        ),
        case(
            "element does not answer",
            || fault(Spot::Facts, Fault::Hang),
            validation_end(SkippedDeviceNotAvailable),
        ),
        case(
            "facts call breaks",
            || fault(Spot::Facts, Fault::Answer(FaultKind::Exception)),
            validation_end(ErrorCommunicationFailed),
        ),
        case(
            "patch running already",
            || {
                let mut w = World::single();
                w.elements[0] =
                    Element::healthy().holding("V100R004C01SPH106", PatchLifecycle::Running);
                w
            },
            validation_end(PatchAlreadyRunning),
        ),
        case(
            "package missing",
            || {
                let mut w = World::single();
                w.package = None;
                w
            },
            validation_end(ErrorPatchPackageDoesNotExist),
        ),
        case(
            "board too full",
            || {
                let mut w = World::single();
                w.elements[0].free_board = Some(100 << 20);
                w
            },
            validation_end(ErrorNotEnoughFreeSpaceOnBoard),
        ),
        case(
            "internal failure while validating",
            || {
                let mut w = World::single();
                w.elements[0].internal_at = Some(Spot::Facts);
                w
            },
            validation_end(ValidationInternalException),
        ),
        case(
            "load refused",
            || fault(Spot::Op(PatchOp::Load), Fault::Answer(FaultKind::Error)),
            path(&[QUEUED, &[PatchLoading, ErrorPatchLoadFailed]]),
        ),
        case(
            "load never finishes",
            || fault(Spot::Op(PatchOp::Load), Fault::Hang),
            path(&[QUEUED, &[PatchLoading, ErrorPatchLoadFailed]]),
        ),
        case(
            "load call breaks",
            || fault(Spot::Op(PatchOp::Load), Fault::Answer(FaultKind::Exception)),
            path(&[QUEUED, &[PatchLoading, ErrorCommunicationFailed]]),
        ),
        case(
            "activation never finishes",
            || fault(Spot::Op(PatchOp::Activate), Fault::Hang),
            path(&[
                QUEUED,
                LOADED,
                &[
                    PatchWaitingForActivation,
                    PatchActivating,
                    ErrorPatchActivationTimeout,
                ],
            ]),
        ),
        case(
            "activation refused",
            || fault(Spot::Op(PatchOp::Activate), Fault::Answer(FaultKind::Error)),
            path(&[
                QUEUED,
                LOADED,
                &[
                    PatchWaitingForActivation,
                    PatchActivating,
                    ErrorPatchConfirmFailed,
                ],
            ]),
        ),
        case(
            "confirm false",
            || {
                let mut w = World::single();
                w.spec.confirm = false;
                w
            },
            path(&[QUEUED, LOADED, ACTIVATED]),
        ),
        case(
            "confirm refused",
            || fault(Spot::Op(PatchOp::Confirm), Fault::Answer(FaultKind::Error)),
            path(&[
                QUEUED,
                LOADED,
                ACTIVATED,
                &[PatchConfirming, ErrorPatchConfirmFailed],
            ]),
        ),
        case(
            "internal failure while executing",
            || {
                let mut w = World::single();
                w.elements[0].internal_at = Some(Spot::Op(PatchOp::Load));
                w
            },
            path(&[
                QUEUED,
                &[PatchLoading, ExecutionFailedWithInternalException],
            ]),
        ),
        Case {
            name: "error policy while validating",
            setup: || {
                let mut w = World::new(2);
                w.spec.rollout.error_policy = ErrorPolicy::Fail;
                w.elements[0].free_board = Some(0);
                // The task controller reaches the second task only later.
                w.elements[1].reached_from = Some(w.now + SignedDuration::from_mins(1));
                w
            },
            task: 1,
            history: validation_end(SkippedBecauseErrorPolicy),
        },
        Case {
            name: "error policy while queued",
            setup: || {
                let mut w = World::new(2);
                w.spec.rollout.error_policy = ErrorPolicy::Fail;
                w.elements[0]
                    .faults
                    .push((Spot::Op(PatchOp::Load), Fault::Answer(FaultKind::Error)));
                w
            },
            task: 1,
            history: path(&[QUEUED, &[ExecutionCanceledBecauseErrorPolicy]]),
        },
        case(
            "queued longer than maxWait",
            || {
                let mut w = World::single();
                w.gate = Gate::Closed;
                w
            },
            path(&[QUEUED, &[ExecutionCanceledBecauseADayPassed]]),
        ),
        case(
            "not validated within maxWait",
            || {
                let mut w = World::single();
                w.elements[0].reached_from = Some(w.now + SignedDuration::from_hours(25));
                w.spec.max_wait = GoDuration::from_hours(24);
                w
            },
            validation_end(ExecutionCanceledBecauseADayPassed),
        ),
        case(
            "outside the window with Cancel",
            || {
                let mut w = World::single();
                w.gate = Gate::Closed;
                w.spec.outside_window = OutsideWindow::Cancel;
                w
            },
            path(&[QUEUED, &[ExecutionCanceledBecauseMaintenanceWindow]]),
        ),
    ]
}

#[test]
fn every_case_reaches_its_code_through_the_exact_history() {
    for case in cases() {
        let mut world = (case.setup)();
        world.run();
        let task = &world.tasks[case.task];
        assert_eq!(
            world.codes(case.task),
            case.history,
            "{}: {}",
            case.name,
            task.message
        );
        assert!(task.is_terminal(), "{}", case.name);
        assert!(!task.message.is_empty(), "{}", case.name);
    }
}

/// The two whole-resource codes come from target resolution.
fn resource_codes() -> Vec<(DevicePatchCode, ResourceOutcome)> {
    let labels = Default::default();
    let objects = [Candidate {
        name: "ne-1",
        labels: &labels,
    }];
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let none = resolve(
        &TargetSelector {
            pattern: Some("osn-*".into()),
            ..Default::default()
        },
        &objects,
    );
    assert_eq!(none, Ok(Resolution::NoneMatching));
    let broken: Result<Resolution, ResolveError> = resolve(
        &TargetSelector {
            pattern: Some("ne-[".into()),
            ..Default::default()
        },
        &objects,
    );
    [none, broken]
        .iter()
        .filter_map(|r| resource_outcome(r, "default/dpatch", now))
        .map(|o| (o.code, o))
        .collect()
}

#[test]
fn resolution_failures_give_the_whole_resource_codes() {
    let outcomes = resource_codes();
    assert_eq!(outcomes[0].0, SkippedNoDevicesMatchingPattern);
    assert!(outcomes[0].1.incident_id.is_none());
    assert_eq!(outcomes[1].0, SkippedInternalException);
    let incident = outcomes[1].1.incident_id.as_deref().unwrap();
    assert!(outcomes[1].1.message.contains(incident));
}

#[test]
fn every_catalogue_code_is_driven_by_a_case() {
    let mut reached: BTreeSet<DevicePatchCode> =
        cases().into_iter().flat_map(|c| c.history).collect();
    reached.extend(resource_codes().into_iter().map(|(code, _)| code));
    let missing: Vec<_> = DevicePatchCode::ALL
        .iter()
        .filter(|c| !reached.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes without a case: {missing:?}");
}
