//! The host agent: what runs on each machine (a node's DaemonSet pod, or a systemd service
//! elsewhere) to apply what PatchJobs ask of it. The rules (which updates a job selects, what a
//! reboot signal means, which package manager an OS gets, how maintenance packages apply) are in
//! the engine (`engine::updates`, `engine::patch`, `engine::packages`); these modules only act on
//! the machine and report what they saw.
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
//! - [`installers`]: maintenance packages applied to a product location (the builtin `.pak`
//!   installer with its backups, or a vendor tool); [`products`]: what a location holds.
//!
//! - [`machine`]: the bundle of those parts the agent acts through ([`machine::Machine`]), real
//!   or simulated ([`backends::simulated`]).
//! - [`driver`]: one host task driven through `engine::patch::agent` on a machine, its journal
//!   and operation records in the state directory ([`state_dir`]).
//! - [`package_job`]: a PatchJob's maintenance packages (Install / Uninstall) fetched and run
//!   through the product's installer, in the engine's plan; [`package_fetch`]: one package
//!   fetched from a directory or over HTTP(S) into the state directory, verified by its sha256.
//! - [`run`]: the agent loop against the Kubernetes API (Host, Lease, tasks).
//!
//! Invariant: nothing here decides; a package manager is never killed mid-operation, and no
//! command output reaches a caller unredacted.

pub mod actions;
pub mod backends;
pub mod driver;
pub mod facts;
pub mod installers;
pub mod machine;
pub mod package_fetch;
pub mod package_job;
pub mod products;
pub mod reboot;
pub mod run;
pub mod state_dir;
