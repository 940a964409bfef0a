//! The Redfish driver against an in-process fake Redfish service (task monitors, multipart
//! push, FirmwareInventory, OnReset, TaskService, redirects, auth, faults). The tests against
//! sushy-tools, a real third-party emulator, are in `tests/it/redfish_sushy.rs`.

mod fake;

use std::sync::{Arc, Mutex};

use jiff::SignedDuration;
use upkeep::api::FirmwareUpgradeSpec;
use upkeep::api::codes::FirmwareCode;
use upkeep::api::device::RedfishTarget;
use upkeep::drivers::DeviceDriver;
use upkeep::drivers::credentials::Credentials;
use upkeep::drivers::redfish::RedfishDriver;
use upkeep::drivers::{DriverConfig, connect};
use upkeep::engine::firmware::observe::{DeviceFamily, FaultKind, OpKind, OpStatus, Start};

use crate::common::{caller, config, image, image_repository, run_task, serve};
use fake::{Fake, Fault, Shared};

const CATALOG: &str = "images:\n  - { name: bios-2.5.0.bin, version: \"2.5.0\", component: BIOS }\n  - { name: bmc-5.20.bin, version: \"5.20\", component: BMC }\n";
const BIOS: &[u8] = b"BIOS image 2.5.0, pretend this is 32 MiB";
const BMC: &[u8] = b"BMC image 5.20";

async fn start_fake(fake: Fake) -> (Shared, String) {
    let shared = Arc::new(Mutex::new(fake));
    let addr = serve(fake::router(shared.clone())).await;
    (shared, format!("http://{addr}"))
}

fn driver(config: &DriverConfig) -> RedfishDriver {
    RedfishDriver::new(config).unwrap()
}

fn with_target(
    mut config: DriverConfig,
    system: Option<&str>,
    component: Option<&str>,
) -> DriverConfig {
    config.redfish = Some(RedfishTarget {
        system: system.map(str::to_string),
        component: component.map(str::to_string),
    });
    config
}

fn with_versions(mut fake: Fake) -> Fake {
    fake.image_versions
        .insert("bios-2.5.0.bin".into(), "2.5.0".into());
    fake.image_versions
        .insert("bmc-5.20.bin".into(), "5.20".into());
    fake
}

fn count(shared: &Shared, prefix: &str) -> usize {
    shared
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.starts_with(prefix))
        .count()
}

