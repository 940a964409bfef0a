use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::common::Summary;
use crate::api::upgrade_task::HistoryEntry;
use crate::schedule::window::Occurrence;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn task(
    parent: &str,
    target: &str,
    result: &str,
    codes: &[(&str, &str)],
    started: Option<&str>,
) -> TaskReport {
    TaskReport {
        parent: parent.into(),
        target: target.into(),
        code: codes.last().map(|(c, _)| c.to_string()),
        result: result.into(),
        incident_id: None,
        started_at: started.map(str::to_string),
        finished_at: (result != "InProgress").then(|| codes.last().unwrap().1.to_string()),
        history: codes
            .iter()
            .map(|(code, t)| HistoryEntry {
                code: code.to_string(),
                status_code: None,
                at: Time(at(t)),
            })
            .collect(),
        patch: None,
    }
}

fn report(tasks: Vec<TaskReport>) -> Report {
    let resource = ResourceReport {
        kind: "FirmwareUpgrade".into(),
        namespace: "default".into(),
        name: "fw".into(),
        code: None,
        conditions: Vec::new(),
        summary: Summary::default(),
        consistency: None,
        maintenance_windows: vec!["nightly".into()],
    };
    let window = |name: &str, kind| WindowReport {
        namespace: "default".into(),
        name: name.into(),
        kind,
        occurrences: vec![Occurrence {
            start: at("2026-11-23T09:10:00Z"),
            end: at("2026-11-23T09:20:00Z"),
        }],
    };
    Report::new(
        at("2026-11-23T09:00:00Z"),
        at("2026-11-23T10:00:00Z"),
        vec![resource],
        tasks,
        12,
    )
    .with_windows(vec![
        window("nightly", WindowType::Maintenance),
        window("freeze", WindowType::Blackout),
        window("unrelated", WindowType::Maintenance),
    ])
}

fn one() -> Vec<TaskReport> {
    vec![task(
        "FirmwareUpgrade/default/fw",
        "dp-<1>",
        "Succeeded",
        &[
            ("WAITING_FOR_PRE_VALIDATION", "2026-11-23T09:00:00Z"),
            ("SENT_TO_MDB", "2026-11-23T09:10:00Z"),
            ("SUCCESS", "2026-11-23T09:40:00Z"),
        ],
        Some("2026-11-23T09:10:00Z"),
    )]
}

#[test]
fn the_page_is_self_contained_and_escapes_names() {
    let page = report(one()).html();
    assert!(page.starts_with("<!DOCTYPE html>"));
    for outside in [
        "<script", "http://", "https://", "@import", "url(", "<link", "<img",
    ] {
        assert!(!page.contains(outside), "{outside} in the page");
    }
    assert!(page.contains("dp-&lt;1&gt;"), "the target is escaped");
    assert!(!page.contains("dp-<1>"));
}

#[test]
fn every_code_change_is_marked_with_its_code_and_time() {
    let page = report(one()).html();
    for title in [
        "<title>WAITING_FOR_PRE_VALIDATION at 2026-11-23T09:00:00Z</title>",
        "<title>SENT_TO_MDB at 2026-11-23T09:10:00Z</title>",
        "<title>SUCCESS at 2026-11-23T09:40:00Z</title>",
    ] {
        assert!(page.contains(title), "{title} missing");
    }
    assert_eq!(
        page.matches("class=\"mark\"").count(),
        3 + 1,
        "three marks and the legend's"
    );
    // The bar: queued from 09:00 to 09:10 (x 190 to 356.7 of a 1000-pixel hour), then solid.
    assert!(
        page.contains("<rect class=\"Succeeded queued\" x=\"190.0\""),
        "{page}"
    );
    assert!(
        page.contains("<rect class=\"Succeeded\" x=\"356.7\""),
        "{page}"
    );
}

#[test]
fn the_windows_that_gate_the_parent_are_shaded_and_no_others() {
    let page = report(one()).html();
    assert!(
        page.contains("Maintenance window nightly: 2026-11-23T09:10:00Z → 2026-11-23T09:20:00Z")
    );
    assert!(page.contains("Blackout window freeze: "));
    // The unrelated window is listed in the table, but shades no group.
    assert!(page.contains("<td>default/unrelated</td>"));
    assert!(!page.contains("window unrelated:"));
}

#[test]
fn large_groups_start_closed_small_ones_open() {
    let many: Vec<TaskReport> = (0..=OPEN_UP_TO)
        .map(|i| {
            task(
                "FirmwareUpgrade/default/fw",
                &format!("dp-{i:04}"),
                "Failed",
                &[
                    ("WAITING_FOR_PRE_VALIDATION", "2026-11-23T09:00:00Z"),
                    (
                        "ERROR_FOUND_UNSAVED_CHANGES_ON_DEVICE",
                        "2026-11-23T09:00:05Z",
                    ),
                ],
                None,
            )
        })
        .collect();
    let page = report(many).html();
    assert!(page.contains("<h3>FirmwareUpgrade/default/fw"));
    assert!(page.contains("<details>\n<summary>101 task rows"), "closed");
    assert!(page.contains("101 tasks: 101 failed"));
    assert!(!page.contains("<details open>"));
    assert!(report(one()).html().contains("<details open>"));
}

#[test]
fn the_same_report_gives_the_same_page() {
    assert_eq!(report(one()).html(), report(one()).html());
}
