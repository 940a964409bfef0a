//! Installers: how the agent applies a maintenance package to one product location. The
//! agent's task loop picks the installer a Host's `spec.products[].installer` names
//! ([`for_product`]) and calls it one package at a time; the pure engine
//! (`engine::packages::plan`) decides beforehand which packages run and in which order, and
//! afterwards what the task's code is.
//!
//! - `builtin`: upkeep's own `.pak` installer on a real directory, crash-safe (`journal`).
//! - `command`: a vendor tool run as a command line.
//!
//! Invariant: an installer never panics or returns an error for a package: every way a package
//! can end is an [`InstallOutcome`] with its result and reason. Calls block (file I/O, child
//! processes): the async agent runs them on `tokio::task::spawn_blocking`.

pub mod builtin;
pub mod command;
pub mod journal;
pub mod processes;

use std::path::{Path, PathBuf};

use crate::api::host::{HistoryEvent, HostProduct, InstallerKind};
use crate::engine::packages::plan::PackageRun;

pub use builtin::{BuiltinInstaller, Now};
pub use command::CommandRunner;
pub use journal::Faults;

/// A product on the host: its id and where it is installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductTarget {
    /// The product's id, e.g. `was`.
    pub id: String,
    /// Its location, e.g. `/opt/IBM/WebSphere/AppServer`.
    pub location: PathBuf,
}

/// How one install or uninstall ended.
#[derive(Clone, Debug, PartialEq)]
pub struct InstallOutcome {
    /// The package's id, result (none when it did not apply), reason and message.
    pub run: PackageRun,
    /// What the product's history gained: the package's event, then its components'; empty
    /// when the package was refused before anything changed.
    pub events: Vec<HistoryEvent>,
    /// The update log, when one was written.
    pub log: Option<PathBuf>,
}

/// Applies maintenance packages to product locations. Object-safe: the agent holds a
/// `Box<dyn Installer>` per product.
pub trait Installer: Send + Sync {
    /// Installs the package file `package` into `product`. `id` is the package id the job
    /// names, when it names one (a mismatch with the package is a failure).
    fn install(&self, product: &ProductTarget, package: &Path, id: Option<&str>) -> InstallOutcome;

    /// Uninstalls package `id` from `product`.
    fn uninstall(&self, product: &ProductTarget, id: &str) -> InstallOutcome;

    /// Finishes or rolls back an install or uninstall that an earlier run left interrupted
    /// (a crash, a kill): its outcome, or `None` when nothing was pending. The agent calls it
    /// on start for every product; `install` and `uninstall` call it first themselves.
    fn recover(&self, product: &ProductTarget) -> Result<Option<InstallOutcome>, String>;
}

/// The installer a Host's product entry names, reading time from `now`.
pub fn for_product(product: &HostProduct, now: Now) -> Box<dyn Installer> {
    match (product.installer, &product.command) {
        (InstallerKind::Command, Some(command)) => {
            Box::new(CommandRunner::new(command.clone(), now))
        }
        _ => Box::new(BuiltinInstaller::new(now)),
    }
}
