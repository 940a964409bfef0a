//! One case per FirmwareUpgrade code: a world that drives a task to the code, and the exact
//! history the task must show. A test fails when a catalogue code has no case.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::world::{Fault, Spot, World, always_closed, full_path, image};
use crate::api::codes::FirmwareCode::{self, *};
use crate::api::common::{ErrorPolicy, GoDuration};
use crate::api::firmware_upgrade::OutsideWindow;
use crate::engine::firmware::observe::{FaultKind, HookKind, OpKind, Patch, PatchLifecycle};
use crate::engine::firmware::{ResourceOutcome, resource_outcome};
use crate::engine::targets::{Candidate, Resolution, ResolveError, resolve};

const VALIDATED: &[FirmwareCode] = &[
    WaitingForPreValidation,
    ReadyForExecution,
    SentToMdb,
    ExecutionStarted,
    ExecutionPreChecksStarted,
];
const UPLOADED: &[FirmwareCode] = &[ExecutionUploadImageStarted, ExecutionWaitingForUploadImage];
const SECOND_QUIESCED: &[FirmwareCode] = &[
    ExecutionSecondQuiesceStarted,
    ExecutionSecondQuiesceWaitingForQuiesce,
];
const UPGRADED: &[FirmwareCode] = &[ExecutionUpgradeStarted, ExecutionUpgradeWaitingForUpgrade];
const UNQUIESCED: &[FirmwareCode] = &[
    ExecutionUnquiesceOnErrorStarted,
    ExecutionUnquiesceOnErrorWaitingForUnquiesce,
];

fn path(parts: &[&[FirmwareCode]]) -> Vec<FirmwareCode> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// A case: how to set the world up, which task to look at, and its expected history.
struct Case {
    name: &'static str,
    setup: fn() -> World,
    task: usize,
    history: Vec<FirmwareCode>,
}

fn case(name: &'static str, setup: fn() -> World, history: Vec<FirmwareCode>) -> Case {
    Case {
        name,
        setup,
        task: 0,
        history,
    }
}

fn fault(spot: Spot, fault: Fault) -> World {
    let mut w = World::single();
    w.devices[0].faults.push((spot, fault));
    w
}

