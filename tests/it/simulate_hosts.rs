//! `upkeep simulate` with hosts: the host scenarios of `examples/scenarios/` end in the codes
//! their comments promise (a Patch in waves with a reboot and a drain a PodDisruptionBudget
//! defers, a blackout, an Install then an Uninstall with the job's consistency, one host per
//! kind of trouble), PatchJob tasks carry the contract's fields, the same input gives the same
//! output, and a fleet file's hosts are validated naming the field.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};
use upkeep::sim::fleet_file::Fleet;

const START: &str = "2026-11-23T09:00:00Z";

fn simulate(dir: &str, manifest: &str, output: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["simulate", "--start", START, "-o", output, "--fleet"])
        .arg(format!("examples/scenarios/{dir}/fleet.yaml"))
        .arg(format!("examples/scenarios/{dir}/{manifest}"))
        .output()
        .expect("upkeep runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn report(dir: &str, manifest: &str) -> Value {
    serde_json::from_str(&simulate(dir, manifest, "json")).unwrap()
}

/// `job/host` → (statusCode, code, reason).
fn outcomes(report: &Value) -> BTreeMap<String, (u64, String, Option<String>)> {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let parent = t["parent"].as_str().unwrap().rsplit('/').next().unwrap();
            (
                format!("{parent}/{}", t["target"].as_str().unwrap()),
                (
                    t["statusCode"].as_u64().unwrap(),
                    t["code"].as_str().unwrap().to_string(),
                    t["reason"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

fn task<'a>(report: &'a Value, job: &str, host: &str) -> &'a Value {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == host && t["parent"].as_str().unwrap().ends_with(job))
        .unwrap()
}

fn codes_passed(task: &Value) -> Vec<&str> {
    task["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["code"].as_str().unwrap())
        .collect()
}

fn resource<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()
}

fn condition<'a>(resource: &'a Value, type_: &str) -> &'a Value {
    resource["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

fn at(task: &Value, field: &str) -> jiff::Timestamp {
    task[field].as_str().unwrap().parse().unwrap()
}

#[test]
fn a_patch_rolls_out_in_waves_reboots_and_defers_a_drain_a_budget_refuses() {
    let report = report("patch-waves", "patch-job.yaml");
    for host in ["web-1", "web-2", "web-3", "web-4"] {
        let t = task(&report, "web-security", host);
        assert_eq!(t["statusCode"], 2036, "{t:#}");
        assert_eq!(t["code"], "Completed");
        assert_eq!(t["result"], "Succeeded");
        assert!(t["state"].is_u64(), "{t:#}");
        assert_eq!(t["packages"], json!([]));
        assert_eq!(t["history"][0]["statusCode"], 2032);
    }
    // The canary wave ends before the rest starts; two at a time.
    let canary = task(&report, "web-security", "web-1");
    for host in ["web-2", "web-3", "web-4"] {
        assert!(at(task(&report, "web-security", host), "startedAt") >= at(canary, "finishedAt"));
    }
    assert!(
        at(task(&report, "web-security", "web-4"), "startedAt")
            >= at(task(&report, "web-security", "web-2"), "finishedAt"),
        "maxConcurrent 2: web-4 waits for a slot"
    );
    // web-1 needed a reboot (the kernel): pending, rebooted, resumed; web-2 none.
    assert_eq!(
        codes_passed(canary),
        [
            "Pending",
            "Job Received",
            "Job Started",
            "Downloaded",
            "Patching",
            "Pending Reboot",
            "Rebooted",
            "Job Resumed",
            "Completed"
        ]
    );
    assert!(!codes_passed(task(&report, "web-security", "web-2")).contains(&"Rebooted"));
    // web-3's budget refused the drain for 2h: two deferrals an hour apart, then the reboot.
    let web3 = task(&report, "web-security", "web-3");
    assert_eq!(web3["deferrals"], json!({"used": 2, "max": 3}));
    let deferred = codes_passed(web3)
        .iter()
        .filter(|c| **c == "Reboot Deferred")
        .count();
    assert_eq!(deferred, 2, "{web3:#}");
    assert!(at(web3, "finishedAt") >= "2026-11-23T11:00:00Z".parse().unwrap());
    // web-4 is no node: it reboots nothing and drains nothing.
    assert!(!codes_passed(task(&report, "web-security", "web-4")).contains(&"Pending Reboot"));
    let job = resource(&report, "web-security");
    assert_eq!(job["kind"], "PatchJob");
    assert_eq!(job["summary"]["succeeded"], 4);
    assert_eq!(condition(job, "Ready")["status"], "True");
    assert_eq!(job["consistency"], json!([]), "a Patch job has no levels");
    assert!(report["apiWrites"].as_u64().unwrap() > 0);
}

#[test]
fn a_blackout_cancels_the_hosts_not_yet_started() {
    let report = report("patch-blackout", "patch-job.yaml");
    let outcomes = outcomes(&report);
    assert_eq!(outcomes["db-security/db-1"].0, 2036);
    assert_eq!(outcomes["db-security/db-2"].0, 2036);
    assert_eq!(
        outcomes["db-security/db-3"],
        (2038, "Canceled - Blackout".into(), None)
    );
    let db2 = task(&report, "db-security", "db-2");
    assert!(at(db2, "startedAt") < "2026-11-23T09:30:00Z".parse().unwrap());
    assert!(at(db2, "finishedAt") > "2026-11-23T09:30:00Z".parse().unwrap());
}

#[test]
fn an_install_then_an_uninstall_move_the_cell_to_one_level() {
    let report = report("packages", "jobs.yaml");
    let outcomes = outcomes(&report);
    for host in ["was-dmgr", "was-node-1", "was-node-2"] {
        assert_eq!(outcomes[&format!("was-fp23/{host}")].0, 2036);
        assert_eq!(
            task(&report, "was-fp23", host)["packages"],
            json!([{"id": "9.0.5-WS-WAS-FP023", "result": "success"}])
        );
    }
    // The deployment manager first, then the nodes.
    assert!(
        at(task(&report, "was-fp23", "was-node-1"), "startedAt")
            >= at(task(&report, "was-fp23", "was-dmgr"), "finishedAt")
    );
    // The interim fix goes where it is, in the window, nodes before the deployment manager.
    assert_eq!(outcomes["was-remove-ph12345/was-node-2"].0, 2036);
    for host in ["was-dmgr", "was-node-1"] {
        assert_eq!(
            outcomes[&format!("was-remove-ph12345/{host}")],
            (2053, "Not Applicable".into(), Some("NotApplicable".into()))
        );
    }
    let removal = task(&report, "was-remove-ph12345", "was-node-2");
    assert_eq!(removal["startedAt"], "2026-11-23T12:00:00Z");
    assert_eq!(
        removal["packages"],
        json!([{"id": "9.0.5-WS-WAS-IFPH12345", "result": "success"}])
    );
    assert!(
        at(
            task(&report, "was-remove-ph12345", "was-dmgr"),
            "finishedAt"
        ) >= at(removal, "finishedAt"),
        "Uninstall runs the waves in reverse"
    );
    for job in ["was-fp23", "was-remove-ph12345"] {
        let r = resource(&report, job);
        assert_eq!(
            r["consistency"],
            json!([{"product": "was", "levels": {"9.0.5.23": ["was-dmgr", "was-node-1", "was-node-2"]}}]),
            "{r:#}"
        );
        assert_eq!(condition(r, "Consistent")["status"], "True");
    }
}

#[test]
fn every_kind_of_host_trouble_ends_in_its_code() {
    let report = report("host-faults", "patch-job.yaml");
    let outcomes = outcomes(&report);
    let expect = |key: &str, code: u64, reason: Option<&str>| {
        let (got, name, why) = &outcomes[key];
        assert_eq!(
            (*got, why.as_deref()),
            (code, reason),
            "{key}: {name} {why:?}"
        );
    };
    expect("app-security/app-ok", 2036, None);
    expect("app-security/app-download", 2031, Some("DownloadFailed"));
    expect("app-security/app-install", 2046, Some("InstallFailed"));
    expect("app-security/app-action", 2046, Some("ActionFailed"));
    expect("app-security/app-offline", 2060, Some("AgentOffline"));
    expect(
        "app-security/app-disabled",
        2039,
        Some("PatchManagementDisabled"),
    );
    expect("app-security/app-alpine", 2053, Some("NotApplicable"));
    expect("current-check/app-current", 2059, None);
    expect("app-security/app-busy", 2036, None);
    expect("app-security/app-reboot", 2046, Some("RebootFailed"));
    expect("app-security/app-drain", 2046, Some("DrainBlocked"));
    let busy = task(&report, "app-security", "app-busy");
    assert!(
        codes_passed(busy).contains(&"Execution Blocked"),
        "{busy:#}"
    );
    assert!(at(busy, "finishedAt") >= "2026-11-23T09:20:00Z".parse().unwrap());
    let drain = task(&report, "app-security", "app-drain");
    assert_eq!(drain["deferrals"], json!({"used": 3, "max": 3}));
    // The fleet file's comments name the code each host ends with.
    let fleet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/scenarios/host-faults/fleet.yaml"
    ))
    .unwrap();
    for (key, (code, _, _)) in &outcomes {
        assert!(fleet.contains(&format!("# {code} ")), "{key}: {code}");
    }
}