#[tokio::test]
async fn facts_read_the_component_from_the_firmware_inventory() {
    let (_fake, url) = start_fake(Fake::default()).await;
    let facts = driver(&config(&url)).facts(caller()).await.unwrap();
    assert_eq!(facts.model, "Contoso R900");
    assert_eq!(facts.firmware, "2.4.0");
    assert!(!facts.r#virtual);
    assert_eq!((facts.free_encrypted, facts.free_temporary), (None, None));

    for (component, version) in [("BMC", "5.10"), ("bmc", "5.10"), ("NIC.1", "22.31.6")] {
        let d = driver(&with_target(config(&url), None, Some(component)));
        assert_eq!(
            d.facts(caller()).await.unwrap().firmware,
            version,
            "{component}"
        );
    }
    let d = driver(&with_target(config(&url), None, Some("GPU.7")));
    let e = d.facts(caller()).await.unwrap_err();
    assert_eq!(e.kind, FaultKind::Error);
    assert!(e.message.contains("GPU.7"), "{e}");

    let d = driver(&config(&url));
    assert_eq!(d.licenses(caller()).await.unwrap(), Vec::<String>::new());
    let domains = d.domain_status(caller()).await.unwrap();
    assert!(domains.domains.is_empty() && !domains.unsaved_changes);
}

#[tokio::test]
async fn facts_fall_back_to_bios_version_and_the_managers_firmware() {
    let (_fake, url) = start_fake(Fake {
        inventory: false,
        ..Fake::default()
    })
    .await;
    assert_eq!(
        driver(&config(&url))
            .facts(caller())
            .await
            .unwrap()
            .firmware,
        "2.4.0"
    );
    let bmc = driver(&with_target(config(&url), None, Some("BMC")));
    assert_eq!(bmc.facts(caller()).await.unwrap().firmware, "5.10");

    // An inventory that lacks BIOS: the system's BiosVersion.
    let (_fake, url) = start_fake(Fake {
        bios_in_inventory: false,
        ..Fake::default()
    })
    .await;
    assert_eq!(
        driver(&config(&url))
            .facts(caller())
            .await
            .unwrap()
            .firmware,
        "2.4.0"
    );
}

#[tokio::test]
async fn the_system_is_the_only_one_listed_or_the_configured_one() {
    let (fake, url) = start_fake(Fake {
        systems: 2,
        ..Fake::default()
    })
    .await;
    let e = driver(&config(&url)).facts(caller()).await.unwrap_err();
    assert_eq!(e.kind, FaultKind::Error);
    assert!(e.message.contains("lists 2 systems"), "{e}");
    assert!(e.message.contains("redfish.system"), "{e}");

    for system in ["2", "/redfish/v1/Systems/2"] {
        let d = driver(&with_target(config(&url), Some(system), None));
        assert_eq!(d.facts(caller()).await.unwrap().model, "Contoso R900");
    }
    assert!(count(&fake, "GET /redfish/v1/Systems/2") >= 2);

    // An alias that redirects to the system is followed.
    let d = driver(&with_target(config(&url), Some("alias"), None));
    assert_eq!(d.facts(caller()).await.unwrap().firmware, "2.4.0");
    assert_eq!(count(&fake, "GET /redfish/v1/Systems/alias"), 1);

    let d = driver(&with_target(config(&url), Some("9"), None));
    let e = d.facts(caller()).await.unwrap_err();
    assert_eq!(e.kind, FaultKind::Error);
    assert!(e.message.contains("HTTP 404"), "{e}");
}

#[tokio::test]
async fn simple_update_serves_the_image_and_follows_the_task_monitor() {
    let (repo, images, _dir) =
        image_repository(&[("bios-2.5.0.bin", BIOS), ("bmc-5.20.bin", BMC)], CATALOG).await;
    let (fake, url) = start_fake(with_versions(Fake::default())).await;
    let mut cfg = config(&url);
    cfg.image_base_url = Some(images.clone());
    let d = driver(&cfg);
    let bios = image(repo.as_ref(), "bios-2.5.0.bin");

    let first = d
        .start(
            caller(),
            &Start::new(OpKind::Upload, "t/upload", "2.5.0"),
            &bios,
        )
        .await;
    assert_eq!(
        first,
        OpStatus::Running {
            retry_after: Some(SignedDuration::from_secs(2))
        }
    );
    {
        let f = fake.lock().unwrap();
        assert_eq!(f.updates.len(), 1);
        let update = &f.updates[0];
        assert_eq!(update["ImageURI"], format!("{images}/bios-2.5.0.bin"));
        assert_eq!(update["TransferProtocol"], "HTTP");
        assert_eq!(update["Targets"][0], "/redfish/v1/Systems/1");
        assert!(update.get("@Redfish.OperationApplyTime").is_none());
        // The fake downloaded the image from upkeep's image server.
        assert_eq!(
            f.received,
            vec![("bios-2.5.0.bin".to_string(), BIOS.to_vec())]
        );
    }
    // The same key again reports the same operation (its task monitor, Running with the
    // Retry-After hint): no second update.
    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::Upload, "t/upload", "2.5.0"),
            &bios
        )
        .await,
        OpStatus::Running {
            retry_after: Some(SignedDuration::from_secs(2))
        }
    );
    assert_eq!(fake.lock().unwrap().updates.len(), 1);
    assert_eq!(
        d.poll(caller(), OpKind::Upload, "t/upload").await,
        OpStatus::Done
    );
    assert_eq!(
        d.poll(caller(), OpKind::Upload, "t/upload").await,
        OpStatus::Done
    );
    assert_eq!(fake.lock().unwrap().versions["BIOS"], "2.5.0");

    // Applied immediately: the upgrade waits for nothing more than the version.
    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::Upgrade, "t/upgrade", "2.5.0"),
            &bios
        )
        .await,
        OpStatus::Done
    );
    assert!(fake.lock().unwrap().resets.is_empty());
    assert_eq!(d.facts(caller()).await.unwrap().firmware, "2.5.0");
}

