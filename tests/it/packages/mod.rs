//! Maintenance packages end to end: real `.pak` files built by `upkeep package build`,
//! installed into and uninstalled from real product directories by the builtin installer
//! (through the `upkeep host` binary and the library), killed and failed at every step, refused
//! for every rule of the format; the command installer with a script that behaves like a vendor
//! tool; and the reports in every format, offline and from Hosts in the in-memory API server.

mod commands;
mod crash;
pub(crate) mod fixtures;
mod install;
mod refusals;
mod reports;
