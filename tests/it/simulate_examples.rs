//! `upkeep simulate` on the examples: every scenario ends in the codes its comments promise, at
//! the times the windows allow, and the same input gives the same output byte for byte.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

const START: &str = "2026-11-23T09:00:00Z";

fn simulate(fleet: &str, manifests: &[&str]) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["simulate", "--start", START, "--fleet", fleet, "-o", "json"])
        .args(manifests)
        .output()
        .expect("upkeep runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_str(&stdout).unwrap(), stdout)
}

fn codes(report: &Value) -> BTreeMap<String, String> {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let parent = t["parent"].as_str().unwrap().rsplit('/').next().unwrap();
            (
                format!("{parent}/{}", t["target"].as_str().unwrap()),
                t["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn task<'a>(report: &'a Value, target: &str) -> &'a Value {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == target)
        .unwrap()
}

fn expect(report: &Value, expected: &[(&str, &str)]) {
    let expected: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(codes(report), expected);
}

#[test]
fn the_main_example_upgrades_two_and_refuses_the_short_one() {
    let (report, _) = simulate("examples/fleet.yaml", &["examples/firmware-upgrade.yaml"]);
    expect(
        &report,
        &[
            ("idg-7519-site-a/dp-1", "SUCCESS"),
            ("idg-7519-site-a/dp-2", "SUCCESS"),
            (
                "idg-7519-site-a/dp-3",
                "ERROR_NOT_ENOUGH_FREE_TEMP_SPACE_ON_DEVICE",
            ),
        ],
    );
    assert_eq!(report["start"], START);
    // dp-1: 30s first quiesce, 12s upload, 30s second quiesce, 15m upgrade.
    assert_eq!(task(&report, "dp-1")["finishedAt"], "2026-11-23T09:16:12Z");
    let history: Vec<&str> = task(&report, "dp-1")["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "WAITING_FOR_PRE_VALIDATION",
            "READY_FOR_EXECUTION",
            "SENT_TO_MDB",
            "EXECUTION_STARTED",
            "EXECUTION_PRE_CHECKS_STARTED",
            "EXECUTION_FIRST_QUIESCE_STARTED",
            "EXECUTION_FIRST_QUIESCE_WAITING_FOR_QUIESCE",
            "EXECUTION_UPLOAD_IMAGE_STARTED",
            "EXECUTION_WAITING_FOR_UPLOAD_IMAGE",
            "EXECUTION_SECOND_QUIESCE_STARTED",
            "EXECUTION_SECOND_QUIESCE_WAITING_FOR_QUIESCE",
            "EXECUTION_UPGRADE_STARTED",
            "EXECUTION_UPGRADE_WAITING_FOR_UPGRADE",
            "SUCCESS",
        ]
    );
    let resource = &report["resources"][0];
    assert_eq!(resource["summary"]["succeeded"], 2);
    assert_eq!(resource["summary"]["failed"], 1);
    let stalled = resource["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Stalled")
        .unwrap();
    assert_eq!(stalled["status"], "True");
    assert_eq!(report["end"], "2026-11-23T09:21:30Z");
    assert!(report["apiWrites"].as_u64().unwrap() > 0);
}

#[test]
fn the_same_input_gives_the_same_output() {
    let (_, first) = simulate(
        "examples/scenarios/faults/fleet.yaml",
        &["examples/scenarios/faults/upgrade.yaml"],
    );
    let (_, second) = simulate(
        "examples/scenarios/faults/fleet.yaml",
        &["examples/scenarios/faults/upgrade.yaml"],
    );
    assert_eq!(first, second);
}

#[test]
fn a_window_holds_the_rollout_until_it_opens() {
    let (report, _) = simulate(
        "examples/scenarios/window/fleet.yaml",
        &["examples/scenarios/window/upgrade.yaml"],
    );
    expect(
        &report,
        &[
            ("weekend/dp-1", "SUCCESS"),
            ("weekend/dp-2", "SUCCESS"),
            ("weekend/dp-3", "SUCCESS"),
        ],
    );
    // Saturday 22:00 in Berlin is 21:00Z; two at a time, the third when a slot frees.
    assert_eq!(task(&report, "dp-1")["startedAt"], "2026-11-28T21:00:00Z");
    assert_eq!(task(&report, "dp-2")["startedAt"], "2026-11-28T21:00:00Z");
    assert_eq!(
        task(&report, "dp-3")["startedAt"],
        task(&report, "dp-1")["finishedAt"]
    );
}

#[test]
fn a_blackout_holds_every_upgrade_of_its_namespace() {
    let (report, _) = simulate(
        "examples/scenarios/blackout/fleet.yaml",
        &["examples/scenarios/blackout/upgrade.yaml"],
    );
    expect(
        &report,
        &[
            ("now/dp-1", "SUCCESS"),
            ("now/dp-2", "SUCCESS"),
            (
                "cancel/dp-3",
                "EXECUTION_CANCELED_BECAUSE_MAINTENANCE_WINDOW",
            ),
        ],
    );
    assert_eq!(task(&report, "dp-1")["startedAt"], "2026-11-23T12:00:00Z");
}

#[test]
fn every_kind_of_device_trouble_ends_in_its_code() {
    let (report, _) = simulate(
        "examples/scenarios/faults/fleet.yaml",
        &["examples/scenarios/faults/upgrade.yaml"],
    );
    // The fleet file's comments name the code each device ends with.
    let fleet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/scenarios/faults/fleet.yaml"
    ))
    .unwrap();
    let promised: Vec<(String, String)> = fleet
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- name: "))
        .filter_map(|l| l.split_once('#'))
        .map(|(name, code)| {
            let code = code.split_whitespace().next().unwrap().to_string();
            (format!("faults/{}", name.trim()), code)
        })
        .collect();
    assert_eq!(promised.len(), 18);
    let expected: Vec<(&str, &str)> = promised
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    expect(&report, &expected);
    for t in report["tasks"].as_array().unwrap() {
        let exception = t["code"].as_str().unwrap().contains("EXCEPTION");
        assert_eq!(t["incidentId"].is_string(), exception, "{t}");
    }
}

