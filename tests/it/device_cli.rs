//! `upkeep devicesim` and `upkeep device facts|upgrade`, run as binaries: an upgrade end to end,
//! a faulty device, a device whose patch does not take effect, dry runs, TLS with the generated
//! CA, and credentials kept out of every output.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "cli-pw-4e1d-never-printed";
const IMAGE: &str = "idg7519.oradco.scrypt4";
const QUICK: &str = "{ quiesce: 1s, unquiesce: 1s, restart: 1s, upgrade: 1s, uploadRate: 4Mi }";

fn fleet() -> String {
    format!(
        r#"apiVersion: upkeep.dev/v1alpha1
kind: Fleet
images:
  - {{ name: {IMAGE}, size: 64Ki }}
devices:
  - name: dp-1
    timings: {QUICK}
  - name: dp-2
    timings: {QUICK}
    faults:
      - {{ step: secondQuiesce, kind: error }}
  - name: dp-3
    timings: {QUICK}
    faults:
      - {{ step: licenses, kind: exception }}
  - name: dp-4
    timings: {QUICK}
    patches:
      - {{ id: V100R004C01SPH105, state: running }}
      - {{ id: V100R004C01SPH106, state: activating }}
"#
    )
}

/// A running `upkeep devicesim`, stopped (by its process handle) when dropped.
struct Devicesim {
    child: Child,
    urls: Vec<String>,
    extra: Vec<String>,
    output: Arc<Mutex<String>>,
}

impl Devicesim {
    fn start(dir: &Path, args: &[&str]) -> Self {
        std::fs::write(dir.join("fleet.yaml"), fleet()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(["devicesim", "--fleet"])
            .arg(dir.join("fleet.yaml"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the upkeep binary runs");
        let output = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            sink.lock().unwrap().push_str(&text);
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut urls, mut extra) = (Vec::new(), Vec::new());
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap() > 0 {
            output.lock().unwrap().push_str(&line);
            if let Some(url) = line.split_whitespace().find(|w| w.contains("/devices/")) {
                urls.push(url.to_string());
            }
            if line.contains("--ca ") {
                extra.push(line.trim().rsplit(' ').next().unwrap().to_string());
            }
            if line.starts_with("Ctrl-C stops.") {
                break;
            }
            line.clear();
        }
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            sink.lock().unwrap().push_str(&text);
        });
        assert_eq!(urls.len(), 4, "{}", output.lock().unwrap());
        Self {
            child,
            urls,
            extra,
            output,
        }
    }

    fn url(&self, name: &str) -> &str {
        self.urls
            .iter()
            .find(|u| u.ends_with(&format!("/devices/{name}")))
            .unwrap()
    }

