//! Pacing of a rollout's rounds: at most one round of an object per interval, on the leading
//! edge. A rollout's round reads every one of its tasks and targets, and each of its tasks'
//! changes asks for one; a fleet of thousands would run thousands of rounds a minute, each over
//! the whole fleet. The first change after a quiet interval gets its round at once; changes in
//! the interval after a round are served together by one round at its end.
//!
//! Invariants: pacing only delays a round, never drops one (the object is requeued for the end
//! of the interval, and every change in between is read by that round from the caches); a round
//! is never delayed by more than the interval; the time comes from the caller (the clock).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// When each object's last round ran, by namespace and name.
#[derive(Debug, Default)]
pub struct Pacing(Mutex<HashMap<(String, String), Timestamp>>);

impl Pacing {
    /// Whether the round of `namespace/name` may run at `now` with rounds `every` apart: `None`
    /// when it may (and is recorded as run at `now`), else the instant it may run.
    pub fn hold(
        &self,
        namespace: &str,
        name: &str,
        now: Timestamp,
        every: Duration,
    ) -> Option<Timestamp> {
        let every = SignedDuration::try_from(every).unwrap_or(SignedDuration::ZERO);
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_string(), name.to_string());
        if let Some(last) = map.get(&key) {
            let due = last.saturating_add(every).unwrap_or(*last);
            if now < due && now >= *last {
                return Some(due);
            }
        }
        map.insert(key, now);
        None
    }

    /// Forgets `namespace/name` (it is deleted).
    pub fn forget(&self, namespace: &str, name: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(namespace.to_string(), name.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_round_runs_at_once_and_the_next_waits_for_the_end_of_the_interval() {
        let pacing = Pacing::default();
        let every = Duration::from_secs(1);
        assert_eq!(
            pacing.hold("ns", "job", at("2026-01-01T00:00:00Z"), every),
            None
        );
        // A change in the same instant and one half a second later wait for the interval's end.
        let due = Some(at("2026-01-01T00:00:01Z"));
        assert_eq!(
            pacing.hold("ns", "job", at("2026-01-01T00:00:00Z"), every),
            due
        );
        assert_eq!(
            pacing.hold("ns", "job", at("2026-01-01T00:00:00.5Z"), every),
            due
        );
        // Another object is not held by this one's round.
        assert_eq!(
            pacing.hold("ns", "other", at("2026-01-01T00:00:00.5Z"), every),
            None
        );
        // At the end of the interval the round runs and starts the next interval.
        assert_eq!(
            pacing.hold("ns", "job", at("2026-01-01T00:00:01Z"), every),
            None
        );
        assert_eq!(
            pacing.hold("ns", "job", at("2026-01-01T00:00:01.2Z"), every),
            Some(at("2026-01-01T00:00:02Z"))
        );
        // After a quiet interval the next change runs at once.
        assert_eq!(
            pacing.hold("ns", "job", at("2026-01-01T00:00:09Z"), every),
            None
        );
    }

    #[test]
    fn a_clock_that_went_back_or_a_forgotten_object_never_holds_a_round() {
        let pacing = Pacing::default();
        let every = Duration::from_secs(1);
        assert_eq!(
            pacing.hold("ns", "job", at("2026-01-01T00:00:10Z"), every),
            None
        );
        assert_eq!(
            pacing.hold("ns", "job", at("2026-01-01T00:00:05Z"), every),
            None
        );
        pacing.forget("ns", "job");
        assert_eq!(
            pacing.hold("ns", "job", at("2026-01-01T00:00:05Z"), every),
            None
        );
        // No interval: never held.
        assert_eq!(
            pacing.hold("ns", "job", at("2026-01-01T00:00:05Z"), Duration::ZERO),
            None
        );
    }
}
