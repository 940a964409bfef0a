//! The FirmwareUpgrade controller: the shared rollout-parent controller (`kit::rollout`) over
//! FirmwareUpgrade's engine round (`engine::firmware::plan`) and task state.

use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;

use super::kit::context::{Context, Expectations};
use super::kit::rollout::{self, ControlledParent};
use super::kit::watched::Watched;
use crate::api::FirmwareUpgrade;
use crate::api::codes::FirmwareCode;
use crate::api::upgrade_task::{ParentKind, UpgradeTaskStatus};
use crate::engine::firmware::state::TaskState;
use crate::engine::task::StatusError;

pub use super::kit::rollout::Error;

impl ControlledParent for FirmwareUpgrade {
    const KIND: ParentKind = ParentKind::FirmwareUpgrade;
    const FIRST: FirmwareCode = FirmwareCode::WaitingForPreValidation;
    type State = TaskState;

    fn new_state(created_at: Timestamp) -> TaskState {
        TaskState::new(created_at)
    }

    fn read_state(status: &UpgradeTaskStatus) -> Result<TaskState, StatusError> {
        TaskState::from_status(status)
    }

    fn expectations(ctx: &Context) -> &Expectations<FirmwareCode> {
        &ctx.expectations
    }

    fn maintenance_windows(&self) -> &[String] {
        &self.spec.maintenance_windows
    }
}

/// Reconciles one FirmwareUpgrade.
pub async fn reconcile(
    guard: Arc<Watched<FirmwareUpgrade>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    rollout::reconcile(guard, ctx).await
}
