//! The DevicePatch controller: the shared rollout-parent controller (`kit::rollout`, the same
//! pipeline as FirmwareUpgrade's) over DevicePatch's engine round (`engine::devicepatch::plan`)
//! and task state. The tasks themselves run in `device_patch_task`.

use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;

use super::kit::context::{Context, Expectations};
use super::kit::rollout::{self, ControlledParent, Error};
use super::kit::watched::Watched;
use crate::api::DevicePatch;
use crate::api::codes::DevicePatchCode;
use crate::api::upgrade_task::{ParentKind, UpgradeTaskStatus};
use crate::engine::devicepatch::state::TaskState;
use crate::engine::task::StatusError;

impl ControlledParent for DevicePatch {
    const KIND: ParentKind = ParentKind::DevicePatch;
    const FIRST: DevicePatchCode = DevicePatchCode::WaitingForPreValidation;
    type State = TaskState;

    fn new_state(created_at: Timestamp) -> TaskState {
        TaskState::new(created_at)
    }

    fn read_state(status: &UpgradeTaskStatus) -> Result<TaskState, StatusError> {
        TaskState::from_status(status)
    }

    fn expectations(ctx: &Context) -> &Expectations<DevicePatchCode> {
        &ctx.device_patch_expectations
    }

    fn maintenance_windows(&self) -> &[String] {
        &self.spec.maintenance_windows
    }
}

/// Reconciles one DevicePatch.
pub async fn reconcile(
    guard: Arc<Watched<DevicePatch>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    rollout::reconcile(guard, ctx).await
}
