//! One MaintenanceWindow as arithmetic: its occurrences, which one is open at an instant, and the
//! ones to come.
//!
//! Cron expressions are matched against *local* (civil) time with croner, by running croner in a
//! zone without transitions; each civil match is then placed in the window's IANA time zone with
//! jiff under the contract's rules: a local time inside a spring-forward gap opens at the first
//! instant after the gap, a local time that occurs twice opens at its first occurrence, and the
//! duration is elapsed time.

use croner::Cron;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, Zoned};

use super::{ScheduleError, parse_cron, time_zone};
use crate::api::maintenance_window::{MaintenanceWindowSpec, WindowType};

/// One occurrence of a window: open from `start` (inclusive) to `end` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Occurrence {
    /// When it opens.
    pub start: Timestamp,
    /// When it closes.
    pub end: Timestamp,
}

impl Occurrence {
    /// Whether `t` lies inside the occurrence.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

#[derive(Clone, Debug)]
enum Timing {
    Recurring {
        cron: Box<Cron>,
        zone: TimeZone,
        duration: SignedDuration,
    },
    OneTime(Occurrence),
}

/// A window ready for arithmetic.
#[derive(Clone, Debug)]
pub struct Window {
    /// The window's name.
    pub name: String,
    /// Maintenance or Blackout.
    pub kind: WindowType,
    timing: Timing,
}

/// How far back a civil time is searched for the occurrence open at an instant, beyond the
/// window's duration: covers the largest UTC offset change (two hours) with margin.
const OFFSET_MARGIN: SignedDuration = SignedDuration::from_hours(3);

/// The most cron matches looked at in one search: a bound on a pathological schedule, far above
/// what a real window needs.
const SEARCH_LIMIT: usize = 100_000;

impl Window {
    /// Builds the window from its spec, checking the schedule, time zone and duration.
    pub fn from_spec(name: &str, spec: &MaintenanceWindowSpec) -> Result<Self, ScheduleError> {
        let timing = match (&spec.schedule, spec.duration, &spec.start, &spec.end) {
            (Some(schedule), Some(duration), None, None) => {
                let cron = parse_cron(schedule)?;
                let zone = time_zone(spec.time_zone.as_deref().unwrap_or("UTC"))?;
                let duration = SignedDuration::try_from(duration.get())
                    .map_err(|_| ScheduleError::Shape("duration is too long".into()))?;
                if duration.is_zero() {
                    return Err(ScheduleError::Shape(
                        "duration must be longer than zero, e.g. 6h".into(),
                    ));
                }
                Timing::Recurring {
                    cron: Box::new(cron),
                    zone,
                    duration,
                }
            }
            (None, None, Some(start), Some(end)) if end.0 > start.0 => {
                Timing::OneTime(Occurrence {
                    start: start.0,
                    end: end.0,
                })
            }
            (None, None, Some(_), Some(_)) => {
                return Err(ScheduleError::Shape("end must be after start".into()));
            }
            _ => {
                return Err(ScheduleError::Shape(
                    "a window is either recurring (schedule and duration) or one-time (start and end)".into(),
                ));
            }
        };
        Ok(Self {
            name: name.to_string(),
            kind: spec.type_,
            timing,
        })
    }

    /// The occurrence open at `t`, if any. When occurrences overlap, the one that opened last.
    pub fn occurrence_at(&self, t: Timestamp) -> Option<Occurrence> {
        match &self.timing {
            Timing::OneTime(o) => o.contains(t).then_some(*o),
            Timing::Recurring {
                cron,
                zone,
                duration,
            } => {
                let horizon = t.checked_add(OFFSET_MARGIN).ok()?;
                let latest = civil_matches(
                    cron,
                    horizon.to_zoned(zone.clone()).datetime(),
                    Direction::Backward,
                )
                .map(|civil| place(civil, zone))
                .find(|start| *start <= t)?;
                let occurrence = Occurrence {
                    start: latest,
                    end: latest.checked_add(*duration).ok()?,
                };
                occurrence.contains(t).then_some(occurrence)
            }
        }
    }