fn validation_failure(code: FirmwareCode) -> Vec<FirmwareCode> {
    vec![WaitingForPreValidation, code]
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "happy path",
            World::single,
            path(&[VALIDATED, UPLOADED, SECOND_QUIESCED, UPGRADED, &[Success]]),
        ),
        case(
            "every optional step",
            full_path,
            path(&[
                VALIDATED,
                &[
                    ExecutionWaitingForPreScript,
                    ExecutionFirstQuiesceStarted,
                    ExecutionFirstQuiesceWaitingForQuiesce,
                    ExecutionRestartWaitingForRestart,
                    ExecutionWaitAfterRestartStarted,
                ],
                UPLOADED,
                SECOND_QUIESCED,
                UPGRADED,
                &[Success],
            ]),
        ),
        case(
            "device object missing",
            || {
                let mut w = World::single();
                w.devices[0].exists = false;
                w
            },
            validation_failure(SkippedDeviceDoesNotExist),
        ),
        case(
            "device does not answer",
            || fault(Spot::Facts, Fault::Hang),
            validation_failure(SkippedDeviceNotAvailable),
        ),
        case(
            "internal failure while validating",
            || {
                let mut w = World::single();
                w.devices[0].internal_at = Some(Spot::Licenses);
                w
            },
            validation_failure(ValidationInternalException),
        ),
        case(
            "unreadable facts",
            || fault(Spot::Facts, Fault::Answer(FaultKind::Exception)),
            validation_failure(ErrorExceptionInPreValidations),
        ),
        case(
            "image missing",
            || {
                let mut w = World::single();
                w.image = None;
                w
            },
            validation_failure(ErrorImageFileDoesNotExist),
        ),
        case(
            "unsupported device type",
            || {
                let mut w = World::single();
                w.devices[0].facts.model = "XC10".into();
                w
            },
            validation_failure(ErrorUnsupportedDeviceType),
        ),
        case(
            "unparseable image name",
            || with_image("idg75.oradco.scrypt4"),
            validation_failure(ErrorCouldNotParseImageFileName),
        ),
        case(
            "other model group",
            || {
                let mut w = World::single();
                w.devices[0].facts.model = "XG45".into();
                w
            },
            validation_failure(ErrorDeviceAndImageModelGroupsAreDifferent),
        ),
        case(
            "downgrade across releases",
            || with_firmware("7.6.0.0"),
            validation_failure(ErrorDowngradeNotSupported),
        ),
        case(
            "unapproved downgrade",
            || with_firmware("7.5.1.12"),
            validation_failure(ErrorDowngradeMajorReleaseNotApproved),
        ),
        case(
            "same version",
            || with_firmware("7.5.1.9"),
            validation_failure(ErrorDeviceAndImageVersionsAreIdentical),
        ),
        case(
            "image lacks a device feature",
            || with_image("idg7519.scrypt4"),
            validation_failure(ErrorDeviceFeaturesNotFoundInImage),
        ),
        case(
            "device lacks an image feature",
            || with_image("idg7519.oradco.tibco.scrypt4"),
            validation_failure(ErrorImageFeaturesNotFoundInDevice),
        ),
        case(
            "unknown image format",
            || with_image("idg7519.oradco.zip"),
            validation_failure(ErrorUnknownImageFileFormat),
        ),
        case(
            "physical image on a virtual device",
            || with_image("idg7519.oradco.scrypt3"),
            validation_failure(ErrorImageNotDesignedForVirtualDevices),
        ),
        case(
            "virtual image on a physical device",
            || {
                let mut w = World::single();
                w.devices[0].facts.r#virtual = false;
                w
            },
            validation_failure(ErrorImageNotDesignedForPhysicalDevices),
        ),
        case(
            "encrypted space short",
            || {
                let mut w = World::single();
                w.devices[0].facts.free_encrypted = Some(100 << 20);
                w
            },
            validation_failure(ErrorNotEnoughFreeEncryptedSpaceOnDevice),
        ),
        case(
            "temporary space short",
            || {
                let mut w = World::single();
                w.devices[0].facts.free_temporary = Some(100 << 20);
                w
            },
            validation_failure(ErrorNotEnoughFreeTempSpaceOnDevice),
        ),
        case(
            "unsaved changes",
            || {
                let mut w = World::single();
                w.devices[0].domains.unsaved_changes = true;
                w
            },
            validation_failure(ErrorFoundUnsavedChangesOnDevice),
        ),
        Case {
            name: "error policy while validating",
            setup: || {
                let mut w = World::new(2);
                w.spec.rollout.error_policy = ErrorPolicy::Fail;
                w.devices[0].facts.firmware = "7.5.1.9".into();
                // The second task is still in its prePlan hook when the first fails.
                w.with_hooks(true, false, false);
                w
            },
            task: 1,
            history: validation_failure(SkippedBecauseErrorPolicy),
        },
        Case {
            name: "error policy while queued",
            setup: || {
                let mut w = World::new(2);
                w.spec.rollout.error_policy = ErrorPolicy::Fail;
                w.spec.rollout.max_concurrent =
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1);
                w.devices[0]
                    .faults
                    .push((Spot::Op(OpKind::Upload), Fault::Answer(FaultKind::Error)));
                w
            },
            task: 1,
            history: vec![
                WaitingForPreValidation,
                ReadyForExecution,
                ExecutionCanceledBecauseErrorPolicy,
            ],
        },
        case(
            "licenses unreadable",
            || fault(Spot::Licenses, Fault::Answer(FaultKind::Error)),
            validation_failure(ErrorWhileGettingDeviceLicenses),
        ),
        case(
            "domain status error",
            || fault(Spot::DomainStatus, Fault::Answer(FaultKind::Error)),
            validation_failure(ErrorGettingSourceDomainStatus),
        ),
        case(
            "domain status broken",
            || fault(Spot::DomainStatus, Fault::Answer(FaultKind::Exception)),
            validation_failure(ErrorExceptionWhileGettingSourceDomainStatus),
        ),
        case(
            "a patch on the device is not running",
            || {
                let mut w = World::single();
                w.devices[0].facts.patches =
                    vec![Patch::new("V100R004C01SPH106", PatchLifecycle::Activating)];
                w
            },
            validation_failure(ErrorDevicePatchNotRunning),
        ),
        case(
            "prePlan hook fails",
            || {
                let mut w = World::single();
                w.with_hooks(true, false, false);
                w.devices[0].hook_fails.push(HookKind::PrePlan);
                w
            },
            validation_failure(PlanFailedPreScript),
        ),
        case(
            "waits longer than maxWait",
            || {
                let mut w = World::single();
                w.gate = always_closed;
                w
            },
            vec![
                WaitingForPreValidation,
                ReadyForExecution,
                ExecutionCanceledBecauseADayPassed,
            ],
        ),
        case(
            "outside the window with Cancel",
            || {
                let mut w = World::single();
                w.gate = always_closed;
                w.spec.outside_window = OutsideWindow::Cancel;
                w
            },
            vec![
                WaitingForPreValidation,
                ReadyForExecution,
                ExecutionCanceledBecauseMaintenanceWindow,
            ],
        ),
        case(
            "quiesced domain at the pre-checks",
            || {
                let mut w = World::single();
                w.devices[0].domains.domains[0].quiesced = true;
                w
            },
            path(&[VALIDATED, &[ExecutionPreChecksFoundQuiescedDomainInDevice]]),
        ),
        case(
            "firmware changed by someone else",
            || {
                let mut w = World::single();
                w.devices[0].firmware_changes_to = Some("7.5.2.0".into());
                w
            },
            path(&[VALIDATED, &[ExecutionPreChecksDeviceFirmwareLevelChanged]]),
        ),
        case(
            "device object deleted after validation",
            || {
                let mut w = World::single();
                w.devices[0].deleted_after_validation = true;
                w
            },
            path(&[VALIDATED, &[ExecutionPreChecksDeviceNotFound]]),
        ),
        case(
            "device unavailable from execution",
            || {
                let mut w = World::single();
                w.devices[0].unavailable_in_execution = true;
                w
            },
            path(&[VALIDATED, &[ExecutionPreChecksDeviceNotAvailable]]),
        ),
        case(
            "pre hook fails",
            || {
                let mut w = World::single();
                w.with_hooks(false, true, true);
                w.devices[0].hook_fails.push(HookKind::Pre);
                w
            },
            path(&[
                VALIDATED,
                &[ExecutionWaitingForPreScript, ExecutionPreScriptError],
            ]),
        ),
        case(
            "first quiesce hangs",
            || {
                let mut w = fault(Spot::Op(OpKind::FirstQuiesce), Fault::Hang);
                w.spec.first_quiesce = true;
                w
            },
            path(&[
                VALIDATED,
                &[
                    ExecutionFirstQuiesceStarted,
                    ExecutionFirstQuiesceWaitingForQuiesce,
                ],
                UNQUIESCED,
                &[ExecutionFirstQuiesceTimeoutOccurred],
            ]),
        ),
        case(
            "first quiesce refused",
            || {
                let mut w = fault(
                    Spot::Op(OpKind::FirstQuiesce),
                    Fault::Answer(FaultKind::Error),
                );
                w.spec.first_quiesce = true;
                w
            },
            path(&[
                VALIDATED,
                &[ExecutionFirstQuiesceStarted],
                UNQUIESCED,
                &[ExecutionFailedWithInternalException],
            ]),
        ),
        case(
            "second quiesce hangs",
            || fault(Spot::Op(OpKind::SecondQuiesce), Fault::Hang),
            path(&[
                VALIDATED,
                UPLOADED,
                SECOND_QUIESCED,
                UNQUIESCED,
                &[ExecutionSecondQuiesceTimeoutOccurred],
            ]),
        ),
        case(
            "restart never comes back",
            || {
                let mut w = fault(Spot::Op(OpKind::Restart), Fault::Hang);
                w.spec.restart.enabled = true;
                w
            },
            path(&[
                VALIDATED,
                &[
                    ExecutionRestartWaitingForRestart,
                    ExecutionRestartTimeoutOccurred,
                ],
            ]),
        ),
        case(
            "upload refused",
            || fault(Spot::Op(OpKind::Upload), Fault::Answer(FaultKind::Error)),
            path(&[
                VALIDATED,
                &[ExecutionUploadImageStarted, ExecutionUploadImageError],
            ]),
        ),
        case(
            "upload broken",
            || {
                fault(
                    Spot::Op(OpKind::Upload),
                    Fault::Answer(FaultKind::Exception),
                )
            },
            path(&[
                VALIDATED,
                &[ExecutionUploadImageStarted, ExecutionUploadImageException],
            ]),
        ),
        case(
            "upgrade hangs",
            || fault(Spot::Op(OpKind::Upgrade), Fault::Hang),
            path(&[
                VALIDATED,
                UPLOADED,
                SECOND_QUIESCED,
                UPGRADED,
                &[ExecutionUpgradeTimeoutOccurred],
            ]),
        ),
        case(
            "unquiesce hangs after a failure",
            || {
                let mut w = fault(
                    Spot::Op(OpKind::SecondQuiesce),
                    Fault::Answer(FaultKind::Error),
                );
                w.devices[0]
                    .faults
                    .push((Spot::Op(OpKind::Unquiesce), Fault::Hang));
                w
            },
            path(&[
                VALIDATED,
                UPLOADED,
                &[ExecutionSecondQuiesceStarted],
                UNQUIESCED,
                &[ExecutionUnquiesceOnErrorTimeoutOccurred],
            ]),
        ),
        case(
            "unquiesce broken after a failure",
            || {
                let mut w = fault(
                    Spot::Op(OpKind::SecondQuiesce),
                    Fault::Answer(FaultKind::Exception),
                );
                w.devices[0].faults.push((
                    Spot::Op(OpKind::Unquiesce),
                    Fault::Answer(FaultKind::Exception),
                ));
                w
            },
            path(&[
                VALIDATED,
                UPLOADED,
                &[
                    ExecutionSecondQuiesceStarted,
                    ExecutionUnquiesceOnErrorStarted,
                    ExecutionUnquiesceOnErrorExceptionOccurred,
                ],
            ]),
        ),
        case(
            "upgrade broken",
            || {
                fault(
                    Spot::Op(OpKind::Upgrade),
                    Fault::Answer(FaultKind::Exception),
                )
            },
            path(&[
                VALIDATED,
                UPLOADED,
                SECOND_QUIESCED,
                &[ExecutionUpgradeStarted, ExecutionUpgradeExceptionOccurred],
            ]),
        ),
        case(
            "second quiesce broken",
            || {
                fault(
                    Spot::Op(OpKind::SecondQuiesce),
                    Fault::Answer(FaultKind::Exception),
                )
            },
            path(&[
                VALIDATED,
                UPLOADED,
                &[ExecutionSecondQuiesceStarted],
                UNQUIESCED,
                &[ExecutionSecondQuiesceExceptionOccurred],
            ]),
        ),
        case(
            "internal failure while executing",
            || {
                let mut w = World::single();
                w.devices[0].internal_at = Some(Spot::Op(OpKind::Upload));
                w
            },
            path(&[
                VALIDATED,
                &[
                    ExecutionUploadImageStarted,
                    ExecutionFailedWithInternalException,
                ],
            ]),
        ),
        case(
            "runs longer than maxRunDuration",
            || {
                let mut w = World::single();
                w.spec.max_run_duration = GoDuration::from_mins(10);
                w
            },
            path(&[
                VALIDATED,
                UPLOADED,
                SECOND_QUIESCED,
                UPGRADED,
                &[ExecutionFailedLongRunning],
            ]),
        ),
    ]
}

