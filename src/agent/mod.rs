//! The host agent's I/O layer: what `upkeep agent` and `upkeep host` call to act on a machine.
//! The rules (which updates a job selects, what a reboot signal means, which package manager an
//! OS gets) are in [`crate::engine::updates`]; these modules only run the host's tools and report
//! what they saw.
//!
//! - [`backends`]: the [`backends::PackageManager`] trait and its apt, dnf and zypper
//!   implementations (real package managers, shelled out in the C locale; `--root DIR` drives
//!   another root file system).
//! - [`actions`]: a PatchJob's pre/post commands, in their own process group, with a timeout, and
//!   their output bounded and redacted before it can reach a status.
//! - [`reboot`]: the [`reboot::Rebooter`] trait (logind over D-Bus, `systemctl reboot` in the
//!   host's namespaces) and the boot id.
//! - [`facts`]: what the agent reports about the host (os-release, kernel, architecture, package
//!   manager, updates, reboot state).
//!
//! Invariant: nothing here decides; a package manager is never killed mid-operation, and no
//! command output reaches a caller unredacted.

pub mod actions;
pub mod backends;
pub mod facts;
pub mod reboot;
