//! The integration tests, as one test binary: each module was a file of `tests/` of its own,
//! and each such file linked a binary of its own, which cost minutes on a 2-core machine.
//! `common` holds the helpers the driver tests share.

mod check_cli;
mod common;
mod controllers;
mod crash;
mod datapower;
mod device_api_document;
mod device_cli;
mod e2e;
mod image_server;
mod packages;
mod purity;
mod redfish;
mod redfish_sushy;
mod simulate_examples;
mod simulate_faults;
mod upkeep_driver;
mod windows_cli;
