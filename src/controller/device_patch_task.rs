//! The DevicePatch half of the UpgradeTask controller: loads a task, asks the pure engine
//! (`engine::devicepatch::machine`) what to do, performs each action through the element's
//! driver (`drivers::perform_patch`), and writes the status (`kit::task_loop`).
//!
//! Crash safety: the engine asks to store the state before the load, the activation and the
//! confirm are sent, and each operation carries an idempotency key derived from the task's
//! namespace, name and uid, so an element asked again by a restarted operator reports the
//! operation it has instead of starting another; before every operation the engine reads the
//! element's patches and does not send it when the element shows it done or under way.

use futures::FutureExt as _;
use kube::ResourceExt as _;
use kube::runtime::controller::Action;

use super::kit::context::{Context, lookup};
use super::kit::task_loop::{Error, Loaded, device_and_driver, drive, load};
use super::kit::task_writer::TaskWriter;
use crate::api::{DevicePatch, UpgradeTask};
use crate::drivers::{Caller, perform_patch};
use crate::engine::devicepatch::machine::Context as EngineContext;
use crate::engine::devicepatch::observe::PatchObservation;
use crate::engine::devicepatch::state::TaskState;
use crate::engine::devicepatch::validation::Readings;

/// Reconciles one DevicePatch task.
pub async fn reconcile_task(task: &UpgradeTask, ctx: &Context) -> Result<Action, Error> {
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
        lookup::<DevicePatch>(&ctx.stores.device_patches, &namespace, &task.spec.parent)
    else {
        // The parent is gone (its tasks are garbage-collected) or cannot be read.
        return Ok(Action::await_change());
    };
    let (device, driver) = device_and_driver(ctx, task).await;
    let (package, input) = match ctx.repository.lookup(&parent.spec.package) {
        Ok(package) => (package, None),
        Err(e) => (
            None,
            Some(PatchObservation::Internal(format!(
                "the image repository cannot be read: {e}"
            ))),
        ),
    };
    let key = format!("{namespace}/{name}/{}", task.uid().unwrap_or_default());
    let engine = EngineContext {
        spec: &parent.spec,
        task: &key,
        device_exists: device.is_some(),
        package: package.as_ref().map(|p| &p.entry),
    };
    let mut readings = Readings::default();
    let task_ref = &format!("{namespace}/{name}");
    let (driver, package) = (driver.as_ref(), package.as_ref());
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
            perform_patch(driver, caller, package, action).boxed()
        },
    )
    .await
}
