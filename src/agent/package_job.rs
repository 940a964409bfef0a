//! A PatchJob's maintenance packages (`operation: Install | Uninstall`) on this host: the
//! applicability facts, the fetch of each package into the state directory, and one package
//! installed or uninstalled through the product's installer. The rules (which packages apply,
//! their order, what a result means) are `engine::packages::plan`'s; the same plan drives
//! `upkeep host install|uninstall`.
//!
//! Invariants: the operation `Package(i)` is the `i`-th step of the plan in the job's order
//! (refresh packs, fix packs, interim fixes; the reverse to uninstall), which depends only on
//! the packages' types, so a plan made again after a restart names the same package; a package
//! is installed from its copy in the state directory, never from the repository while it may
//! change; a package that an interrupted run already installed (or uninstalled) is reported
//! from the product as it stands and never run a second time.

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;

use super::installers::{InstallOutcome, Installer, ProductTarget};
use super::machine::Machine;
use super::package_fetch::{self, Origin, PackageRepository};
use super::state_dir::StateDir;
use crate::api::codes::PackageResult;
use crate::api::host::{HistoryAction, HostProduct, InstallerKind, ProductStatus};
use crate::api::patch_job::{Operation, PatchJobSpec};
use crate::api::upgrade_task::PackageOutcome;
use crate::engine::packages::archive::Limits;
use crate::engine::packages::plan::{self, Decision, PackageInfo, PackageRun, Removal, Step};
use crate::engine::patch::agent::OpStatus;
use crate::pak::Package;

/// The packages of one job on one host: what the driver needs to act on them.
pub struct PackageJob<'a> {
    /// The job.
    pub spec: &'a PatchJobSpec,
    /// The task's key (`namespace/name/uid`).
    pub task: &'a str,
    /// The Host's products (its `spec.products`).
    pub products: &'a [HostProduct],
    /// The machine.
    pub machine: &'a Machine,
    /// The state directory (fetched packages).
    pub state: &'a StateDir,
    /// The package repository the packages' relative `source` is in.
    pub repository: Option<&'a PackageRepository>,
}

fn limits() -> Limits {
    Limits {
        max_expanded: u64::MAX,
    }
}

