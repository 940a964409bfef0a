//! The controllers: thin kube-runtime glue, one module per kind. Each reconcile is a pipeline:
//! resolve what it needs from caches and drivers, decide with the pure engine, apply the
//! decision through drivers and the API, and write the status.

pub mod connections;
pub mod device;
pub mod device_patch;
pub mod device_patch_task;
pub mod endpoints;
pub mod firmware_upgrade;
pub mod hooks;
pub mod host;
pub mod kit;
pub mod maintenance_window;
pub mod operator;
pub mod patch_job;
pub mod patch_task;
pub mod upgrade_task;
