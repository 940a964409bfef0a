//! The UpgradeTask controller: loads a task, asks the pure engine what to do, performs each
//! action through the device's driver (or a hook Job), and writes the status with server-side
//! apply, only when it changed and always before a step that must not be repeated blindly.

use std::sync::Arc;

use jiff::Timestamp;
use kube::ResourceExt as _;
use kube::runtime::controller::Action;

use super::connections::Unavailable;
use super::hooks::TaskHooks;
use super::kit::context::{Context, lookup};
use super::kit::reconcile::guarded;
use super::kit::task_writer::{TaskWriter, Written};
use super::kit::watched::Watched;
use crate::api::upgrade_task::ParentKind;
use crate::api::{FirmwareUpgrade, UpgradeTask};
use crate::drivers::{Caller, DeviceDriver, perform};
use crate::engine::firmware::machine::{Context as EngineContext, Step};
use crate::engine::firmware::observe::{DeviceFamily, Observation};
use crate::engine::firmware::state::TaskState;
use crate::engine::firmware::validation::Readings;

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

async fn reconcile_task(task: &UpgradeTask, ctx: &Context) -> Result<Action, Error> {
    match task.spec.parent_kind {
        ParentKind::FirmwareUpgrade => {}
        ParentKind::PatchJob => return super::patch_task::reconcile_task(task, ctx).await,
        // DevicePatch tasks get their controller with the DevicePatch kind's.
        ParentKind::DevicePatch => return Ok(Action::await_change()),
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
    let mut writer = TaskWriter::new(ctx, task);
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
            Err(error) => return unreadable(ctx, &mut writer, task, &error.to_string()).await,
        },
    };
    if state.is_terminal() {
        writer
            .write(ctx, &state)
            .await
            .map_err(|source| Error::Write {
                task: name.clone(),
                source,
            })?;
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
            && writer
                .write(ctx, &state)
                .await
                .map_err(|source| Error::Write {
                    task: name.clone(),
                    source,
                })?
                == Written::Lost
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
pub async fn unreadable(
    ctx: &Context,
    writer: &mut TaskWriter<'_>,
    task: &UpgradeTask,
    why: &str,
) -> Result<Action, Error> {
    match writer.mark_unreadable(ctx, why).await {
        Ok(Written::Lost) => Ok(Action::requeue(ctx.settings.retry)),
        Ok(Written::Done) => Ok(Action::await_change()),
        Err(source) => Err(Error::Write {
            task: task.name_any(),
            source,
        }),
    }
}
