use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::api::common::GoDuration;
use crate::api::maintenance_window::MaintenanceWindowSpec;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn recurring(schedule: &str, zone: &str, duration: GoDuration) -> Window {
    let spec = MaintenanceWindowSpec {
        schedule: Some(schedule.into()),
        time_zone: Some(zone.into()),
        duration: Some(duration),
        ..Default::default()
    };
    Window::from_spec("w", &spec).unwrap()
}

fn starts(window: &Window, from: &str, count: usize) -> Vec<Timestamp> {
    window
        .occurrences_from(at(from))
        .take(count)
        .map(|o| o.start)
        .collect()
}

#[test]
fn berlin_spring_forward_opens_at_the_end_of_the_gap() {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 does not exist that night.
    let w = recurring("30 2 * * *", "Europe/Berlin", GoDuration::from_hours(1));
    assert_eq!(
        starts(&w, "2026-03-27T12:00:00Z", 3),
        [
            at("2026-03-28T01:30:00Z"),
            at("2026-03-29T01:00:00Z"),
            at("2026-03-30T00:30:00Z")
        ]
    );
}

#[test]
fn berlin_fall_back_opens_at_the_first_of_two_identical_local_times() {
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00Z); 02:30 happens at 00:30Z and 01:30Z.
    let w = recurring("30 2 * * *", "Europe/Berlin", GoDuration::from_mins(20));
    assert_eq!(
        starts(&w, "2026-10-23T12:00:00Z", 3),
        [
            at("2026-10-24T00:30:00Z"),
            at("2026-10-25T00:30:00Z"),
            at("2026-10-26T01:30:00Z")
        ]
    );
    // At the second 02:30 the window is closed again: only the first occurrence opens.
    assert!(w.occurrence_at(at("2026-10-25T01:35:00Z")).is_none());
}

#[test]
fn duration_is_elapsed_time_across_a_transition() {
    // Opens 01:00 CET (00:00Z) on the spring-forward night; 3h elapsed ends at 06:00 CEST, 03:00Z.
    let w = recurring("0 1 29 3 *", "Europe/Berlin", GoDuration::from_hours(3));
    let first = w
        .occurrences_from(at("2026-03-01T00:00:00Z"))
        .next()
        .unwrap();
    assert_eq!(first.start, at("2026-03-29T00:00:00Z"));
    assert_eq!(first.end, at("2026-03-29T03:00:00Z"));
}

#[test]
fn new_york_both_transitions() {
    // 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z): 02:30 opens at 03:00 EDT.
    let spring = recurring("30 2 * * *", "America/New_York", GoDuration::from_hours(1));
    assert_eq!(
        starts(&spring, "2026-03-07T12:00:00Z", 2),
        [at("2026-03-08T07:00:00Z"), at("2026-03-09T06:30:00Z")]
    );
    // 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z): 01:30 happens at 05:30Z and 06:30Z.
    let fall = recurring("30 1 * * *", "America/New_York", GoDuration::from_mins(10));
    assert_eq!(
        starts(&fall, "2026-10-31T12:00:00Z", 2),
        [at("2026-11-01T05:30:00Z"), at("2026-11-02T06:30:00Z")]
    );
}

#[test]
fn lord_howe_half_hour_shift_both_transitions() {
    // 2026-10-04: 02:00 LHST (+10:30) jumps to 02:30 LHDT (+11), at 2026-10-03T15:30Z.
    let spring = recurring(
        "15 2 * * *",
        "Australia/Lord_Howe",
        GoDuration::from_hours(1),
    );
    assert_eq!(
        starts(&spring, "2026-10-02T12:00:00Z", 3),
        [
            at("2026-10-02T15:45:00Z"),
            at("2026-10-03T15:30:00Z"),
            at("2026-10-04T15:15:00Z")
        ]
    );
    // 2026-04-05: 02:00 LHDT (+11) falls back to 01:30 LHST (+10:30), at 2026-04-04T15:00Z;
    // 01:45 happens at 14:45Z and again at 15:15Z.
    let fall = recurring(
        "45 1 * * *",
        "Australia/Lord_Howe",
        GoDuration::from_mins(15),
    );
    assert_eq!(
        starts(&fall, "2026-04-03T12:00:00Z", 3),
        [
            at("2026-04-03T14:45:00Z"),
            at("2026-04-04T14:45:00Z"),
            at("2026-04-05T15:15:00Z")
        ]
    );
}

