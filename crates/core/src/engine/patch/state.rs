//! The state of one host task: its code (with the code's number and state column), reason,
//! history, deferrals, package results and progress, and how it maps onto the UpgradeTask
//! status that stores it. The controller and the host's agent read the same state back from
//! the same status.
//!
//! Invariants: a terminal task never changes again ([`HostTask::enter`] refuses to leave a
//! terminal code); the history is bounded, keeping the first and the latest entries; every
//! history entry carries the code's number.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::HostCode;
use crate::api::codes::{PatchCode, PatchReason, TaskResult};
use crate::api::upgrade_task::{Deferrals, PackageOutcome, PatchProgress, UpgradeTaskStatus};
pub use crate::engine::task::StatusError;
use crate::engine::task::{history_from_status, history_to_status, push_history};
use crate::engine::task_status::StoredTask;

/// A host task as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTask {
    /// The current code.
    pub code: PatchCode,
    /// What the code means for this host.
    pub message: String,
    /// Why the task timed out, was skipped or failed.
    pub reason: Option<PatchReason>,
    /// When the task was created; `maxWait` counts from here.
    pub created_at: Timestamp,
    /// When the start was granted.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// The codes it passed, oldest first; the last is the current code.
    pub history: Vec<(PatchCode, Timestamp)>,
    /// Reboot deferrals used and allowed.
    pub deferrals: Deferrals,
    /// Install / Uninstall: each package's result.
    pub packages: Vec<PackageOutcome>,
    /// What the controller and the agent remember between steps.
    pub progress: PatchProgress,
}

impl HostTask {
    /// A new task: `2032 Pending`, `max_deferrals` allowed.
    pub fn new(created_at: Timestamp, max_deferrals: u32) -> Self {
        let code = PatchCode::Pending;
        Self {
            code,
            message: "the job is ready for the host's agent to fetch".into(),
            reason: None,
            created_at,
            started_at: None,
            finished_at: None,
            history: vec![(code, created_at)],
            deferrals: Deferrals {
                used: 0,
                max: max_deferrals,
            },
            packages: Vec::new(),
            progress: PatchProgress::default(),
        }
    }

    /// The code with whether the task started, as the rollout counts it.
    pub fn host_code(&self) -> HostCode {
        HostCode {
            code: self.code,
            started: self.started_at.is_some(),
        }
    }

    /// Whether the task has ended.
    pub fn is_terminal(&self) -> bool {
        self.code.is_terminal()
    }

    /// Whether the start was granted.
    pub fn is_started(&self) -> bool {
        self.started_at.is_some()
    }

    /// Moves to `code` at `now` with `message`, recording it in the history; a terminal code
    /// also records the finishing time. Does nothing to a task that has ended, and records no
    /// new history entry when only the message changes.
    pub fn enter(&mut self, code: PatchCode, message: impl Into<String>, now: Timestamp) {
        if self.is_terminal() {
            return;
        }
        self.message = message.into();
        if code == self.code {
            return;
        }
        self.code = code;
        push_history(&mut self.history, code, now);
        if code.is_terminal() {
            self.finished_at = Some(now);
        }
    }

    /// Records the current code again with a new message (a second deferral is an event of its
    /// own in the history).
    pub fn repeat(&mut self, message: impl Into<String>, now: Timestamp) {
        if self.is_terminal() {
            return;
        }
        self.message = message.into();
        push_history(&mut self.history, self.code, now);
    }

    /// Ends the task with `code` for `reason`.
    pub fn end(
        &mut self,
        code: PatchCode,
        reason: Option<PatchReason>,
        message: impl Into<String>,
        now: Timestamp,
    ) {
        debug_assert!(code.is_terminal(), "{code} is not terminal");
        if self.is_terminal() {
            return;
        }
        self.reason = reason;
        self.enter(code, message, now);
    }

    /// The instant the current code was entered.
    pub fn code_since(&self) -> Timestamp {
        self.history
            .last()
            .map(|(_, at)| *at)
            .unwrap_or(self.created_at)
    }

