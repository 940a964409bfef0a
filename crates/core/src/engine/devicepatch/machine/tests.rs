//! The DevicePatch engine driven end to end through its public API by a scripted world:
//! elements that answer (or fail, or hang) per step, apply their own activation delay, forget
//! their operations, or ignore a confirm; the controller crashing at any action.

mod cases;
mod docs;
mod world;

use proptest::prelude::*;

use super::*;
use crate::api::codes::DevicePatchCode;
use crate::api::conditions::Status;
use crate::api::upgrade_task::{TaskResult, UpgradeTaskStatus};
use world::{Element, Fault, Spot, World};

const PATCH: &str = "V100R004C01SPH106";

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

/// The field case's element: it activates a patch only 24h after loading it, and does not say so.
fn silent_24h_element() -> World {
    let mut world = World::single();
    world.elements[0].own_delay = hours(24);
    world.elements[0].reports_delay = false;
    world
}

#[test]
fn a_terminal_task_never_changes() {
    let mut world = World::single();
    world.run();
    let task = world.tasks[0].clone();
    assert!(task.is_terminal());
    let ctx = world.context(0);
    let mut again = task.clone();
    for input in [
        None,
        Some(PatchObservation::Patches(Ok(Vec::new()))),
        Some(PatchObservation::Internal("x".into())),
    ] {
        let step = again.step(&ctx, &mut Readings::default(), input, world.now + hours(48));
        assert_eq!(step, Step::idle());
        assert_eq!(again, task);
    }
}

#[test]
fn the_happy_path_loads_and_activates_once_and_ends_when_the_element_reports_running() {
    let mut world = World::single();
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, DevicePatchCode::PatchRunning, "{}", task.message);
    assert_eq!(task.result(), TaskResult::Succeeded);
    assert_eq!(
        world.elements[0].state_of(PATCH),
        Some(PatchLifecycle::Running)
    );
    assert_eq!(
        (world.elements[0].loads, world.elements[0].activations),
        (1, 1)
    );
    // 1m load, no delay, 2m activation, 30s confirm.
    let started = task.started_at.unwrap();
    assert_eq!(
        task.finished_at.unwrap().duration_since(started),
        SignedDuration::from_secs(210)
    );
    assert!(world.elements[0].told.is_empty(), "no delay was told");
    let condition = task.patch_condition().unwrap();
    assert_eq!(condition.status, Status::True);
}

#[test]
fn a_delay_in_the_resource_is_told_to_the_element_and_waited_for() {
    let mut world = World::single();
    world.elements[0].own_delay = hours(24);
    world.spec.activation.delay = Some(GoDuration::from_hours(1));
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, DevicePatchCode::PatchRunning, "{}", task.message);
    assert_eq!(world.elements[0].told, [hours(1)]);
    let loaded = world.entered(0, DevicePatchCode::PatchLoaded).unwrap();
    let activating = world.entered(0, DevicePatchCode::PatchActivating).unwrap();
    assert_eq!(activating.duration_since(loaded), hours(1));
}

#[test]
fn delay_zero_activates_at_once_even_on_an_element_with_its_own_delay() {
    let mut world = silent_24h_element();
    world.spec.activation.delay = Some(GoDuration::from_secs(0));
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, DevicePatchCode::PatchRunning, "{}", task.message);
    assert_eq!(world.elements[0].told, [SignedDuration::ZERO]);
    assert_eq!(
        task.finished_at
            .unwrap()
            .duration_since(task.started_at.unwrap()),
        SignedDuration::from_secs(210)
    );
}

#[test]
fn without_a_delay_the_element_keeps_its_own_and_upkeep_waits_for_the_one_it_reports() {
    let mut world = World::single();
    world.elements[0].own_delay = hours(24);
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, DevicePatchCode::PatchRunning, "{}", task.message);
    assert!(world.elements[0].told.is_empty());
    let loaded = world.entered(0, DevicePatchCode::PatchLoaded).unwrap();
    let activating = world.entered(0, DevicePatchCode::PatchActivating).unwrap();
    assert_eq!(activating.duration_since(loaded), hours(24));
    let waiting = &task.history[4];
    assert_eq!(waiting.0, DevicePatchCode::PatchWaitingForActivation);
}

/// The field case: loaded and activated, but the element activates only after its own 24h, and
/// nothing says so. The task does not claim success: the activation times out, naming the state
/// and the fix, and the element still reports the patch activating.
#[test]
fn the_field_case_ends_in_an_activation_timeout_that_names_the_fix() {
    let mut world = silent_24h_element();
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, DevicePatchCode::ErrorPatchActivationTimeout);
    assert!(task.message.contains("activating"), "{}", task.message);
    assert!(
        task.message.contains("activation.delay"),
        "{}",
        task.message
    );
    assert_eq!(
        world.elements[0].state_of(PATCH),
        Some(PatchLifecycle::Activating)
    );
    let activating = world.entered(0, DevicePatchCode::PatchActivating).unwrap();
    assert_eq!(
        task.finished_at.unwrap().duration_since(activating),
        SignedDuration::from_mins(30)
    );
    assert_eq!(world.elements[0].activations, 1);
}