    /// Stops the simulator and returns everything it printed.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Devicesim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn device_manifest(dir: &Path, name: &str, address: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: upkeep.dev/v1alpha1\nkind: Device\nmetadata:\n  name: {name}\nspec:\n  driver: upkeep\n  address: {address}\n  credentialsSecretRef:\n    name: dp-credentials\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// A repository with the image (64Ki).
fn repository(dir: &Path) -> PathBuf {
    let repo = dir.join("images");
    std::fs::create_dir_all(&repo).unwrap();
    let bytes: Vec<u8> = (0..64 * 1024).map(|i| (i % 253) as u8).collect();
    std::fs::write(repo.join(IMAGE), bytes).unwrap();
    repo
}

fn credentials(dir: &Path) -> PathBuf {
    let path = dir.join("credentials");
    std::fs::write(&path, format!("admin:{PASSWORD}\n")).unwrap();
    path
}

fn upkeep(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env("RUST_LOG", "trace")
        .env_remove("UPKEEP_USERNAME")
        .env_remove("UPKEEP_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("the upkeep binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// The codes printed, in order: the second column of `TIME  CODE  MESSAGE` lines.
fn codes(output: &Output) -> Vec<String> {
    stdout(output)
        .lines()
        .filter_map(|l| l.split("  ").nth(1))
        .map(str::to_string)
        .collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn upgrade_brings_a_simulated_device_to_the_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials(dir.path());
    let sim = Devicesim::start(dir.path(), &["--credentials", p(&creds)]);
    let repo = repository(dir.path());
    let dp1 = device_manifest(dir.path(), "dp-1", sim.url("dp-1"), "");
    let mut outputs = Vec::new();

    let started = Instant::now();
    let upgrade = upkeep(
        &[
            "device",
            "upgrade",
            p(&dp1),
            "--image",
            IMAGE,
            "--repository",
            p(&repo),
            "--credentials",
            p(&creds),
        ],
        &[],
    );
    let elapsed = started.elapsed();
    assert_eq!(upgrade.status.code(), Some(0), "{}", text(&upgrade));
    assert_eq!(
        codes(&upgrade),
        [
            "WAITING_FOR_PRE_VALIDATION",
            "READY_FOR_EXECUTION",
            "SENT_TO_MDB",
            "EXECUTION_STARTED",
            "EXECUTION_PRE_CHECKS_STARTED",
            "EXECUTION_UPLOAD_IMAGE_STARTED",
            "EXECUTION_WAITING_FOR_UPLOAD_IMAGE",
            "EXECUTION_SECOND_QUIESCE_STARTED",
            "EXECUTION_SECOND_QUIESCE_WAITING_FOR_QUIESCE",
            "EXECUTION_UPGRADE_STARTED",
            "EXECUTION_UPGRADE_WAITING_FOR_UPGRADE",
            "SUCCESS",
        ],
        "{}",
        text(&upgrade)
    );
    let first = stdout(&upgrade);
    let first = first.lines().next().unwrap();
    assert!(
        first.len() > 22 && first[..20].ends_with('Z') && first[20..].starts_with("  "),
        "lines start with an RFC 3339 time: {first}"
    );
    assert!(stdout(&upgrade).contains("the device reports 7.5.1.9"));
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    outputs.push(text(&upgrade));

    // The credentials come from the environment just as well.
    let facts = upkeep(
        &["device", "facts", p(&dp1), "-o", "json"],
        &[("UPKEEP_USERNAME", "admin"), ("UPKEEP_PASSWORD", PASSWORD)],
    );
    assert_eq!(facts.status.code(), Some(0), "{}", text(&facts));
    let json: serde_json::Value = serde_json::from_slice(&facts.stdout).unwrap();
    assert_eq!(json["reachable"], true);
    assert_eq!(json["facts"]["firmware"], "7.5.1.9");
    assert_eq!(json["facts"]["model"], "IDG");
    assert_eq!(json["facts"]["virtual"], true);
    assert_eq!(json["facts"]["freeSpace"]["encrypted"], "2Gi");
    assert_eq!(json["facts"]["features"], serde_json::json!(["DCO-Oracle"]));
    assert_eq!(
        json["facts"]["domains"],
        serde_json::json!([{"name": "default", "quiesced": false}])
    );
    outputs.push(text(&facts));

    // Wrong credentials: the device answers, with an error.
    let wrong = upkeep(
        &["device", "facts", p(&dp1), "-o", "json"],
        &[("UPKEEP_USERNAME", "admin"), ("UPKEEP_PASSWORD", "nope")],
    );
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    let json: serde_json::Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!(
        (&json["reachable"], &json["facts"]),
        (&serde_json::json!(true), &serde_json::Value::Null)
    );
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("rejected the credentials")
    );
    outputs.push(text(&wrong));

    let served = sim.stop();
    assert!(
        served.contains("answered"),
        "the simulator logs its answers:\n{served}"
    );
    outputs.push(served);
    for output in outputs {
        assert!(
            !output.contains(PASSWORD),
            "the password was printed:\n{output}"
        );
    }
}

#[test]
fn a_faulty_device_ends_with_its_code_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Devicesim::start(dir.path(), &[]);
    let repo = repository(dir.path());
    let creds = credentials(dir.path());
    let dp2 = device_manifest(dir.path(), "dp-2", sim.url("dp-2"), "");
    let upgrade = upkeep(
        &[
            "device",
            "upgrade",
            p(&dp2),
            "--image",
            IMAGE,
            "--repository",
            p(&repo),
            "--credentials",
            p(&creds),
        ],
        &[],
    );
    assert_eq!(upgrade.status.code(), Some(1), "{}", text(&upgrade));
    let codes = codes(&upgrade);
    assert_eq!(
        codes[codes.len() - 3..],
        [
            "EXECUTION_UNQUIESCE_ON_ERROR_STARTED",
            "EXECUTION_UNQUIESCE_ON_ERROR_WAITING_FOR_UNQUIESCE",
            "EXECUTION_SECOND_QUIESCE_EXCEPTION_OCCURRED",
        ],
        "{}",
        text(&upgrade)
    );
    assert!(
        stdout(&upgrade).contains("the device refused"),
        "the device's message is shown: {}",
        text(&upgrade)
    );
}

#[test]
fn a_patch_not_in_effect_is_warned_of_and_refuses_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Devicesim::start(dir.path(), &[]);
    let repo = repository(dir.path());
    let creds = credentials(dir.path());
    let dp4 = device_manifest(dir.path(), "dp-4", sim.url("dp-4"), "");
    let facts = upkeep(
        &["device", "facts", p(&dp4), "--credentials", p(&creds)],
        &[],
    );
    assert_eq!(facts.status.code(), Some(0), "{}", text(&facts));
    let shown = stdout(&facts);
    assert!(
        shown.contains("patches      V100R004C01SPH105 (running), V100R004C01SPH106 (activating)"),
        "{shown}"
    );
    let warning = shown
        .lines()
        .find(|l| l.starts_with("warning"))
        .unwrap_or_else(|| panic!("no warning in {shown}"));
    assert!(
        warning.contains("V100R004C01SPH106 is activating, not running")
            && warning.contains("ERROR_DEVICE_PATCH_NOT_RUNNING")
            && !warning.contains("SPH105"),
        "{warning}"
    );
    let json = upkeep(
        &[
            "device",
            "facts",
            p(&dp4),
            "--credentials",
            p(&creds),
            "-o",
            "json",
        ],
        &[],
    );
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["facts"]["patches"][1]["state"], "activating");
    assert_eq!(json["warnings"].as_array().map(Vec::len), Some(1), "{json}");
    // A device whose patches all run gets no warning.
    let dp1 = device_manifest(dir.path(), "dp-1", sim.url("dp-1"), "");
    let clean = upkeep(
        &[
            "device",
            "facts",
            p(&dp1),
            "--credentials",
            p(&creds),
            "-o",
            "json",
        ],
        &[],
    );
    let clean: serde_json::Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert!(clean.get("warnings").is_none(), "{clean}");

    let upgrade = upkeep(
        &[
            "device",
            "upgrade",
            p(&dp4),
            "--image",
            IMAGE,
            "--repository",
            p(&repo),
            "--credentials",
            p(&creds),
        ],
        &[],
    );
    assert_eq!(upgrade.status.code(), Some(1), "{}", text(&upgrade));
    assert_eq!(
        codes(&upgrade),
        [
            "WAITING_FOR_PRE_VALIDATION",
            "ERROR_DEVICE_PATCH_NOT_RUNNING"
        ],
        "{}",
        text(&upgrade)
    );
    assert!(
        stdout(&upgrade).contains("V100R004C01SPH106 is activating"),
        "{}",
        text(&upgrade)
    );
}

