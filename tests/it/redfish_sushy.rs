//! The Redfish driver against sushy-tools, a real third-party Redfish emulator
//! (`sushy-emulator --libvirt-uri test:///default`: libvirt's built-in test driver with one
//! domain, "test"). Each test starts its own emulator on a free loopback port.
//!
//! What sushy-tools 2.2.0 emulates and what it lacks (so the fake in `tests/it/redfish` covers it):
//! Systems (the UUID as id, the domain name redirecting to it), `BiosVersion` (starts at
//! 1.0.0), Managers with `FirmwareVersion` 1.00, `ComputerSystem.Reset`, and
//! `UpdateService.SimpleUpdate` — which does not download `ImageURI`, accepts only system
//! `Targets`, and bumps the second number of `BiosVersion` at once (1.0.0 → 1.1.0), answering
//! `204 No Content`. Its UpdateService advertises a FirmwareInventory that answers 404, it has
//! no MultipartHttpPushUri, no OperationApplyTime, no task monitors and no task list (only a
//! fixed, completed `/redfish/v1/TaskService/Tasks/42`).

use upkeep::api::FirmwareUpgradeSpec;
use upkeep::api::codes::FirmwareCode;
use upkeep::api::device::RedfishTarget;
use upkeep::drivers::DeviceDriver;
use upkeep::drivers::redfish::RedfishDriver;
use upkeep::engine::firmware::observe::{DeviceFamily, FaultKind, OpKind, OpStatus, Start};

use crate::common::sushy::Sushy;
use crate::common::{caller, config, image, image_repository, run_task};

const CATALOG: &str = "images:\n  - { name: bios-1.1.0.bin, version: \"1.1.0\", component: BIOS }\n  - { name: bmc-1.01.bin, version: \"1.01\", component: BMC }\n";

#[tokio::test]
async fn facts_come_from_the_only_system_and_its_bios_version() {
    let Some(sushy) = Sushy::start("facts_come_from_the_only_system_and_its_bios_version") else {
        return;
    };
    let mut cfg = config(&sushy.url);
    cfg.credentials = None;
    let facts = RedfishDriver::new(&cfg)
        .unwrap()
        .facts(caller())
        .await
        .unwrap();
    // sushy's FirmwareInventory answers 404: the system's BiosVersion it is.
    assert_eq!(facts.firmware, "1.0.0");
    assert_eq!(facts.model, "Sushy Emulator");
    assert!(!facts.r#virtual);

    // The domain's name redirects to its UUID path; the driver follows.
    cfg.redfish = Some(RedfishTarget {
        system: Some("test".into()),
        component: Some("BMC".into()),
    });
    let bmc = RedfishDriver::new(&cfg)
        .unwrap()
        .facts(caller())
        .await
        .unwrap();
    assert_eq!(bmc.firmware, "1.00");

    cfg.redfish = Some(RedfishTarget {
        system: Some("no-such-system".into()),
        component: None,
    });
    let e = RedfishDriver::new(&cfg)
        .unwrap()
        .facts(caller())
        .await
        .unwrap_err();
    assert_eq!(e.kind, FaultKind::Error, "{e}");
    assert!(e.message.starts_with("HTTP 404"), "{e}");
}

#[tokio::test]
async fn restart_resets_the_libvirt_domain() {
    let Some(sushy) = Sushy::start("restart_resets_the_libvirt_domain") else {
        return;
    };
    let (repo, _images, _dir) = image_repository(&[("bios-1.1.0.bin", b"bios")], CATALOG).await;
    let d = RedfishDriver::new(&config(&sushy.url)).unwrap();
    let bios = image(repo.as_ref(), "bios-1.1.0.bin");
    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::Restart, "t/restart", "1.1.0"),
            &bios
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(
        d.poll(caller(), OpKind::Restart, "t/restart").await,
        OpStatus::Done
    );
}

