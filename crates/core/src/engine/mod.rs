//! The pure engine: every rule about upgrades. No I/O, no clock reads, no randomness; time comes
//! in as a value.

pub mod firmware;
pub mod lint;
pub mod packages;
pub mod rollout;
pub mod size;
pub mod targets;
