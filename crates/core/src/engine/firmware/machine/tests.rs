//! The firmware engine driven end to end through its public API by a scripted world: devices
//! that answer (or fail, or hang) per step, hook Jobs, the rollout and the window gate.

mod cases;
mod docs;
mod world;

use proptest::prelude::*;

use super::*;
use crate::api::codes::FirmwareCode;
use world::{Fault, Spot, World};

#[test]
fn a_terminal_task_never_changes() {
    let mut world = World::single();
    world.run();
    let task = world.tasks[0].clone();
    assert!(task.is_terminal());
    let mut again = task.clone();
    let ctx = world.context(0);
    for input in [
        None,
        Some(Observation::Facts(Ok(world.devices[0].facts.clone()))),
        Some(Observation::Internal("x".into())),
    ] {
        let step = again.step(
            &ctx,
            &mut Readings::default(),
            input,
            world.now + SignedDuration::from_hours(48),
        );
        assert_eq!(step, Step::idle());
        assert_eq!(again, task);
    }
}

#[test]
fn the_upgrade_starts_once_and_the_device_ends_at_the_new_version() {
    let mut world = World::single();
    world.run();
    assert_eq!(world.tasks[0].code, FirmwareCode::Success);
    assert_eq!(world.devices[0].upgrade_starts, 1);
    assert_eq!(world.devices[0].facts.firmware, "7.5.1.9");
}

#[test]
fn a_device_that_forgets_its_operations_on_reboot_is_judged_by_what_it_reports() {
    let mut world = World::single();
    world.spec.restart.enabled = true;
    world.devices[0].forgets_on_reboot = true;
    world.run();
    assert_eq!(
        world.tasks[0].code,
        FirmwareCode::Success,
        "{}",
        world.tasks[0].message
    );
    assert_eq!(world.devices[0].upgrade_starts, 1);
    assert!(
        world
            .codes(0)
            .contains(&FirmwareCode::ExecutionUploadImageStarted)
    );
}

#[test]
fn redfish_devices_skip_the_appliance_checks_and_quiesces() {
    let mut world = World::single();
    world.family = DeviceFamily::Server;
    world.spec.image = "bios-2.4.bin".into();
    world.spec.first_quiesce = true;
    world.image = Some(ImageEntry {
        name: "bios-2.4.bin".into(),
        size: 32 << 20,
        catalog_version: Some("2.4".into()),
    });
    world.devices[0].facts.model = "PowerEdge".into();
    world.devices[0].facts.firmware = "2.3.1".into();
    world.devices[0].target_firmware = "2.4".into();
    world.run();
    assert_eq!(
        world.codes(0),
        [
            FirmwareCode::WaitingForPreValidation,
            FirmwareCode::ReadyForExecution,
            FirmwareCode::SentToMdb,
            FirmwareCode::ExecutionStarted,
            FirmwareCode::ExecutionPreChecksStarted,
            FirmwareCode::ExecutionUploadImageStarted,
            FirmwareCode::ExecutionWaitingForUploadImage,
            FirmwareCode::ExecutionUpgradeStarted,
            FirmwareCode::ExecutionUpgradeWaitingForUpgrade,
            FirmwareCode::Success,
        ]
    );
}

/// A Redfish server that runs `current` and is offered an image the catalog calls `offered`.
fn server(current: &str, offered: &str) -> World {
    let mut world = World::single();
    world.family = DeviceFamily::Server;
    world.spec.image = "bios.bin".into();
    world.image = Some(ImageEntry {
        name: "bios.bin".into(),
        size: 1 << 20,
        catalog_version: Some(offered.into()),
    });
    world.devices[0].facts.model = "ProLiant".into();
    world.devices[0].facts.firmware = current.into();
    world.devices[0].target_firmware = offered.into();
    world
}

#[test]
fn servers_with_text_versions_upgrade_to_a_different_text() {
    let mut world = server("U46 v2.90 (04/11/2024)", "U46 v2.92 (09/02/2025)");
    world.run();
    assert_eq!(world.tasks[0].code, FirmwareCode::Success);
}

#[test]
fn servers_with_the_same_text_version_are_identical() {
    let mut world = server("U46 v2.90", "u46 V2.90 ");
    world.run();
    assert_eq!(
        world.tasks[0].code,
        FirmwareCode::ErrorDeviceAndImageVersionsAreIdentical
    );
}

#[test]
fn servers_with_numeric_versions_still_refuse_silent_downgrades() {
    let mut world = server("2.4.1.7", "2.4.1.3");
    world.run();
    assert_eq!(
        world.tasks[0].code,
        FirmwareCode::ErrorDowngradeMajorReleaseNotApproved
    );
}

