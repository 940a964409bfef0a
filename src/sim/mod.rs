//! The simulation: simulated devices (the fleet model), drivers onto them, and (with the
//! controllers issue) the in-memory Kubernetes API and the virtual-clock runner.

pub mod apiserver;
pub mod driver;
pub mod fleet;
