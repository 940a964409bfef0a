//! `upkeep simulate -o html` in a real browser: Debian's Chromium, headless, opens the page at
//! 10 tasks (a real run of the command) and at 2,000 tasks, takes a screenshot of each (under
//! `CARGO_TARGET_TMPDIR/html-timeline/`, to look at), and reads back how long the page took to
//! load and lay out (a probe added to a copy of the page records `performance.now()` at the load
//! event after forcing layout; `--dump-dom` prints it). The page must load in under 2 s with
//! every group's rows open.
//!
//! The 2,000-task page is drawn from a real simulated run's tasks (their histories, codes and
//! results) spread over a 2,000-target rollout of 100 at a time in two resources: the renderer
//! sees what a simulation of that size gives, without the minutes such a run takes in a debug
//! build (the fleet benchmark runs the controllers at that size).
//!
//! Chromium is found through `UPKEEP_CHROMIUM`, else `chromium` on `PATH` (`.ci/run` installs
//! it). Without it these tests fail when `CI=true` and are skipped with a message otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use upkeep::api::common::Summary;
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::report::{Report, ResourceReport, TaskReport, rfc3339};
use upkeep::sim::runner::{Options, Scenario, simulate};

const START: &str = "2026-11-23T09:00:00Z";
/// The longest a page may take to load and lay out.
const LOAD_BUDGET_MS: u64 = 2_000;

/// Ten devices: upgrades that succeed inside a nightly window, one that hangs until its timeout,
/// one with unsaved changes, one unreachable.
const FLEET: &str = "apiVersion: upkeep.dev/v1alpha1
kind: Fleet
images:
  - { name: idg7519.oradco.scrypt4, size: 600Mi }
devices:
  - { name: dp-01 }
  - { name: dp-02, timings: { upgrade: 10m } }
  - { name: dp-03, timings: { upgrade: 20m } }
  - { name: dp-04, unsavedChanges: true }
  - { name: dp-05, faults: [ { step: upgrade, kind: hang } ] }
  - { name: dp-06 }
  - { name: dp-07, available: false }
  - { name: dp-08, timings: { upgrade: 12m } }
  - { name: dp-09 }
  - { name: dp-10, timings: { upgrade: 25m } }
";