impl PackageJob<'_> {
    fn install(&self) -> bool {
        self.spec.operation == Operation::Install
    }

    fn fetched(&self, id: &str) -> PathBuf {
        self.state.package_path(self.task, id)
    }

    fn found(&self) -> Vec<ProductStatus> {
        self.machine.facts.products(self.products)
    }

    fn target(&self, product: &str) -> Option<(ProductTarget, &HostProduct)> {
        let host = self.products.iter().find(|p| p.id == product)?;
        Some((
            ProductTarget {
                id: host.id.clone(),
                location: self.machine.facts.location(host),
            },
            host,
        ))
    }

    /// The plan for the packages as the products stand now; `infos` are the install
    /// packages' manifests (ignored to uninstall).
    fn plan(&self, infos: &[PackageInfo], now: Timestamp) -> Vec<Step> {
        let found = self.found();
        if self.install() {
            plan::plan_install(&found, infos, now)
        } else {
            let removals: Vec<Removal> = self
                .spec
                .packages
                .iter()
                .map(|p| Removal {
                    id: p.id.clone(),
                    product: p.product.clone(),
                })
                .collect();
            plan::plan_uninstall(&found, &removals)
        }
    }

    /// Why the job's packages do not apply to this host, if none of them does: the product
    /// absent for every package, or (where the package can be read already) the plan skipping
    /// all of them.
    pub fn not_applicable(&self, now: Timestamp) -> Option<String> {
        let found = self.found();
        let mut why = Vec::new();
        for package in &self.spec.packages {
            if !found.iter().any(|p| p.id == package.product) {
                why.push(format!(
                    "{}: product {:?} is not on the host",
                    package.id, package.product
                ));
            }
        }
        if why.len() < self.spec.packages.len() {
            // Uninstall plans on the products alone (its packages have no source to read).
            let infos = if self.install() {
                match self.infos(|p| self.in_repository(p)) {
                    Ok(infos) => infos,
                    // Not readable yet: the fetch reports it.
                    Err(_) => return None,
                }
            } else {
                Vec::new()
            };
            why.clear();
            for step in self.plan(&infos, now) {
                match step.decision {
                    Decision::Skip(refusal) => why.push(refusal.message),
                    Decision::Run | Decision::Refuse(_) => return None,
                }
            }
        }
        Some(why.join("; "))
    }

    /// The repository file of `source`, for reading its manifest before the fetch; an HTTP
    /// source has none (its manifest is read once it is fetched and verified).
    fn in_repository(&self, source: &str) -> Result<PathBuf, String> {
        match package_fetch::origin(self.repository, source, None) {
            Ok(Origin::File(path)) => Ok(path),
            Ok(Origin::Url(url)) => Err(format!(
                "{} is read once it is downloaded",
                package_fetch::redact(&url)
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The install packages' manifests, each read from the file `path_of` gives for its
    /// source.
    fn infos(
        &self,
        path_of: impl Fn(&str) -> Result<PathBuf, String>,
    ) -> Result<Vec<PackageInfo>, String> {
        self.spec
            .packages
            .iter()
            .map(|p| {
                let source = p
                    .source
                    .as_deref()
                    .ok_or_else(|| format!("{}: the package has no source", p.id))?;
                let path = path_of(source)?;
                let package = Package::open(&path, &limits()).map_err(|e| e.to_string())?;
                let info = PackageInfo::from(package.manifest());
                if info.id != p.id {
                    return Err(format!(
                        "{}: the package at {source} is {}, not the package the job names",
                        p.id, info.id
                    ));
                }
                Ok(info)
            })
            .collect()
    }

    /// Fetches every package of an Install job from its source (the package repository, a
    /// directory or an HTTP base URL, or an absolute HTTP URL) into the state directory,
    /// verifying its sha256 when the job gives one (a download always needs one), and checks it
    /// is a valid package of the id the job names. Uninstall fetches nothing. A package fetched
    /// before (a run cut off after it) is not fetched again.
    pub async fn fetch(&self) -> OpStatus {
        if !self.install() {
            return OpStatus::Done;
        }
        for (i, p) in self.spec.packages.iter().enumerate() {
            let Some(source) = p.source.as_deref() else {
                return OpStatus::Failed(format!("{}: the package has no source", p.id));
            };
            let sha256 = p.sha256.as_deref();
            let fetched = match package_fetch::origin(self.repository, source, sha256) {
                Ok(origin) => package_fetch::fetch(&origin, sha256, &self.fetched(&p.id)).await,
                Err(e) => Err(e),
            };
            if let Err(e) = fetched {
                let message = e
                    .to_string()
                    .replace("spec.packages[]", &format!("spec.packages[{i}]"));
                return OpStatus::Failed(format!("{}: {message}", p.id));
            }
        }
        match self.infos_fetched() {
            Ok(_) => OpStatus::Done,
            Err(e) => OpStatus::Failed(e),
        }
    }

    fn infos_fetched(&self) -> Result<Vec<PackageInfo>, String> {
        let by_source = |source: &str| {
            self.spec
                .packages
                .iter()
                .find(|p| p.source.as_deref() == Some(source))
                .map(|p| self.fetched(&p.id))
                .ok_or_else(|| format!("{source} is not in the job"))
        };
        self.infos(by_source)
    }

    /// Installs or uninstalls the `index`-th package in the job's order. `resumed`: an earlier
    /// run of this operation was cut off; its product is recovered first and a package already
    /// in the state the operation leads to is reported, not run again.
    pub async fn package(&self, index: usize, resumed: bool, now: Timestamp) -> OpStatus {
        let infos = if self.install() {
            match self.infos_fetched() {
                Ok(infos) => infos,
                Err(e) => return OpStatus::Failed(e),
            }
        } else {
            Vec::new()
        };
        let Some(product) = self.plan(&infos, now).get(index).map(|s| s.product.clone()) else {
            return OpStatus::Failed(format!("package-{index} is not in the job"));
        };
        let Some((target, host)) = self.target(&product) else {
            return OpStatus::Done;
        };
        let installer: Arc<dyn Installer> = Arc::from(self.machine.installers.installer(host));
        let mut recovered = None;
        if resumed {
            let (installer, target) = (installer.clone(), target.clone());
            match blocking(move || installer.recover(&target)).await {
                Ok(Ok(outcome)) => recovered = outcome,
                Ok(Err(e)) | Err(e) => return OpStatus::Failed(e),
            }
        }
        // Planned again on the product as it stands after recovery.
        let steps = self.plan(&infos, now);
        let Some(step) = steps.get(index).cloned() else {
            return OpStatus::Failed(format!("package-{index} is not in the job"));
        };
        match step.decision {
            Decision::Run => {
                let (id, action) = (step.id.clone(), step.action);
                if host.installer == InstallerKind::Command {
                    match self.vendor_tool_once(&id, action, resumed, &target) {
                        Ok(None) => {}
                        Ok(Some(run)) => return OpStatus::Package(PackageOutcome::from(&run)),
                        Err(e) => return OpStatus::Failed(e),
                    }
                }
                let file = self.fetched(&id);
                let done = blocking(move || match action {
                    HistoryAction::Install => installer.install(&target, &file, Some(&id)),
                    HistoryAction::Uninstall => installer.uninstall(&target, &id),
                })
                .await;
                match done {
                    Ok(outcome) => OpStatus::Package(PackageOutcome::from(&outcome.run)),
                    Err(e) => OpStatus::Failed(e),
                }
            }
            Decision::Refuse(refusal) => {
                OpStatus::Package(PackageOutcome::from(&PackageRun::ended(
                    &step.id,
                    PackageResult::Failure,
                    refusal.reason,
                    refusal.message,
                )))
            }
            Decision::Skip(_) if resumed && self.reached(&step) => {
                let run = recovered
                    .filter(|o: &InstallOutcome| o.run.id == step.id)
                    .map_or_else(
                        || {
                            PackageRun::success(
                                &step.id,
                                "finished by the run the agent's restart cut off",
                            )
                        },
                        |o| o.run,
                    );
                OpStatus::Package(PackageOutcome::from(&run))
            }
            Decision::Skip(_) => OpStatus::Done,
        }
    }

    /// A vendor tool keeps its own state, so a run of it cut off by an agent restart cannot be
    /// recovered or told apart from one that finished: it is never started a second time. A
    /// marker in the state directory, written and synced before the tool starts, says it may
    /// have run. `Ok(None)`: run it (the marker is written); `Ok(Some(run))`: it ran before
    /// this restart, and `run` is what its log's last line says, or a failure when the log has
    /// no result.
    fn vendor_tool_once(
        &self,
        id: &str,
        action: HistoryAction,
        resumed: bool,
        target: &ProductTarget,
    ) -> Result<Option<PackageRun>, String> {
        let verb = match action {
            HistoryAction::Install => "install",
            HistoryAction::Uninstall => "uninstall",
        };
        let marker = self.fetched(id).with_extension(format!("{verb}.started"));
        if resumed && marker.exists() {
            // Only a log the tool wrote after the marker is this run's.
            let since = std::fs::metadata(&marker).and_then(|m| m.modified()).ok();
            let log = super::installers::command::last_log(&target.location, id, verb).filter(
                |(path, _)| {
                    let written = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                    since.is_some() && written >= since
                },
            );
            let found = log.as_ref().and_then(|(_, result)| *result);
            let where_ = log.map_or_else(
                || {
                    target
                        .location
                        .join(super::products::LOG_DIR)
                        .display()
                        .to_string()
                },
                |(path, _)| path.display().to_string(),
            );
            return Ok(Some(match found {
                Some(PackageResult::Success) => PackageRun::success(
                    id,
                    format!("the vendor tool finished before the agent restarted (log {where_})"),
                ),
                result => PackageRun::ended(
                    id,
                    result.unwrap_or(PackageResult::Failure),
                    crate::engine::packages::plan::Reason::InstallFailed,
                    format!(
                        "the agent restarted while the vendor tool ran; upkeep does not run it a second time: check its log ({where_}) and the product, then run the job again"
                    ),
                ),
            }));
        }
        let fail = |e: std::io::Error| format!("{}: {e}", marker.display());
        if let Some(dir) = marker.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        std::fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(fail)?;
        Ok(None)
    }

    /// Whether the product is where the step leads: the package installed (install) or gone
    /// (uninstall).
    fn reached(&self, step: &Step) -> bool {
        let installed = self
            .found()
            .iter()
            .any(|p| p.id == step.product && p.packages.iter().any(|i| i.id == step.id));
        installed == (step.action == HistoryAction::Install)
    }
}

/// Runs blocking installer work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the installer stopped: {e}"))
}