    /// Occurrences in order of their start: first the one open at `from` (if any), then every one
    /// that opens after `from`. Openings are strictly increasing.
    pub fn occurrences_from(&self, from: Timestamp) -> Box<dyn Iterator<Item = Occurrence> + '_> {
        let current = self.occurrence_at(from);
        match &self.timing {
            Timing::OneTime(o) => {
                Box::new(current.into_iter().chain((o.start > from).then_some(*o)))
            }
            Timing::Recurring {
                cron,
                zone,
                duration,
            } => {
                // Civil times that land in the same gap collapse onto one instant: keep the first.
                let mut last = current.map(|c| c.start).unwrap_or(from);
                let start_civil = from
                    .checked_sub(OFFSET_MARGIN)
                    .unwrap_or(from)
                    .to_zoned(zone.clone())
                    .datetime();
                let later = civil_matches(cron, start_civil, Direction::Forward)
                    .map(move |civil| place(civil, zone))
                    .filter(move |start| {
                        let fresh = *start > last;
                        if fresh {
                            last = *start;
                        }
                        fresh
                    })
                    .map_while(move |start| {
                        Some(Occurrence {
                            start,
                            end: start.checked_add(*duration).ok()?,
                        })
                    });
                Box::new(current.into_iter().chain(later))
            }
        }
    }

    /// The first occurrence that opens strictly after `t`.
    pub fn next_opening_after(&self, t: Timestamp) -> Option<Occurrence> {
        self.occurrences_from(t).find(|o| o.start > t)
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Forward,
    Backward,
}

/// Civil date-times matching `cron`, strictly after (or before) `from`, as a zone without
/// transitions sees them.
fn civil_matches(
    cron: &Cron,
    from: DateTime,
    direction: Direction,
) -> impl Iterator<Item = DateTime> {
    let start = from.to_zoned(TimeZone::UTC).ok();
    let iter = start.map(|start| match direction {
        Direction::Forward => cron.iter_after(start),
        Direction::Backward => cron.iter_before(start),
    });
    iter.into_iter()
        .flatten()
        .take(SEARCH_LIMIT)
        .map(|z: Zoned| z.datetime())
}

/// The instant a local opening time stands for in `zone`: the first instant after a gap, the
/// first of two instants in a fold.
fn place(civil: DateTime, zone: &TimeZone) -> Timestamp {
    let ambiguous = zone.to_ambiguous_timestamp(civil);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } | AmbiguousOffset::Fold { before: offset, .. } => {
            offset.to_timestamp(civil).unwrap_or(Timestamp::MAX)
        }
        AmbiguousOffset::Gap { after, .. } => {
            // `after` applied to the missing civil time gives an instant before the transition;
            // the transition itself is the first instant after the gap.
            let probe = after.to_timestamp(civil).unwrap_or(Timestamp::MIN);
            zone.following(probe)
                .next()
                .map(|t| t.timestamp())
                .unwrap_or(probe)
        }
    }
}

/// The status fields of a window at `now`: open, the current occurrence, next open and close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowState {
    /// The occurrence open now.
    pub current: Option<Occurrence>,
    /// The next opening after now.
    pub next_open: Option<Timestamp>,
    /// When the window next closes: the end of the current occurrence, else of the next one.
    pub next_close: Option<Timestamp>,
}

impl WindowState {
    /// Whether the window is open.
    pub fn open(&self) -> bool {
        self.current.is_some()
    }

    /// The next instant at which any of the fields changes.
    pub fn next_change(&self) -> Option<Timestamp> {
        [self.next_open, self.next_close]
            .into_iter()
            .flatten()
            .min()
    }
}

impl Window {
    /// The window's state at `now`.
    pub fn state_at(&self, now: Timestamp) -> WindowState {
        let current = self.occurrence_at(now);
        let next = self.next_opening_after(now);
        WindowState {
            current,
            next_open: next.map(|o| o.start),
            next_close: current.or(next).map(|o| o.end),
        }
    }
}

#[cfg(test)]
mod tests;
