//! The machine the agent acts on, as one bundle of pluggable parts: the package manager, the
//! rebooter, the runner of a job's pre/post actions, the source of facts (OS, boot id, products)
//! and the installers of maintenance packages. [`Machine::real`] is this host (or a `--root`);
//! the simulation plugs in simulated parts ([`crate::agent::backends::simulated`]).
//!
//! Invariant: nothing here decides anything about a task; every part only does what it is asked
//! and reports what it saw, and none of them retries on its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::actions::{self, ActionOutcome};
use super::backends::{self, PackageManager};
use super::installers::{self, Installer, Now};
use super::products;
use super::reboot::{self, CommandRebooter, Logind, Rebooter};
use crate::api::host::{HISTORY_LIMIT, HistoryEvent, HostProduct, OsStatus, ProductStatus};
use crate::api::patch_job::Action as JobAction;
use crate::engine::patch::agent::Op;

/// Runs a PatchJob's pre and post actions.
pub trait ActionRunner: Send + Sync {
    /// Runs `action` (the job's operation `op`, a pre or a post action) to its end or its
    /// timeout; `Err` when it could not be started at all.
    fn run<'a>(
        &'a self,
        op: &'a Op,
        action: &'a JobAction,
    ) -> BoxFuture<'a, Result<ActionOutcome, String>>;
}

/// What the agent reads about the machine besides its packages.
pub trait FactsSource: Send + Sync {
    /// The operating system (os-release, kernel, architecture, package manager).
    fn os(&self) -> Result<OsStatus, String>;
    /// The boot id of the running system; a new one means the host rebooted.
    fn boot_id(&self) -> Result<String, String>;
    /// The products of the Host's spec as found at their locations (a product that cannot be
    /// read is left out, with a log line).
    fn products(&self, products: &[HostProduct]) -> Vec<ProductStatus>;
    /// The newest install and uninstall events of those products, at most `HISTORY_LIMIT`.
    fn history(&self, products: &[HostProduct]) -> Vec<HistoryEvent>;
    /// Where `product` is on this machine (its `location`, under the root when there is one).
    fn location(&self, product: &HostProduct) -> PathBuf {
        PathBuf::from(&product.location)
    }
}

/// The installer of a product on the Host.
pub trait InstallerSource: Send + Sync {
    /// The installer `product` names.
    fn installer(&self, product: &HostProduct) -> Box<dyn Installer>;
}

/// The machine the agent runs on: every part it acts through.
#[derive(Clone)]
pub struct Machine {
    /// The package manager, `None` when upkeep drives none on this OS (jobs are `2053`).
    pub packages: Option<Arc<dyn PackageManager>>,
    /// How the host is rebooted.
    pub rebooter: Arc<dyn Rebooter>,
    /// How actions are run.
    pub actions: Arc<dyn ActionRunner>,
    /// OS, boot id and products.
    pub facts: Arc<dyn FactsSource>,
    /// Maintenance package installers.
    pub installers: Arc<dyn InstallerSource>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field(
                "packages",
                &self.packages.as_ref().map(|p| format!("{:?}", p.kind())),
            )
            .finish_non_exhaustive()
    }
}

/// How the real machine is rebooted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RebootMethod {
    /// systemd-logind over the system D-Bus.
    #[default]
    Logind,
    /// `systemctl reboot` as the agent runs (a systemd service on the host).
    Systemctl,
    /// `nsenter -t 1 -m -u -i -n -p -- systemctl reboot` (a pod with `hostPID`).
    Nsenter,
}

/// Why the real machine cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The OS cannot be read.
    #[error(transparent)]
    Facts(#[from] super::facts::FactsError),
    /// The package manager cannot be driven.
    #[error("the package manager cannot be used: {0}")]
    Packages(#[from] backends::PackageError),
}

impl Machine {
    /// This host, or the root file system `root`: its package manager (chosen by its OS), the
    /// reboot `method`, actions run by `/bin/sh`, facts and products read from the root.
    pub fn real(root: Option<&Path>, method: RebootMethod, now: Now) -> Result<Self, MachineError> {
        let os = super::facts::os_status(root)?;
        let packages: Option<Arc<dyn PackageManager>> = backends::for_os(&os, root)?.map(Arc::from);
        let rebooter: Arc<dyn Rebooter> = match method {
            RebootMethod::Logind => Arc::new(Logind::system()),
            RebootMethod::Systemctl => Arc::new(CommandRebooter::systemctl()),
            RebootMethod::Nsenter => Arc::new(CommandRebooter::systemctl_in_host_namespaces()),
        };
        Ok(Self {
            packages,
            rebooter,
            actions: Arc::new(ShellActions),
            facts: Arc::new(RootFacts {
                root: root.map(Path::to_path_buf),
            }),
            installers: Arc::new(RealInstallers { now }),
        })
    }
}

/// Actions run by `/bin/sh -c` in their own process group ([`actions::run`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ShellActions;

impl ActionRunner for ShellActions {
    fn run<'a>(
        &'a self,
        _: &'a Op,
        action: &'a JobAction,
    ) -> BoxFuture<'a, Result<ActionOutcome, String>> {
        async move { actions::run(action).await.map_err(|e| e.to_string()) }.boxed()
    }
}

/// Facts of the running system or of a root file system.
#[derive(Clone, Debug, Default)]
pub struct RootFacts {
    /// The root, when not the running system's.
    pub root: Option<PathBuf>,
}

impl FactsSource for RootFacts {
    fn location(&self, product: &HostProduct) -> PathBuf {
        let location = Path::new(&product.location);
        match &self.root {
            Some(root) => root.join(location.strip_prefix("/").unwrap_or(location)),
            None => location.to_path_buf(),
        }
    }

    fn os(&self) -> Result<OsStatus, String> {
        super::facts::os_status(self.root.as_deref()).map_err(|e| e.to_string())
    }

    fn boot_id(&self) -> Result<String, String> {
        // A root without its own boot id (an image, a chroot) boots with the running system.
        reboot::boot_id(self.root.as_deref())
            .or_else(|e| match (&self.root, e.kind()) {
                (Some(_), std::io::ErrorKind::NotFound) => reboot::boot_id(None),
                _ => Err(e),
            })
            .map_err(|e| format!("reading the boot id: {e}"))
    }

    fn products(&self, products: &[HostProduct]) -> Vec<ProductStatus> {
        products
            .iter()
            .filter_map(|p| match products::read_product(&p.id, &self.location(p)) {
                Ok(status) => Some(status),
                Err(error) => {
                    tracing::warn!(product = %p.id, %error, "the product cannot be read");
                    None
                }
            })
            .collect()
    }

    fn history(&self, products: &[HostProduct]) -> Vec<HistoryEvent> {
        let mut events: Vec<HistoryEvent> = products
            .iter()
            .filter_map(|p| products::recent_events(&self.location(p), HISTORY_LIMIT).ok())
            .flatten()
            .collect();
        events.sort_by(|a, b| {
            a.start_time
                .as_ref()
                .map(|t| t.0)
                .cmp(&b.start_time.as_ref().map(|t| t.0))
        });
        let excess = events.len().saturating_sub(HISTORY_LIMIT);
        events.drain(..excess);
        events
    }
}

/// The installers a Host's products name ([`installers::for_product`]).
#[derive(Clone)]
pub struct RealInstallers {
    /// Where installers read time.
    pub now: Now,
}

impl InstallerSource for RealInstallers {
    fn installer(&self, product: &HostProduct) -> Box<dyn Installer> {
        installers::for_product(product, self.now.clone())
    }
}