#[test]
fn a_patch_not_in_effect_refuses_every_family_after_the_domain_checks_and_before_the_hook() {
    use crate::engine::firmware::observe::{Patch, PatchLifecycle};
    let patches = vec![
        Patch::new("SPH105", PatchLifecycle::Running),
        Patch::new("SPH106", PatchLifecycle::Activated),
    ];
    for family in [
        DeviceFamily::Appliance,
        DeviceFamily::Server,
        DeviceFamily::NetworkElement,
    ] {
        let mut world = match family {
            DeviceFamily::Appliance => World::single(),
            _ => server("2.3.1", "2.4"),
        };
        world.family = family;
        world.with_hooks(true, false, false);
        world.devices[0].facts.patches = patches.clone();
        world.run();
        let task = &world.tasks[0];
        assert_eq!(
            task.code,
            FirmwareCode::ErrorDevicePatchNotRunning,
            "{family:?}"
        );
        assert!(
            task.message.contains("SPH106 is activated") && !task.message.contains("SPH105"),
            "{}",
            task.message
        );
        assert!(
            world.devices[0].hooks_run.is_empty(),
            "the prePlan hook never ran"
        );
    }
    // The domain checks come first.
    let mut world = World::single();
    world.devices[0].facts.patches = patches.clone();
    world.devices[0].domains.unsaved_changes = true;
    world.run();
    assert_eq!(
        world.tasks[0].code,
        FirmwareCode::ErrorFoundUnsavedChangesOnDevice
    );
    // Running patches are in effect.
    let mut world = World::single();
    world.devices[0].facts.patches = patches[..1].to_vec();
    world.run();
    assert_eq!(world.tasks[0].code, FirmwareCode::Success);
}

#[test]
fn appliances_that_report_a_text_firmware_fail_validation() {
    let mut world = World::single();
    world.devices[0].facts.firmware = "IDG.banana".into();
    world.run();
    assert_eq!(
        world.tasks[0].code,
        FirmwareCode::ErrorExceptionInPreValidations
    );
}

#[test]
fn an_uncataloged_generic_image_has_no_version_to_check() {
    let mut world = World::single();
    world.family = DeviceFamily::Server;
    world.image = Some(ImageEntry {
        name: "bios.bin".into(),
        size: 1,
        catalog_version: None,
    });
    world.run();
    assert_eq!(
        world.tasks[0].code,
        FirmwareCode::ErrorCouldNotParseImageFileName
    );
    assert!(
        world.tasks[0].message.contains("catalog.yaml"),
        "{}",
        world.tasks[0].message
    );
}

#[test]
fn approvals_let_downgrades_and_missing_features_through() {
    let mut world = World::single();
    world.devices[0].facts.firmware = "7.5.1.12".into();
    world.spec.allow_downgrade = true;
    world.spec.image = "idg7519.scrypt4".into();
    world.image = Some(world::image("idg7519.scrypt4"));
    world.spec.allow_missing_device_features = true;
    world.run();
    assert_eq!(
        world.tasks[0].code,
        FirmwareCode::Success,
        "{}",
        world.tasks[0].message
    );
}

#[test]
fn the_post_hook_runs_after_a_failure_and_keeps_the_failure_code() {
    let mut world = World::single();
    world.with_hooks(false, false, true);
    world.devices[0]
        .faults
        .push((Spot::Op(OpKind::Upload), Fault::Answer(FaultKind::Error)));
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, FirmwareCode::ExecutionUploadImageError);
    assert_eq!(world.devices[0].hooks_run, vec![HookKind::Post]);
    assert!(task.progress.pending.is_none());
}

#[test]
fn a_failing_post_hook_is_reported_without_changing_the_code() {
    let mut world = World::single();
    world.with_hooks(false, false, true);
    world.devices[0].hook_fails.push(HookKind::Post);
    world.run();
    assert_eq!(world.tasks[0].code, FirmwareCode::Success);
    assert!(
        world.tasks[0].message.contains("post hook failed"),
        "{}",
        world.tasks[0].message
    );
}

#[test]
fn unquiesce_failure_messages_name_the_original_failure() {
    let mut world = World::single();
    world.devices[0].faults.push((
        Spot::Op(OpKind::SecondQuiesce),
        Fault::Answer(FaultKind::Error),
    ));
    world.devices[0]
        .faults
        .push((Spot::Op(OpKind::Unquiesce), Fault::Hang));
    world.run();
    let task = &world.tasks[0];
    assert_eq!(
        task.code,
        FirmwareCode::ExecutionUnquiesceOnErrorTimeoutOccurred
    );
    assert!(
        task.message
            .contains("EXECUTION_SECOND_QUIESCE_EXCEPTION_OCCURRED"),
        "{}",
        task.message
    );
    assert!(task.incident_id.is_none());
}

