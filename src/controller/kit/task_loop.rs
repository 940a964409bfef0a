//! The two halves every device task's reconcile shares (FirmwareUpgrade and DevicePatch tasks):
//! [`load`] reads the task's engine state (a reconcile triggered by this controller's own last
//! write returns at once; an unreadable status is marked and left alone; an ended task only has
//! its status written), and [`drive`] runs the engine's steps, performing each action, and
//! writes the state whenever the engine asks to store it before an action (an action that must
//! never run twice) and when it stops. A write that loses its compare-and-swap ends the round:
//! the next one starts from the stored state, so an action is sent at most once per stored
//! decision.

use futures::future::BoxFuture;
use jiff::Timestamp;
use kube::ResourceExt as _;
use kube::runtime::controller::Action;

use std::sync::Arc;

use super::context::Cached;
use super::context::{Context, lookup};
use super::task_writer::{TaskWriter, Written};
use crate::api::upgrade_task::UpgradeTaskStatus;
use crate::api::{Device, UpgradeTask};
use crate::controller::connections::Unavailable;
use crate::drivers::{DeviceDriver, Phase};
use crate::engine::task::{StatusError, Step};
use crate::engine::task_status::StoredTask;

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

/// What the loop reads of a task's engine state besides what is stored.
pub trait DeviceTask: StoredTask {
    /// Whether the task has ended for good.
    fn ended(&self) -> bool;
    /// Why calls to the device are made now.
    fn phase(&self) -> Phase;
}

impl DeviceTask for crate::engine::firmware::state::TaskState {
    fn ended(&self) -> bool {
        self.is_terminal()
    }

    fn phase(&self) -> Phase {
        self.call_phase()
    }
}

impl DeviceTask for crate::engine::devicepatch::state::TaskState {
    fn ended(&self) -> bool {
        self.is_terminal()
    }

    fn phase(&self) -> Phase {
        self.call_phase()
    }
}

/// A task's engine state as far as this round goes.
pub enum Loaded<S> {
    /// Nothing (more) to do this round: return this.
    Done(Action),
    /// The task is under way in this state.
    Running(S),
}

/// Reads the engine state of `task` (new when it has no status yet): see the module doc.
pub async fn load<S: DeviceTask>(
    ctx: &Context,
    writer: &mut TaskWriter<'_>,
    task: &UpgradeTask,
    new: impl FnOnce(Timestamp) -> S,
    read: impl FnOnce(&UpgradeTaskStatus) -> Result<S, StatusError>,
) -> Result<Loaded<S>, Error> {
    let namespace = task.namespace().unwrap_or_default();
    let name = task.name_any();
    // A reconcile triggered by this controller's own last write finds nothing new: come back
    // when the engine asked to, without asking the device early.
    let now = ctx.clock.now();
    if let Some(wake) =
        ctx.recent
            .idle_until(&namespace, &name, task.resource_version().as_deref(), now)
    {
        return Ok(Loaded::Done(requeue_at(ctx, wake)));
    }
    let created = task
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let state = match task.status.as_ref().filter(|s| s.code.is_some()) {
        None => new(created),
        Some(stored) => match read(stored) {
            Ok(state) => state,
            Err(error) => {
                return unreadable(ctx, writer, task, &error.to_string())
                    .await
                    .map(Loaded::Done);
            }
        },
    };
    if state.ended() {
        write(ctx, writer, &state, &name).await?;
        ctx.recent.remember(&namespace, &name, None, None);
        return Ok(Loaded::Done(Action::await_change()));
    }
    Ok(Loaded::Running(state))
}

/// Runs the engine on `state` from `input`: `step` advances it, `perform` carries out an action
/// for calls of a phase and returns its answer; see the module doc.
pub async fn drive<'f, S, A, O>(
    ctx: &Context,
    writer: &mut TaskWriter<'_>,
    task: &UpgradeTask,
    state: &mut S,
    mut input: Option<O>,
    mut step: impl FnMut(&mut S, Option<O>, Timestamp) -> Step<A>,
    mut perform: impl FnMut(Phase, A) -> BoxFuture<'f, O>,
) -> Result<Action, Error>
where
    S: DeviceTask,
{
    let namespace = task.namespace().unwrap_or_default();
    let name = task.name_any();
    let wake = loop {
        let Step {
            action,
            persist_first,
            wake_at,
        } = step(state, input.take(), ctx.clock.now());
        if (persist_first || action.is_none())
            && write(ctx, writer, state, &name).await? == Written::Lost
        {
            return Ok(Action::requeue(ctx.settings.retry));
        }
        let Some(action) = action else { break wake_at };
        input = Some(perform(state.phase(), action).await);
    };
    let resource_version = (!state.ended())
        .then(|| writer.resource_version.clone())
        .flatten();
    ctx.recent
        .remember(&namespace, &name, resource_version, wake);
    Ok(requeue_at(ctx, wake))
}

async fn write<S: StoredTask>(
    ctx: &Context,
    writer: &mut TaskWriter<'_>,
    state: &S,
    name: &str,
) -> Result<Written, Error> {
    writer
        .write(ctx, state)
        .await
        .map_err(|source| Error::Write {
            task: name.to_string(),
            source,
        })
}

/// Come back at `wake`, or when something changes.
pub fn requeue_at(ctx: &Context, wake: Option<Timestamp>) -> Action {
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

/// The task's Device from the cache, and the driver to reach it: one that answers every call
/// "unavailable" when the Device is not there.
pub async fn device_and_driver(
    ctx: &Context,
    task: &UpgradeTask,
) -> (Option<Cached<Device>>, Arc<dyn DeviceDriver>) {
    let namespace = task.namespace().unwrap_or_default();
    let device = lookup(&ctx.stores.devices, &namespace, &task.spec.target);
    let driver: Arc<dyn DeviceDriver> = match &device {
        Some(device) => ctx.connections.driver(device).await,
        None => Arc::new(Unavailable(format!(
            "no Device {namespace}/{}",
            task.spec.target
        ))),
    };
    (device, driver)
}
