//! The controllers: thin kube-runtime glue, one module per kind. Each reconcile is a pipeline:
//! resolve what it needs from caches and drivers, decide with the pure engine, apply the
//! decision through drivers and the API, and write the status.

pub mod connections;
pub mod context;
pub mod device;
pub mod endpoints;
pub mod events;
pub mod firmware_upgrade;
pub mod hooks;
pub mod index;
pub mod maintenance_window;
pub mod metrics;
pub mod naming;
pub mod operator;
pub mod status;
pub mod upgrade_task;
pub mod watched;

use crate::api::conditions::Phase;
use crate::api::upgrade_task::TaskResult;

/// The kstatus phase of a task with `result`: in progress reconciles, a failure stalls, any other
/// end is ready.
pub fn conditions_for(result: TaskResult) -> Phase {
    match result {
        TaskResult::InProgress => Phase::Reconciling,
        TaskResult::Failed => Phase::Stalled,
        TaskResult::Succeeded | TaskResult::Skipped | TaskResult::Canceled => Phase::Ready,
    }
}
