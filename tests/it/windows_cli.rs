//! `upkeep windows` as a user runs it: the JSON contract, the order of openings, the DST rules in
//! three time zones, and the exit codes.
//!
//! The expected instants were worked out independently of upkeep (with the IANA rules of each
//! zone): a local opening time in a spring-forward gap opens at the first instant after the gap,
//! one that occurs twice opens at its first occurrence, and the duration is elapsed time.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn upkeep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the upkeep binary runs")
}

/// Runs `upkeep windows - ARGS…` with `yaml` on standard input.
fn windows_stdin(yaml: &str, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .arg("windows")
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the upkeep binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json_of(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "{}", text(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)))
}

fn recurring(name: &str, schedule: &str, zone: &str, duration: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata:\n  name: {name}\n\
         spec:\n  type: Maintenance\n  schedule: \"{schedule}\"\n  timeZone: {zone}\n  duration: {duration}\n"
    )
}

/// `(start, end)` of every opening listed for one window.
fn openings(yaml: &str, from: &str, count: &str) -> Vec<(String, String)> {
    let listed = json_of(&windows_stdin(
        yaml,
        &["--from", from, "--count", count, "-o", "json"],
    ));
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["start"].as_str().unwrap().to_string(),
                o["end"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(s, e)| (s.to_string(), e.to_string()))
        .collect()
}

#[test]
fn the_example_windows_as_json_from_a_fixed_time() {
    let out = upkeep(&[
        "windows",
        "examples/maintenance-windows.yaml",
        "--from",
        "2026-12-01T00:00:00Z",
        "-o",
        "json",
    ]);
    let maintenance = |start: &str, end: &str| json!({"name": "saturday-night", "type": "Maintenance", "start": start, "end": end});
    // Saturdays 22:00 in Berlin (CET, +01:00) for 6 hours; five per window by default; the
    // Christmas blackout once, in its place by start.
    assert_eq!(
        json_of(&out),
        json!([
            maintenance("2026-12-05T21:00:00Z", "2026-12-06T03:00:00Z"),
            maintenance("2026-12-12T21:00:00Z", "2026-12-13T03:00:00Z"),
            maintenance("2026-12-19T21:00:00Z", "2026-12-20T03:00:00Z"),
            {"name": "christmas-freeze", "type": "Blackout",
             "start": "2026-12-23T23:00:00Z", "end": "2026-12-26T23:00:00Z"},
            maintenance("2026-12-26T21:00:00Z", "2026-12-27T03:00:00Z"),
            maintenance("2027-01-02T21:00:00Z", "2027-01-03T03:00:00Z"),
        ])
    );
}

#[test]
fn the_occurrence_open_at_from_comes_first_and_counts() {
    // Inside the Saturday window of 2026-12-26 and inside the blackout.
    let out = upkeep(&[
        "windows",
        "examples/maintenance-windows.yaml",
        "--from",
        "2026-12-26T22:00:00Z",
        "--count",
        "2",
        "-o",
        "json",
    ]);
    let listed = json_of(&out);
    let rows: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["start"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rows,
        [
            ("christmas-freeze", "2026-12-23T23:00:00Z"),
            ("saturday-night", "2026-12-26T21:00:00Z"),
            ("saturday-night", "2027-01-02T21:00:00Z"),
        ]
    );
}

#[test]
fn the_table_has_the_same_columns() {
    let out = upkeep(&[
        "windows",
        "examples/maintenance-windows.yaml",
        "--from",
        "2026-12-20T04:00:00Z",
        "--count",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["NAME", "TYPE", "START", "END"],
            vec![
                "christmas-freeze",
                "Blackout",
                "2026-12-23T23:00:00Z",
                "2026-12-26T23:00:00Z"
            ],
            vec![
                "saturday-night",
                "Maintenance",
                "2026-12-26T21:00:00Z",
                "2026-12-27T03:00:00Z"
            ],
        ]
    );
    // Aligned: every START column begins at the same offset.
    let starts: Vec<usize> = table.lines().map(|l| l.find("20").unwrap_or(0)).collect();
    assert!(starts[1..].iter().all(|s| *s == starts[1]), "{table}");
    assert_eq!(table.lines().next().unwrap().find("START"), Some(starts[1]));
}

#[test]
fn europe_berlin_across_both_transitions() {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 does not exist and opens at
    // the end of the gap.
    let spring = recurring("spring", "30 2 * * *", "Europe/Berlin", "1h");
    assert_eq!(
        openings(&spring, "2026-03-27T12:00:00Z", "3"),
        pairs(&[
            ("2026-03-28T01:30:00Z", "2026-03-28T02:30:00Z"),
            ("2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"),
            ("2026-03-30T00:30:00Z", "2026-03-30T01:30:00Z"),
        ])
    );
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00Z); 02:30 happens at 00:30Z and at
    // 01:30Z, and opens at the first.
    let fall = recurring("fall", "30 2 * * *", "Europe/Berlin", "20m");
    assert_eq!(
        openings(&fall, "2026-10-24T12:00:00Z", "2"),
        pairs(&[
            ("2026-10-25T00:30:00Z", "2026-10-25T00:50:00Z"),
            ("2026-10-26T01:30:00Z", "2026-10-26T01:50:00Z"),
        ])
    );
    // Duration is elapsed time: 01:00 CEST + 3h = 02:00Z (03:00 CET on the wall, not 04:00).
    let elapsed = recurring("elapsed", "0 1 25 10 *", "Europe/Berlin", "3h");
    assert_eq!(
        openings(&elapsed, "2026-10-01T00:00:00Z", "1"),
        pairs(&[("2026-10-24T23:00:00Z", "2026-10-25T02:00:00Z")])
    );
}

