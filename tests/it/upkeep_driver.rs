//! The `upkeep` driver against `devicesim` over loopback: plain HTTP and TLS, every fault at
//! every step, idempotent operation keys, uploads skipped and resumed, credentials.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use upkeep::api::device::DriverKind;
use upkeep::drivers::credentials::Credentials;
use upkeep::drivers::http::TlsSettings;
use upkeep::drivers::{Caller, DeviceDriver, ImageRef, Phase};
use upkeep::drivers::{ConnectError, DriverConfig, connect};
use upkeep::engine::firmware::observe::{CallError, FaultKind, OpKind, OpStatus, Start};
use upkeep::images::repository::{DirRepository, ImageRepository as _};
use upkeep::sim::devicesim::{self, Options, Running, tls};
use upkeep::sim::fleet_file::Fleet;

const IMAGE: &str = "idg7519.oradco.scrypt4";
const IMAGE_SIZE: usize = 48 << 10;
/// The version [`IMAGE`] installs, as the engine passes it in every start.
const TARGET: &str = "7.5.1.9";
const QUICK: &str = "{ quiesce: 1s, unquiesce: 1s, restart: 1s, upgrade: 1s, uploadRate: 8Mi }";

const VALIDATING: Caller<'static> = Caller {
    task: Some("default/fw-1/uid"),
    phase: Phase::Validation,
};
const EXECUTING: Caller<'static> = Caller {
    task: Some("default/fw-1/uid"),
    phase: Phase::Execution,
};

/// The steps where a fleet fault strikes, as the fleet file names them.
const STEPS: [&str; 9] = [
    "facts",
    "licenses",
    "domainStatus",
    "upload",
    "firstQuiesce",
    "secondQuiesce",
    "restart",
    "upgrade",
    "unquiesce",
];

fn fleet(devices: &str) -> Fleet {
    Fleet::from_yaml(&format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\ndevices:\n{devices}"
    ))
    .unwrap()
}

fn serve(fleet: &Fleet, options: Options) -> Running {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    devicesim::start(fleet, listener, options).unwrap()
}

fn config(address: String, credentials: Option<Credentials>, tls: TlsSettings) -> DriverConfig {
    DriverConfig {
        address,
        credentials,
        tls,
        redfish: None,
        image_base_url: None,
        timeout: Duration::from_secs(5),
    }
}

fn driver(sim: &Running, name: &str) -> Box<dyn DeviceDriver> {
    let url = sim.device_url("default", name).unwrap();
    connect(
        DriverKind::Upkeep,
        config(url, None, TlsSettings::default()),
    )
    .unwrap()
}

fn short_driver(sim: &Running, name: &str, timeout: Duration) -> Box<dyn DeviceDriver> {
    let mut config = config(
        sim.device_url("default", name).unwrap(),
        None,
        TlsSettings::default(),
    );
    config.timeout = timeout;
    connect(DriverKind::Upkeep, config).unwrap()
}

/// An image file in a temporary repository, with its checksum.
fn image(dir: &tempfile::TempDir) -> ImageRef {
    let bytes: Vec<u8> = (0..IMAGE_SIZE).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join(IMAGE), bytes).unwrap();
    DirRepository::new(dir.path())
        .lookup(IMAGE)
        .unwrap()
        .unwrap()
}

fn key(name: &str) -> (String, String) {
    ("default".to_string(), name.to_string())
}

fn failed_kind(status: &OpStatus) -> Option<FaultKind> {
    match status {
        OpStatus::Failed(e) => Some(e.kind),
        _ => None,
    }
}

fn op_of(step: &str) -> Option<OpKind> {
    Some(match step {
        "upload" => OpKind::Upload,
        "firstQuiesce" => OpKind::FirstQuiesce,
        "secondQuiesce" => OpKind::SecondQuiesce,
        "restart" => OpKind::Restart,
        "upgrade" => OpKind::Upgrade,
        "unquiesce" => OpKind::Unquiesce,
        _ => return None,
    })
}

/// What one step gives on a device: a reading's error, or an operation's start and poll.
#[derive(Debug)]
enum Outcome {
    Reading(Result<(), CallError>),
    Operation { start: OpStatus, poll: OpStatus },
}

