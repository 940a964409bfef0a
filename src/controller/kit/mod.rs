//! What every controller shares: the watch filter that passes only changes that matter, the
//! context a reconcile gets (client, clock, caches), the guarded watch objects, the task index,
//! reads of a few metadata fields, status writes with upkeep's field manager, Events, metrics,
//! object naming, the pacing of rollout rounds, and the wrapper every reconcile runs in.

pub mod changes;
pub mod context;
pub mod events;
pub mod index;
pub mod metadata;
pub mod metrics;
pub mod naming;
pub mod pacing;
pub mod reconcile;
pub mod rollout;
pub mod status;
pub mod task_loop;
pub mod task_writer;
pub mod tasks;
pub mod watched;
pub mod windows;