#[test]
fn a_dry_run_stops_after_validation() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Devicesim::start(dir.path(), &[]);
    let repo = repository(dir.path());
    let creds = credentials(dir.path());
    let run = |name: &str| {
        let manifest = device_manifest(dir.path(), name, sim.url(name), "");
        upkeep(
            &[
                "device",
                "upgrade",
                p(&manifest),
                "--image",
                IMAGE,
                "--repository",
                p(&repo),
                "--credentials",
                p(&creds),
                "--dry-run",
            ],
            &[],
        )
    };
    let ready = run("dp-1");
    assert_eq!(ready.status.code(), Some(0), "{}", text(&ready));
    assert_eq!(
        codes(&ready),
        ["WAITING_FOR_PRE_VALIDATION", "READY_FOR_EXECUTION"],
        "{}",
        text(&ready)
    );
    let broken = run("dp-3");
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert_eq!(
        codes(&broken).last().map(String::as_str),
        Some("ERROR_WHILE_GETTING_DEVICE_LICENSES"),
        "{}",
        text(&broken)
    );
    let missing = {
        let manifest = device_manifest(dir.path(), "dp-1", sim.url("dp-1"), "");
        upkeep(
            &[
                "device",
                "upgrade",
                p(&manifest),
                "--image",
                "idg7520.oradco.scrypt4",
                "--repository",
                p(&repo),
                "--credentials",
                p(&creds),
                "--dry-run",
            ],
            &[],
        )
    };
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert_eq!(
        codes(&missing).last().map(String::as_str),
        Some("ERROR_IMAGE_FILE_DOES_NOT_EXIST")
    );
}