/// Runs `step` on `driver` as the engine would; an upgrade needs the image on the device first.
async fn run_step(driver: &dyn DeviceDriver, step: &str, image: &ImageRef) -> Outcome {
    match step {
        "facts" => Outcome::Reading(driver.facts(EXECUTING).await.map(drop)),
        "licenses" => Outcome::Reading(driver.licenses(EXECUTING).await.map(drop)),
        "domainStatus" => Outcome::Reading(driver.domain_status(EXECUTING).await.map(drop)),
        _ => {
            let op = op_of(step).unwrap();
            if op != OpKind::Upload {
                let uploaded = driver
                    .start(
                        EXECUTING,
                        &Start::new(OpKind::Upload, "k/upload", TARGET),
                        image,
                    )
                    .await;
                assert_eq!(uploaded, OpStatus::Done, "{step}: uploading first");
            }
            let key = format!("k/{step}");
            let start = driver
                .start(EXECUTING, &Start::new(op, &key, TARGET), image)
                .await;
            let poll = driver.poll(EXECUTING, op, &key).await;
            Outcome::Operation { start, poll }
        }
    }
}

/// A fleet with one device per step, each with a fault of `kind` there.
fn faulty_fleet(kind: &str) -> Fleet {
    let devices: String = STEPS
        .iter()
        .map(|step| {
            format!(
                "  - name: {}\n    timings: {QUICK}\n    faults: [ {{ step: {step}, kind: {kind} }} ]\n",
                step.to_lowercase()
            )
        })
        .collect();
    fleet(&devices)
}

