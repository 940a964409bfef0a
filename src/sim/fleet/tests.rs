use super::*;
use crate::api::common::GoDuration;
use crate::drivers::Phase;

const FLEET: &str = r#"
apiVersion: upkeep.dev/v1alpha1
kind: Fleet
images:
  - { name: idg7519.oradco.scrypt4, size: 600Mi }
devices:
  - name: dp-1
  - name: dp-2
    namespace: lab
    labels: { site: b }
    model: XG45
    virtual: false
    firmware: 2018.4.1.2
    timings: { quiesce: 10s, upgrade: 20m, uploadRate: 100Mi }
    faults:
      - { step: licenses, kind: error }
      - { step: upgrade, kind: hang }
    firmwareChangesTo: 2018.4.1.9
    unavailableFrom: execution
"#;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn key(ns: &str, name: &str) -> DeviceKey {
    (ns.to_string(), name.to_string())
}

const VALIDATING: Caller<'static> = Caller {
    task: Some("default/t"),
    phase: Phase::Validation,
};
const EXECUTING: Caller<'static> = Caller {
    task: Some("default/t"),
    phase: Phase::Execution,
};

fn image(fleet: &Fleet) -> ImageRef {
    use crate::images::repository::ImageRepository as _;
    fleet
        .repository()
        .lookup("idg7519.oradco.scrypt4")
        .unwrap()
        .unwrap()
}

