//! docs/firmware.md against the code: its code table against the catalogue, every code it names
//! against the catalogue, and its device-fault table against what the engine does with each fault.

use std::collections::BTreeSet;

use super::world::{Fault, Spot, World};
use crate::api::codes::FirmwareCode;
use crate::engine::doc_tables::{self, quoted, table_rows};
use crate::engine::firmware::observe::{FaultKind, OpKind};

const PAGE: &str = include_str!("../../../../../../../docs/firmware.md");

fn section(title: &str) -> Vec<&'static str> {
    doc_tables::section(PAGE, title)
}

fn code_like_words() -> BTreeSet<&'static str> {
    doc_tables::code_like_words(PAGE)
}

#[test]
fn every_code_on_the_page_is_a_catalogue_code() {
    let unknown: Vec<&str> = code_like_words()
        .into_iter()
        .filter(|w| w.parse::<FirmwareCode>().is_err())
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/firmware.md names codes the catalogue does not have: {unknown:?}"
    );
}

#[test]
fn the_code_table_lists_every_code_once_as_the_catalogue_has_it() {
    let rows = table_rows(&section("Codes"));
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for row in &rows {
        let [code, stage, when, terminal, result] = row[..] else {
            problems.push(format!(
                "row with {} columns instead of 5: {row:?}",
                row.len()
            ));
            continue;
        };
        let name = code.trim_matches('`');
        let Ok(code) = name.parse::<FirmwareCode>() else {
            problems.push(format!("{name}: not a catalogue code"));
            continue;
        };
        if !seen.insert(code) {
            problems.push(format!("{name}: listed twice"));
        }
        if when.is_empty() {
            problems.push(format!("{name}: no description of when it happens"));
        }
        let expected_stage = format!("{:?}", code.stage());
        if stage != expected_stage {
            problems.push(format!(
                "{name}: stage {stage:?}, the catalogue says {expected_stage:?}"
            ));
        }
        let expected_terminal = if code.is_terminal() { "yes" } else { "no" };
        if terminal != expected_terminal {
            problems.push(format!(
                "{name}: terminal {terminal:?}, the catalogue says {expected_terminal:?}"
            ));
        }
        if result != code.result().as_str() {
            problems.push(format!(
                "{name}: result {result:?}, the catalogue says {:?}",
                code.result().as_str()
            ));
        }
    }
    for code in FirmwareCode::ALL {
        if !seen.contains(code) {
            problems.push(format!("{code}: missing from the code table"));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/firmware.md, section Codes:\n{}",
        problems.join("\n")
    );
}

/// A world with `kind` at `step`, set up so that the step runs (optional steps enabled, a failure
/// that makes the engine unquiesce).
fn world_with_fault(step: &str, kind: &str) -> World {
    let fault = match kind {
        "error" => Fault::Answer(FaultKind::Error),
        "exception" => Fault::Answer(FaultKind::Exception),
        "hang" => Fault::Hang,
        other => panic!("unknown fault kind {other:?}"),
    };
    let mut world = World::single();
    let spot = match step {
        "facts" => Spot::Facts,
        "licenses" => Spot::Licenses,
        "domainStatus" => Spot::DomainStatus,
        "firstQuiesce" => {
            world.spec.first_quiesce = true;
            Spot::Op(OpKind::FirstQuiesce)
        }
        "restart" => {
            world.spec.restart.enabled = true;
            Spot::Op(OpKind::Restart)
        }
        "upload" => Spot::Op(OpKind::Upload),
        "secondQuiesce" => Spot::Op(OpKind::SecondQuiesce),
        "upgrade" => Spot::Op(OpKind::Upgrade),
        "unquiesce" => {
            world.devices[0].faults.push((
                Spot::Op(OpKind::SecondQuiesce),
                Fault::Answer(FaultKind::Error),
            ));
            Spot::Op(OpKind::Unquiesce)
        }
        other => panic!("unknown step {other:?} in the fault table"),
    };
    world.devices[0].faults.push((spot, fault));
    world
}

#[test]
fn the_fault_table_is_what_the_engine_does() {
    let rows = table_rows(&section("Device faults"));
    let steps: Vec<&str> = rows
        .iter()
        .map(|r| r[0].split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(
        steps,
        [
            "facts",
            "licenses",
            "domainStatus",
            "firstQuiesce",
            "restart",
            "upload",
            "secondQuiesce",
            "upgrade",
            "unquiesce"
        ],
        "one row per fault step of the fleet file"
    );
    let mut problems = Vec::new();
    for (row, step) in rows.iter().zip(steps) {
        assert_eq!(row.len(), 4, "{row:?}");
        for (kind, cell) in ["error", "exception", "hang"].into_iter().zip(&row[1..]) {
            let Some(expected) = quoted(cell).into_iter().find_map(|w| w.parse().ok()) else {
                problems.push(format!("{step} × {kind}: no code in {cell:?}"));
                continue;
            };
            let expected: FirmwareCode = expected;
            let mut world = world_with_fault(step, kind);
            world.run();
            let task = &world.tasks[0];
            if task.code != expected {
                problems.push(format!(
                    "{step} × {kind}: the page says {expected}, the engine ends {} ({})",
                    task.code, task.message
                ));
            }
            // "after unquiesce" must mean the unquiesce steps ran, and only then.
            if step != "unquiesce" {
                let said = cell.contains("unquiesce");
                let ran = world
                    .codes(0)
                    .contains(&FirmwareCode::ExecutionUnquiesceOnErrorStarted);
                if said != ran {
                    problems.push(format!(
                        "{step} × {kind}: the page {} an unquiesce, the engine {}",
                        if said { "says" } else { "does not mention" },
                        if ran { "ran one" } else { "ran none" }
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/firmware.md, section Device faults:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_page_parsers_find_both_tables() {
    // The parsers find what they look for: a table with 65 rows and a fault table of 9 rows.
    assert_eq!(table_rows(&section("Codes")).len(), FirmwareCode::ALL.len());
    assert_eq!(table_rows(&section("Device faults")).len(), 9);
    assert!(PAGE.contains("`SUCCESS`"));
    assert!(code_like_words().contains("EXECUTION_FAILED_LONG_RUNNING"));
}
