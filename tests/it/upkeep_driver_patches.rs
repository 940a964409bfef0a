//! The `upkeep` driver's patch operations against `devicesim` over loopback: reading patches and
//! board space, load (with the package transfer) → set delay → activate → confirm with
//! idempotent keys, every patch fault, an element's own activation delay, and the DevicePatch
//! engine driving a simulated element to `PATCH_RUNNING` through `perform_patch` in real time.
//! Drivers without patch operations say so.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use upkeep::api::DevicePatchSpec;
use upkeep::api::codes::DevicePatchCode;
use upkeep::api::common::{GoDuration, TargetSelector};
use upkeep::api::device::DriverKind;
use upkeep::drivers::http::TlsSettings;
use upkeep::drivers::{
    Caller, DeviceDriver, DriverConfig, ImageRef, Phase, connect, perform_patch,
};
use upkeep::engine::devicepatch::machine::{Context, Step};
use upkeep::engine::devicepatch::observe::{
    FaultKind, OpStatus, PatchLifecycle, PatchOp, PatchStart,
};
use upkeep::engine::devicepatch::state::TaskState;
use upkeep::engine::devicepatch::validation::Readings;
use upkeep::images::repository::{DirRepository, ImageRepository as _};
use upkeep::sim::devicesim::{self, Options, Running};
use upkeep::sim::fleet_file::Fleet;

const PATCH: &str = "V100R004C01SPH106";
const PACKAGE: &str = "V100R004C01SPH106.pkg";
const PACKAGE_SIZE: usize = 64 << 10;
const QUICK: &str = "{ patchLoad: 1s, patchActivate: 1s, patchConfirm: 1s, uploadRate: 8Mi }";

const EXECUTING: Caller<'static> = Caller {
    task: Some("default/dpatch-1/uid"),
    phase: Phase::Execution,
};

fn serve(devices: &str) -> Running {
    let fleet = Fleet::from_yaml(&format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\ndevices:\n{devices}"
    ))
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    devicesim::start(&fleet, listener, Options::default()).unwrap()
}

fn driver(sim: &Running, name: &str, timeout: Duration) -> Box<dyn DeviceDriver> {
    let config = DriverConfig {
        address: sim.device_url("default", name).unwrap(),
        credentials: None,
        tls: TlsSettings::default(),
        redfish: None,
        image_base_url: None,
        timeout,
    };
    connect(DriverKind::Upkeep, config).unwrap()
}

/// The package as a file in a temporary repository.
fn package(dir: &tempfile::TempDir) -> ImageRef {
    let bytes: Vec<u8> = (0..PACKAGE_SIZE).map(|i| (i % 241) as u8).collect();
    std::fs::write(dir.path().join(PACKAGE), bytes).unwrap();
    DirRepository::new(dir.path())
        .lookup(PACKAGE)
        .unwrap()
        .unwrap()
}

fn start(op: PatchOp, delay: Option<SignedDuration>) -> PatchStart {
    PatchStart {
        op,
        key: format!("default/dpatch-1/uid/{}", op.as_str()),
        patch: PATCH.into(),
        delay,
    }
}

fn element(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n    family: NetworkElement\n    timings: {QUICK}\n{extra}")
}

