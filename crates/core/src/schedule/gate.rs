//! The window gate: may a target of a resource start now?
//!
//! Without a referenced Maintenance window a target may start at any time; with some, at least
//! one of them must be open. And no Blackout may be open, whether the resource references it or it
//! merely lives in the resource's namespace.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::window::Window;
use crate::api::maintenance_window::WindowType;

/// A window a resource names in `maintenanceWindows`.
#[derive(Clone, Copy, Debug)]
pub enum Referenced<'a> {
    /// The MaintenanceWindow exists and its schedule is usable.
    Usable(&'a Window),
    /// No MaintenanceWindow has the name, or its schedule cannot be evaluated; treated as a
    /// Maintenance window that never opens.
    Unusable {
        /// The name given.
        name: &'a str,
        /// Why it cannot be used.
        reason: &'a str,
    },
}

/// The gate's verdict at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    /// Whether a target may start now.
    pub open: bool,
    /// Why, in a sentence.
    pub reason: String,
    /// Whether a Blackout window is what keeps it closed.
    pub blackout: bool,
    /// The next instant at which the verdict may change.
    pub next_change: Option<Timestamp>,
}

/// Evaluates the gate at `now` for a resource that references `referenced` and lives in a
/// namespace whose Blackout windows are `namespace_blackouts` (duplicates of referenced windows
/// are fine).
pub fn evaluate(
    referenced: &[Referenced<'_>],
    namespace_blackouts: &[&Window],
    now: Timestamp,
) -> Gate {
    let mut changes = Vec::new();
    let mut blackouts: BTreeMap<&str, &Window> = namespace_blackouts
        .iter()
        .map(|w| (w.name.as_str(), *w))
        .collect();
    let mut maintenance = Vec::new();
    let mut unusable = Vec::new();
    for r in referenced {
        match r {
            Referenced::Usable(w) if w.kind == WindowType::Blackout => {
                blackouts.insert(&w.name, w);
            }
            Referenced::Usable(w) => maintenance.push(*w),
            Referenced::Unusable { name, reason } => unusable.push(format!("{name} ({reason})")),
        }
    }

    let mut open_blackout = None;
    for window in blackouts.values() {
        let state = window.state_at(now);
        changes.extend(state.next_change());
        if let Some(current) = state.current {
            open_blackout.get_or_insert((window.name.as_str(), current.end));
        }
    }

    let mut open_maintenance = None;
    for window in &maintenance {
        let state = window.state_at(now);
        changes.extend(state.next_change());
        if let Some(current) = state.current {
            open_maintenance.get_or_insert((window.name.as_str(), current.end));
        }
    }
    let next_change = changes.into_iter().filter(|t| *t > now).min();

    let (open, reason) = if let Some((name, until)) = open_blackout {
        (
            false,
            format!("blackout window {name} is open until {until}"),
        )
    } else if maintenance.is_empty() && unusable.is_empty() {
        (true, "no maintenance window is required".to_string())
    } else if let Some((name, until)) = open_maintenance {
        (
            true,
            format!("maintenance window {name} is open until {until}"),
        )
    } else {
        let mut names: Vec<String> = maintenance.iter().map(|w| w.name.clone()).collect();
        names.extend(unusable);
        let next = next_change
            .map(|t| format!("; next change at {t}"))
            .unwrap_or_default();
        (
            false,
            format!("no maintenance window is open ({}){next}", names.join(", ")),
        )
    };
    Gate {
        open,
        reason,
        blackout: open_blackout.is_some(),
        next_change,
    }
}

/// How many changes of the gate [`closes_at`] looks through for its close.
const CLOSE_LOOKAHEAD: usize = 64;

/// The first instant at or after `now` at which the gate is closed: `now` itself when it is
/// closed now, `None` when it stays open as far as the windows tell (no window bounds it).
pub fn closes_at(
    referenced: &[Referenced<'_>],
    namespace_blackouts: &[&Window],
    now: Timestamp,
) -> Option<Timestamp> {
    let mut at = now;
    for _ in 0..CLOSE_LOOKAHEAD {
        let gate = evaluate(referenced, namespace_blackouts, at);
        if !gate.open {
            return Some(at);
        }
        at = gate.next_change?;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::api::common::GoDuration;
    use crate::api::maintenance_window::MaintenanceWindowSpec;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn window(name: &str, kind: WindowType, start: &str, end: &str) -> Window {
        let spec = MaintenanceWindowSpec {
            type_: kind,
            start: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(
                start,
            ))),
            end: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(
                end,
            ))),
            ..Default::default()
        };
        Window::from_spec(name, &spec).unwrap()
    }

    fn nightly() -> Window {
        let spec = MaintenanceWindowSpec {
            schedule: Some("0 22 * * *".into()),
            duration: Some(GoDuration::from_hours(2)),
            ..Default::default()
        };
        Window::from_spec("nightly", &spec).unwrap()
    }

    #[test]
    fn without_maintenance_windows_the_gate_is_open_unless_a_blackout_is() {
        let freeze = window(
            "freeze",
            WindowType::Blackout,
            "2026-12-24T00:00:00Z",
            "2026-12-27T00:00:00Z",
        );
        let before = evaluate(&[], &[&freeze], at("2026-12-23T12:00:00Z"));
        assert!(before.open, "{}", before.reason);
        assert_eq!(before.next_change, Some(at("2026-12-24T00:00:00Z")));
        let during = evaluate(&[], &[&freeze], at("2026-12-25T12:00:00Z"));
        assert!(!during.open);
        assert!(
            during.reason.contains("blackout window freeze"),
            "{}",
            during.reason
        );
        assert_eq!(during.next_change, Some(at("2026-12-27T00:00:00Z")));
    }

    #[test]
    fn a_referenced_maintenance_window_must_be_open() {
        let nightly = nightly();
        let refs = [Referenced::Usable(&nightly)];
        let noon = evaluate(&refs, &[], at("2026-11-23T12:00:00Z"));
        assert!(!noon.open);
        assert_eq!(noon.next_change, Some(at("2026-11-23T22:00:00Z")));
        let night = evaluate(&refs, &[], at("2026-11-23T23:00:00Z"));
        assert!(night.open, "{}", night.reason);
        assert_eq!(night.next_change, Some(at("2026-11-24T00:00:00Z")));
    }

    #[test]
    fn a_referenced_blackout_closes_the_gate_even_inside_a_maintenance_window() {
        let nightly = nightly();
        let freeze = window(
            "freeze",
            WindowType::Blackout,
            "2026-11-23T22:30:00Z",
            "2026-11-23T23:00:00Z",
        );
        let refs = [Referenced::Usable(&nightly), Referenced::Usable(&freeze)];
        assert!(!evaluate(&refs, &[], at("2026-11-23T22:45:00Z")).open);
        assert!(evaluate(&refs, &[], at("2026-11-23T23:15:00Z")).open);
    }

    #[test]
    fn an_unusable_reference_never_opens() {
        let refs = [Referenced::Unusable {
            name: "weekend",
            reason: "no such MaintenanceWindow",
        }];
        let gate = evaluate(&refs, &[], at("2026-11-23T12:00:00Z"));
        assert!(!gate.open);
        assert!(
            gate.reason.contains("weekend (no such MaintenanceWindow)"),
            "{}",
            gate.reason
        );
        assert_eq!(gate.next_change, None);
    }

    #[test]
    fn the_gate_closes_at_the_end_of_overlapping_windows_or_a_blackout() {
        let nightly = nightly();
        let late = window(
            "late",
            WindowType::Maintenance,
            "2026-11-23T23:00:00Z",
            "2026-11-24T03:00:00Z",
        );
        let refs = [Referenced::Usable(&nightly), Referenced::Usable(&late)];
        // Nightly 22:00-24:00 and late 23:00-03:00 overlap: the gate stays open until 03:00.
        assert_eq!(
            closes_at(&refs, &[], at("2026-11-23T22:30:00Z")),
            Some(at("2026-11-24T03:00:00Z"))
        );
        let freeze = window(
            "freeze",
            WindowType::Blackout,
            "2026-11-24T01:00:00Z",
            "2026-11-24T02:00:00Z",
        );
        assert_eq!(
            closes_at(&refs, &[&freeze], at("2026-11-23T22:30:00Z")),
            Some(at("2026-11-24T01:00:00Z"))
        );
        assert_eq!(
            closes_at(&refs, &[], at("2026-11-23T12:00:00Z")),
            Some(at("2026-11-23T12:00:00Z")),
            "closed now"
        );
        assert_eq!(closes_at(&[], &[], at("2026-11-23T12:00:00Z")), None);
    }
}