async fn every_step(
    sim: &Running,
    image: &ImageRef,
    timeout: Duration,
) -> Vec<(&'static str, Outcome)> {
    join_all(STEPS.iter().map(|step| async move {
        let driver = short_driver(sim, &step.to_lowercase(), timeout);
        (*step, run_step(driver.as_ref(), step, image).await)
    }))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_a_device_over_http() {
    let fleet = fleet(
        "  - name: dp-1\n    unsavedChanges: true\n    features: [DCO-Oracle, Tibco-EMS]\n  - name: dp-9\n    namespace: lab\n    firmware: 7.5.2.0\n",
    );
    let sim = serve(&fleet, Options::default());
    let dp1 = driver(&sim, "dp-1");
    let facts = dp1.facts(VALIDATING).await.unwrap();
    assert_eq!(
        (
            facts.model.as_str(),
            facts.r#virtual,
            facts.firmware.as_str()
        ),
        ("IDG", true, "7.5.1.7")
    );
    assert_eq!(facts.free_encrypted, Some(2 << 30));
    assert_eq!(
        dp1.licenses(VALIDATING).await.unwrap(),
        ["DCO-Oracle", "Tibco-EMS"]
    );
    let domains = dp1.domain_status(VALIDATING).await.unwrap();
    assert!(domains.unsaved_changes);
    assert_eq!(domains.domains[0].name, "default");
    let inventory = dp1.inventory(VALIDATING).await.unwrap();
    assert_eq!(inventory.features, ["DCO-Oracle", "Tibco-EMS"]);
    assert!(inventory.domains.unsaved_changes);

    // A device of another namespace: at /devices/<namespace>/<name>, and at /devices/<name>
    // since its name is unique in the fleet.
    for address in [
        format!("{}/devices/lab/dp-9", sim.base_url()),
        format!("{}/devices/dp-9", sim.base_url()),
    ] {
        let dp9 = connect(
            DriverKind::Upkeep,
            config(address.clone(), None, TlsSettings::default()),
        )
        .unwrap();
        assert_eq!(
            dp9.facts(VALIDATING).await.unwrap().firmware,
            "7.5.2.0",
            "{address}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_address_or_a_silent_port_are_named() {
    let sim = serve(&fleet("  - name: dp-1\n"), Options::default());
    let wrong = connect(
        DriverKind::Upkeep,
        config(
            format!("{}/devices/dp-7", sim.base_url()),
            None,
            TlsSettings::default(),
        ),
    )
    .unwrap();
    let error = wrong.facts(VALIDATING).await.unwrap_err();
    assert_eq!(error.kind, FaultKind::Error, "{error}");
    assert!(error.message.contains("/devices/dp-1"), "{error}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nobody = connect(
        DriverKind::Upkeep,
        config(
            format!("http://127.0.0.1:{port}"),
            None,
            TlsSettings::default(),
        ),
    )
    .unwrap();
    let error = nobody.facts(VALIDATING).await.unwrap_err();
    assert_eq!(error.kind, FaultKind::Unreachable, "{error}");
    assert!(error.message.contains("cannot connect"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_verified_against_the_ca_bundle() {
    let ca = tls::generate("test CA", &["127.0.0.1".into(), "localhost".into()]).unwrap();
    let sim = serve(
        &fleet("  - name: dp-1\n"),
        Options {
            credentials: None,
            tls: Some(ca.server.clone()),
        },
    );
    let url = sim.device_url("default", "dp-1").unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let trusted = TlsSettings {
        ca_bundle_pem: Some(ca.ca_pem.clone().into_bytes()),
        insecure_skip_verify: false,
    };
    let dp1 = connect(DriverKind::Upkeep, config(url.clone(), None, trusted)).unwrap();
    assert_eq!(dp1.facts(VALIDATING).await.unwrap().firmware, "7.5.1.7");

    // The certificate of another CA is rejected: the device counts as unreachable (no request
    // reached it), and the message says why and what to do.
    let other = tls::generate("other CA", &["127.0.0.1".into()]).unwrap();
    let wrong = TlsSettings {
        ca_bundle_pem: Some(other.ca_pem.into_bytes()),
        insecure_skip_verify: false,
    };
    let dp1 = connect(DriverKind::Upkeep, config(url.clone(), None, wrong)).unwrap();
    let error = dp1.facts(VALIDATING).await.unwrap_err();
    assert_eq!(error.kind, FaultKind::Unreachable, "{error}");
    assert!(
        error.message.contains("TLS certificate was rejected"),
        "{error}"
    );
    assert!(error.message.contains("UnknownIssuer"), "{error}");
    assert!(error.message.contains("caBundleSecretRef"), "{error}");

    // Without verification any certificate is accepted.
    let insecure = TlsSettings {
        ca_bundle_pem: None,
        insecure_skip_verify: true,
    };
    let dp1 = connect(DriverKind::Upkeep, config(url, None, insecure)).unwrap();
    assert!(dp1.facts(VALIDATING).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_at_every_step_is_a_device_error() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(&dir);
    let sim = serve(&faulty_fleet("error"), Options::default());
    for (step, outcome) in every_step(&sim, &image, Duration::from_secs(5)).await {
        match outcome {
            Outcome::Reading(result) => {
                let error = result.unwrap_err();
                assert_eq!(error.kind, FaultKind::Error, "{step}: {error}");
                assert!(
                    error.message.contains("returned an error"),
                    "{step}: {error}"
                );
            }
            Outcome::Operation { start, .. } => {
                assert_eq!(
                    failed_kind(&start),
                    Some(FaultKind::Error),
                    "{step}: {start:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exception_at_every_step_is_a_broken_call() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(&dir);
    let sim = serve(&faulty_fleet("exception"), Options::default());
    for (step, outcome) in every_step(&sim, &image, Duration::from_secs(5)).await {
        match outcome {
            Outcome::Reading(result) => {
                let error = result.unwrap_err();
                assert_eq!(error.kind, FaultKind::Exception, "{step}: {error}");
                assert!(
                    error.message.contains("not the expected JSON"),
                    "{step}: {error}"
                );
            }
            Outcome::Operation { start, .. } => {
                assert_eq!(
                    failed_kind(&start),
                    Some(FaultKind::Exception),
                    "{step}: {start:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hang_at_every_step_is_bounded_by_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(&dir);
    let sim = serve(&faulty_fleet("hang"), Options::default());
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    for (step, outcome) in every_step(&sim, &image, timeout).await {
        match (step, outcome) {
            // A reading or the image transfer never answered: the call timed out.
            (_, Outcome::Reading(result)) => {
                let error = result.unwrap_err();
                assert_eq!(error.kind, FaultKind::Unreachable, "{step}: {error}");
                assert!(
                    error.message.contains("no answer within 500ms"),
                    "{step}: {error}"
                );
            }
            ("upload", Outcome::Operation { start, .. }) => {
                let message = format!("{start:?}");
                assert!(message.contains("no answer within 1.5s"), "{message}");
                assert_eq!(
                    failed_kind(&start),
                    Some(FaultKind::Unreachable),
                    "{step}: {start:?}"
                );
            }
            // An operation that never completes: it stays running, so the step's timeout in
            // the engine decides.
            (_, Outcome::Operation { start, poll }) => {
                assert_eq!(start, OpStatus::Running { retry_after: None }, "{step}");
                assert_eq!(poll, OpStatus::Running { retry_after: None }, "{step}");
            }
        }
    }
    // The upload's bound is the call timeout plus a second per MiB.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operation_key_starts_an_operation_once() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(&dir);
    let sim = serve(
        &fleet("  - name: dp-1\n    timings: { quiesce: 1s, upgrade: 2s }\n"),
        Options::default(),
    );
    let dp1 = driver(&sim, "dp-1");
    assert_eq!(
        dp1.poll(EXECUTING, OpKind::Upgrade, "k/upgrade").await,
        OpStatus::Unknown
    );

    // A quiesce started twice with one key is one quiesce.
    let first = dp1
        .start(
            EXECUTING,
            &Start::new(OpKind::SecondQuiesce, "k/q", TARGET),
            &image,
        )
        .await;
    let again = dp1
        .start(
            EXECUTING,
            &Start::new(OpKind::SecondQuiesce, "k/q", TARGET),
            &image,
        )
        .await;
    assert!(
        matches!(
            first,
            OpStatus::Running {
                retry_after: Some(_)
            }
        ),
        "{first:?}"
    );
    assert!(
        matches!(
            again,
            OpStatus::Running {
                retry_after: Some(_)
            }
        ),
        "{again:?}"
    );
    // A key names one kind of operation.
    let other = dp1
        .start(
            EXECUTING,
            &Start::new(OpKind::Unquiesce, "k/q", TARGET),
            &image,
        )
        .await;
    assert_eq!(failed_kind(&other), Some(FaultKind::Error), "{other:?}");

    assert_eq!(
        dp1.start(
            EXECUTING,
            &Start::new(OpKind::Upload, "k/upload", TARGET),
            &image
        )
        .await,
        OpStatus::Done
    );
    let started = dp1
        .start(
            EXECUTING,
            &Start::new(OpKind::Upgrade, "k/upgrade", TARGET),
            &image,
        )
        .await;
    assert!(matches!(started, OpStatus::Running { .. }), "{started:?}");
    // Starting again while the device restarts into the image: no answer, and no second start.
    let again = dp1
        .start(
            EXECUTING,
            &Start::new(OpKind::Upgrade, "k/upgrade", TARGET),
            &image,
        )
        .await;
    assert_eq!(
        failed_kind(&again),
        Some(FaultKind::Unreachable),
        "{again:?}"
    );
    let polled = dp1.poll(EXECUTING, OpKind::Upgrade, "k/upgrade").await;
    assert_eq!(
        failed_kind(&polled),
        Some(FaultKind::Unreachable),
        "{polled:?}"
    );
    // The device is back after the upgrade's 2s.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match dp1.poll(EXECUTING, OpKind::Upgrade, "k/upgrade").await {
            OpStatus::Done => break,
            other => {
                assert!(Instant::now() < deadline, "still {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Once done, the same key reports the finished upgrade.
    assert_eq!(
        dp1.start(
            EXECUTING,
            &Start::new(OpKind::Upgrade, "k/upgrade", TARGET),
            &image
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(sim.sim().model().upgrade_starts(&key("dp-1")), 1);
    assert_eq!(dp1.facts(EXECUTING).await.unwrap().firmware, "7.5.1.9");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_the_device_holds_is_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(&dir);
    let sim = serve(
        &fleet("  - name: dp-1\n    timings: { uploadRate: 1Mi }\n"),
        Options::default(),
    );
    let dp1 = driver(&sim, "dp-1");
    let started = Instant::now();
    assert_eq!(
        dp1.start(
            EXECUTING,
            &Start::new(OpKind::Upload, "a/upload", TARGET),
            &image
        )
        .await,
        OpStatus::Done
    );
    // 48Ki at 1Mi/s: the transfer takes its time.
    assert!(
        started.elapsed() >= Duration::from_millis(45),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sim.sim().bytes_received(&key("dp-1")), IMAGE_SIZE as u64);
    assert_eq!(
        dp1.poll(EXECUTING, OpKind::Upload, "a/upload").await,
        OpStatus::Done
    );

    // Another task's upload of the same image: nothing is sent.
    assert_eq!(
        dp1.start(
            EXECUTING,
            &Start::new(OpKind::Upload, "b/upload", TARGET),
            &image
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(sim.sim().bytes_received(&key("dp-1")), IMAGE_SIZE as u64);

    // Other bytes under the same name are sent.
    std::fs::write(dir.path().join(IMAGE), vec![7u8; IMAGE_SIZE]).unwrap();
    let changed = DirRepository::new(dir.path())
        .lookup(IMAGE)
        .unwrap()
        .unwrap();
    assert_ne!(changed.sha256, image.sha256);
    assert_eq!(
        dp1.start(
            EXECUTING,
            &Start::new(OpKind::Upload, "c/upload", TARGET),
            &changed
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(
        sim.sim().bytes_received(&key("dp-1")),
        2 * IMAGE_SIZE as u64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_upload_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(&dir);
    let sim = serve(&fleet("  - name: dp-1\n"), Options::default());
    let url = sim.device_url("default", "dp-1").unwrap();
    let bytes = std::fs::read(dir.path().join(IMAGE)).unwrap();
    let sha256 = image.sha256.clone().unwrap();

    // A transfer that breaks off after the first half.
    let half = bytes[..IMAGE_SIZE / 2].to_vec();
    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(half)]).chain(
        futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Err(std::io::Error::other("the sender broke off"))
        }),
    );
    let client =
        upkeep::drivers::http::client(&TlsSettings::default(), Duration::from_secs(5)).unwrap();
    let broken = client
        .put(format!("{url}/images/{IMAGE}"))
        .header("upkeep-image-sha256", &sha256)
        .header("upkeep-image-size", IMAGE_SIZE)
        .header("content-length", IMAGE_SIZE)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    assert!(broken.is_err(), "{broken:?}");
    // The simulator notices the broken transfer a moment after the sender gives up.
    let mut held = serde_json::Value::Null;
    for _ in 0..100 {
        held = client
            .get(format!("{url}/images/{IMAGE}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if held["complete"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(held["complete"], false, "{held}");
    let received = held["received"].as_u64().unwrap();
    assert!(received > 0 && received < IMAGE_SIZE as u64, "{held}");

    // The driver sends the rest only.
    let dp1 = driver(&sim, "dp-1");
    assert_eq!(
        dp1.start(
            EXECUTING,
            &Start::new(OpKind::Upload, "k/upload", TARGET),
            &image
        )
        .await,
        OpStatus::Done
    );
    assert_eq!(sim.sim().bytes_received(&key("dp-1")), IMAGE_SIZE as u64);
}

use futures::StreamExt as _;

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_required_and_checked() {
    let sim = serve(
        &fleet("  - name: dp-1\n"),
        Options {
            credentials: Some(Credentials::new("admin", "s3cr3t-pass")),
            tls: None,
        },
    );
    let url = sim.device_url("default", "dp-1").unwrap();
    let with = |credentials| {
        connect(
            DriverKind::Upkeep,
            config(url.clone(), credentials, TlsSettings::default()),
        )
        .unwrap()
    };
    for credentials in [None, Some(Credentials::new("admin", "wrong"))] {
        let error = with(credentials).facts(VALIDATING).await.unwrap_err();
        assert_eq!(error.kind, FaultKind::Error, "{error}");
        assert!(
            error.message.contains("rejected the credentials"),
            "{error}"
        );
        assert!(!error.message.contains("s3cr3t-pass") && !error.message.contains("wrong"));
    }
    let dp1 = with(Some(Credentials::new("admin", "s3cr3t-pass")));
    assert!(dp1.facts(VALIDATING).await.is_ok());
}

/// Captures every tracing event of the thread into a buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut out) = self.0.lock() {
            out.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn credentials_never_reach_the_logs() {
    const PASSWORD: &str = "pw-7f3a-never-logged";
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        // One thread, so every task logs into this subscriber.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let image = image(&dir);
            let credentials = Credentials::new("admin", PASSWORD);
            let sim = serve(
                &fleet(&format!("  - name: dp-1\n    timings: {QUICK}\n")),
                Options {
                    credentials: Some(credentials.clone()),
                    tls: None,
                },
            );
            let url = sim.device_url("default", "dp-1").unwrap();
            let dp1 = connect(
                DriverKind::Upkeep,
                config(url.clone(), Some(credentials), TlsSettings::default()),
            )
            .unwrap();
            assert!(dp1.facts(VALIDATING).await.is_ok());
            assert_eq!(
                dp1.start(
                    EXECUTING,
                    &Start::new(OpKind::Upload, "k/upload", TARGET),
                    &image
                )
                .await,
                OpStatus::Done
            );
            assert!(matches!(
                dp1.start(
                    EXECUTING,
                    &Start::new(OpKind::SecondQuiesce, "k/q", TARGET),
                    &image
                )
                .await,
                OpStatus::Running { .. }
            ));
            let rejected = connect(
                DriverKind::Upkeep,
                config(
                    url,
                    Some(Credentials::new("admin", format!("{PASSWORD}-x"))),
                    TlsSettings::default(),
                ),
            )
            .unwrap();
            assert!(rejected.facts(VALIDATING).await.is_err());
        });
    });
    let logged = String::from_utf8_lossy(&capture.0.lock().unwrap()).to_string();
    assert!(
        logged.contains("plain HTTP"),
        "the driver warns about plain HTTP:\n{logged}"
    );
    assert!(
        logged.contains("answered"),
        "the simulator logs its answers:\n{logged}"
    );
    assert!(
        logged.contains("call=\"start\""),
        "driver spans are logged:\n{logged}"
    );
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
    assert!(!logged.contains(PASSWORD), "the password was logged");
    assert!(!logged.contains(&basic), "the basic auth header was logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_execution_phase_scripts_the_device() {
    let sim = serve(
        &fleet(
            "  - name: gone\n    unavailableFrom: execution\n  - name: moved\n    firmwareChangesTo: 7.5.2.0\n  - name: off\n    available: false\n",
        ),
        Options::default(),
    );
    let gone = driver(&sim, "gone");
    assert!(gone.facts(VALIDATING).await.is_ok());
    let error = gone.facts(EXECUTING).await.unwrap_err();
    assert_eq!(error.kind, FaultKind::Unreachable, "{error}");
    assert!(error.message.contains("503"), "{error}");

    let moved = driver(&sim, "moved");
    assert_eq!(moved.facts(VALIDATING).await.unwrap().firmware, "7.5.1.7");
    assert_eq!(moved.facts(EXECUTING).await.unwrap().firmware, "7.5.2.0");

    let off = driver(&sim, "off");
    assert_eq!(
        off.licenses(VALIDATING).await.unwrap_err().kind,
        FaultKind::Unreachable
    );
}

#[test]
fn connect_builds_every_driver_and_rejects_bad_addresses() {
    let good = || config("https://10.0.0.5:5554".into(), None, TlsSettings::default());
    for kind in [
        DriverKind::Upkeep,
        DriverKind::Redfish,
        DriverKind::Datapower,
    ] {
        assert!(connect(kind, good()).is_ok(), "{kind:?}");
    }
    assert!(matches!(
        connect(
            DriverKind::Upkeep,
            config("10.0.0.5:5554".into(), None, TlsSettings::default())
        ),
        Err(ConnectError::Address { .. })
    ));
}
