//! The integration tests, as one test binary: each module was a file of `tests/` of its own,
//! and each such file linked a binary of its own, which cost minutes on a 2-core machine.
//! `common` holds the helpers the driver tests share; `host_sandbox` the package-manager
//! sandboxes of the host backend tests.

mod agent_command;
mod agent_loop;
mod agent_policy;
mod argocd_health;
mod check_cli;
mod common;
mod controllers;
mod crash;
mod dashboard;
mod datapower;
mod device_api_document;
mod device_cli;
mod e2e;
mod host_backends;
mod host_reboot;
mod host_sandbox;
mod image_server;
mod kubectl;
mod package_download;
mod packages;
mod patch_controller;
mod purity;
mod redfish;
mod redfish_sushy;
mod simulate_examples;
mod simulate_faults;
mod simulate_hosts;
mod simulate_html;
mod upkeep_driver;
mod upkeep_driver_patches;
mod windows_cli;
