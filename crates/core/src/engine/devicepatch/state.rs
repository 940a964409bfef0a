//! The state of one DevicePatch task: its code, history and progress, how it maps onto the
//! UpgradeTask status that stores it, and the `PatchRunning` condition it shows.
//!
//! A task has ended when it has a finishing time: every terminal code ends it, and so does
//! `PATCH_ACTIVATED` for a resource with `confirm: false` (the one code that ends a task without
//! being terminal in the catalogue; such a task counts as Succeeded, with a warning). An ended
//! task never changes again.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observe::Phase;
use crate::api::codes::DevicePatchCode;
use crate::api::conditions::{Desired, Status};
use crate::api::upgrade_task::{DevicePatchProgress, TaskResult, UpgradeTaskStatus};
use crate::engine::task::{
    self, StatusError, history_from_status, history_to_status, push_history,
};
use crate::engine::task_status::StoredTask;

/// Condition type of a DevicePatch task that ended: whether the element reports the patch
/// running (False with reason `NotConfirmed` for a task that ended `PATCH_ACTIVATED`).
pub const PATCH_RUNNING: &str = "PatchRunning";

/// A DevicePatch task as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskState {
    /// The current code.
    pub code: DevicePatchCode,
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
    pub history: Vec<(DevicePatchCode, Timestamp)>,
    /// What the engine remembers between steps.
    pub progress: DevicePatchProgress,
}

impl TaskState {
    /// A new task, waiting for validation.
    pub fn new(created_at: Timestamp) -> Self {
        let code = DevicePatchCode::WaitingForPreValidation;
        Self {
            code,
            message: code.description().to_string(),
            incident_id: None,
            created_at,
            started_at: None,
            finished_at: None,
            history: vec![(code, created_at)],
            progress: DevicePatchProgress::default(),
        }
    }

    /// Whether the task has ended (for good).
    pub fn is_terminal(&self) -> bool {
        self.finished_at.is_some()
    }

    /// Whether the task left the queue and has not ended: it holds a rollout slot.
    pub fn is_executing(&self) -> bool {
        self.started_at.is_some() && !self.is_terminal()
    }

    /// How the task counts: the code's result, and Succeeded for a task that ended
    /// `PATCH_ACTIVATED` (`confirm: false`).
    pub fn result(&self) -> TaskResult {
        if self.is_terminal() && self.code.ends_unconfirmed() {
            TaskResult::Succeeded
        } else {
            self.code.result()
        }
    }

    /// Moves to `code` at `now` with `message`, recording it in the history.
    pub(crate) fn enter(
        &mut self,
        code: DevicePatchCode,
        message: impl Into<String>,
        now: Timestamp,
    ) {
        self.code = code;
        self.message = message.into();
        push_history(&mut self.history, code, now);
    }

    /// Ends the task with `code` (terminal, or `PATCH_ACTIVATED` without confirm): records it
    /// (once), its incident id, and the finishing time.
    pub(crate) fn end(
        &mut self,
        code: DevicePatchCode,
        message: impl Into<String>,
        incident_id: Option<String>,
        now: Timestamp,
    ) {
        debug_assert!(
            code.is_terminal() || code.ends_unconfirmed(),
            "{code} does not end a task"
        );
        if self.code == code {
            self.message = message.into();
        } else {
            self.enter(code, message, now);
        }
        self.incident_id = incident_id;
        self.finished_at = Some(now);
    }

    /// The slot was granted: the task leaves the queue and starts loading.
    pub fn grant(&mut self, now: Timestamp) {
        if self.code == DevicePatchCode::ReadyForExecution && !self.is_terminal() {
            self.started_at = Some(now);
            self.progress.step_since = Some(Time(now));
            self.enter(
                DevicePatchCode::PatchLoading,
                "a rollout slot was granted; loading the patch package",
                now,
            );
        }
    }

