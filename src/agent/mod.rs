//! The host agent: what runs on each machine (a node's DaemonSet pod, or a systemd service
//! elsewhere) to apply what PatchJobs ask of it. `installers` applies maintenance packages to a
//! product location; `products` reads what a location holds.

pub mod installers;
pub mod products;