/// Polls the operation of `start` until it is no longer running.
async fn finish(driver: &dyn DeviceDriver, start: &PatchStart) -> OpStatus {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match driver.poll_patch(EXECUTING, start.op, &start.key).await {
            OpStatus::Running { .. } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

async fn state(driver: &dyn DeviceDriver) -> Option<PatchLifecycle> {
    let patches = driver.patches(EXECUTING).await.unwrap();
    patches.into_iter().find(|p| p.id == PATCH).map(|p| p.state)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_is_loaded_activated_and_confirmed_once_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let package = package(&dir);
    let sim = serve(&format!(
        "{}{}",
        element("ne-1", "    patches: [ { id: SPH105, state: running } ]\n"),
        "  - name: dp-1\n"
    ));
    let ne = driver(&sim, "ne-1", Duration::from_secs(5));
    let facts = ne.facts(EXECUTING).await.unwrap();
    assert_eq!(facts.free_board, Some(2 << 30));
    assert_eq!(facts.patches.len(), 1);
    assert_eq!(facts.patches[0].state, PatchLifecycle::Running);
    // Appliances report no board.
    let dp = driver(&sim, "dp-1", Duration::from_secs(5));
    assert_eq!(dp.facts(EXECUTING).await.unwrap().free_board, None);
    assert!(dp.patches(EXECUTING).await.unwrap().is_empty());

    let load = start(PatchOp::Load, None);
    let first = ne.start_patch(EXECUTING, &load, Some(&package)).await;
    assert!(matches!(first, OpStatus::Running { .. }), "{first:?}");
    let again = ne.start_patch(EXECUTING, &load, Some(&package)).await;
    assert!(
        matches!(again, OpStatus::Running { .. } | OpStatus::Done),
        "{again:?}"
    );
    assert_eq!(finish(ne.as_ref(), &load).await, OpStatus::Done);
    assert_eq!(state(ne.as_ref()).await, Some(PatchLifecycle::Loaded));
    assert_eq!(
        sim.sim().bytes_received(&("default".into(), "ne-1".into())),
        PACKAGE_SIZE as u64,
        "the package went up once"
    );
    let board = ne.facts(EXECUTING).await.unwrap().free_board.unwrap();
    assert_eq!(board, (2 << 30) - PACKAGE_SIZE as u64);

    let delay = start(PatchOp::SetDelay, Some(SignedDuration::ZERO));
    assert_eq!(
        ne.start_patch(EXECUTING, &delay, None).await,
        OpStatus::Done
    );
    let activate = start(PatchOp::Activate, None);
    let started = ne.start_patch(EXECUTING, &activate, None).await;
    assert!(matches!(started, OpStatus::Running { .. }), "{started:?}");
    assert_eq!(state(ne.as_ref()).await, Some(PatchLifecycle::Activating));
    ne.start_patch(EXECUTING, &activate, None).await;
    assert_eq!(finish(ne.as_ref(), &activate).await, OpStatus::Done);
    assert_eq!(state(ne.as_ref()).await, Some(PatchLifecycle::Activated));

    let confirm = start(PatchOp::Confirm, None);
    ne.start_patch(EXECUTING, &confirm, None).await;
    assert_eq!(finish(ne.as_ref(), &confirm).await, OpStatus::Done);
    assert_eq!(state(ne.as_ref()).await, Some(PatchLifecycle::Running));
    assert_eq!(
        sim.sim()
            .model()
            .patch_counts(&("default".into(), "ne-1".into())),
        (1, 1),
        "one load and one activation"
    );
    // A key names one kind of operation.
    let mut wrong = start(PatchOp::Confirm, None);
    wrong.key = load.key.clone();
    let refused = ne.start_patch(EXECUTING, &wrong, None).await;
    assert!(
        matches!(&refused, OpStatus::Failed(e) if e.kind == FaultKind::Error),
        "{refused:?}"
    );
    assert_eq!(
        ne.poll_patch(EXECUTING, PatchOp::Load, "no/such/key").await,
        OpStatus::Unknown
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_element_reports_its_own_delay_and_confirms_only_an_activated_patch() {
    let dir = tempfile::tempdir().unwrap();
    let package = package(&dir);
    let sim = serve(&element(
        "ne-1",
        "    patchBehaviour: { activationDelay: 24h }\n",
    ));
    let ne = driver(&sim, "ne-1", Duration::from_secs(5));
    let load = start(PatchOp::Load, None);
    ne.start_patch(EXECUTING, &load, Some(&package)).await;
    assert_eq!(finish(ne.as_ref(), &load).await, OpStatus::Done);
    let patch = ne
        .patches(EXECUTING)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.id == PATCH)
        .unwrap();
    let left = patch.activates_in.unwrap();
    assert!(
        left > SignedDuration::from_hours(23) && left <= SignedDuration::from_hours(24),
        "{left:?}"
    );
    // Activated without being told a delay: it stays activating, and a confirm changes nothing
    // (the field case).
    let activate = start(PatchOp::Activate, None);
    let running = ne.start_patch(EXECUTING, &activate, None).await;
    match running {
        OpStatus::Running {
            retry_after: Some(after),
        } => assert!(after > SignedDuration::from_hours(23), "{after:?}"),
        other => panic!("{other:?}"),
    }
    let confirm = start(PatchOp::Confirm, None);
    ne.start_patch(EXECUTING, &confirm, None).await;
    assert_eq!(finish(ne.as_ref(), &confirm).await, OpStatus::Done);
    assert_eq!(state(ne.as_ref()).await, Some(PatchLifecycle::Activating));
    // Told 0s, the element activates at once.
    let delay = start(PatchOp::SetDelay, Some(SignedDuration::ZERO));
    assert_eq!(
        ne.start_patch(EXECUTING, &delay, None).await,
        OpStatus::Done
    );
    assert_eq!(finish(ne.as_ref(), &activate).await, OpStatus::Done);
    assert_eq!(state(ne.as_ref()).await, Some(PatchLifecycle::Activated));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_patch_fault_shows_as_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let package = package(&dir);
    let steps = [
        ("patchLoad", PatchOp::Load),
        ("patchActivate", PatchOp::Activate),
        ("patchConfirm", PatchOp::Confirm),
    ];
    let mut devices = String::new();
    for (step, _) in steps {
        for kind in ["error", "exception", "hang"] {
            // Every element but the load's holds the patch already, so its step can run.
            let held = if step == "patchLoad" {
                String::new()
            } else {
                let state = if step == "patchActivate" {
                    "loaded"
                } else {
                    "activated"
                };
                format!("    patches: [ {{ id: {PATCH}, state: {state} }} ]\n")
            };
            devices.push_str(&element(
                &format!("{}-{kind}", step.to_lowercase()),
                &format!("{held}    faults: [ {{ step: {step}, kind: {kind} }} ]\n"),
            ));
        }
    }
    let sim = serve(&devices);
    for (step, op) in steps {
        for kind in ["error", "exception", "hang"] {
            let name = format!("{}-{kind}", step.to_lowercase());
            let ne = driver(&sim, &name, Duration::from_millis(800));
            let start = start(op, None);
            let answer = ne.start_patch(EXECUTING, &start, Some(&package)).await;
            let at = format!("{step} × {kind}: {answer:?}");
            match kind {
                "error" => assert!(
                    matches!(&answer, OpStatus::Failed(e) if e.kind == FaultKind::Error),
                    "{at}"
                ),
                "exception" => assert!(
                    matches!(&answer, OpStatus::Failed(e) if e.kind == FaultKind::Exception),
                    "{at}"
                ),
                _ => {
                    assert_eq!(answer, OpStatus::Running { retry_after: None }, "{at}");
                    assert_eq!(
                        ne.poll_patch(EXECUTING, op, &start.key).await,
                        OpStatus::Running { retry_after: None },
                        "{at}"
                    );
                }
            }
        }
    }
    // A set-delay counts as the activation's step.
    let ne = driver(&sim, "patchactivate-error", Duration::from_secs(5));
    let refused = ne
        .start_patch(
            EXECUTING,
            &start(PatchOp::SetDelay, Some(SignedDuration::ZERO)),
            None,
        )
        .await;
    assert!(
        matches!(&refused, OpStatus::Failed(e) if e.kind == FaultKind::Error),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drivers_without_patch_operations_say_so() {
    let config = DriverConfig {
        address: "https://10.255.255.1".into(),
        credentials: None,
        tls: TlsSettings::default(),
        redfish: None,
        image_base_url: None,
        timeout: Duration::from_millis(200),
    };
    for kind in [DriverKind::Redfish, DriverKind::Datapower] {
        let driver = connect(kind, config.clone()).unwrap();
        for op in PatchOp::ALL {
            let answer = driver.start_patch(EXECUTING, &start(op, None), None).await;
            assert!(
                matches!(&answer, OpStatus::Failed(e) if e.kind == FaultKind::Error && e.message.contains("driver: upkeep")),
                "{kind:?} {op:?}: {answer:?}"
            );
            let polled = driver.poll_patch(EXECUTING, op, "k").await;
            assert!(matches!(polled, OpStatus::Failed(_)), "{polled:?}");
        }
    }
}

/// Runs the DevicePatch engine for one element through `perform_patch`, in real time.
async fn run_engine(
    driver: &dyn DeviceDriver,
    spec: &DevicePatchSpec,
    package: &ImageRef,
) -> TaskState {
    let mut task = TaskState::new(Timestamp::now());
    let ctx = Context {
        spec,
        task: "default/dpatch-1/uid",
        device_exists: true,
        package: Some(&package.entry),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut input = None;
    let mut readings = Readings::default();
    while !task.is_terminal() && Instant::now() < deadline {
        if task.code == DevicePatchCode::ReadyForExecution {
            task.grant(Timestamp::now());
        }
        let Step {
            action, wake_at, ..
        } = task.step(&ctx, &mut readings, input.take(), Timestamp::now());
        match action {
            Some(action) => {
                let caller = Caller {
                    task: Some(ctx.task),
                    phase: task.call_phase(),
                };
                input = Some(perform_patch(driver, caller, Some(package), action).await);
            }
            None => {
                readings = Readings::default();
                if let Some(at) = wake_at {
                    let wait = at.duration_since(Timestamp::now());
                    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
                }
            }
        }
    }
    task
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_patches_a_simulated_element_over_http_until_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let package = package(&dir);
    let sim = serve(&element(
        "ne-1",
        "    patchBehaviour: { activationDelay: 24h }\n",
    ));
    let ne = driver(&sim, "ne-1", Duration::from_secs(5));
    let spec = DevicePatchSpec {
        patch: PATCH.into(),
        package: PACKAGE.into(),
        targets: TargetSelector {
            names: vec!["ne-1".into()],
            ..Default::default()
        },
        activation: upkeep::api::device_patch::ActivationSpec {
            delay: Some(GoDuration::from_secs(0)),
            ..Default::default()
        },
        ..Default::default()
    };
    let task = run_engine(ne.as_ref(), &spec, &package).await;
    let codes: Vec<&str> = task.history.iter().map(|(c, _)| c.name()).collect();
    assert_eq!(
        codes,
        [
            "WAITING_FOR_PRE_VALIDATION",
            "READY_FOR_EXECUTION",
            "PATCH_LOADING",
            "PATCH_LOADED",
            "PATCH_WAITING_FOR_ACTIVATION",
            "PATCH_ACTIVATING",
            "PATCH_ACTIVATED",
            "PATCH_CONFIRMING",
            "PATCH_RUNNING"
        ],
        "{}",
        task.message
    );
    assert_eq!(state(ne.as_ref()).await, Some(PatchLifecycle::Running));
    // Patched again: the element runs it already.
    let again = run_engine(ne.as_ref(), &spec, &package).await;
    assert_eq!(again.code, DevicePatchCode::PatchAlreadyRunning);
    assert_eq!(
        sim.sim()
            .model()
            .patch_counts(&("default".into(), "ne-1".into())),
        (1, 1)
    );
}
