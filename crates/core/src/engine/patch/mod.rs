//! Patch jobs on hosts: the host task state machine, in two halves that share one state and
//! one stored status, and the PatchJob parent plan.
//!
//! - [`state`]: a host task ([`state::HostTask`]) and how it maps onto its UpgradeTask status.
//! - [`agent`]: what the host's agent does: applicability, pre actions, the download, the
//!   install, the reboot signal, the reboot it was granted, the resume after boot, post
//!   actions. Host-changing steps run once per task: the agent's journal records each before it
//!   starts ([`agent::Journal`]).
//! - [`coordinator`]: what the controller does for a started task: grant the reboot after the
//!   drain (or defer it), time a reboot out when the window closed, notice an agent that went
//!   away, uncordon what it cordoned.
//! - [`plan`]: the PatchJob's round: tasks to create, starts granted in waves and slots, hosts
//!   skipped, blocked, canceled or timed out before they start, and the job's own status.
//!
//! Who sets which code: the controller 2032, 2039, 2060, 2038, 2057 (before the start), 2037
//! (before the start, and for a reboot outside the window), 2058, 2046 (a drain that stays
//! blocked, an agent that went away); the agent every other one (and 2057 when the package
//! manager's lock is held by someone else).

pub mod agent;
pub mod coordinator;
pub mod host;
pub mod plan;
pub mod state;

use std::fmt;

use jiff::Timestamp;

use crate::api::codes::{PatchCode, TaskResult};
use crate::engine::rollout::{EndReason, RolloutCode};

/// When a Lease last renewed at `renewed` for `duration_seconds` runs out unless it is renewed
/// again; `None` when it was never renewed or has no positive duration (never online).
pub fn lease_expires(
    renewed: Option<Timestamp>,
    duration_seconds: Option<i32>,
) -> Option<Timestamp> {
    match (renewed, duration_seconds) {
        (Some(renewed), Some(secs)) if secs > 0 => renewed
            .checked_add(jiff::SignedDuration::from_secs(i64::from(secs)))
            .ok(),
        _ => None,
    }
}

/// Whether an agent whose Lease runs out at `expires` (`None`: it has none) is online at `now`:
/// until that instant, not at it.
pub fn agent_online(expires: Option<Timestamp>, now: Timestamp) -> bool {
    expires.is_some_and(|expires| now < expires)
}

/// A host task's code with whether it started, as the rollout counts it: `2057 Execution
/// Blocked` before the start (another job holds the host) is a queued task, after it (the
/// package manager's lock is held) an executing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostCode {
    /// The code.
    pub code: PatchCode,
    /// Whether the task was granted its start.
    pub started: bool,
}

impl fmt::Display for HostCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.code, f)
    }
}

impl RolloutCode for HostCode {
    fn is_ready(self) -> bool {
        !self.started
            && matches!(
                self.code,
                PatchCode::Pending | PatchCode::JobReceived | PatchCode::ExecutionBlocked
            )
    }

    fn is_unstarted(self) -> bool {
        !self.started && !self.code.is_terminal()
    }

    fn is_executing(self) -> bool {
        self.started && !self.code.is_terminal()
    }

    fn is_failure(self) -> bool {
        self.code.result() == TaskResult::Failed
    }

    fn is_terminal(self) -> bool {
        self.code.is_terminal()
    }

    fn ended_by(self, why: EndReason) -> Option<Self> {
        let code = match why {
            EndReason::ErrorPolicy => PatchCode::Skipped,
            EndReason::NotStartedInTime => PatchCode::TimedOut,
            EndReason::Blackout => PatchCode::CanceledBlackout,
            // A PatchJob has no outsideWindow: hosts wait for the window (within maxWait).
            EndReason::OutsideWindow => return None,
        };
        Some(Self {
            code,
            started: false,
        })
    }
}

#[cfg(test)]
mod tests;