    /// Reads a task back from its stored status.
    pub fn from_status(status: &UpgradeTaskStatus) -> Result<Self, StatusError> {
        let code: PatchCode = status
            .code
            .as_deref()
            .ok_or(StatusError::Missing("code"))?
            .parse()?;
        let created_at = status
            .created_at
            .as_ref()
            .ok_or(StatusError::Missing("createdAt"))?
            .0;
        let history = history_from_status(&status.history, code, created_at)?;
        Ok(Self {
            code,
            message: status.message.clone(),
            reason: status.reason.as_deref().map(str::parse).transpose()?,
            created_at,
            started_at: status.started_at.as_ref().map(|t| t.0),
            finished_at: status.finished_at.as_ref().map(|t| t.0),
            history,
            deferrals: status.deferrals.unwrap_or_default(),
            packages: status.packages.clone(),
            progress: status.patch.clone().unwrap_or_default(),
        })
    }

    /// Writes the task into a status, leaving conditions and observedGeneration to the caller.
    pub fn to_status(&self, status: &mut UpgradeTaskStatus) {
        status.code = Some(self.code.name().to_string());
        status.status_code = Some(self.code.number());
        status.state = Some(self.code.state());
        status.message = self.message.clone();
        status.terminal = self.is_terminal();
        status.result = self.code.result();
        status.reason = self.reason.map(|r| r.as_str().to_string());
        status.incident_id = None;
        status.created_at = Some(Time(self.created_at));
        status.started_at = self.started_at.map(Time);
        status.finished_at = self.finished_at.map(Time);
        status.history = history_to_status(&self.history, PatchCode::name, |c| Some(c.number()));
        status.deferrals = Some(self.deferrals);
        status.packages = self.packages.clone();
        status.patch = Some(self.progress.clone());
        status.firmware = None;
        status.device_patch = None;
    }
}

impl StoredTask for HostTask {
    fn write_into(&self, status: &mut UpgradeTaskStatus) {
        self.to_status(status);
    }

    fn code_name(&self) -> &'static str {
        self.code.name()
    }

    fn result(&self) -> TaskResult {
        self.code.result()
    }

    fn message(&self) -> &str {
        &self.message
    }
}

/// A timestamp as the status stores it.
pub(crate) fn time(at: Timestamp) -> Time {
    Time(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn round_trips_through_the_status_with_numbers_in_the_history() {
        let mut task = HostTask::new(at(0), 3);
        task.enter(PatchCode::JobReceived, "received", at(1));
        task.started_at = Some(at(2));
        task.progress.until = Some(time(at(3600)));
        task.deferrals.used = 1;
        let mut status = UpgradeTaskStatus::default();
        task.to_status(&mut status);
        assert_eq!(status.status_code, Some(2055));
        assert_eq!(status.state, Some(1));
        assert_eq!(status.history[0].status_code, Some(2032));
        assert_eq!(HostTask::from_status(&status), Ok(task));
    }

    #[test]
    fn an_ended_task_never_changes() {
        let mut task = HostTask::new(at(0), 3);
        task.end(
            PatchCode::Skipped,
            Some(PatchReason::AgentOffline),
            "offline",
            at(5),
        );
        task.enter(PatchCode::JobStarted, "late", at(6));
        task.end(PatchCode::JobFailed, None, "late", at(7));
        assert_eq!(task.code, PatchCode::Skipped);
        assert_eq!(task.reason, Some(PatchReason::AgentOffline));
        assert_eq!(task.finished_at, Some(at(5)));
        assert_eq!(task.message, "offline");
    }

    #[test]
    fn a_message_change_adds_no_history() {
        let mut task = HostTask::new(at(0), 3);
        task.enter(PatchCode::RebootDeferred, "Deferral count: (1 of 3)", at(1));
        task.enter(PatchCode::RebootDeferred, "Deferral count: (2 of 3)", at(2));
        assert_eq!(task.history.len(), 2);
        assert_eq!(task.message, "Deferral count: (2 of 3)");
    }

    #[test]
    fn unknown_reasons_are_reported() {
        let mut status = UpgradeTaskStatus::default();
        HostTask::new(at(0), 3).to_status(&mut status);
        status.reason = Some("BecauseISaidSo".into());
        assert!(matches!(
            HostTask::from_status(&status),
            Err(StatusError::UnknownCode(_))
        ));
    }
}
