//! upkeep: a Kubernetes operator that runs firmware upgrades, OS patch jobs and maintenance
//! packages as custom resources, gated by maintenance and blackout windows.

pub mod agent;
pub mod check;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod drivers;
pub mod pak;
pub mod repository;
pub mod sim;

pub use upkeep_core::{api, engine, schedule};
