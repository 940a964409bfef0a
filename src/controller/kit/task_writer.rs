//! Writing a task's status, for every kind of task: rendered from the engine's state, written
//! only when it changed, always with compare-and-swap on the task's resourceVersion (a task
//! that another writer changed first is read again and decided again, never overwritten), and
//! an Event and a log line whenever the code changes.

use std::borrow::Cow;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::Api;
use kube::{Resource as _, ResourceExt as _};

use super::context::Context;
use super::events::Severity;
use super::status;
use crate::api::UpgradeTask;
use crate::api::codes::TaskResult;
use crate::api::conditions::reason_of;
use crate::api::upgrade_task::{ParentKind, UpgradeTaskStatus};
use crate::engine::task_status::{StoredTask, render};

/// How a write went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Nothing changed, or the write went through.
    Done,
    /// Another writer changed the task first: start over with fresh state.
    Lost,
}

/// Where a task's writes go, and what was last written.
pub struct TaskWriter<'a> {
    api: Api<UpgradeTask>,
    task: &'a UpgradeTask,
    /// The status as last written (or as read: borrowed from the task until a write).
    written: Option<Cow<'a, UpgradeTaskStatus>>,
    /// The resourceVersion the last write left (or the one read).
    pub resource_version: Option<String>,
}

impl<'a> TaskWriter<'a> {
    /// A writer for `task` as read.
    pub fn new(ctx: &Context, task: &'a UpgradeTask) -> Self {
        Self {
            api: Api::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default()),
            task,
            written: task.status.as_ref().map(Cow::Borrowed),
            resource_version: task.resource_version(),
        }
    }

    /// Writes `state` when its status differs from the last written one.
    pub async fn write(
        &mut self,
        ctx: &Context,
        state: &impl StoredTask,
    ) -> Result<Written, kube::Error> {
        let now = ctx.clock.now();
        let status = render(
            state,
            self.written.as_deref(),
            self.task.metadata.generation,
            now,
        );
        if self.written.as_deref() == Some(&status) {
            return Ok(Written::Done);
        }
        let name = self.task.name_any();
        match status::apply(&self.api, &name, &status, self.resource_version.as_deref()).await {
            Ok(resource_version) => {
                ctx.metrics.wrote("UpgradeTask", "status");
                let previous = self.written.as_ref().and_then(|s| s.code.clone());
                self.resource_version = resource_version;
                self.written = Some(Cow::Owned(status));
                if previous.as_deref() != Some(state.code_name()) {
                    announce(ctx, self.task, state).await;
                }
                Ok(Written::Done)
            }
            Err(e) if status::is_conflict(&e) || status::is_not_found(&e) => Ok(Written::Lost),
            Err(e) => Err(e),
        }
    }
}

impl TaskWriter<'_> {
    /// Marks a task whose status cannot be read back (written by another version, or by hand):
    /// `Stalled` with reason `UnreadableStatus`, nothing else touched.
    pub async fn mark_unreadable(
        &mut self,
        ctx: &Context,
        why: &str,
    ) -> Result<Written, kube::Error> {
        tracing::warn!(error = %why, "the UpgradeTask's status cannot be read; it is left alone");
        let mut status = self.task.status.clone().unwrap_or_default();
        let message = format!(
            "the status cannot be read ({why}); delete the task to have its parent create it again"
        );
        let changed = crate::api::conditions::set_phase(
            &mut status.conditions,
            crate::api::conditions::Phase::Stalled,
            "UnreadableStatus",
            &message,
            self.task.metadata.generation,
            ctx.clock.now(),
        );
        if !changed {
            return Ok(Written::Done);
        }
        let name = self.task.name_any();
        match status::apply(&self.api, &name, &status, self.resource_version.as_deref()).await {
            Ok(_) => {
                ctx.metrics.wrote("UpgradeTask", "status");
                Ok(Written::Done)
            }
            Err(e) if status::is_conflict(&e) => Ok(Written::Lost),
            Err(e) => Err(e),
        }
    }
}

/// An Event for a code another writer (a host's agent) gave the task, the first time the
/// controller sees it.
pub async fn announce_seen(ctx: &Context, task: &UpgradeTask, state: &impl StoredTask) {
    let namespace = task.namespace().unwrap_or_default();
    let ended = state.result() != TaskResult::InProgress;
    if ctx
        .announced
        .record(&namespace, &task.name_any(), state.code_name(), ended)
    {
        publish(ctx, task, state).await;
    }
}

/// An Event for the task's new code, and the log line that carries an incident's details.
pub async fn announce(ctx: &Context, task: &UpgradeTask, state: &impl StoredTask) {
    let namespace = task.namespace().unwrap_or_default();
    let ended = state.result() != TaskResult::InProgress;
    ctx.announced
        .record(&namespace, &task.name_any(), state.code_name(), ended);
    publish(ctx, task, state).await;
}

async fn publish(ctx: &Context, task: &UpgradeTask, state: &impl StoredTask) {
    let code = state.code_name();
    let message = state.message();
    if let Some(incident) = state.incident_id() {
        tracing::error!(incident = %incident, code, target = %task.spec.target, message, "task failed unexpectedly");
    } else {
        tracing::info!(code, target = %task.spec.target, message, "task moved on");
    }
    let severity = if state.result() == TaskResult::Failed {
        Severity::Warning
    } else {
        Severity::Normal
    };
    let note = match state.incident_id() {
        Some(incident) => format!("{message} (incident {incident})"),
        None => message.to_string(),
    };
    let action = match task.spec.parent_kind {
        ParentKind::FirmwareUpgrade => "Upgrade",
        ParentKind::PatchJob => "Patch",
        ParentKind::DevicePatch => "DevicePatch",
    };
    let reference: ObjectReference = task.object_ref(&());
    ctx.events
        .publish(reference, severity, &reason_of(code), action, &note)
        .await;
    ctx.metrics.wrote("Event", "event");
}