#[test]
fn error_policy_fail_stops_the_rollout_at_the_first_failure() {
    let (report, _) = simulate(
        "examples/scenarios/error-policy/fleet.yaml",
        &["examples/scenarios/error-policy/upgrade.yaml"],
    );
    expect(
        &report,
        &[
            ("careful/dp-1", "EXECUTION_UPLOAD_IMAGE_ERROR"),
            ("careful/dp-2", "EXECUTION_CANCELED_BECAUSE_ERROR_POLICY"),
            ("careful/dp-3", "EXECUTION_CANCELED_BECAUSE_ERROR_POLICY"),
            ("careful/dp-4", "EXECUTION_CANCELED_BECAUSE_ERROR_POLICY"),
        ],
    );
}

#[test]
fn no_devices_matching_is_a_stalled_resource_without_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("none.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: upkeep.dev/v1alpha1\nkind: FirmwareUpgrade\nmetadata: {name: nothing}\nspec:\n  image: idg7519.oradco.scrypt4\n  targets: {pattern: \"db-*\"}\n",
    )
    .unwrap();
    let (report, _) = simulate("examples/fleet.yaml", &[manifest.to_str().unwrap()]);
    assert!(report["tasks"].as_array().unwrap().is_empty());
    let resource = &report["resources"][0];
    assert_eq!(resource["code"], "SKIPPED_NO_DEVICES_MATCHING_PATTERN");
    let stalled = resource["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Stalled")
        .unwrap();
    assert_eq!(stalled["status"], "True");
}

#[test]
fn invalid_manifests_are_refused_before_simulating() {
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "simulate",
            "--fleet",
            "examples/fleet.yaml",
            "tests/data/bad/06-no-targets.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spec.targets"));
}

/// What the cluster accepts runs: an appliance image with a bad format is an engine finding,
/// printed as a warning, and the task ends in the code the controller gives it; only what the
/// API server rejects stops the simulation.
#[test]
fn engine_findings_are_warnings_and_the_tasks_end_in_the_cluster_s_codes() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.yaml");
    std::fs::write(
        &fleet,
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nimages:\n  - { name: idg7519.oradco.zip, size: 600Mi }\ndevices:\n  - { name: dp-1 }\n",
    )
    .unwrap();
    let upgrade = dir.path().join("fw.yaml");
    std::fs::write(
        &upgrade,
        "apiVersion: upkeep.dev/v1alpha1\nkind: FirmwareUpgrade\nmetadata: { name: fw }\nspec:\n  image: idg7519.oradco.zip\n  targets: { names: [dp-1] }\n  maintenanceWindows: [nowhere]\n",
    )
    .unwrap();
    let run = |files: &[&std::path::Path]| {
        Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args([
                "simulate",
                "--start",
                START,
                "--horizon",
                "2d",
                "-o",
                "json",
                "--fleet",
            ])
            .arg(&fleet)
            .args(files)
            .output()
            .unwrap()
    };
    let out = run(&[&upgrade]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Validation ends it before the (undefined, so never open) window matters.
    let history: Vec<&str> = task(&report, "dp-1")["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "WAITING_FOR_PRE_VALIDATION",
            "ERROR_UNKNOWN_IMAGE_FILE_FORMAT"
        ]
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings[0].contains("spec.image")
            && warnings[0].contains("ERROR_UNKNOWN_IMAGE_FILE_FORMAT"),
        "{stderr}"
    );
    assert!(
        warnings[1].contains("spec.maintenanceWindows[0]"),
        "{stderr}"
    );

    // What the API server rejects (an enum value the schema does not have) still stops it.
    let rejected = dir.path().join("rejected.yaml");
    std::fs::write(
        &rejected,
        std::fs::read_to_string(&upgrade).unwrap() + "  outsideWindow: Sometimes\n",
    )
    .unwrap();
    let out = run(&[&rejected]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("spec.outsideWindow"), "{stderr}");
    assert!(stderr.contains("the API server would reject"), "{stderr}");
    assert!(out.stdout.is_empty());
}

