//! upkeep: a Kubernetes operator that runs firmware upgrades, OS patch jobs and maintenance
//! packages as custom resources, gated by maintenance and blackout windows.

pub mod api;
pub mod check;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod drivers;
pub mod engine;
pub mod repository;
pub mod schedule;
pub mod sim;
