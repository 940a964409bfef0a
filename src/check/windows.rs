//! Checks of MaintenanceWindows that need more than one document, or the time: a window that
//! does not open in the next [`OPENING_HORIZON_DAYS`] days (a cron that never fires, such as
//! `0 0 31 2 *`) is an error the cluster accepts (a resource that references it waits until its
//! `maxWait`); a one-time window that is over is a warning (a file kept for the record); a
//! `maintenanceWindows` entry that no document of the files defines is a warning (the window may
//! live in the cluster). Documents the per-document checks found broken are left to them.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::{FileReport, Outcome, Problem, namespace_of, namespaces_meet};
use crate::api::MaintenanceWindow;
use crate::schedule::window::Window;

/// How far ahead a window must open at least once.
pub const OPENING_HORIZON_DAYS: i64 = 400;

/// The kinds whose `spec.maintenanceWindows` name windows.
const REFERRING_KINDS: &[&str] = &["FirmwareUpgrade", "PatchJob", "DevicePatch"];

/// Adds the window findings to `reports`; `documents[i]` are the non-null documents of the file
/// of `reports[i]`, in order (empty when it could not be read).
pub fn check(reports: &mut [FileReport], documents: &[Vec<Value>], now: Timestamp) {
    let mut defined = BTreeSet::new();
    for (report, docs) in reports.iter_mut().zip(documents) {
        for (doc_report, doc) in report.documents.iter_mut().zip(docs) {
            if kind(doc) != "MaintenanceWindow" || matches!(doc_report.outcome, Outcome::Skipped(_))
            {
                continue;
            }
            defined.insert(key(doc, name(doc)));
            if !matches!(doc_report.outcome, Outcome::Valid) {
                continue;
            }
            match opening(doc, now) {
                Some(Opening::Never(problem)) => doc_report.add_finding(problem),
                Some(Opening::Over(problem)) => doc_report.warnings.push(problem),
                None => {}
            }
        }
    }
    for (report, docs) in reports.iter_mut().zip(documents) {
        for (doc_report, doc) in report.documents.iter_mut().zip(docs) {
            if !REFERRING_KINDS.contains(&kind(doc))
                || matches!(doc_report.outcome, Outcome::Skipped(_))
            {
                continue;
            }
            let names = doc
                .pointer("/spec/maintenanceWindows")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for (i, window) in names.iter().enumerate() {
                let Some(window) = window.as_str() else {
                    continue;
                };
                if !is_defined(&defined, key(doc, window)) {
                    doc_report.warnings.push(Problem::new(
                        format!("spec.maintenanceWindows[{i}]"),
                        format!("no file given defines the MaintenanceWindow {window:?}; unless it exists in the cluster, the targets wait for it until maxWait"),
                        "define the window, correct its name, or ignore this if the window lives in the cluster".into(),
                    ));
                }
            }
        }
    }
}

fn kind(doc: &Value) -> &str {
    doc.get("kind").and_then(Value::as_str).unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A window's (namespace, name); `None` when the document leaves the namespace to the one it is
/// applied to.
fn key(doc: &Value, name: &str) -> (Option<String>, String) {
    (namespace_of(doc), name.to_string())
}

/// Whether a window of that name is defined in the same namespace, or where either side leaves
/// the namespace open.
fn is_defined(
    defined: &BTreeSet<(Option<String>, String)>,
    (namespace, name): (Option<String>, String),
) -> bool {
    defined
        .iter()
        .any(|(ns, n)| *n == name && namespaces_meet(ns, &namespace))
}

enum Opening {
    /// No opening within the horizon: an error.
    Never(Problem),
    /// A one-time window that is over: a warning.
    Over(Problem),
}

fn opening(doc: &Value, now: Timestamp) -> Option<Opening> {
    let object: MaintenanceWindow = serde_json::from_value(doc.clone()).ok()?;
    let window = Window::from_spec(name(doc), &object.spec).ok()?;
    let horizon = now
        .checked_add(SignedDuration::from_hours(24 * OPENING_HORIZON_DAYS))
        .ok()?;
    let opens = window
        .occurrences_from(now)
        .next()
        .is_some_and(|o| o.start < horizon);
    if opens {
        return None;
    }
    let at = crate::sim::report::rfc3339(now);
    if let Some(schedule) = &object.spec.schedule {
        return Some(Opening::Never(Problem {
            accepted_by_api: true,
            ..Problem::new(
                "spec.schedule".into(),
                format!(
                    "{schedule:?} does not open in the {OPENING_HORIZON_DAYS} days from {at}; a resource that needs this window would wait until its maxWait"
                ),
                "give a schedule that fires at least once a year, e.g. \"0 22 * * SAT\"".into(),
            )
        }));
    }
    let over = object.spec.end.as_ref().is_some_and(|end| end.0 <= now);
    over.then(|| {
        Opening::Over(Problem::new(
            "spec.end".into(),
            format!("this one-time window ended before {at}; it gates nothing any more"),
            "delete it, or give it a new start and end".into(),
        ))
    })
}