#[test]
fn several_local_times_in_one_gap_open_once() {
    // Every 15 minutes during the Berlin gap: 02:00..02:45 all land on 01:00Z.
    let w = recurring("*/15 2 29 3 *", "Europe/Berlin", GoDuration::from_mins(5));
    assert_eq!(
        starts(&w, "2026-03-28T00:00:00Z", 2),
        [at("2026-03-29T01:00:00Z"), at("2027-03-29T00:00:00Z")]
    );
}

#[test]
fn occurrence_at_and_state() {
    let w = recurring("0 22 * * SAT", "Europe/Berlin", GoDuration::from_hours(6));
    // Saturday 2026-11-28 22:00 CET = 21:00Z, until 03:00Z.
    let inside = at("2026-11-29T01:00:00Z");
    let occ = w.occurrence_at(inside).unwrap();
    assert_eq!(
        (occ.start, occ.end),
        (at("2026-11-28T21:00:00Z"), at("2026-11-29T03:00:00Z"))
    );
    let state = w.state_at(inside);
    assert!(state.open());
    assert_eq!(state.next_close, Some(at("2026-11-29T03:00:00Z")));
    assert_eq!(state.next_open, Some(at("2026-12-05T21:00:00Z")));
    assert!(
        w.occurrence_at(at("2026-11-29T03:00:00Z")).is_none(),
        "the end is exclusive"
    );
    let closed = w.state_at(at("2026-11-23T12:00:00Z"));
    assert!(!closed.open());
    assert_eq!(closed.next_close, Some(at("2026-11-29T03:00:00Z")));
}

#[test]
fn one_time_windows() {
    let spec = MaintenanceWindowSpec {
        start: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(
            "2026-12-24T00:00:00+01:00",
        ))),
        end: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(
            "2026-12-27T00:00:00+01:00",
        ))),
        ..Default::default()
    };
    let w = Window::from_spec("freeze", &spec).unwrap();
    assert_eq!(
        starts(&w, "2026-12-01T00:00:00Z", 5),
        [at("2026-12-23T23:00:00Z")]
    );
    assert_eq!(
        starts(&w, "2026-12-25T00:00:00Z", 5),
        [at("2026-12-23T23:00:00Z")],
        "the open occurrence comes first"
    );
    assert!(starts(&w, "2026-12-28T00:00:00Z", 5).is_empty());
}

fn zone() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
    ])
}

fn schedule() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["0", "30", "*/15", "5,45", "59"]),
        prop::sample::select(vec!["*", "1", "2", "22", "0-3", "*/6"]),
        prop::sample::select(vec!["*", "1", "15,29", "31"]),
        prop::sample::select(vec!["*", "3", "10", "3,10,11"]),
        prop::sample::select(vec!["*", "SUN", "MON-FRI", "SAT"]),
    )
        .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn openings_strictly_increase_and_last_exactly_the_duration(
        schedule in schedule(),
        zone in zone(),
        minutes in 1u64..600,
        offset_hours in 0i64..(24 * 365 * 2),
    ) {
        let w = recurring(&schedule, zone, GoDuration::from_mins(minutes));
        let from = at("2026-01-01T00:00:00Z") + SignedDuration::from_hours(offset_hours);
        let occurrences: Vec<_> = w.occurrences_from(from).take(20).collect();
        for pair in occurrences.windows(2) {
            prop_assert!(pair[0].start < pair[1].start, "{schedule} {zone}: {pair:?}");
        }
        for o in &occurrences {
            prop_assert_eq!(o.end.duration_since(o.start), SignedDuration::from_mins(minutes as i64));
        }
    }

    #[test]
    fn the_gate_agrees_with_the_listed_openings(
        schedule in schedule(),
        zone in zone(),
        minutes in 1u64..300,
        offset_minutes in 0i64..(60 * 24 * 400),
    ) {
        let w = recurring(&schedule, zone, GoDuration::from_mins(minutes));
        let base = at("2026-01-01T00:00:00Z");
        let t = base + SignedDuration::from_mins(offset_minutes);
        // Every occurrence that could contain t starts at most `minutes` before it.
        let listed_open = w
            .occurrences_from(t - SignedDuration::from_mins(minutes as i64 + 1))
            .take_while(|o| o.start <= t)
            .any(|o| o.contains(t));
        prop_assert_eq!(w.occurrence_at(t).is_some(), listed_open, "{} {} at {}", schedule, zone, t);
    }
}