#[tokio::test]
async fn the_engine_brings_a_sushy_system_to_the_new_bios_version_with_success() {
    let Some(sushy) =
        Sushy::start("the_engine_brings_a_sushy_system_to_the_new_bios_version_with_success")
    else {
        return;
    };
    let (repo, images, _dir) =
        image_repository(&[("bios-1.1.0.bin", b"BIOS 1.1.0")], CATALOG).await;
    let mut cfg = config(&sushy.url);
    cfg.image_base_url = Some(images);
    let d = RedfishDriver::new(&cfg).unwrap();
    let spec = FirmwareUpgradeSpec {
        image: "bios-1.1.0.bin".into(),
        restart: upkeep::api::firmware_upgrade::RestartSpec {
            enabled: true,
            ..Default::default()
        },
        ..FirmwareUpgradeSpec::default()
    };
    let run = run_task(
        &d,
        DeviceFamily::Server,
        &spec,
        &image(repo.as_ref(), "bios-1.1.0.bin"),
    )
    .await;
    assert_eq!(
        run.state.code,
        FirmwareCode::Success,
        "{} {:?}",
        run.state.message,
        run.calls
    );
    assert_eq!(run.state.message, "the device reports 1.1.0");
    let codes = run.codes();
    for code in [
        FirmwareCode::ExecutionPreChecksStarted,
        FirmwareCode::ExecutionRestartWaitingForRestart,
        FirmwareCode::ExecutionUploadImageStarted,
        FirmwareCode::ExecutionUpgradeStarted,
        FirmwareCode::Success,
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    assert_eq!(d.facts(caller()).await.unwrap().firmware, "1.1.0");

    // Running it again: the device already runs 1.1.0.
    let again = run_task(
        &d,
        DeviceFamily::Server,
        &spec,
        &image(repo.as_ref(), "bios-1.1.0.bin"),
    )
    .await;
    assert_eq!(
        again.state.code,
        FirmwareCode::ErrorDeviceAndImageVersionsAreIdentical
    );
}

#[tokio::test]
async fn sushy_refuses_a_bmc_update_with_a_redfish_error() {
    let Some(sushy) = Sushy::start("sushy_refuses_a_bmc_update_with_a_redfish_error") else {
        return;
    };
    let (repo, images, _dir) = image_repository(&[("bmc-1.01.bin", b"BMC")], CATALOG).await;
    let mut cfg = config(&sushy.url);
    cfg.image_base_url = Some(images);
    cfg.redfish = Some(RedfishTarget {
        system: None,
        component: Some("BMC".into()),
    });
    let d = RedfishDriver::new(&cfg).unwrap();
    let spec = FirmwareUpgradeSpec {
        image: "bmc-1.01.bin".into(),
        ..FirmwareUpgradeSpec::default()
    };
    let run = run_task(
        &d,
        DeviceFamily::Server,
        &spec,
        &image(repo.as_ref(), "bmc-1.01.bin"),
    )
    .await;
    assert_eq!(run.state.code, FirmwareCode::ExecutionUploadImageError);
    assert!(
        run.state
            .message
            .contains("Manager is not currently a supported Target."),
        "{}",
        run.state.message
    );
}

/// `upkeep device upgrade` (the command line, as a user runs it) serves the image and brings the
/// sushy-tools system to the new BIOS version with SUCCESS.
#[test]
fn the_device_upgrade_command_brings_a_sushy_system_to_the_new_version() {
    let Some(sushy) =
        Sushy::start("the_device_upgrade_command_brings_a_sushy_system_to_the_new_version")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("images");
    std::fs::create_dir(&repo).unwrap();
    std::fs::write(repo.join("bios-1.1.0.bin"), b"BIOS 1.1.0").unwrap();
    std::fs::write(repo.join("catalog.yaml"), CATALOG).unwrap();
    let device = dir.path().join("server.yaml");
    std::fs::write(
        &device,
        format!(
            "apiVersion: upkeep.dev/v1alpha1\nkind: Device\nmetadata:\n  name: node-1\nspec:\n  driver: redfish\n  address: {}\n  redfish:\n    component: BIOS\n",
            sushy.url
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["device", "upgrade"])
        .arg(&device)
        .args(["--image", "bios-1.1.0.bin", "--repository"])
        .arg(&repo)
        .args(["--restart", "--serve-images", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for code in [
        "EXECUTION_RESTART_WAITING_FOR_RESTART",
        "EXECUTION_UPLOAD_IMAGE_STARTED",
        "EXECUTION_UPGRADE_STARTED",
    ] {
        assert!(stdout.contains(code), "{code} missing:\n{stdout}");
    }
    assert!(
        stdout
            .trim_end()
            .ends_with("default/node-1: SUCCESS (Succeeded)"),
        "{stdout}"
    );
    assert!(stdout.contains("the device reports 1.1.0"), "{stdout}");
}
