//! The DataPower driver against recorded REST management exchanges
//! (`tests/fixtures/datapower/`, replayed by `tests/it/datapower/replay.rs`). No real appliance is
//! involved: these tests show the driver reads and sends the documented shapes, not that a
//! given firmware answers exactly so.

mod replay;

use std::sync::{Arc, Mutex};

use upkeep::api::FirmwareUpgradeSpec;
use upkeep::api::codes::FirmwareCode;
use upkeep::api::firmware_upgrade::RestartSpec;
use upkeep::drivers::DeviceDriver;
use upkeep::drivers::connect;
use upkeep::drivers::datapower::DatapowerDriver;
use upkeep::engine::firmware::observe::{DeviceFamily, FaultKind, OpKind, OpStatus, Start};

use crate::common::{caller, config, image, image_repository, run_task, serve};
use replay::{Replay, Shared};

const IMAGE: &str = "idg7520.oradco.scrypt4";

async fn appliance(extra: &[&str]) -> (Shared, DatapowerDriver) {
    let shared = Arc::new(Mutex::new(Replay::new(extra)));
    let addr = serve(replay::router(shared.clone())).await;
    let driver = DatapowerDriver::new(&config(&format!("http://{addr}"))).unwrap();
    (shared, driver)
}

/// A 1000-byte image (its size matches `faults/filestore-image-present.json`).
fn image_bytes() -> Vec<u8> {
    (0..1000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|c| u32::from(value(*c))).collect();
        let n = v
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, x)| n | (x << (18 - 6 * i)));
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

#[tokio::test]
async fn facts_licenses_and_domains_come_from_the_status_providers() {
    let (replay, d) = appliance(&[]).await;
    let facts = d.facts(caller()).await.unwrap();
    assert_eq!(facts.model, "IDG");
    assert_eq!(facts.firmware, "7.5.1.7");
    assert!(facts.r#virtual);
    assert_eq!(facts.free_encrypted, Some(1500 << 20));
    assert_eq!(facts.free_temporary, Some(240 << 20));
    assert_eq!(
        d.licenses(caller()).await.unwrap(),
        vec!["MQ".to_string(), "DCO-Oracle".to_string()]
    );
    let domains = d.domain_status(caller()).await.unwrap();
    assert_eq!(domains.domains.len(), 2);
    assert!(domains.domains.iter().all(|d| !d.quiesced));
    assert!(!domains.unsaved_changes);
    // Basic auth on every request, never the password in Debug output.
    let r = replay.lock().unwrap();
    let expected = format!(
        "Basic {}",
        upkeep::drivers::wire::base64(b"admin:s3cr3t-pw")
    );
    assert!(
        r.received
            .iter()
            .all(|q| q.authorization.as_deref() == Some(expected.as_str()))
    );
    assert!(!format!("{d:?}").contains("s3cr3t-pw"));
}

#[tokio::test]
async fn an_older_firmware_answers_with_firmware_version() {
    let (_replay, d) = appliance(&[
        "faults/firmware-version3-missing.json",
        "faults/firmware-version-xi52.json",
    ])
    .await;
    let facts = d.facts(caller()).await.unwrap();
    assert_eq!(
        (facts.model.as_str(), facts.firmware.as_str()),
        ("XI52", "6.0.1.0")
    );
    assert!(!facts.r#virtual);
}

#[tokio::test]
async fn upload_streams_the_image_as_base64_once() {
    let (repo, _images, _dir) = image_repository(&[(IMAGE, &image_bytes())], "images: []\n").await;
    let img = image(repo.as_ref(), IMAGE);
    let (replay, d) = appliance(&[]).await;
    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::Upload, "t/upload", "7.5.2.0"),
            &img
        )
        .await,
        OpStatus::Done
    );
    {
        let r = replay.lock().unwrap();
        let put: Vec<_> = r.received.iter().filter(|q| q.method == "PUT").collect();
        assert_eq!(put.len(), 1);
        assert_eq!(
            put[0].path,
            format!("/mgmt/filestore/default/image/{IMAGE}")
        );
        let body: serde_json::Value = serde_json::from_slice(&put[0].body).unwrap();
        assert_eq!(body["file"]["name"], IMAGE);
        assert_eq!(
            decode_base64(body["file"]["content"].as_str().unwrap()),
            image_bytes()
        );
    }
    // The same key: known, done, nothing sent again.
    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::Upload, "t/upload", "7.5.2.0"),
            &img
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(replay.lock().unwrap().count("PUT", "/"), 1);

    // After an operator restart, an appliance that holds the file with the image's size is
    // not sent it again.
    let (replay, d) = appliance(&["faults/filestore-image-present.json"]).await;
    assert_eq!(
        d.poll(caller(), OpKind::Upload, "t/upload").await,
        OpStatus::Unknown
    );
    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::Upload, "t/upload", "7.5.2.0"),
            &img
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(replay.lock().unwrap().count("PUT", "/"), 0);
}

#[tokio::test]
async fn quiesce_waits_for_the_action_and_the_domains() {
    let (repo, _images, _dir) = image_repository(&[(IMAGE, &image_bytes())], "images: []\n").await;
    let img = image(repo.as_ref(), IMAGE);
    let (replay, d) = appliance(&[]).await;
    let key = "t/second-quiesce";
    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::SecondQuiesce, key, "7.5.2.0"),
            &img
        )
        .await,
        OpStatus::Running { retry_after: None }
    );
    assert!(replay.lock().unwrap().saw("\"QuiesceDP\":{\"timeout\":60}"));
    // processing → completed; then the domains: quiescing → quiesced.
    let mut polls = 0;
    while d.poll(caller(), OpKind::SecondQuiesce, key).await != OpStatus::Done {
        polls += 1;
        assert!(polls < 5, "the quiesce never finished");
    }
    assert_eq!(polls, 2);
    assert_eq!(replay.lock().unwrap().count("POST", "/mgmt/actionqueue"), 1);
    // A key the driver does not know: the domains are quiesced, so it is done.
    assert_eq!(
        d.poll(caller(), OpKind::SecondQuiesce, "lost/key").await,
        OpStatus::Done
    );
}

