//! Package managers as the agent drives them: one trait, [`PackageManager`], with a backend per
//! tool family (apt + dpkg, dnf + rpm, zypper + rpm), chosen by [`for_os`].
//!
//! Every backend shells out to the real tools in the C locale, with no standard input, and parses
//! their stable outputs (the fixtures of `tests/fixtures/host/` are real captures). With a root
//! (`--root DIR`) the tools work on that root file system and never on the machine's own
//! databases or sources; without one they work on the running system.
//!
//! Invariants: an install takes exact `name=version` pins, and pins already installed at their
//! version are not asked for again, so a rerun after a crash changes nothing; a package manager is
//! never killed mid-operation (no timeouts here); a lock held by someone else is
//! [`PackageError::Locked`], reported before anything is changed; every error line is redacted.

pub mod apt;
pub mod dnf;
pub mod simulated;
mod tool;
mod xml;
pub mod zypper;

use std::path::Path;

use futures::future::BoxFuture;

use crate::api::host::{OsStatus, PackageManagerKind};
pub use crate::engine::updates::{PackageGlobs, Pin, RebootSignal, Update};

/// Why a package-manager operation did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// Another process holds the package manager's lock (another job, an administrator, an
    /// automatic update): nothing was changed; try again when it is free.
    #[error(
        "the package manager is locked by {holder}: another job or an administrator is using it; nothing was changed, try again when it is free"
    )]
    Locked {
        /// Who holds it, e.g. `process 1234 (apt-get)`.
        holder: String,
    },
    /// The package manager refused or failed.
    #[error("{line}")]
    Failed {
        /// The package manager's own error line (redacted).
        line: String,
    },
    /// The tool cannot be run here: it is missing, or the root is unusable.
    #[error("{0}")]
    Unavailable(String),
}

/// A host's package manager. Calls may take minutes (downloads, installs); none is cancelled
/// half-way by the backend.
pub trait PackageManager: Send + Sync {
    /// Which package manager this is.
    fn kind(&self) -> PackageManagerKind;
    /// Refreshes the package metadata (`apt-get update`, `dnf makecache`, `zypper refresh`) and
    /// lists the updates on offer, each classified as security or not; sorted by name.
    fn refresh_and_scan(&self) -> BoxFuture<'_, Result<Vec<Update>, PackageError>>;
    /// The installed packages whose names match `globs`, sorted.
    fn installed<'a>(
        &'a self,
        globs: &'a PackageGlobs,
    ) -> BoxFuture<'a, Result<Vec<String>, PackageError>>;
    /// Fetches the packages of `pins` into the package manager's cache without installing them
    /// (pins already installed at their version are skipped).
    fn download<'a>(&'a self, pins: &'a [Pin]) -> BoxFuture<'a, Result<(), PackageError>>;
    /// Installs exactly the versions of `pins` (and what they depend on), then checks that each
    /// is installed at its version. Pins already installed at their version are not asked for
    /// again: a rerun after a success is a no-op that runs no package manager.
    fn install<'a>(&'a self, pins: &'a [Pin]) -> BoxFuture<'a, Result<(), PackageError>>;
    /// Whether the host needs a reboot, three-valued (see
    /// [`crate::engine::updates::reboot_signal`]).
    fn reboot_required(&self) -> BoxFuture<'_, RebootSignal>;
}

/// The backend for a host's OS, working on `root` when given (else on the running system); `None`
/// when upkeep supports no package manager there (`os.package_manager` is unset).
pub fn for_os(
    os: &OsStatus,
    root: Option<&Path>,
) -> Result<Option<Box<dyn PackageManager>>, PackageError> {
    Ok(match os.package_manager {
        Some(PackageManagerKind::Apt) => Some(Box::new(apt::Apt::new(root)?)),
        Some(PackageManagerKind::Dnf) => Some(Box::new(dnf::Dnf::new(root, &os.version_id)?)),
        Some(PackageManagerKind::Zypper) => Some(Box::new(zypper::Zypper::new(root)?)),
        None => None,
    })
}