    /// Ends a task that has not started (queue decisions of the rollout: waiting time, window,
    /// error policy). Does nothing to a task that started or ended.
    pub fn end_unstarted(
        &mut self,
        code: DevicePatchCode,
        message: impl Into<String>,
        now: Timestamp,
    ) {
        if self.code.is_unstarted() && !self.is_terminal() {
            self.end(code, message, None, now);
        }
    }

    /// The instant the current code was entered.
    pub fn code_since(&self) -> Timestamp {
        self.history
            .last()
            .map(|(_, at)| *at)
            .unwrap_or(self.created_at)
    }

    /// Why calls to the element are made now: to validate the task until it starts, to execute
    /// it afterwards.
    pub fn call_phase(&self) -> Phase {
        if self.started_at.is_none() {
            Phase::Validation
        } else {
            Phase::Execution
        }
    }

    /// The incident id for a failure with `code` of `task` at `now`, when the code carries one.
    pub(crate) fn incident(code: DevicePatchCode, task: &str, now: Timestamp) -> Option<String> {
        code.has_incident()
            .then(|| task::incident_id(task, code.name(), now))
    }

    /// The `PatchRunning` condition of an ended task that got as far as the element: True when
    /// the element reports the patch running, False (`NotConfirmed`) when the task ended
    /// `PATCH_ACTIVATED` without a confirm. `None` for tasks that are under way or ended before.
    pub fn patch_condition(&self) -> Option<Desired<'static>> {
        if !self.is_terminal() {
            return None;
        }
        match self.code {
            DevicePatchCode::PatchRunning | DevicePatchCode::PatchAlreadyRunning => {
                Some(Desired::new(
                    PATCH_RUNNING,
                    Status::True,
                    "Running",
                    "the element reports the patch running",
                ))
            }
            DevicePatchCode::PatchActivated => Some(Desired::new(
                PATCH_RUNNING,
                Status::False,
                "NotConfirmed",
                "the patch is activated but was not confirmed (confirm: false): it does not take effect, and a firmware upgrade of this element ends ERROR_DEVICE_PATCH_NOT_RUNNING",
            )),
            _ => None,
        }
    }

    /// Reads a task back from its stored status.
    pub fn from_status(status: &UpgradeTaskStatus) -> Result<Self, StatusError> {
        let code: DevicePatchCode = status
            .code
            .as_deref()
            .ok_or(StatusError::Missing("code"))?
            .parse()?;
        let created_at = status
            .created_at
            .as_ref()
            .ok_or(StatusError::Missing("createdAt"))?
            .0;
        let finished_at = status.finished_at.as_ref().map(|t| t.0);
        if status.terminal && finished_at.is_none() {
            return Err(StatusError::Missing("finishedAt"));
        }
        Ok(Self {
            code,
            message: status.message.clone(),
            incident_id: status.incident_id.clone(),
            created_at,
            started_at: status.started_at.as_ref().map(|t| t.0),
            finished_at,
            history: history_from_status(&status.history, code, created_at)?,
            progress: status.device_patch.clone().unwrap_or_default(),
        })
    }

    /// Writes the task into a status, leaving conditions and observedGeneration to the caller
    /// (see [`TaskState::patch_condition`] for the one condition of its own).
    pub fn to_status(&self, status: &mut UpgradeTaskStatus) {
        status.code = Some(self.code.name().to_string());
        status.message = self.message.clone();
        status.terminal = self.is_terminal();
        status.result = self.result();
        status.incident_id = self.incident_id.clone();
        status.created_at = Some(Time(self.created_at));
        status.started_at = self.started_at.map(Time);
        status.finished_at = self.finished_at.map(Time);
        status.history = history_to_status(&self.history, DevicePatchCode::name, |_| None);
        status.device_patch = Some(self.progress.clone());
        status.firmware = None;
        status.status_code = None;
        status.state = None;
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
        TaskState::result(self)
    }

    fn message(&self) -> &str {
        &self.message
    }

    fn incident_id(&self) -> Option<&str> {
        self.incident_id.as_deref()
    }

    fn condition(&self) -> Option<Desired<'static>> {
        self.patch_condition()
    }
}
