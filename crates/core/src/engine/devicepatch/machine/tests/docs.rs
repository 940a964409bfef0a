//! docs/devicepatch.md against the code: its code table against the catalogue, every code it
//! names against the catalogue (DevicePatch codes, and the FirmwareUpgrade code of a patch that
//! does not take effect), and its device-fault table against what the engine does with each
//! fault.

use std::collections::BTreeSet;

use super::world::{Fault, Spot, World};
use crate::api::codes::{DevicePatchCode, FirmwareCode};
use crate::engine::devicepatch::observe::{FaultKind, PatchOp};
use crate::engine::doc_tables::{code_like_words, quoted, section, table_rows};

const PAGE: &str = include_str!("../../../../../../../docs/devicepatch.md");

#[test]
fn every_code_on_the_page_is_a_catalogue_code() {
    let unknown: Vec<&str> = code_like_words(PAGE)
        .into_iter()
        .filter(|w| w.parse::<DevicePatchCode>().is_err() && w.parse::<FirmwareCode>().is_err())
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/devicepatch.md names codes the catalogue does not have: {unknown:?}"
    );
}

#[test]
fn the_code_table_lists_every_code_once_as_the_catalogue_has_it() {
    let rows = table_rows(&section(PAGE, "Codes"));
    assert_eq!(rows.len(), DevicePatchCode::ALL.len());
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
        let Ok(code) = name.parse::<DevicePatchCode>() else {
            problems.push(format!("{name}: not a DevicePatch code"));
            continue;
        };
        if !seen.insert(code) {
            problems.push(format!("{name}: listed twice"));
        }
        if when.is_empty() {
            problems.push(format!("{name}: no description of when it happens"));
        }
        if stage != format!("{:?}", code.stage()) {
            problems.push(format!(
                "{name}: stage {stage:?}, the catalogue says {:?}",
                code.stage()
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
    for code in DevicePatchCode::ALL {
        if !seen.contains(code) {
            problems.push(format!("{code}: missing from the code table"));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/devicepatch.md, section Codes:\n{}",
        problems.join("\n")
    );
}

/// A world with `kind` at the fleet file's fault `step`.
fn world_with_fault(step: &str, kind: &str) -> World {
    let fault = match kind {
        "error" => Fault::Answer(FaultKind::Error),
        "exception" => Fault::Answer(FaultKind::Exception),
        "hang" => Fault::Hang,
        other => panic!("unknown fault kind {other:?}"),
    };
    let spots: &[Spot] = match step {
        // The fleet file's facts step covers both readings of the element's state.
        "facts" => &[Spot::Facts, Spot::Patches],
        "patchLoad" => &[Spot::Op(PatchOp::Load)],
        "patchActivate" => &[Spot::Op(PatchOp::SetDelay), Spot::Op(PatchOp::Activate)],
        "patchConfirm" => &[Spot::Op(PatchOp::Confirm)],
        other => panic!("unknown step {other:?} in the fault table"),
    };
    let mut world = World::single();
    for spot in spots {
        world.elements[0].faults.push((*spot, fault));
    }
    world
}

#[test]
fn the_fault_table_is_what_the_engine_does() {
    let rows = table_rows(&section(PAGE, "Device faults"));
    let steps: Vec<&str> = rows
        .iter()
        .map(|r| r[0].split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(
        steps,
        ["facts", "patchLoad", "patchActivate", "patchConfirm"],
        "one row per fault step of a network element"
    );
    let mut problems = Vec::new();
    for (row, step) in rows.iter().zip(steps) {
        assert_eq!(row.len(), 4, "{row:?}");
        for (kind, cell) in ["error", "exception", "hang"].into_iter().zip(&row[1..]) {
            let Some(expected) = quoted(cell).into_iter().find_map(|w| w.parse().ok()) else {
                problems.push(format!("{step} × {kind}: no code in {cell:?}"));
                continue;
            };
            let expected: DevicePatchCode = expected;
            for delay in [None, Some(crate::api::common::GoDuration::from_mins(5))] {
                let mut world = world_with_fault(step, kind);
                world.spec.activation.delay = delay;
                world.run();
                let task = &world.tasks[0];
                if task.code != expected {
                    problems.push(format!(
                        "{step} × {kind} (activation.delay {delay:?}): the page says {expected}, the engine ends {} ({})",
                        task.code, task.message
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/devicepatch.md, section Device faults:\n{}",
        problems.join("\n")
    );
}