#[tokio::test]
async fn multipart_push_on_reset_is_applied_by_the_upgrades_reset() {
    let (repo, _images, _dir) = image_repository(&[("bios-2.5.0.bin", BIOS)], CATALOG).await;
    let (fake, url) = start_fake(with_versions(Fake {
        multipart: true,
        apply_on_reset: true,
        retry_after: None,
        ..Fake::default()
    }))
    .await;
    let d = driver(&config(&url));
    let bios = image(repo.as_ref(), "bios-2.5.0.bin");

    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::Upload, "t/upload", "2.5.0"),
            &bios
        )
        .await,
        OpStatus::Running { retry_after: None }
    );
    {
        let f = fake.lock().unwrap();
        assert_eq!(f.updates[0]["Targets"][0], "/redfish/v1/Systems/1");
        assert_eq!(f.updates[0]["@Redfish.OperationApplyTime"], "OnReset");
        assert_eq!(
            f.received,
            vec![("bios-2.5.0.bin".to_string(), BIOS.to_vec())]
        );
    }
    assert_eq!(
        d.poll(caller(), OpKind::Upload, "t/upload").await,
        OpStatus::Running { retry_after: None }
    );
    assert_eq!(
        d.poll(caller(), OpKind::Upload, "t/upload").await,
        OpStatus::Done
    );
    // Staged, not applied.
    assert_eq!(d.facts(caller()).await.unwrap().firmware, "2.4.0");

    // The upgrade resets the system, which applies the image.
    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::Upgrade, "t/upgrade", "2.5.0"),
            &bios
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(fake.lock().unwrap().resets, vec!["GracefulRestart"]);
    assert_eq!(d.facts(caller()).await.unwrap().firmware, "2.5.0");
    // Starting it again does not reset again.
    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::Upgrade, "t/upgrade", "2.5.0"),
            &bios
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(fake.lock().unwrap().resets.len(), 1);
}

#[tokio::test]
async fn the_engine_brings_the_fake_to_the_new_version_with_success() {
    let (repo, _images, _dir) = image_repository(&[("bmc-5.20.bin", BMC)], CATALOG).await;
    let (fake, url) = start_fake(with_versions(Fake {
        multipart: true,
        apply_on_reset: true,
        task_states: vec!["New", "Starting", "Running", "Running", "Completed"],
        ..Fake::default()
    }))
    .await;
    let d = driver(&with_target(config(&url), None, Some("BMC")));
    let spec = FirmwareUpgradeSpec {
        image: "bmc-5.20.bin".into(),
        ..FirmwareUpgradeSpec::default()
    };
    let run = run_task(
        &d,
        DeviceFamily::Server,
        &spec,
        &image(repo.as_ref(), "bmc-5.20.bin"),
    )
    .await;
    assert_eq!(
        run.state.code,
        FirmwareCode::Success,
        "{}",
        run.state.message
    );
    assert_eq!(run.state.message, "the device reports 5.20");
    let codes = run.codes();
    assert!(
        codes.contains(&FirmwareCode::ExecutionWaitingForUploadImage),
        "{codes:?}"
    );
    assert!(
        codes.contains(&FirmwareCode::ExecutionUpgradeStarted),
        "{codes:?}"
    );
    assert!(
        !codes.contains(&FirmwareCode::ExecutionSecondQuiesceStarted),
        "{codes:?}"
    );
    let f = fake.lock().unwrap();
    assert_eq!(f.updates[0]["Targets"][0], "/redfish/v1/Managers/bmc");
    assert_eq!(f.resets, vec!["GracefulRestart"]);
    assert_eq!(f.versions["BMC"], "5.20");
}

#[tokio::test]
async fn a_failed_task_fails_the_operation_with_its_messages() {
    let (repo, images, _dir) = image_repository(&[("bios-2.5.0.bin", BIOS)], CATALOG).await;
    let (_fake, url) = start_fake(with_versions(Fake {
        task_fails: Some("Image signature verification failed.".into()),
        ..Fake::default()
    }))
    .await;
    let mut cfg = config(&url);
    cfg.image_base_url = Some(images);
    let d = driver(&cfg);
    let bios = image(repo.as_ref(), "bios-2.5.0.bin");
    let spec = FirmwareUpgradeSpec {
        image: "bios-2.5.0.bin".into(),
        ..FirmwareUpgradeSpec::default()
    };
    let run = run_task(&d, DeviceFamily::Server, &spec, &bios).await;
    assert_eq!(run.state.code, FirmwareCode::ExecutionUploadImageError);
    assert!(
        run.state
            .message
            .contains("the task ended Exception: Image signature verification failed."),
        "{}",
        run.state.message
    );
}

