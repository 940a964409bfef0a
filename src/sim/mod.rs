//! The simulation: simulated devices (the fleet model) and drivers onto them, the device
//! simulator served over HTTP, simulated hosts (`hostsim`: a fleet host's simulated machine;
//! `agents`: their objects and the real agent loop on each), the in-memory Kubernetes API,
//! simulated hook Jobs, and the virtual-clock runner behind `upkeep simulate`.

pub mod agents;
pub mod devicesim;
pub mod driver;
pub mod fleet;
pub mod fleet_file;
pub mod hostsim;
pub mod jobs;
pub mod later;
pub mod report;
pub mod runner;

pub use upkeep_apiserver as apiserver;
