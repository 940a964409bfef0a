//! The UpgradeTask controller: loads a task, asks the pure engine what to do, performs each
//! action through the device's driver (or a hook Job), and writes the status with server-side
//! apply, only when it changed and always before a step that must not be repeated blindly.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource as _, ResourceExt as _};

use super::connections::Unavailable;
use super::hooks::TaskHooks;
use super::kit::context::{Context, lookup};
use super::kit::events::Severity;
use super::kit::reconcile::guarded;
use super::kit::status;
use super::kit::watched::Watched;
use crate::api::conditions::reason_of;
use crate::api::upgrade_task::{ParentKind, TaskResult, UpgradeTaskStatus};
use crate::api::{FirmwareUpgrade, UpgradeTask};
use crate::drivers::{Caller, DeviceDriver, perform};
use crate::engine::firmware::machine::{Context as EngineContext, Step};
use crate::engine::firmware::observe::{DeviceFamily, Observation};
use crate::engine::firmware::state::TaskState;
use crate::engine::firmware::validation::Readings;
use crate::engine::task_status::render;

/// A reconcile that could not finish; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the task's status failed (not a lost compare-and-swap, which is retried quietly).
    #[error("writing the status of UpgradeTask {task}: {source}")]
    Write {
        /// The task.
        task: String,
        /// The API error.
        source: kube::Error,
    },
}

/// Reconciles one UpgradeTask.
pub async fn reconcile(
    guard: Arc<Watched<UpgradeTask>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    guarded("UpgradeTask", &guard, &ctx.metrics, async |task| {
        Box::pin(reconcile_task(task, &ctx)).await
    })
    .await
}

/// Where a task's writes go, and what was last written.
struct Writer<'a> {
    api: Api<UpgradeTask>,
    task: &'a UpgradeTask,
    written: Option<UpgradeTaskStatus>,
    resource_version: Option<String>,
}

enum Written {
    /// Nothing changed, or the write went through.
    Done,
    /// Another writer changed the task first: start over with fresh state.
    Lost,
}

impl Writer<'_> {
    async fn write(&mut self, ctx: &Context, state: &TaskState) -> Result<Written, Error> {
        let now = ctx.clock.now();
        let generation = self.task.metadata.generation;
        let status = render(state, self.written.as_ref(), generation, now);
        if self.written.as_ref() == Some(&status) {
            return Ok(Written::Done);
        }
        let name = self.task.name_any();
        match status::apply(&self.api, &name, &status, self.resource_version.as_deref()).await {
            Ok(updated) => {
                ctx.metrics.wrote("UpgradeTask", "status");
                let previous_code = self.written.as_ref().and_then(|s| s.code.clone());
                self.resource_version = updated.resource_version();
                self.written = Some(status);
                if previous_code.as_deref() != Some(state.code.name()) {
                    announce(ctx, self.task, state).await;
                }
                Ok(Written::Done)
            }
            Err(e) if status::is_conflict(&e) || status::is_not_found(&e) => Ok(Written::Lost),
            Err(source) => Err(Error::Write { task: name, source }),
        }
    }
}

/// An Event for the task's new code, and the log line that carries an incident's details.
async fn announce(ctx: &Context, task: &UpgradeTask, state: &TaskState) {
    if let Some(incident) = &state.incident_id {
        tracing::error!(incident = %incident, code = %state.code, target = %task.spec.target, message = %state.message, "task failed unexpectedly");
    } else {
        tracing::info!(code = %state.code, target = %task.spec.target, message = %state.message, "task moved on");
    }
    let severity = if state.result() == TaskResult::Failed {
        Severity::Warning
    } else {
        Severity::Normal
    };
    let note = match &state.incident_id {
        Some(incident) => format!("{} (incident {incident})", state.message),
        None => state.message.clone(),
    };
    let reference: ObjectReference = task.object_ref(&());
    ctx.events
        .publish(
            reference,
            severity,
            &reason_of(state.code.name()),
            "Upgrade",
            &note,
        )
        .await;
    ctx.metrics.wrote("Event", "event");
}