#[test]
fn the_activation_timeout_counts_from_the_end_of_the_delay() {
    let mut world = World::single();
    world.spec.activation.delay = Some(GoDuration::from_hours(2));
    world.elements[0]
        .faults
        .push((Spot::Op(PatchOp::Activate), Fault::Hang));
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, DevicePatchCode::ErrorPatchActivationTimeout);
    let loaded = world.entered(0, DevicePatchCode::PatchLoaded).unwrap();
    assert_eq!(
        task.finished_at.unwrap().duration_since(loaded),
        hours(2) + SignedDuration::from_mins(30)
    );
}

#[test]
fn a_confirm_the_element_ignores_is_not_a_success() {
    let mut world = World::single();
    world.elements[0].ignores_confirm = true;
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, DevicePatchCode::ErrorPatchConfirmFailed);
    assert!(
        task.message.contains("activated") && task.message.contains("confirmTimeout"),
        "{}",
        task.message
    );
}

#[test]
fn confirm_false_ends_activated_succeeded_with_a_warning_condition() {
    let mut world = World::single();
    world.spec.confirm = false;
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, DevicePatchCode::PatchActivated);
    assert!(task.is_terminal());
    assert_eq!(task.result(), TaskResult::Succeeded);
    let condition = task.patch_condition().unwrap();
    assert_eq!(
        (condition.status, condition.reason),
        (Status::False, "NotConfirmed")
    );
    assert!(condition.message.contains("ERROR_DEVICE_PATCH_NOT_RUNNING"));
    let mut status = UpgradeTaskStatus::default();
    task.to_status(&mut status);
    assert!(status.terminal);
    assert_eq!(status.result, TaskResult::Succeeded);
    assert_eq!(TaskState::from_status(&status).unwrap(), *task);
}

#[test]
fn a_patch_on_the_element_already_is_not_loaded_again() {
    let mut world = World::single();
    world.elements[0] = Element::healthy().holding(PATCH, PatchLifecycle::Loaded);
    world.run();
    assert_eq!(world.tasks[0].code, DevicePatchCode::PatchRunning);
    assert_eq!(
        (world.elements[0].loads, world.elements[0].activations),
        (0, 1)
    );
    assert!(
        world.tasks[0].history[3].0 == DevicePatchCode::PatchLoaded,
        "{:?}",
        world.codes(0)
    );
}

#[test]
fn an_activation_under_way_is_followed_not_started_again() {
    let mut world = World::single();
    world.elements[0] = Element::healthy().holding(PATCH, PatchLifecycle::Activating);
    world.run();
    // The element never gets an activation request, so it stays activating: the task says so.
    assert_eq!(world.elements[0].activations, 0);
    assert_eq!(
        world.tasks[0].code,
        DevicePatchCode::ErrorPatchActivationTimeout
    );
}

#[test]
fn a_task_stored_between_the_load_and_the_delay_reads_the_element_again() {
    let mut world = World::single();
    world.elements[0] = Element::healthy().holding(PATCH, PatchLifecycle::Loaded);
    let now = world.now;
    let task = &mut world.tasks[0];
    task.enter(DevicePatchCode::ReadyForExecution, "ready", now);
    task.started_at = Some(now);
    task.enter(DevicePatchCode::PatchLoaded, "loaded", now);
    world.run();
    assert_eq!(
        world.codes(0)[2..],
        [
            DevicePatchCode::PatchLoaded,
            DevicePatchCode::PatchWaitingForActivation,
            DevicePatchCode::PatchActivating,
            DevicePatchCode::PatchActivated,
            DevicePatchCode::PatchConfirming,
            DevicePatchCode::PatchRunning,
        ]
    );
    assert_eq!(world.elements[0].loads, 0);
}

#[test]
fn an_element_that_forgets_its_operations_is_judged_by_the_states_it_reports() {
    let mut world = World::single();
    world.elements[0].forgets_ops = true;
    world.run();
    assert_eq!(
        world.tasks[0].code,
        DevicePatchCode::PatchRunning,
        "{}",
        world.tasks[0].message
    );
    assert_eq!(
        (world.elements[0].loads, world.elements[0].activations),
        (1, 1)
    );
}

#[test]
fn exception_codes_carry_incident_ids_and_others_do_not() {
    let mut world = World::single();
    world.elements[0].internal_at = Some(Spot::Op(PatchOp::Load));
    world.run();
    let task = &world.tasks[0];
    assert_eq!(
        task.code,
        DevicePatchCode::ExecutionFailedWithInternalException
    );
    assert_eq!(task.incident_id.as_deref().map(str::len), Some(36));
    let mut world = World::single();
    world.elements[0]
        .faults
        .push((Spot::Op(PatchOp::Load), Fault::Answer(FaultKind::Error)));
    world.run();
    assert!(world.tasks[0].incident_id.is_none());
}