#[test]
fn america_new_york_across_both_transitions() {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z).
    let spring = recurring("spring", "30 2 * * *", "America/New_York", "1h");
    assert_eq!(
        openings(&spring, "2026-03-06T12:00:00Z", "3"),
        pairs(&[
            ("2026-03-07T07:30:00Z", "2026-03-07T08:30:00Z"),
            ("2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"),
            ("2026-03-09T06:30:00Z", "2026-03-09T07:30:00Z"),
        ])
    );
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00Z); 01:30 happens at 05:30Z and 06:30Z.
    let fall = recurring("fall", "30 1 * * *", "America/New_York", "2h");
    assert_eq!(
        openings(&fall, "2026-10-31T00:00:00Z", "3"),
        pairs(&[
            ("2026-10-31T05:30:00Z", "2026-10-31T07:30:00Z"),
            ("2026-11-01T05:30:00Z", "2026-11-01T07:30:00Z"),
            ("2026-11-02T06:30:00Z", "2026-11-02T08:30:00Z"),
        ])
    );
}

#[test]
fn australia_lord_howe_across_both_half_hour_transitions() {
    // 2026-10-04: 02:00 LHST (+10:30) jumps to 02:30 LHDT (+11) at 2026-10-03T15:30Z; 02:15
    // does not exist that night.
    let spring = recurring("spring", "15 2 * * *", "Australia/Lord_Howe", "1h");
    assert_eq!(
        openings(&spring, "2026-10-02T12:00:00Z", "3"),
        pairs(&[
            ("2026-10-02T15:45:00Z", "2026-10-02T16:45:00Z"),
            ("2026-10-03T15:30:00Z", "2026-10-03T16:30:00Z"),
            ("2026-10-04T15:15:00Z", "2026-10-04T16:15:00Z"),
        ])
    );
    // 2026-04-05: 02:00 LHDT (+11) falls back to 01:30 LHST (+10:30) at 2026-04-04T15:00Z;
    // 01:45 happens at 14:45Z and at 15:15Z, and opens at the first. 45 minutes elapsed.
    let fall = recurring("fall", "45 1 * * *", "Australia/Lord_Howe", "45m");
    assert_eq!(
        openings(&fall, "2026-04-03T12:00:00Z", "3"),
        pairs(&[
            ("2026-04-03T14:45:00Z", "2026-04-03T15:30:00Z"),
            ("2026-04-04T14:45:00Z", "2026-04-04T15:30:00Z"),
            ("2026-04-05T15:15:00Z", "2026-04-05T16:00:00Z"),
        ])
    );
}

#[test]
fn windows_of_several_zones_merge_by_start_then_name() {
    let yaml = [
        recurring("ny", "0 2 * * *", "America/New_York", "1h"),
        recurring("berlin", "0 8 * * *", "Europe/Berlin", "1h"),
        recurring("utc", "0 7 * * *", "UTC", "1h"),
    ]
    .join("---\n");
    // 2026-01-10: 02:00 EST = 07:00Z = 08:00 CET: three openings at the same instant.
    let listed = json_of(&windows_stdin(
        &yaml,
        &[
            "--from",
            "2026-01-10T06:00:00Z",
            "--count",
            "1",
            "-o",
            "json",
        ],
    ));
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["berlin", "ny", "utc"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["start"] == "2026-01-10T07:00:00Z")
    );
}

#[test]
fn an_invalid_window_fails_naming_file_window_and_field() {
    let out = upkeep(&[
        "windows",
        "examples/maintenance-windows.yaml",
        "tests/data/bad/23-time-zone.yaml",
        "--from",
        "2026-12-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(out.stdout.is_empty(), "nothing is listed: {}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains(
            "tests/data/bad/23-time-zone.yaml: MaintenanceWindow/w (document 1): spec.timeZone: "
        ),
        "{shown}"
    );

    let cron = windows_stdin(
        &recurring("broken", "0 25 * * *", "UTC", "1h"),
        &["--from", "2026-12-01T00:00:00Z"],
    );
    assert_eq!(cron.status.code(), Some(1), "{}", text(&cron));
    assert!(
        text(&cron).contains("<stdin>: MaintenanceWindow/broken (document 1): spec.schedule: "),
        "{}",
        text(&cron)
    );
}

#[test]
fn other_kinds_are_ignored() {
    let out = upkeep(&[
        "windows",
        "examples/firmware-upgrade.yaml",
        "--from",
        "2026-12-01T00:00:00Z",
        "-o",
        "json",
    ]);
    assert_eq!(json_of(&out), json!([]));
}

#[test]
fn usage_and_io_errors_exit_2() {
    for args in [
        vec!["windows"],
        vec!["windows", "does/not/exist.yaml"],
        vec!["windows", "examples/", "--from", "2026-12-01"],
        vec!["windows", "examples/", "--from", "tomorrow"],
        vec!["windows", "examples/", "--count", "0"],
        vec!["windows", "examples/", "-o", "yaml"],
    ] {
        let out = upkeep(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    let missing = upkeep(&["windows", "does/not/exist.yaml"]);
    assert!(
        text(&missing).contains("does/not/exist.yaml"),
        "{}",
        text(&missing)
    );
}

#[test]
fn from_defaults_to_now() {
    // Without --from the listing starts at the current time: the one-time blackout of 2026 is
    // listed only while it has not ended, the weekly window always.
    let out = upkeep(&["windows", "examples/maintenance-windows.yaml", "-o", "json"]);
    let listed = json_of(&out);
    let weekly = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == "saturday-night")
        .count();
    assert_eq!(weekly, 5);
}
