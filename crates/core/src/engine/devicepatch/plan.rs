//! What the DevicePatch controller does in one round: the shared rollout round of
//! `engine::parent::round`, the same as FirmwareUpgrade's, over DevicePatch's codes and spec.
//! A task that ended `PATCH_ACTIVATED` (`confirm: false`) counts as Succeeded and holds no slot:
//! the round reads that from the task's finishing time and stored result, not from its code.

use jiff::Timestamp;

use super::state::TaskState;
use crate::api::codes::DevicePatchCode;
use crate::api::{DevicePatch, DevicePatchStatus};
use crate::engine::parent::round::{self, RolloutParent, RoundTask, Settings};

pub use crate::engine::parent::round::{
    RESOLVE_INTERVAL, decide, next_look, plan, resolves_targets, status,
};

crate::queue_rollout_code!(DevicePatchCode);

/// A task of the DevicePatch, as the plan sees it.
pub type Child<'a> = round::Child<'a, DevicePatchCode>;

/// What one round of the DevicePatch controller needs.
pub type Input<'a> = round::Input<'a, DevicePatch>;

/// What the DevicePatch controller does this round.
pub type Plan = round::Plan<DevicePatchCode>;

impl RolloutParent for DevicePatch {
    type Code = DevicePatchCode;
    const NONE_MATCHING: DevicePatchCode = DevicePatchCode::SkippedNoDevicesMatchingPattern;
    const INTERNAL: DevicePatchCode = DevicePatchCode::SkippedInternalException;

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

    fn rollout_status(&self) -> Option<&DevicePatchStatus> {
        self.status.as_ref()
    }
}

impl RoundTask for TaskState {
    type Code = DevicePatchCode;

    fn code(&self) -> DevicePatchCode {
        self.code
    }

    fn grant(&mut self, now: Timestamp) {
        TaskState::grant(self, now);
    }

    fn end_unstarted(&mut self, code: DevicePatchCode, message: String, now: Timestamp) {
        TaskState::end_unstarted(self, code, message, now);
    }
}

#[cfg(test)]
mod tests;