#[tokio::test]
async fn the_engine_upgrades_the_appliance_with_success() {
    let (repo, _images, _dir) = image_repository(&[(IMAGE, &image_bytes())], "images: []\n").await;
    let img = image(repo.as_ref(), IMAGE);
    let (replay, d) = appliance(&[]).await;
    let spec = FirmwareUpgradeSpec {
        image: IMAGE.into(),
        first_quiesce: true,
        restart: RestartSpec {
            enabled: true,
            ..Default::default()
        },
        ..FirmwareUpgradeSpec::default()
    };
    let run = run_task(&d, DeviceFamily::Appliance, &spec, &img).await;
    assert_eq!(
        run.state.code,
        FirmwareCode::Success,
        "{} {:?}",
        run.state.message,
        run.calls
    );
    assert_eq!(run.state.message, "the device reports 7.5.2.0");
    let codes = run.codes();
    for code in [
        FirmwareCode::ExecutionFirstQuiesceWaitingForQuiesce,
        FirmwareCode::ExecutionRestartWaitingForRestart,
        FirmwareCode::ExecutionWaitingForUploadImage,
        FirmwareCode::ExecutionSecondQuiesceWaitingForQuiesce,
        FirmwareCode::ExecutionUpgradeWaitingForUpgrade,
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    let r = replay.lock().unwrap();
    assert!(r.saw("\"Shutdown\":{\"Mode\":\"reboot\"}"));
    assert!(r.saw(&format!(
        "\"BootImage\":{{\"AcceptLicense\":\"on\",\"Firmware\":\"image:///{IMAGE}\"}}"
    )));
    assert_eq!(r.count("PUT", "/mgmt/filestore/default/image/"), 1);
    assert_eq!(
        r.count("POST", "/mgmt/actionqueue/default"),
        4,
        "2 quiesces, a reboot, the install"
    );
}

#[tokio::test]
async fn a_failed_install_fails_the_upgrade_with_the_appliances_message() {
    let (repo, _images, _dir) = image_repository(&[(IMAGE, &image_bytes())], "images: []\n").await;
    let img = image(repo.as_ref(), IMAGE);
    let (_replay, d) = appliance(&["faults/action-status-bootimage-error.json"]).await;
    let spec = FirmwareUpgradeSpec {
        image: IMAGE.into(),
        ..FirmwareUpgradeSpec::default()
    };
    let run = run_task(&d, DeviceFamily::Appliance, &spec, &img).await;
    assert_eq!(
        run.state.code,
        FirmwareCode::ExecutionUpgradeExceptionOccurred
    );
    assert!(
        run.state
            .message
            .contains("The firmware image signature is not valid."),
        "{}",
        run.state.message
    );
}

#[tokio::test]
async fn an_installed_primary_image_is_not_installed_again() {
    let (repo, _images, _dir) = image_repository(&[(IMAGE, &image_bytes())], "images: []\n").await;
    let img = image(repo.as_ref(), IMAGE);
    let (replay, d) = appliance(&["faults/firmware-status2-installed.json"]).await;
    assert!(matches!(
        d.start(
            caller(),
            &Start::new(OpKind::Upgrade, "t/upgrade", "7.5.2.0"),
            &img
        )
        .await,
        OpStatus::Running { .. }
    ));
    assert!(!replay.lock().unwrap().saw("BootImage"));
}

#[tokio::test]
async fn device_faults_give_their_validation_codes() {
    let (repo, _images, _dir) = image_repository(&[(IMAGE, &image_bytes())], "images: []\n").await;
    let img = image(repo.as_ref(), IMAGE);
    let spec = FirmwareUpgradeSpec {
        image: IMAGE.into(),
        ..FirmwareUpgradeSpec::default()
    };
    for (fixture, code, kind) in [
        (
            "faults/license-status-unauthorized.json",
            FirmwareCode::ErrorWhileGettingDeviceLicenses,
            "HTTP 401 Unauthorized: Authentication failure",
        ),
        (
            "faults/domain-status-malformed.json",
            FirmwareCode::ErrorExceptionWhileGettingSourceDomainStatus,
            "malformed answer",
        ),
        (
            "faults/domain-status-unsaved.json",
            FirmwareCode::ErrorFoundUnsavedChangesOnDevice,
            "unsaved changes",
        ),
    ] {
        let (_replay, d) = appliance(&[fixture]).await;
        let run = run_task(&d, DeviceFamily::Appliance, &spec, &img).await;
        assert_eq!(run.state.code, code, "{fixture}: {}", run.state.message);
        assert!(
            run.state.message.contains(kind),
            "{fixture}: {}",
            run.state.message
        );
    }
    // Nothing listens: unreachable.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let d = connect(
        upkeep::api::device::DriverKind::Datapower,
        config(&format!("http://{closed}")),
    )
    .unwrap();
    assert_eq!(
        d.facts(caller()).await.unwrap_err().kind,
        FaultKind::Unreachable
    );
}