fn with_image(name: &str) -> World {
    let mut w = World::single();
    w.spec.image = name.into();
    w.image = Some(image(name));
    w
}

fn with_firmware(version: &str) -> World {
    let mut w = World::single();
    w.devices[0].facts.firmware = version.into();
    w
}

#[test]
fn every_case_reaches_its_code_through_the_exact_history() {
    for case in cases() {
        let mut world = (case.setup)();
        world.run();
        assert_eq!(
            world.codes(case.task),
            case.history,
            "{}: {}",
            case.name,
            world.tasks[case.task].message
        );
        assert!(world.tasks[case.task].is_terminal(), "{}", case.name);
        assert!(!world.tasks[case.task].message.is_empty(), "{}", case.name);
    }
}

/// The two whole-resource codes come from target resolution.
fn resource_codes() -> Vec<(FirmwareCode, ResourceOutcome)> {
    let labels = Default::default();
    let objects = [Candidate {
        name: "dp-1",
        labels: &labels,
    }];
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let none = resolve(
        &crate::api::common::TargetSelector {
            pattern: Some("db-*".into()),
            ..Default::default()
        },
        &objects,
    );
    assert_eq!(none, Ok(Resolution::NoneMatching));
    let broken: Result<Resolution, ResolveError> = resolve(
        &crate::api::common::TargetSelector {
            pattern: Some("dp-[".into()),
            ..Default::default()
        },
        &objects,
    );
    [none, broken]
        .iter()
        .filter_map(|r| resource_outcome(r, "default/fw", now))
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
    assert!(
        outcomes[1].1.message.contains(incident) && outcomes[1].1.message.contains("dp-["),
        "{}",
        outcomes[1].1.message
    );
}

#[test]
fn every_catalogue_code_is_driven_by_a_case() {
    let mut reached: BTreeSet<FirmwareCode> = cases().into_iter().flat_map(|c| c.history).collect();
    reached.extend(resource_codes().into_iter().map(|(code, _)| code));
    let missing: Vec<_> = FirmwareCode::ALL
        .iter()
        .filter(|c| !reached.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes without a case: {missing:?}");
}