#[test]
fn host_simulations_are_deterministic_in_every_format() {
    for output in ["json", "text", "html"] {
        let first = simulate("patch-waves", "patch-job.yaml", output);
        let second = simulate("patch-waves", "patch-job.yaml", output);
        assert_eq!(first, second, "-o {output}");
    }
    let text = simulate("packages", "jobs.yaml", "text");
    assert!(text.contains("PatchJob/default/was-fp23"), "{text}");
}

#[test]
fn a_fleet_files_hosts_are_checked_naming_the_field() {
    let bad = |hosts: &str, repository: &str| {
        let text = format!(
            "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nhosts:\n{hosts}\nrepository:\n{repository}\n"
        );
        Fleet::from_yaml(&text).unwrap_err()
    };
    let ok = "  - { source: a.pak, id: A, type: InterimFix, product: was, appliesTo: \">=9.0\" }";
    let e = bad(
        "  - { name: h, products: [ { id: was, version: nine } ] }",
        ok,
    );
    assert_eq!(e.field, "hosts[0].products[0].version");
    let e = bad("  - { name: h }\n  - { name: h }", ok);
    assert_eq!(e.field, "hosts[1].name");
    let e = bad("  - { name: h, agent: offline, agentOfflineFrom: 1h }", ok);
    assert_eq!(e.field, "hosts[0].agentOfflineFrom");
    let e = bad("  - { name: h, busyFor: 1h }", ok);
    assert_eq!(e.field, "hosts[0].busyFor");
    let e = bad("  - { name: h, node: false, drainBlockedFor: 1h }", ok);
    assert_eq!(e.field, "hosts[0].drainBlockedFor");
    let e = bad(
        "  - { name: h }",
        "  - { source: a.pak, id: A, type: FixPack, product: was, appliesTo: \">=9.0\" }",
    );
    assert_eq!(e.field, "repository[0].version");
    assert!(e.message.contains("fix or refresh pack"), "{e}");
    let e = bad(
        "  - { name: h }",
        "  - { source: a.pak, id: A, type: InterimFix, product: was, appliesTo: \"about nine\" }",
    );
    assert_eq!(e.field, "repository[0].appliesTo");
    // Unknown fields are refused by the schema.
    let text =
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nhosts:\n  - { name: h, rebootNow: true }\n";
    assert!(Fleet::from_yaml(text).is_err());
    // `upkeep check` applies the same to a fleet file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.yaml");
    std::fs::write(
        &path,
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nhosts:\n  - { name: h, products: [ { id: was, version: nine } ] }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("hosts[0].products[0].version"), "{text}");
}
