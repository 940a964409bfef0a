//! Firmware upgrades of appliances: image names, versions, validation and execution.

pub mod image;
pub mod version;