fn history(report: &Value, parent: &str) -> Vec<(String, String)> {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["parent"] == parent)
        .unwrap()["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["code"].as_str().unwrap().to_string(),
                h["at"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn resource<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind)
        .unwrap()
}

const FIELD_FLEET: &str = "examples/scenarios/field-case/fleet.yaml";

#[test]
fn the_field_case_a_patch_left_to_the_elements_delay_makes_the_firmware_upgrade_refuse() {
    let (report, _) = simulate(
        FIELD_FLEET,
        &["examples/scenarios/field-case/own-delay.yaml"],
    );
    expect(
        &report,
        &[
            ("sph106/osn-west-1", "PATCH_RUNNING"),
            ("r005c00/osn-west-1", "ERROR_DEVICE_PATCH_NOT_RUNNING"),
        ],
    );
    let patch = history(&report, "DevicePatch/default/sph106");
    let codes: Vec<&str> = patch.iter().map(|(c, _)| c.as_str()).collect();
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
            "PATCH_RUNNING",
        ]
    );
    // Loaded after the 1m load; the element's own 24h delay; 2m activation; 30s confirm.
    assert_eq!(patch[3].1, "2026-11-23T09:01:03Z");
    assert_eq!(patch[5].1, "2026-11-24T09:01:03Z", "the element's delay");
    assert_eq!(patch[8].1, "2026-11-24T09:03:33Z");
    // The firmware upgrade, applied an hour in, is refused at validation.
    let firmware = history(&report, "FirmwareUpgrade/default/r005c00");
    assert_eq!(
        firmware,
        [
            (
                "WAITING_FOR_PRE_VALIDATION".into(),
                "2026-11-23T10:00:00Z".into()
            ),
            (
                "ERROR_DEVICE_PATCH_NOT_RUNNING".into(),
                "2026-11-23T10:00:00Z".into()
            ),
        ]
    );
    let dp = resource(&report, "DevicePatch");
    assert_eq!(dp["summary"]["byCode"]["PATCH_RUNNING"], 1);
    assert_eq!(dp["summary"]["succeeded"], 1);
    assert_eq!(resource(&report, "FirmwareUpgrade")["summary"]["failed"], 1);
    assert_eq!(report["end"], "2026-11-24T09:03:33Z");
}

#[test]
fn the_field_case_with_activation_delay_0s_patches_at_once_and_the_firmware_upgrade_succeeds() {
    let (report, first) = simulate(
        FIELD_FLEET,
        &["examples/scenarios/field-case/no-delay.yaml"],
    );
    expect(
        &report,
        &[
            ("sph106/osn-west-1", "PATCH_RUNNING"),
            ("r005c00/osn-west-1", "SUCCESS"),
        ],
    );
    let patch = history(&report, "DevicePatch/default/sph106");
    let activating = patch.iter().find(|(c, _)| c == "PATCH_ACTIVATING").unwrap();
    assert_eq!(
        activating.1, "2026-11-23T09:01:03Z",
        "no delay after the load"
    );
    assert_eq!(patch.last().unwrap().1, "2026-11-23T09:03:33Z");
    assert_eq!(
        task(&report, "osn-west-1")["parent"],
        "DevicePatch/default/sph106",
        "tasks in parent order"
    );
    let (_, again) = simulate(
        FIELD_FLEET,
        &["examples/scenarios/field-case/no-delay.yaml"],
    );
    assert_eq!(first, again, "deterministic");
}