async fn reconcile_task(task: &UpgradeTask, ctx: &Context) -> Result<Action, Error> {
    if task.spec.parent_kind != ParentKind::FirmwareUpgrade {
        // PatchJob tasks are driven by the PatchJob controller.
        return Ok(Action::await_change());
    }
    let namespace = task.namespace().unwrap_or_default();
    let name = task.name_any();
    // A reconcile triggered by this controller's own last write finds nothing new: come back
    // when the engine asked to, without asking the device early.
    let now = ctx.clock.now();
    if let Some(wake) =
        ctx.recent
            .idle_until(&namespace, &name, task.resource_version().as_deref(), now)
    {
        return Ok(requeue_at(ctx, wake));
    }
    let mut writer = Writer {
        api: Api::namespaced(ctx.client.clone(), &namespace),
        task,
        written: task.status.clone(),
        resource_version: task.resource_version(),
    };
    let created = task
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(|| ctx.clock.now());
    let mut state = match task.status.as_ref().filter(|s| s.code.is_some()) {
        None => TaskState::new(created),
        Some(stored) => match TaskState::from_status(stored) {
            Ok(state) => state,
            Err(error) => return unreadable(ctx, &mut writer, &error.to_string()).await,
        },
    };
    if state.is_terminal() {
        writer.write(ctx, &state).await?;
        ctx.recent.remember(&namespace, &name, None, None);
        return Ok(Action::await_change());
    }
    let Some(parent) =
        lookup::<FirmwareUpgrade>(&ctx.stores.upgrades, &namespace, &task.spec.parent)
    else {
        // The parent is gone (its tasks are garbage-collected) or cannot be read.
        return Ok(Action::await_change());
    };
    let device = lookup(&ctx.stores.devices, &namespace, &task.spec.target);
    let driver: Arc<dyn DeviceDriver> = match &device {
        Some(device) => ctx.connections.driver(device).await,
        None => Arc::new(Unavailable(format!(
            "no Device {namespace}/{}",
            task.spec.target
        ))),
    };
    // A Device that is gone fails its pre-checks before its family matters.
    let family = device
        .as_ref()
        .map_or(DeviceFamily::Appliance, |d| d.spec.family());
    let (image, mut input) = match ctx.repository.lookup(&parent.spec.image) {
        Ok(image) => (image, None),
        Err(e) => (
            None,
            Some(Observation::Internal(format!(
                "the image repository cannot be read: {e}"
            ))),
        ),
    };
    let key = format!("{namespace}/{name}/{}", task.uid().unwrap_or_default());
    let engine = EngineContext {
        spec: &parent.spec,
        task: &key,
        family,
        device_exists: device.is_some(),
        image: image.as_ref().map(|i| &i.entry),
    };
    let mut readings = Readings::default();
    let task_ref = format!("{namespace}/{name}");
    let wake = loop {
        let Step {
            action,
            persist_first,
            wake_at,
        } = state.step(&engine, &mut readings, input.take(), ctx.clock.now());
        if (persist_first || action.is_none())
            && matches!(writer.write(ctx, &state).await?, Written::Lost)
        {
            return Ok(Action::requeue(ctx.settings.retry));
        }
        let Some(action) = action else { break wake_at };
        let caller = Caller {
            task: Some(&task_ref),
            phase: state.call_phase(),
        };
        let hooks = TaskHooks {
            jobs: &ctx.hooks,
            task,
            templates: parent.spec.hooks.as_ref(),
        };
        input = Some(perform(driver.as_ref(), caller, image.as_ref(), &hooks, action).await);
    };
    let resource_version = (!state.is_terminal())
        .then(|| writer.resource_version.clone())
        .flatten();
    ctx.recent
        .remember(&namespace, &name, resource_version, wake);
    Ok(requeue_at(ctx, wake))
}

/// Come back at `wake`, or when something changes.
fn requeue_at(ctx: &Context, wake: Option<Timestamp>) -> Action {
    match wake {
        Some(at) => Action::requeue(ctx.clock.until(at).max(std::time::Duration::from_millis(1))),
        None => Action::await_change(),
    }
}

/// A task whose status cannot be read back: say so in its conditions and leave it alone.
async fn unreadable(ctx: &Context, writer: &mut Writer<'_>, why: &str) -> Result<Action, Error> {
    tracing::warn!(error = %why, "the UpgradeTask's status cannot be read; it is left alone");
    let mut status = writer.task.status.clone().unwrap_or_default();
    let message = format!(
        "the status cannot be read ({why}); delete the task to have its parent create it again"
    );
    let changed = crate::api::conditions::set_phase(
        &mut status.conditions,
        crate::api::conditions::Phase::Stalled,
        "UnreadableStatus",
        &message,
        writer.task.metadata.generation,
        ctx.clock.now(),
    );
    if changed {
        let name = writer.task.name_any();
        match status::apply(
            &writer.api,
            &name,
            &status,
            writer.resource_version.as_deref(),
        )
        .await
        {
            Ok(_) => ctx.metrics.wrote("UpgradeTask", "status"),
            Err(e) if status::is_conflict(&e) => return Ok(Action::requeue(ctx.settings.retry)),
            Err(source) => return Err(Error::Write { task: name, source }),
        }
    }
    Ok(Action::await_change())
}