#[test]
fn every_field_but_the_name_has_a_default() {
    let fleet = Fleet::from_yaml(FLEET).unwrap();
    let d = &fleet.devices[0];
    assert_eq!(
        (d.model.as_str(), d.r#virtual, d.firmware.as_str()),
        ("IDG", true, "7.5.1.7")
    );
    assert_eq!(d.features, ["DCO-Oracle"]);
    assert_eq!(d.namespace(), "default");
    assert_eq!(d.timings.upload_rate, "50Mi");
    assert_eq!(
        fleet.devices[1].timings.unquiesce,
        GoDuration::from_secs(30)
    );
}

#[test]
fn bad_fleets_name_the_field() {
    let bad_size = FLEET.replace("size: 600Mi", "size: lots");
    assert_eq!(
        Fleet::from_yaml(&bad_size).unwrap_err().field,
        "images[0].size"
    );
    let twice = FLEET.replace(
        "name: dp-2\n    namespace: lab",
        "name: dp-1\n    namespace: default",
    );
    assert_eq!(
        Fleet::from_yaml(&twice).unwrap_err().field,
        "devices[1].name"
    );
    let unknown = FLEET.replace("model: XG45", "modle: XG45");
    assert!(
        Fleet::from_yaml(&unknown)
            .unwrap_err()
            .message
            .contains("modle")
    );
}

#[test]
fn a_healthy_device_upgrades_in_its_timings() {
    let fleet = Fleet::from_yaml(FLEET).unwrap();
    let model = FleetModel::new(&fleet);
    let dp1 = key("default", "dp-1");
    let image = image(&fleet);
    // 600Mi at 50Mi/s: 12 s.
    assert_eq!(
        model.start(&dp1, EXECUTING, OpKind::Upload, "u", &image, at(0)),
        OpStatus::Running {
            retry_after: Some(SignedDuration::from_secs(12))
        }
    );
    assert_eq!(model.poll(&dp1, EXECUTING, "u", at(12)), OpStatus::Done);
    // Uploading the same bytes again is instant.
    assert_eq!(
        model.start(&dp1, EXECUTING, OpKind::Upload, "u2", &image, at(13)),
        OpStatus::Done
    );
    assert!(matches!(
        model.start(&dp1, EXECUTING, OpKind::Upgrade, "g", &image, at(20)),
        OpStatus::Running { .. }
    ));
    // The same key again is the same upgrade (the restarting device does not even answer).
    assert!(matches!(
        model.start(&dp1, EXECUTING, OpKind::Upgrade, "g", &image, at(21)),
        OpStatus::Failed(CallError {
            kind: FaultKind::Unreachable,
            ..
        })
    ));
    assert_eq!(model.upgrade_starts(&dp1), 1);
    // While the device restarts into the new image it does not answer.
    assert!(matches!(
        model.facts(&dp1, EXECUTING, at(60)),
        Reply::Ready(Err(CallError {
            kind: FaultKind::Unreachable,
            ..
        }))
    ));
    assert_eq!(
        model.poll(&dp1, EXECUTING, "g", at(20 + 900)),
        OpStatus::Done
    );
    match model.facts(&dp1, EXECUTING, at(20 + 900)) {
        Reply::Ready(Ok(facts)) => assert_eq!(facts.firmware, "7.5.1.9"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        model.poll(&dp1, EXECUTING, "nope", at(1000)),
        OpStatus::Unknown
    );
}

#[test]
fn an_upgrade_needs_the_image_on_the_device() {
    let fleet = Fleet::from_yaml(FLEET).unwrap();
    let model = FleetModel::new(&fleet);
    let status = model.start(
        &key("default", "dp-1"),
        EXECUTING,
        OpKind::Upgrade,
        "g",
        &image(&fleet),
        at(0),
    );
    assert!(
        matches!(
            status,
            OpStatus::Failed(CallError {
                kind: FaultKind::Error,
                ..
            })
        ),
        "{status:?}"
    );
}

#[test]
fn faults_and_execution_phase_changes() {
    let fleet = Fleet::from_yaml(FLEET).unwrap();
    let model = FleetModel::new(&fleet);
    let dp2 = key("lab", "dp-2");
    assert!(matches!(
        model.licenses(&dp2, VALIDATING, at(0)),
        Reply::Ready(Err(CallError {
            kind: FaultKind::Error,
            ..
        }))
    ));
    match model.facts(&dp2, VALIDATING, at(1)) {
        Reply::Ready(Ok(facts)) => assert_eq!(
            (
                facts.firmware.as_str(),
                facts.model.as_str(),
                facts.r#virtual
            ),
            ("2018.4.1.2", "XG45", false)
        ),
        other => panic!("{other:?}"),
    }
    // Execution starts: the firmware changes behind upkeep's back and the device goes silent.
    assert!(matches!(
        model.facts(&dp2, EXECUTING, at(2)),
        Reply::Ready(Err(CallError {
            kind: FaultKind::Unreachable,
            ..
        }))
    ));
}

#[test]
fn hook_outcomes_default_to_a_quick_success() {
    let mut fleet = Fleet::from_yaml(FLEET).unwrap();
    fleet.devices[0].hooks.post.exit_code = 2;
    let model = FleetModel::new(&fleet);
    let dp1 = key("default", "dp-1");
    assert_eq!(
        model.hook_outcome(&dp1, HookKind::Pre),
        Some(HookOutcome::default())
    );
    assert_eq!(
        model
            .hook_outcome(&dp1, HookKind::Post)
            .map(|o| o.exit_code),
        Some(2)
    );
    assert_eq!(
        model.hook_outcome(&key("default", "nope"), HookKind::Pre),
        None
    );
}

const ELEMENTS: &str = r#"
apiVersion: upkeep.dev/v1alpha1
kind: Fleet
images:
  - { name: SPH106.pkg, size: 100Mi }
devices:
  - name: ne-1
    family: NetworkElement
    patchBehaviour: { activationDelay: 1h }
    patches: [ { id: SPH105, state: running } ]
  - name: ne-2
    family: NetworkElement
    freeSpace: { board: 50Mi }
"#;

fn patch_start(op: PatchOp, delay: Option<SignedDuration>) -> PatchStart {
    PatchStart {
        op,
        key: format!("t/{}", op.as_str()),
        patch: "SPH106".into(),
        delay,
    }
}

fn patch_state(model: &FleetModel, device: &DeviceKey, now: Timestamp) -> Option<PatchLifecycle> {
    match model.patches(device, EXECUTING, now) {
        Reply::Ready(Ok(patches)) => patches
            .into_iter()
            .find(|p| p.id == "SPH106")
            .map(|p| p.state),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_element_loads_waits_its_own_delay_activates_and_confirms_only_an_activated_patch() {
    let fleet = Fleet::from_yaml(ELEMENTS).unwrap();
    let model = FleetModel::new(&fleet);
    let ne1 = key("default", "ne-1");
    let package = {
        use crate::images::repository::ImageRepository as _;
        fleet.repository().lookup("SPH106.pkg").unwrap().unwrap()
    };
    match model.facts(&ne1, EXECUTING, at(0)) {
        Reply::Ready(Ok(facts)) => {
            assert_eq!(facts.free_board, Some(2 << 30));
            assert_eq!(facts.patches[0].state, PatchLifecycle::Running);
        }
        other => panic!("{other:?}"),
    }
    // 100Mi at 50Mi/s, then the 1m load.
    let load = patch_start(PatchOp::Load, None);
    assert_eq!(
        model.start_patch(&ne1, EXECUTING, &load, Some(&package), at(0)),
        OpStatus::Running {
            retry_after: Some(SignedDuration::from_secs(62))
        }
    );
    assert_eq!(patch_state(&model, &ne1, at(61)), None);
    assert_eq!(
        model.poll(&ne1, EXECUTING, &load.key, at(62)),
        OpStatus::Done
    );
    assert_eq!(
        patch_state(&model, &ne1, at(62)),
        Some(PatchLifecycle::Loaded)
    );
    match model.patches(&ne1, EXECUTING, at(62)) {
        Reply::Ready(Ok(patches)) => {
            assert_eq!(patches[1].activates_in, Some(SignedDuration::from_hours(1)))
        }
        other => panic!("{other:?}"),
    }
    // Loading it again is refused; the same key reports the load done.
    let mut again = load.clone();
    again.key = "t/other".into();
    assert!(matches!(
        model.start_patch(&ne1, EXECUTING, &again, Some(&package), at(63)),
        OpStatus::Failed(CallError {
            kind: FaultKind::Error,
            ..
        })
    ));
    assert_eq!(
        model.start_patch(&ne1, EXECUTING, &load, Some(&package), at(63)),
        OpStatus::Done
    );
    // Activated at once, the patch waits for the element's own hour, then 2m more.
    let activate = patch_start(PatchOp::Activate, None);
    assert_eq!(
        model.start_patch(&ne1, EXECUTING, &activate, None, at(100)),
        OpStatus::Running {
            retry_after: Some(SignedDuration::from_secs(62 + 3600 + 120 - 100))
        }
    );
    assert_eq!(
        patch_state(&model, &ne1, at(200)),
        Some(PatchLifecycle::Activating)
    );
    // A confirm of an activating patch is accepted and changes nothing.
    let early = PatchStart {
        key: "t/early-confirm".into(),
        ..patch_start(PatchOp::Confirm, None)
    };
    model.start_patch(&ne1, EXECUTING, &early, None, at(200));
    assert_eq!(
        model.poll(&ne1, EXECUTING, &early.key, at(230)),
        OpStatus::Done
    );
    assert_eq!(
        patch_state(&model, &ne1, at(230)),
        Some(PatchLifecycle::Activating)
    );
    let activated = 62 + 3600 + 120;
    assert_eq!(
        model.poll(&ne1, EXECUTING, &activate.key, at(activated)),
        OpStatus::Done
    );
    assert_eq!(
        patch_state(&model, &ne1, at(activated)),
        Some(PatchLifecycle::Activated)
    );
    let confirm = patch_start(PatchOp::Confirm, None);
    model.start_patch(&ne1, EXECUTING, &confirm, None, at(activated));
    assert_eq!(
        patch_state(&model, &ne1, at(activated + 30)),
        Some(PatchLifecycle::Running)
    );
    assert_eq!(model.patch_counts(&ne1), (1, 1));
}

#[test]
fn an_element_told_a_delay_uses_it_and_a_full_board_refuses_the_load() {
    let fleet = Fleet::from_yaml(ELEMENTS).unwrap();
    let model = FleetModel::new(&fleet);
    let package = {
        use crate::images::repository::ImageRepository as _;
        fleet.repository().lookup("SPH106.pkg").unwrap().unwrap()
    };
    let ne1 = key("default", "ne-1");
    let load = patch_start(PatchOp::Load, None);
    model.start_patch(&ne1, EXECUTING, &load, Some(&package), at(0));
    let told = patch_start(PatchOp::SetDelay, Some(SignedDuration::ZERO));
    assert_eq!(
        model.start_patch(&ne1, EXECUTING, &told, None, at(62)),
        OpStatus::Done
    );
    let activate = patch_start(PatchOp::Activate, None);
    assert_eq!(
        model.start_patch(&ne1, EXECUTING, &activate, None, at(62)),
        OpStatus::Running {
            retry_after: Some(SignedDuration::from_secs(120))
        }
    );
    let ne2 = key("default", "ne-2");
    let refused = model.start_patch(&ne2, EXECUTING, &load, Some(&package), at(0));
    assert!(
        matches!(&refused, OpStatus::Failed(e) if e.message.contains("board")),
        "{refused:?}"
    );
    assert_eq!(model.patch_counts(&ne2), (0, 0));
    // Appliances report no board.
    let fleet = Fleet::from_yaml(FLEET).unwrap();
    match FleetModel::new(&fleet).facts(&key("default", "dp-1"), VALIDATING, at(0)) {
        Reply::Ready(Ok(facts)) => assert_eq!(facts.free_board, None),
        other => panic!("{other:?}"),
    }
}