#[test]
fn exception_codes_carry_incident_ids() {
    let mut world = World::single();
    world.devices[0].faults.push((
        Spot::Op(OpKind::Upload),
        Fault::Answer(FaultKind::Exception),
    ));
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, FirmwareCode::ExecutionUploadImageException);
    let id = task.incident_id.as_deref().unwrap();
    assert_eq!(id.len(), 36, "{id}");
}

#[test]
fn timeouts_count_the_grace_and_the_configured_limits() {
    let mut world = World::single();
    world.devices[0]
        .faults
        .push((Spot::Op(OpKind::SecondQuiesce), Fault::Hang));
    world.run();
    let task = &world.tasks[0];
    let started = task
        .history
        .iter()
        .find(|(c, _)| *c == FirmwareCode::ExecutionSecondQuiesceStarted)
        .unwrap()
        .1;
    let timed_out = task
        .history
        .iter()
        .find(|(c, _)| *c == FirmwareCode::ExecutionUnquiesceOnErrorStarted)
        .unwrap()
        .1;
    assert_eq!(
        timed_out.duration_since(started),
        SignedDuration::from_secs(60) + QUIESCE_GRACE
    );
}

#[test]
fn long_running_fires_at_max_run_duration_after_the_start() {
    let mut world = World::single();
    world.spec.max_run_duration = crate::api::common::GoDuration::from_mins(10);
    world.run();
    let task = &world.tasks[0];
    assert_eq!(task.code, FirmwareCode::ExecutionFailedLongRunning);
    let ended = task.finished_at.unwrap();
    assert_eq!(
        ended.duration_since(task.started_at.unwrap()),
        SignedDuration::from_mins(10)
    );
}

/// Crashes the controller at every action of the happy path and of a quiesce-heavy path, in
/// both places it can die (before the action reaches the device, after the device acted but
/// before the answer was stored), and resumes from the stored state.
#[test]
fn resuming_after_a_crash_anywhere_gives_the_same_result_and_one_upgrade_start() {
    for setup in [World::single as fn() -> World, world::full_path] {
        let mut baseline = setup();
        baseline.run();
        let expected = baseline.codes(0);
        let actions = baseline.actions;
        for crash_at in 0..actions {
            for after_device_acted in [false, true] {
                let mut world = setup();
                world.crash = Some((crash_at, after_device_acted));
                world.run();
                assert_eq!(
                    world.tasks[0].code,
                    expected[expected.len() - 1],
                    "crash at {crash_at} ({after_device_acted})"
                );
                assert_eq!(
                    world.codes(0),
                    expected,
                    "crash at {crash_at} ({after_device_acted})"
                );
                assert_eq!(
                    world.devices[0].upgrade_starts, 1,
                    "crash at {crash_at} ({after_device_acted})"
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

    /// Whatever the devices answer, every task ends, in a bounded number of steps, and an ended
    /// task stays ended.
    #[test]
    fn every_task_ends_whatever_the_device_does(
        faults in prop::collection::vec(fault(), Spot::ALL.len()),
        first_quiesce in any::<bool>(),
        restart in any::<bool>(),
        hooks in (any::<bool>(), any::<bool>(), any::<bool>()),
        hook_fails in any::<bool>(),
    ) {
        let mut world = World::single();
        world.spec.first_quiesce = first_quiesce;
        world.spec.restart.enabled = restart;
        world.with_hooks(hooks.0, hooks.1, hooks.2);
        if hook_fails {
            world.devices[0].hook_fails.extend([HookKind::PrePlan, HookKind::Pre, HookKind::Post]);
        }
        for (spot, fault) in Spot::ALL.iter().zip(faults) {
            if let Some(fault) = fault {
                world.devices[0].faults.push((*spot, fault));
            }
        }
        world.run();
        let task = &world.tasks[0];
        prop_assert!(task.is_terminal(), "stuck at {} after {} steps", task.code, world.steps);
        prop_assert!(world.steps < 2_000, "{} steps", world.steps);
        prop_assert!(world.devices[0].upgrade_starts <= 1);
        prop_assert!(task.history.iter().filter(|(c, _)| c.is_terminal()).count() == 1, "{:?}", world.codes(0));
        prop_assert_eq!(task.code.has_incident(), task.incident_id.is_some());
    }
}
