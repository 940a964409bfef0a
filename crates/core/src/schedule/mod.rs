//! Window arithmetic shared by every kind: cron schedules in IANA time zones, one-time windows,
//! blackouts and the gate that decides whether a target may start.

pub mod gate;
pub mod window;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;

/// Why a schedule or time zone cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error(
        "{expr:?} is not a 5-field cron expression ({reason}); write minute hour day-of-month month day-of-week, e.g. \"0 22 * * SAT\""
    )]
    Cron {
        /// The expression.
        expr: String,
        /// What the cron parser said.
        reason: String,
    },
    /// The window's fields do not form a recurring or a one-time window.
    #[error("{0}")]
    Shape(String),
    /// The time zone is not in the IANA database.
    #[error(
        "{name:?} is not an IANA time zone; use a name such as UTC, Europe/Berlin or America/New_York"
    )]
    TimeZone {
        /// The name given.
        name: String,
    },
}

/// Parses a 5-field cron expression (no seconds, no year field).
pub fn parse_cron(expr: &str) -> Result<Cron, ScheduleError> {
    let fields = expr.split_whitespace().count();
    let error = |reason: String| ScheduleError::Cron {
        expr: expr.to_string(),
        reason,
    };
    if fields != 5 {
        return Err(error(format!("it has {fields} fields")));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| error(e.to_string()))
}

/// Looks up an IANA time zone from the database bundled into the binary.
pub fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    TimeZone::get(name).map_err(|_| ScheduleError::TimeZone {
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_field_cron_only() {
        assert!(parse_cron("0 22 * * SAT").is_ok());
        assert!(parse_cron("*/15 1-5 1,15 JAN-MAR MON-FRI").is_ok());
        for bad in [
            "0 22 * *",
            "0 0 22 * * SAT",
            "61 22 * * *",
            "0 25 * * *",
            "0 22 * * FUNDAY",
            "",
        ] {
            let err = parse_cron(bad).unwrap_err();
            assert!(
                err.to_string().contains("e.g. \"0 22 * * SAT\""),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn time_zones_come_from_the_bundled_database() {
        for ok in [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
        ] {
            assert!(time_zone(ok).is_ok(), "{ok}");
        }
        assert!(time_zone("Mars/Olympus").is_err());
    }
}
