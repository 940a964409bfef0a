//! The state of one firmware task: its code, history and progress, and how it maps onto the
//! UpgradeTask status that stores it.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observe::Phase;
use crate::api::codes::FirmwareCode;
use crate::api::upgrade_task::{FirmwareProgress, PendingOutcome, TaskResult, UpgradeTaskStatus};
use crate::engine::task::{self, history_from_status, history_to_status, push_history};
pub use crate::engine::task::{HISTORY_LIMIT, StatusError};
use crate::engine::task_status::StoredTask;

/// A firmware task as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskState {
    /// The current code.
    pub code: FirmwareCode,
    /// What the code means for this target.
    pub message: String,
    /// The incident id of an unexpected failure.
    pub incident_id: Option<String>,
    /// When the task was created.
    pub created_at: Timestamp,
    /// When it left the queue.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// The codes it passed, oldest first; the last is the current code.
    pub history: Vec<(FirmwareCode, Timestamp)>,
    /// What the engine remembers between steps.
    pub progress: FirmwareProgress,
}

impl TaskState {
    /// A new task, waiting for validation.
    pub fn new(created_at: Timestamp) -> Self {
        let code = FirmwareCode::WaitingForPreValidation;
        Self {
            code,
            message: code.description().to_string(),
            incident_id: None,
            created_at,
            started_at: None,
            finished_at: None,
            history: vec![(code, created_at)],
            progress: FirmwareProgress::default(),
        }
    }

    /// Whether the task has ended.
    pub fn is_terminal(&self) -> bool {
        self.code.is_terminal()
    }

    /// Moves to `code` at `now` with `message`, recording it in the history.
    pub(crate) fn enter(&mut self, code: FirmwareCode, message: impl Into<String>, now: Timestamp) {
        self.code = code;
        self.message = message.into();
        push_history(&mut self.history, code, now);
    }

    /// Ends the task with `code`: records it, its incident id when the code has one, and the
    /// finishing time.
    pub(crate) fn end(
        &mut self,
        code: FirmwareCode,
        message: impl Into<String>,
        incident_id: Option<String>,
        now: Timestamp,
    ) {
        debug_assert!(code.is_terminal(), "{code} is not terminal");
        self.enter(code, message, now);
        self.incident_id = incident_id;
        self.finished_at = Some(now);
        self.progress.pending = None;
    }

    /// The slot was granted: the task leaves the queue.
    pub fn grant(&mut self, now: Timestamp) {
        if self.code == FirmwareCode::ReadyForExecution {
            self.started_at = Some(now);
            self.enter(
                FirmwareCode::SentToMdb,
                "a rollout slot was granted; handed to the executor",
                now,
            );
        }
    }

    /// Ends a task that has not started (queue decisions of the rollout: waiting time, window,
    /// error policy). Does nothing to a task that started or ended.
    pub fn end_unstarted(
        &mut self,
        code: FirmwareCode,
        message: impl Into<String>,
        now: Timestamp,
    ) {
        if self.code.is_unstarted() {
            self.end(code, message, None, now);
        }
    }

    /// Why calls to the device are made now: to validate the task until it starts, to execute
    /// it afterwards.
    pub fn call_phase(&self) -> Phase {
        if self.code.is_unstarted() {
            Phase::Validation
        } else {
            Phase::Execution
        }
    }

    /// The instant the current code was entered.
    pub fn code_since(&self) -> Timestamp {
        self.history
            .last()
            .map(|(_, at)| *at)
            .unwrap_or(self.created_at)
    }

    /// The incident id for a failure with `code` at `now`, when the code carries one.
    pub(crate) fn incident(code: FirmwareCode, task: &str, now: Timestamp) -> Option<String> {
        code.has_incident()
            .then(|| task::incident_id(task, code.name(), now))
    }

    /// Reads a task back from its stored status.
    pub fn from_status(status: &UpgradeTaskStatus) -> Result<Self, StatusError> {
        let code = status
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
            incident_id: status.incident_id.clone(),
            created_at,
            started_at: status.started_at.as_ref().map(|t| t.0),
            finished_at: status.finished_at.as_ref().map(|t| t.0),
            history,
            progress: status.firmware.clone().unwrap_or_default(),
        })
    }

    /// Writes the task into a status, leaving conditions and observedGeneration to the caller.
    pub fn to_status(&self, status: &mut UpgradeTaskStatus) {
        status.code = Some(self.code.name().to_string());
        status.message = self.message.clone();
        status.terminal = self.is_terminal();
        status.result = self.code.result();
        status.incident_id = self.incident_id.clone();
        status.created_at = Some(Time(self.created_at));
        status.started_at = self.started_at.map(Time);
        status.finished_at = self.finished_at.map(Time);
        status.history = history_to_status(&self.history, FirmwareCode::name, |_| None);
        status.firmware = Some(self.progress.clone());
        status.device_patch = None;
        status.status_code = None;
        status.state = None;
    }

    /// How the task counts.
    pub fn result(&self) -> TaskResult {
        self.code.result()
    }
}

impl StoredTask for TaskState {
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

    fn incident_id(&self) -> Option<&str> {
        self.incident_id.as_deref()
    }
}

impl PendingOutcome {
    /// An outcome with `code`, its incident id derived when the code carries one.
    pub(crate) fn new(
        code: FirmwareCode,
        message: impl Into<String>,
        task: &str,
        now: Timestamp,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            incident_id: TaskState::incident(code, task, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn round_trips_through_the_status() {
        let mut task = TaskState::new(at(0));
        task.enter(FirmwareCode::ReadyForExecution, "ready", at(5));
        task.progress.device_firmware = Some("7.5.1.7".into());
        task.grant(at(9));
        let mut status = UpgradeTaskStatus::default();
        task.to_status(&mut status);
        assert_eq!(status.code.as_deref(), Some("SENT_TO_MDB"));
        assert_eq!(status.result, TaskResult::InProgress);
        assert_eq!(TaskState::from_status(&status), Ok(task));
    }

    #[test]
    fn history_is_bounded_keeping_the_first_and_the_latest() {
        let mut task = TaskState::new(at(0));
        for i in 1..200 {
            task.enter(FirmwareCode::ExecutionWaitingForUploadImage, "poll", at(i));
        }
        assert_eq!(task.history.len(), HISTORY_LIMIT);
        assert_eq!(
            task.history[0],
            (FirmwareCode::WaitingForPreValidation, at(0))
        );
        assert_eq!(
            task.history.last(),
            Some(&(FirmwareCode::ExecutionWaitingForUploadImage, at(199)))
        );
    }

    #[test]
    fn unknown_codes_are_reported_not_guessed() {
        let status = UpgradeTaskStatus {
            code: Some("HALF_DONE".into()),
            created_at: Some(Time(at(0))),
            ..Default::default()
        };
        assert!(matches!(
            TaskState::from_status(&status),
            Err(StatusError::UnknownCode(_))
        ));
    }

    #[test]
    fn incident_ids_are_deterministic_and_only_for_exception_codes() {
        let a = TaskState::incident(FirmwareCode::ExecutionUploadImageException, "ns/t", at(1));
        assert_eq!(
            a,
            TaskState::incident(FirmwareCode::ExecutionUploadImageException, "ns/t", at(1))
        );
        assert_ne!(
            a,
            TaskState::incident(FirmwareCode::ExecutionUploadImageException, "ns/u", at(1))
        );
        assert!(
            TaskState::incident(FirmwareCode::ExecutionUploadImageError, "ns/t", at(1)).is_none()
        );
    }
}
