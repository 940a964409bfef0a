//! What the FirmwareUpgrade controller does in one round: the shared rollout round of
//! `engine::parent::round` (which targets get a task, which queued tasks start or end, when to
//! look again, the resource's own status) over FirmwareUpgrade's codes and spec. The rules are
//! there, once for every rollout parent; this file only says how a FirmwareUpgrade fills them.

use jiff::Timestamp;

use super::state::TaskState;
use crate::api::codes::FirmwareCode;
use crate::api::{FirmwareUpgrade, FirmwareUpgradeStatus};
use crate::engine::parent::round::{self, RolloutParent, RoundTask, Settings};

pub use crate::engine::parent::round::{
    RESOLVE_INTERVAL, decide, next_look, plan, resolves_targets, status,
};

crate::queue_rollout_code!(FirmwareCode);

/// A task of the FirmwareUpgrade, as the plan sees it.
pub type Child<'a> = round::Child<'a, FirmwareCode>;

/// What one round of the FirmwareUpgrade controller needs.
pub type Input<'a> = round::Input<'a, FirmwareUpgrade>;

/// What the FirmwareUpgrade controller does this round.
pub type Plan = round::Plan<FirmwareCode>;

impl RolloutParent for FirmwareUpgrade {
    type Code = FirmwareCode;
    const NONE_MATCHING: FirmwareCode = FirmwareCode::SkippedNoDevicesMatchingPattern;
    const INTERNAL: FirmwareCode = FirmwareCode::SkippedInternalException;

    fn settings(&self) -> Settings<'_> {
        let spec = &self.spec;
        Settings {
            targets: &spec.targets,
            rollout: &spec.rollout,
            outside_window: spec.outside_window,
            max_wait: spec.max_wait,
            suspend: spec.suspend,
        }
    }

    fn generation(&self) -> Option<i64> {
        self.metadata.generation
    }

    fn rollout_status(&self) -> Option<&FirmwareUpgradeStatus> {
        self.status.as_ref()
    }
}

impl RoundTask for TaskState {
    type Code = FirmwareCode;

    fn code(&self) -> FirmwareCode {
        self.code
    }

    fn grant(&mut self, now: Timestamp) {
        TaskState::grant(self, now);
    }

    fn end_unstarted(&mut self, code: FirmwareCode, message: String, now: Timestamp) {
        TaskState::end_unstarted(self, code, message, now);
    }
}

#[cfg(test)]
mod tests;
