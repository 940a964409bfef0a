//! Rendering a task's engine state into its `UpgradeTask` status: the one place that sets the
//! kstatus conditions of a task from its code, for every kind of task.

use jiff::Timestamp;

use crate::api::codes::TaskResult;
use crate::api::conditions::{Desired, phase_of, reason_of, set, set_phase};
use crate::api::upgrade_task::UpgradeTaskStatus;

/// A task's engine state, as it is stored in an UpgradeTask's status.
pub trait StoredTask {
    /// Writes the state into `status`, leaving conditions and observedGeneration alone.
    fn write_into(&self, status: &mut UpgradeTaskStatus);
    /// The current code's name.
    fn code_name(&self) -> &'static str;
    /// How the task counts.
    fn result(&self) -> TaskResult;
    /// What the current code means for this target.
    fn message(&self) -> &str;
    /// The incident id of an unexpected failure, when the task has one.
    fn incident_id(&self) -> Option<&str> {
        None
    }
    /// A condition of the task's own besides the kstatus ones (a DevicePatch task's
    /// `PatchRunning`), when it has one now.
    fn condition(&self) -> Option<Desired<'static>> {
        None
    }
}

/// The status of a task in `state`, keeping what `previous` had that the engine does not own,
/// with its conditions for `generation`: a task in progress is `Reconciling`, a failed one
/// `Stalled`, any other ended one `Ready`; the reason is the code in CamelCase.
pub fn render(
    state: &impl StoredTask,
    previous: Option<&UpgradeTaskStatus>,
    generation: Option<i64>,
    now: Timestamp,
) -> UpgradeTaskStatus {
    let mut status = previous.cloned().unwrap_or_default();
    state.write_into(&mut status);
    status.observed_generation = generation;
    set_phase(
        &mut status.conditions,
        phase_of(state.result()),
        &reason_of(state.code_name()),
        state.message(),
        generation,
        now,
    );
    if let Some(own) = state.condition() {
        set(&mut status.conditions, own, generation, now);
    }
    status
}