#[test]
fn a_stored_status_round_trips_and_unknown_codes_are_refused() {
    let mut world = World::single();
    world.spec.activation.delay = Some(GoDuration::from_hours(1));
    world.run();
    let mut status = UpgradeTaskStatus::default();
    world.tasks[0].to_status(&mut status);
    assert!(status.device_patch.is_some() && status.firmware.is_none());
    assert_eq!(TaskState::from_status(&status).unwrap(), world.tasks[0]);
    status.code = Some("SUCCESS".into());
    assert!(TaskState::from_status(&status).is_err());
}

/// Crashes the controller at every action, before the action reaches the element and after the
/// element acted but before the answer was stored, and resumes from the stored state.
#[test]
fn resuming_after_a_crash_anywhere_gives_the_same_codes_one_load_and_one_activation() {
    let with_delay = || {
        let mut w = World::single();
        w.elements[0].own_delay = hours(24);
        w.spec.activation.delay = Some(GoDuration::from_mins(5));
        w
    };
    let own_delay = || {
        let mut w = World::single();
        w.elements[0].own_delay = hours(3);
        w
    };
    let unconfirmed = || {
        let mut w = World::single();
        w.spec.confirm = false;
        w
    };
    for setup in [
        World::single as fn() -> World,
        with_delay,
        own_delay,
        unconfirmed,
    ] {
        let mut baseline = setup();
        baseline.run();
        let expected = baseline.codes(0);
        assert!(baseline.tasks[0].result() == TaskResult::Succeeded);
        for crash_at in 0..baseline.actions {
            for after in [false, true] {
                let mut world = setup();
                world.crash = Some((crash_at, after));
                world.run();
                let at = format!("crash at action {crash_at} (after the element acted: {after})");
                assert_eq!(world.codes(0), expected, "{at}");
                assert!(world.tasks[0].is_terminal(), "{at}");
                assert_eq!(
                    (world.elements[0].loads, world.elements[0].activations),
                    (1, 1),
                    "{at}"
                );
            }
        }
    }
}

fn fault() -> impl Strategy<Value = Option<Fault>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(Fault::Answer(FaultKind::Error))),
        1 => Just(Some(Fault::Answer(FaultKind::Exception))),
        1 => Just(Some(Fault::Answer(FaultKind::Unreachable))),
        1 => Just(Some(Fault::Hang)),
        1 => (1i64..7200).prop_map(|s| Some(Fault::Slow(SignedDuration::from_secs(s)))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the element answers and wherever the controller crashes, every task ends, in a
    /// bounded number of steps, ends once, never loads or activates twice, and succeeds only
    /// with the element reporting the state of its code.
    #[test]
    fn every_task_ends_whatever_the_element_does(
        faults in prop::collection::vec(fault(), Spot::ALL.len()),
        confirm in any::<bool>(),
        delay in prop::option::of(0u64..7200),
        own_delay in 0i64..100_000,
        reports_delay in any::<bool>(),
        forgets in any::<bool>(),
        crash in prop::option::of((0usize..40, any::<bool>())),
    ) {
        let mut world = World::single();
        world.spec.confirm = confirm;
        world.spec.activation.delay = delay.map(GoDuration::from_secs);
        world.elements[0].own_delay = SignedDuration::from_secs(own_delay);
        world.elements[0].reports_delay = reports_delay;
        world.elements[0].forgets_ops = forgets;
        for (spot, fault) in Spot::ALL.iter().zip(faults) {
            if let Some(fault) = fault {
                world.elements[0].faults.push((*spot, fault));
            }
        }
        world.crash = crash;
        world.run();
        let task = &world.tasks[0];
        prop_assert!(task.is_terminal(), "stuck at {} after {} steps", task.code, world.steps);
        prop_assert!(world.steps < 3_000, "{} steps", world.steps);
        prop_assert!(world.elements[0].loads <= 1);
        prop_assert!(world.elements[0].activations <= 1);
        prop_assert_eq!(task.history.last().map(|(c, _)| *c), Some(task.code));
        prop_assert_eq!(
            task.history.iter().filter(|(c, _)| c.is_terminal()).count(),
            usize::from(task.code.is_terminal())
        );
        prop_assert_eq!(task.code.has_incident(), task.incident_id.is_some());
        let state = world.elements[0].state_of(PATCH);
        match task.code {
            DevicePatchCode::PatchRunning => prop_assert_eq!(state, Some(PatchLifecycle::Running)),
            DevicePatchCode::PatchActivated => {
                prop_assert!(!confirm);
                prop_assert!(matches!(state, Some(PatchLifecycle::Activated | PatchLifecycle::Running)));
            }
            _ => prop_assert!(task.result() != TaskResult::Succeeded),
        }
    }
}
