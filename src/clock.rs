//! The one place the operator reads time. The engine never does: controllers read this clock
//! and pass the time in as a value.
//!
//! The clock follows tokio's clock, so with tokio's paused time (the simulator's virtual clock)
//! a week passes in moments and every run sees the same instants.

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// Wall-clock time that advances with tokio's clock from a fixed origin.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Timestamp,
    started: Instant,
}

impl Clock {
    /// A clock that reads `origin` now and advances with tokio's clock.
    pub fn starting_at(origin: Timestamp) -> Self {
        Self {
            origin,
            started: Instant::now(),
        }
    }

    /// A clock that follows the system's wall clock.
    pub fn system() -> Self {
        Self::starting_at(Timestamp::now())
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        let elapsed =
            SignedDuration::try_from(self.started.elapsed()).unwrap_or(SignedDuration::MAX);
        self.origin.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    /// How long until `at` (zero if it has passed).
    pub fn until(&self, at: Timestamp) -> std::time::Duration {
        std::time::Duration::try_from(at.duration_since(self.now())).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time() {
        let origin: Timestamp = "2026-11-23T00:00:00Z".parse().unwrap();
        let clock = Clock::starting_at(origin);
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), "2026-11-23T01:00:00Z".parse().unwrap());
        assert_eq!(
            clock.until("2026-11-23T01:00:30Z".parse().unwrap()),
            std::time::Duration::from_secs(30)
        );
        assert_eq!(clock.until(origin), std::time::Duration::ZERO);
    }
}