#[tokio::test]
async fn an_unknown_key_adopts_the_running_update_instead_of_starting_another() {
    let (repo, images, _dir) = image_repository(&[("bios-2.5.0.bin", BIOS)], CATALOG).await;
    let (fake, url) = start_fake(with_versions(Fake {
        task_states: vec!["New", "Running", "Running", "Running", "Completed"],
        ..Fake::default()
    }))
    .await;
    let mut cfg = config(&url);
    cfg.image_base_url = Some(images);
    let bios = image(repo.as_ref(), "bios-2.5.0.bin");

    let before = driver(&cfg);
    assert!(matches!(
        before
            .start(
                caller(),
                &Start::new(OpKind::Upload, "t/upload", "2.5.0"),
                &bios
            )
            .await,
        OpStatus::Running { .. }
    ));
    drop(before);

    // The operator restarted: a new driver knows no keys.
    let after = driver(&cfg);
    assert!(matches!(
        after.poll(caller(), OpKind::Upload, "t/upload").await,
        OpStatus::Running { .. }
    ));
    let other = driver(&cfg);
    assert!(matches!(
        other
            .start(
                caller(),
                &Start::new(OpKind::Upload, "t/upload", "2.5.0"),
                &bios
            )
            .await,
        OpStatus::Running { .. }
    ));
    assert_eq!(
        fake.lock().unwrap().updates.len(),
        1,
        "an update never starts twice"
    );
    let mut status = after.poll(caller(), OpKind::Upload, "t/upload").await;
    for _ in 0..5 {
        if status == OpStatus::Done {
            break;
        }
        status = after.poll(caller(), OpKind::Upload, "t/upload").await;
    }
    assert_eq!(status, OpStatus::Done);

    // With the version in place, an unknown upload key is done without a new update.
    let late = driver(&cfg);
    assert_eq!(
        late.start(
            caller(),
            &Start::new(OpKind::Upload, "t/upload", "2.5.0"),
            &bios
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(fake.lock().unwrap().updates.len(), 1);

    // A key nobody knows, with no update running: unknown.
    assert_eq!(
        late.poll(caller(), OpKind::Upload, "other/upload").await,
        OpStatus::Unknown
    );
    assert_eq!(
        late.poll(caller(), OpKind::Restart, "other/restart").await,
        OpStatus::Unknown
    );
    // Quiesces do not apply to Redfish.
    for op in [
        OpKind::FirstQuiesce,
        OpKind::SecondQuiesce,
        OpKind::Unquiesce,
    ] {
        assert_eq!(
            late.start(caller(), &Start::new(op, "q", "2.5.0"), &bios)
                .await,
            OpStatus::Done
        );
        assert_eq!(late.poll(caller(), op, "q").await, OpStatus::Done);
    }
}

#[tokio::test]
async fn restart_resets_the_system_gracefully() {
    let (fake, url) = start_fake(Fake::default()).await;
    let d = driver(&config(&url));
    let bios = upkeep::drivers::ImageRef {
        entry: upkeep::engine::firmware::observe::ImageEntry {
            name: "x".into(),
            size: 1,
            catalog_version: None,
        },
        sha256: None,
        path: None,
    };
    assert_eq!(
        d.start(
            caller(),
            &Start::new(OpKind::Restart, "t/restart", "2.5.0"),
            &bios
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(
        d.poll(caller(), OpKind::Restart, "t/restart").await,
        OpStatus::Done
    );
    assert_eq!(fake.lock().unwrap().resets, vec!["GracefulRestart"]);
}

#[tokio::test]
async fn faults_map_onto_error_exception_and_unreachable() {
    let (fake, url) = start_fake(Fake::default()).await;
    let d = driver(&config(&url));
    let set = |path: &str, fault: Option<Fault>| {
        let mut f = fake.lock().unwrap();
        match fault {
            Some(fault) => f.faults.insert(path.to_string(), fault),
            None => f.faults.remove(path),
        };
    };
    set(
        "/redfish/v1/Systems/1",
        Some(Fault::Error(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable.",
        )),
    );
    let e = d.facts(caller()).await.unwrap_err();
    assert_eq!(e.kind, FaultKind::Error);
    assert_eq!(
        e.message,
        "HTTP 503 Service Unavailable: The service is temporarily unavailable."
    );
    set("/redfish/v1/Systems/1", Some(Fault::Malformed));
    let e = d.facts(caller()).await.unwrap_err();
    assert_eq!(e.kind, FaultKind::Exception);
    assert!(e.message.contains("not JSON"), "{e}");
    set("/redfish/v1/Systems/1", Some(Fault::Reset));
    let e = d.facts(caller()).await.unwrap_err();
    assert_eq!(e.kind, FaultKind::Exception, "{e}");
    set("/redfish/v1/Systems/1", Some(Fault::Hang));
    let mut quick = config(&url);
    quick.timeout = std::time::Duration::from_millis(500);
    let e = driver(&quick).facts(caller()).await.unwrap_err();
    assert_eq!(e.kind, FaultKind::Unreachable, "{e}");
    set("/redfish/v1/Systems/1", None);
    assert!(d.facts(caller()).await.is_ok());

    // Nothing listens: unreachable.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = driver(&config(&format!("http://{closed}")))
        .facts(caller())
        .await
        .unwrap_err();
    assert_eq!(e.kind, FaultKind::Unreachable, "{e}");
}

#[tokio::test]
async fn basic_auth_is_sent_and_never_printed() {
    let (_fake, url) = start_fake(Fake {
        auth: Some(("admin".into(), "s3cr3t-pw".into())),
        ..Fake::default()
    })
    .await;
    let d = driver(&config(&url));
    assert_eq!(d.facts(caller()).await.unwrap().firmware, "2.4.0");
    assert!(!format!("{d:?}").contains("s3cr3t-pw"));

    let mut wrong = config(&url);
    wrong.credentials = Some(Credentials::new("admin", "nope"));
    let e = driver(&wrong).facts(caller()).await.unwrap_err();
    assert_eq!(e.kind, FaultKind::Error);
    assert_eq!(
        e.message,
        "HTTP 401 Unauthorized: The authentication failed."
    );
    assert!(!e.message.contains("nope"));
}

#[tokio::test]
async fn connect_builds_the_redfish_driver() {
    let (_fake, url) = start_fake(Fake::default()).await;
    let d = connect(upkeep::api::device::DriverKind::Redfish, config(&url)).unwrap();
    assert_eq!(d.facts(caller()).await.unwrap().firmware, "2.4.0");
    let bad = connect(
        upkeep::api::device::DriverKind::Redfish,
        config("ftp://bmc.example"),
    );
    assert!(bad.is_err());
}

/// A service that downloads its image, with no base URL to serve it from: the failure names the
/// flags that fix it.
#[tokio::test]
async fn simple_update_without_an_image_base_url_names_the_flags_that_fix_it() {
    let (repo, _images, _dir) = image_repository(&[("bios-2.5.0.bin", BIOS)], CATALOG).await;
    let (fake, url) = start_fake(with_versions(Fake::default())).await;
    let d = driver(&config(&url));
    let status = d
        .start(
            caller(),
            &Start::new(OpKind::Upload, "t/upload", "2.5.0"),
            &image(repo.as_ref(), "bios-2.5.0.bin"),
        )
        .await;
    let OpStatus::Failed(error) = status else {
        panic!("{status:?}")
    };
    assert!(error.message.contains("--serve-images ADDR"), "{error:?}");
    assert!(error.message.contains("--image-base-url URL"), "{error:?}");
    assert!(fake.lock().unwrap().updates.is_empty());
}

/// `upkeep device upgrade` of a Redfish device at a loopback address serves the images on
/// loopback by itself: no --serve-images needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_upgrade_command_serves_images_on_loopback_for_a_loopback_device() {
    let (fake, url) = start_fake(with_versions(Fake::default())).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("images");
    std::fs::create_dir(&repo).unwrap();
    std::fs::write(repo.join("bios-2.5.0.bin"), BIOS).unwrap();
    std::fs::write(repo.join("catalog.yaml"), CATALOG).unwrap();
    let device = dir.path().join("server.yaml");
    std::fs::write(
        &device,
        format!("apiVersion: upkeep.dev/v1alpha1\nkind: Device\nmetadata:\n  name: node-1\nspec:\n  driver: redfish\n  address: {url}\n  redfish:\n    component: BIOS\n"),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["device", "upgrade"])
        .arg(&device)
        .args(["--image", "bios-2.5.0.bin", "--repository"])
        .arg(&repo)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("serving the images to it on loopback"),
        "{stderr}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("default/node-1: SUCCESS (Succeeded)"),
        "{stdout}"
    );
    let f = fake.lock().unwrap();
    assert!(
        f.updates[0]["ImageURI"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{:?}",
        f.updates
    );
    assert_eq!(
        f.received,
        vec![("bios-2.5.0.bin".to_string(), BIOS.to_vec())]
    );
}
