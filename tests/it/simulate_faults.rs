//! Every device fault of the fleet file, at every step, through the real controllers on the
//! in-memory API: each ends in the code that the device-fault table of `docs/firmware.md` promises.
//! (The engine's own tests check the same table against the pure state machine; this checks that
//! the simulated devices, drivers and controllers deliver it end to end.)

use jiff::SignedDuration;
use serde_json::Value;
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::runner::{Options, Scenario, simulate};

/// The rows of the "Device faults" table: step, then the codes for error, exception and hang.
fn fault_table() -> Vec<(String, [String; 3])> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/firmware.md"))
        .expect("docs/firmware.md");
    let section = doc
        .split("\n## Device faults\n")
        .nth(1)
        .expect("a Device faults section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("| Step") && !l.starts_with("|---"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let step = cells[0].split_whitespace().next().unwrap().to_string();
            // The code is the first back-quoted word of a cell.
            let code = |cell: &str| cell.split('`').nth(1).unwrap().to_string();
            (step, [code(cells[1]), code(cells[2]), code(cells[3])])
        })
        .collect()
}

const KINDS: [&str; 3] = ["error", "exception", "hang"];

/// Steps that only run when the FirmwareUpgrade asks for them.
fn needs_options(step: &str) -> bool {
    matches!(step, "firstQuiesce" | "restart")
}

fn device_name(step: &str, kind: &str) -> String {
    let group = if needs_options(step) { "opt" } else { "std" };
    format!("{group}-{}-{kind}", step.to_lowercase())
}

#[test]
fn every_fault_at_every_step_ends_in_the_documented_code() {
    let table = fault_table();
    assert_eq!(table.len(), 9, "the table has one row per step");
    let mut fleet = String::from(
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nimages:\n  - { name: idg7519.oradco.scrypt4, size: 600Mi }\ndevices:\n",
    );
    for (step, _) in &table {
        for kind in KINDS {
            // The unquiesce is only asked for after a failure: the table shows it after a
            // second-quiesce error.
            let extra = if step == "unquiesce" {
                ", { step: secondQuiesce, kind: error }"
            } else {
                ""
            };
            fleet.push_str(&format!(
                "  - {{ name: {}, faults: [ {{ step: {step}, kind: {kind} }}{extra} ] }}\n",
                device_name(step, kind)
            ));
        }
    }
    let upgrade = |name: &str, pattern: &str, options: &str| -> Value {
        serde_saphyr::from_str(&format!(
            "apiVersion: upkeep.dev/v1alpha1\nkind: FirmwareUpgrade\nmetadata: {{ name: {name}, namespace: default }}\nspec:\n  image: idg7519.oradco.scrypt4\n  targets: {{ pattern: \"{pattern}\" }}\n  rollout: {{ maxConcurrent: \"100%\" }}\n{options}"
        ))
        .expect("a valid manifest")
    };
    let scenario = Scenario {
        fleet: Fleet::from_yaml(&fleet).expect("a valid fleet"),
        manifests: vec![
            upgrade("std", "std-*", ""),
            upgrade(
                "opt",
                "opt-*",
                "  firstQuiesce: true\n  restart: { enabled: true }\n",
            ),
        ],
        start: "2026-11-23T09:00:00Z".parse().unwrap(),
        horizon: SignedDuration::from_hours(24 * 7),
    };
    let report = simulate(scenario, Options::default()).expect("the simulation runs");

    let mut wrong = Vec::new();
    let mut checked = 0;
    for (step, codes) in &table {
        for (kind, expected) in KINDS.iter().zip(codes) {
            let name = device_name(step, kind);
            let task = report
                .tasks
                .iter()
                .find(|t| t.target == name)
                .unwrap_or_else(|| panic!("no task for {name}"));
            checked += 1;
            if task.code.as_deref() != Some(expected.as_str()) {
                wrong.push(format!(
                    "{step}/{kind}: expected {expected}, got {:?}",
                    task.code
                ));
            }
            assert!(task.finished_at.is_some(), "{name} did not end");
        }
    }
    assert_eq!(checked, 27);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
