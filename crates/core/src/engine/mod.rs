//! The pure engine: every rule about upgrades. No I/O, no clock reads, no randomness; time comes
//! in as a value.

pub mod devicepatch;
#[cfg(test)]
mod doc_tables;
pub mod firmware;
pub mod lint;
pub mod packages;
pub mod parent;
pub mod patch;
pub mod rollout;
pub mod size;
pub mod targets;
pub mod task;
pub mod task_status;
pub mod updates;