const MANIFESTS: &str = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceWindow
metadata: { name: nightly }
spec: { schedule: \"0 22 * * *\", duration: 6h }
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceWindow
metadata: { name: change-freeze }
spec: { type: Blackout, start: \"2026-11-23T22:30:00Z\", end: \"2026-11-23T22:45:00Z\" }
---
apiVersion: upkeep.dev/v1alpha1
kind: FirmwareUpgrade
metadata: { name: idg-7519 }
spec:
  image: idg7519.oradco.scrypt4
  targets: { pattern: \"dp-*\" }
  maintenanceWindows: [nightly]
  rollout: { maxConcurrent: 3 }
";

/// The browser, or `None` (and a message) where it may be missing.
fn chromium(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("UPKEEP_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("chromium"))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        let reason =
            "chromium not found (set UPKEEP_CHROMIUM, or apt-get install chromium; .ci/run does)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: {reason}; CI must look at the page in a browser");
        }
        eprintln!("{test}: skipped: {reason}");
    }
    found
}

/// Chromium as the machine notes say to start it: headless, no sandbox (root), nothing from the
/// network, a fresh profile.
fn browser(chromium: &Path, profile: &Path) -> Command {
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// What the browser made of a page.
struct Look {
    /// The screenshot.
    png: PathBuf,
    /// Milliseconds from navigation to the load event, layout done, every group's rows open.
    load_ms: u64,
    /// The page as the browser parsed it.
    dom: String,
}

/// Screenshots `page` at 1280×`height` and measures its load with every group's rows open.
fn look(chromium: &Path, page: &str, name: &str, height: u32) -> Look {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("html-timeline");
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join(format!("{name}.html"));
    std::fs::write(&html, page).unwrap();
    let png = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    let shot = browser(chromium, profile.path())
        .arg(format!("--window-size=1280,{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );

    // The probe: after the load event, force layout, then note the time.
    let probe = "<script>addEventListener('load', () => { document.body.offsetHeight; document.documentElement.dataset.loadedMs = Math.round(performance.now()); });</script>";
    let opened = page
        .replace("<details>", "<details open>")
        .replace("</body>", &format!("{probe}</body>"));
    let probed = dir.join(format!("{name}-probe.html"));
    std::fs::write(&probed, opened).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let dump = browser(chromium, profile.path())
        .arg("--dump-dom")
        .arg(format!("file://{}", probed.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dump.stdout).to_string();
    let load_ms = dom
        .split("data-loaded-ms=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "the probe did not run: {}",
                String::from_utf8_lossy(&dump.stderr)
            )
        });
    eprintln!(
        "{name}: {} bytes, loaded and laid out in {load_ms} ms (browser run {:?}); screenshot {}",
        page.len(),
        started.elapsed(),
        png.display()
    );
    Look { png, load_ms, dom }
}

fn scenario() -> Scenario {
    Scenario {
        fleet: Fleet::from_yaml(FLEET).unwrap(),
        manifests: serde_saphyr::from_multiple::<serde_json::Value>(MANIFESTS)
            .unwrap()
            .into_iter()
            .filter(|v| !v.is_null())
            .collect(),
        start: START.parse().unwrap(),
        horizon: SignedDuration::from_hours(48),
    }
}

#[test]
fn ten_tasks_in_a_browser() {
    let Some(chromium) = chromium("ten_tasks_in_a_browser") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.yaml"), FLEET).unwrap();
    std::fs::write(dir.path().join("upgrade.yaml"), MANIFESTS).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .current_dir(dir.path())
        .args([
            "simulate",
            "--start",
            START,
            "--fleet",
            "fleet.yaml",
            "-o",
            "html",
            "upgrade.yaml",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = String::from_utf8(out.stdout).unwrap();
    let seen = look(&chromium, &page, "tasks-10", 1000);
    assert!(seen.load_ms < LOAD_BUDGET_MS, "{} ms", seen.load_ms);
    // The browser parsed a row per task, every code change, and both windows.
    for target in (1..=10).map(|i| format!("dp-{i:02}")) {
        assert!(
            seen.dom.contains(&format!(">{target}</text>")),
            "{target} has no row"
        );
    }
    assert!(seen.dom.contains("EXECUTION_UPGRADE_TIMEOUT_OCCURRED at "));
    assert!(
        seen.dom
            .contains("Maintenance window nightly: 2026-11-23T22:00:00Z")
    );
    assert!(
        seen.dom
            .contains("Blackout window change-freeze: 2026-11-23T22:30:00Z")
    );
    assert!(
        std::fs::metadata(&seen.png).unwrap().len() > 20_000,
        "an empty screenshot"
    );
}

#[test]
fn two_thousand_tasks_in_a_browser() {
    let Some(chromium) = chromium("two_thousand_tasks_in_a_browser") else {
        return;
    };
    let page = two_thousand().html();
    let seen = look(&chromium, &page, "tasks-2000", 1400);
    assert!(seen.load_ms < LOAD_BUDGET_MS, "{} ms", seen.load_ms);
    // Grouped by resource; the groups' rows start closed, under their overviews.
    assert_eq!(seen.dom.matches("<section class=\"group\">").count(), 2);
    assert!(seen.dom.contains("1500 tasks: "));
    assert!(seen.dom.contains("500 tasks: "));
    assert!(seen.dom.contains("running (peak "));
    assert_eq!(seen.dom.matches("<summary>").count(), 2);
    assert!(!page.contains("<details open>"));
    assert!(
        std::fs::metadata(&seen.png).unwrap().len() > 20_000,
        "an empty screenshot"
    );
}

/// A report of 2,000 tasks: the tasks of a real ten-device run, spread over a rollout of 100
/// at a time (a batch every 15 minutes, inside the night's window), 1,500 in one resource and
/// 500 in another.
fn two_thousand() -> Report {
    let real = simulate(scenario(), Options::default()).unwrap();
    let start: Timestamp = START.parse().unwrap();
    let shift = |text: &str, by: SignedDuration| rfc3339(text.parse::<Timestamp>().unwrap() + by);
    let tasks: Vec<TaskReport> = (0..2_000)
        .map(|i| {
            let template = &real.tasks[i % real.tasks.len()];
            let by = SignedDuration::from_mins(15 * (i as i64 / 100));
            let parent = if i < 1_500 { "site-a" } else { "site-b" };
            let mut task = template.clone();
            task.parent = format!("FirmwareUpgrade/default/{parent}");
            task.target = format!("dp-{i:04}");
            // Every task is created (and validated) at once; those that start wait for their
            // batch's slot, so what they did from their start on moves later.
            if let Some(started) = task.started_at.clone() {
                let started: Timestamp = started.parse().unwrap();
                task.started_at = task.started_at.as_deref().map(|t| shift(t, by));
                task.finished_at = task.finished_at.as_deref().map(|t| shift(t, by));
                for entry in task.history.iter_mut().filter(|e| e.at.0 >= started) {
                    entry.at = Time(entry.at.0 + by);
                }
            }
            task
        })
        .collect();
    let end = tasks
        .iter()
        .filter_map(|t| t.finished_at.as_deref())
        .map(|t| t.parse::<Timestamp>().unwrap())
        .max()
        .unwrap();
    let resources = ["site-a", "site-b"]
        .into_iter()
        .map(|name| {
            let parent = format!("FirmwareUpgrade/default/{name}");
            let mine: Vec<&TaskReport> = tasks.iter().filter(|t| t.parent == parent).collect();
            let count = |result: &str| mine.iter().filter(|t| t.result == result).count() as u32;
            let mut summary = Summary {
                total: mine.len() as u32,
                succeeded: count("Succeeded"),
                failed: count("Failed"),
                ..Summary::default()
            };
            for t in &mine {
                *summary
                    .by_code
                    .entry(t.code.clone().unwrap_or_default())
                    .or_default() += 1;
            }
            ResourceReport {
                name: name.into(),
                summary,
                conditions: Vec::new(),
                ..real.resources[0].clone()
            }
        })
        .collect();
    Report::new(start, end, resources, tasks, real.api_writes * 200)
        .with_windows(real.windows.clone())
}
