//! The UpgradeTask controller: dispatches a task to its kind's half (PatchJob tasks to
//! `patch_task`, DevicePatch tasks to `device_patch_task`) and runs FirmwareUpgrade tasks: loads
//! a task, asks the pure engine what to do, performs each action through the device's driver
//! (or a hook Job), and writes the status with server-side apply, only when it changed and
//! always before a step that must not be repeated blindly (`kit::task_loop`).

use std::sync::Arc;

use futures::FutureExt as _;
use kube::ResourceExt as _;
use kube::runtime::controller::Action;

use super::hooks::TaskHooks;
use super::kit::context::{Context, lookup};
use super::kit::reconcile::guarded;
use super::kit::task_loop::{Loaded, device_and_driver, drive, load};
use super::kit::task_writer::TaskWriter;
use super::kit::watched::Watched;
use crate::api::upgrade_task::ParentKind;
use crate::api::{FirmwareUpgrade, UpgradeTask};
use crate::drivers::{Caller, perform};
use crate::engine::firmware::machine::Context as EngineContext;
use crate::engine::firmware::observe::{DeviceFamily, Observation};
use crate::engine::firmware::state::TaskState;
use crate::engine::firmware::validation::Readings;

pub use super::kit::task_loop::{Error, unreadable};

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

/// Each kind's half, boxed: a reconcile's future holds only the one that runs.
async fn reconcile_task(task: &UpgradeTask, ctx: &Context) -> Result<Action, Error> {
    match task.spec.parent_kind {
        ParentKind::FirmwareUpgrade => Box::pin(reconcile_firmware_task(task, ctx)).await,
        ParentKind::PatchJob => Box::pin(super::patch_task::reconcile_task(task, ctx)).await,
        ParentKind::DevicePatch => {
            Box::pin(super::device_patch_task::reconcile_task(task, ctx)).await
        }
    }
}

async fn reconcile_firmware_task(task: &UpgradeTask, ctx: &Context) -> Result<Action, Error> {
    let namespace = task.namespace().unwrap_or_default();
    let name = task.name_any();
    let mut writer = TaskWriter::new(ctx, task);
    let mut state = match load(
        ctx,
        &mut writer,
        task,
        TaskState::new,
        TaskState::from_status,
    )
    .await?
    {
        Loaded::Done(action) => return Ok(action),
        Loaded::Running(state) => state,
    };
    let Some(parent) =
        lookup::<FirmwareUpgrade>(&ctx.stores.upgrades, &namespace, &task.spec.parent)
    else {
        // The parent is gone (its tasks are garbage-collected) or cannot be read.
        return Ok(Action::await_change());
    };
    let (device, driver) = device_and_driver(ctx, task).await;
    // A Device that is gone fails its pre-checks before its family matters.
    let family = device
        .as_ref()
        .map_or(DeviceFamily::Appliance, |d| d.spec.family());
    let (image, input) = match ctx.repository.lookup(&parent.spec.image) {
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
    let task_ref = &format!("{namespace}/{name}");
    let hooks = &TaskHooks {
        jobs: &ctx.hooks,
        task,
        templates: parent.spec.hooks.as_ref(),
    };
    let (driver, image) = (driver.as_ref(), image.as_ref());
    drive(
        ctx,
        &mut writer,
        task,
        &mut state,
        input,
        |state, input, now| state.step(&engine, &mut readings, input, now),
        move |phase, action| {
            let caller = Caller {
                task: Some(task_ref),
                phase,
            };
            perform(driver, caller, image, hooks, action).boxed()
        },
    )
    .await
}