#[test]
fn tls_self_signed_is_trusted_with_the_written_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let sim = Devicesim::start(dir.path(), &["--tls-self-signed", "--ca-out", p(&ca)]);
    assert_eq!(sim.extra, [p(&ca)], "the CA path is printed");
    assert!(sim.url("dp-1").starts_with("https://127.0.0.1:"));
    let creds = credentials(dir.path());
    let dp1 = device_manifest(
        dir.path(),
        "dp-1",
        sim.url("dp-1"),
        "  tls:\n    caBundleSecretRef: { name: lab-ca, key: ca.crt }\n",
    );
    // The Secret cannot be read without a cluster: the command says what to do instead.
    let unresolved = upkeep(
        &["device", "facts", p(&dp1), "--credentials", p(&creds)],
        &[],
    );
    assert_eq!(unresolved.status.code(), Some(2), "{}", text(&unresolved));
    assert!(
        text(&unresolved).contains("caBundleSecretRef") && text(&unresolved).contains("--ca FILE"),
        "{}",
        text(&unresolved)
    );
    let trusted = upkeep(
        &[
            "device",
            "facts",
            p(&dp1),
            "--credentials",
            p(&creds),
            "--ca",
            p(&ca),
        ],
        &[],
    );
    assert_eq!(trusted.status.code(), Some(0), "{}", text(&trusted));
    assert!(
        stdout(&trusted).contains("firmware     7.5.1.7"),
        "{}",
        text(&trusted)
    );

    // Without the CA the platform's roots do not know the certificate.
    let plain = device_manifest(dir.path(), "dp-1", sim.url("dp-1"), "");
    let untrusted = upkeep(
        &["device", "facts", p(&plain), "--credentials", p(&creds)],
        &[],
    );
    assert_eq!(untrusted.status.code(), Some(1), "{}", text(&untrusted));
    assert!(
        stdout(&untrusted).contains("reachable    no"),
        "{}",
        text(&untrusted)
    );
    assert!(
        stdout(&untrusted).contains("certificate was rejected"),
        "{}",
        text(&untrusted)
    );
}

#[test]
fn secrets_that_cannot_be_read_offline_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let dp1 = device_manifest(dir.path(), "dp-1", "https://10.0.0.5:5554", "");
    let out = upkeep(&["device", "facts", p(&dp1)], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("Secret dp-credentials")
            && shown.contains("--credentials FILE")
            && shown.contains("UPKEEP_USERNAME"),
        "{shown}"
    );

    let invalid = dir.path().join("invalid.yaml");
    std::fs::write(
        &invalid,
        "apiVersion: upkeep.dev/v1alpha1\nkind: Device\nmetadata:\n  name: dp-1\nspec:\n  driver: upkeep\n  address: ftp://dp-1\n",
    )
    .unwrap();
    let out = upkeep(&["device", "facts", p(&invalid)], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("spec.address"), "{}", text(&out));
}
