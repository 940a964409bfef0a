//! A fleet file's host as a simulated machine: the [`SimulatedHost`] the real agent runs on
//! (`agent::backends::simulated`), set up from the host's OS, installed packages, offered
//! updates, durations, faults and busy package manager; its products as real product
//! locations under a directory standing for its root file system (their installed packages
//! put there by the real builtin installer); the fleet's repository as real `.pak` files built
//! from its entries. Nothing here decides how an upgrade goes: the agent and its engine do.
//!
//! Invariants: the same fleet file gives the same machines (timestamps from the simulation's
//! start, no randomness); every file lives under the simulation's own temporary directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;

use super::fleet_file::hosts::{FleetHost, FleetPackage, HostFaultKind, HostFaultStep};
use crate::agent::backends::simulated::{Fault, SimulatedHost};
use crate::agent::installers::{BuiltinInstaller, Installer, Now, ProductTarget};
use crate::agent::products::{PRODUCT_FILE, ProductFile, backup_path};
use crate::api::host::UpdateType;
use crate::api::host::{OsStatus, PackageManagerKind};
use crate::api::patch_job::PackageType;
use crate::engine::packages::manifest::{Component, PackageManifest};

/// The process id the simulation gives another job holding the package manager.
const OTHER_JOB_PID: u32 = 4242;

/// Why a simulated machine could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("setting up the simulated host {host}: {message}")]
pub struct SetupError {
    /// The host (or `repository`).
    pub host: String,
    /// What went wrong.
    pub message: String,
}

fn setup(host: &str) -> impl Fn(String) -> SetupError + '_ {
    move |message| SetupError {
        host: host.to_string(),
        message,
    }
}

/// Builds the fleet's repository as `.pak` files under `dir`, each at its `source`.
pub fn build_repository(dir: &Path, repository: &[FleetPackage]) -> Result<(), SetupError> {
    let work = dir.join(".src");
    for package in repository {
        pak(&work, &dir.join(&package.source), &manifest(package)).map_err(setup("repository"))?;
    }
    Ok(())
}

fn manifest(package: &FleetPackage) -> PackageManifest {
    PackageManifest {
        id: package.id.clone(),
        type_: package.type_,
        product: package.product.clone(),
        applies_to: package.applies_to.clone(),
        version: package.version.clone(),
        description: None,
        fixes: package.fixes.clone(),
        components: vec![Component {
            name: package.id.clone(),
            update_type: UpdateType::Add,
            files: vec![format!("lib/upkeep-sim/{}.txt", package.id)],
        }],
    }
}

/// Builds the package `manifest` (one added file per component) into `out`.
fn pak(work: &Path, out: &Path, manifest: &PackageManifest) -> Result<(), String> {
    let src = work.join(&manifest.id);
    let fail = |e: std::io::Error| format!("{}: {e}", src.display());
    for component in &manifest.components {
        for file in &component.files {
            let path = src.join("files").join(file);
            std::fs::create_dir_all(path.parent().unwrap_or(&src)).map_err(fail)?;
            std::fs::write(&path, format!("{}\n", manifest.id)).map_err(fail)?;
        }
    }
    let yaml = serde_saphyr::to_string(manifest).map_err(|e| e.to_string())?;
    std::fs::write(src.join("package.yaml"), yaml).map_err(fail)?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    crate::pak::build::build(&src, out).map_err(|e| e.to_string())?;
    Ok(())
}

/// The machine of `host`, with its root (for products) under `root`; `now` is the simulation's
/// clock; must run on the simulation's runtime (the busy lock counts from now).
pub fn machine(
    host: &FleetHost,
    repository: &[FleetPackage],
    root: &Path,
    start: Timestamp,
    now: Now,
) -> Result<SimulatedHost, SetupError> {
    let sim = SimulatedHost::new(&host.name);
    for name in &host.installed {
        sim.install_package(name, "");
    }
    for update in &host.updates {
        sim.install_package(&update.name, update.from.clone().unwrap_or_default());
        sim.offer(
            &update.name,
            &update.to,
            update.security,
            update.reboot_required,
        );
    }
    let manager = host.os.package_manager();
    sim.set_os(OsStatus {
        id: host.os.id.clone(),
        version_id: host.os.version_id.clone(),
        pretty_name: format!("{} {} (simulated)", host.os.id, host.os.version_id),
        kernel: "6.1.0-sim".into(),
        arch: "amd64".into(),
        package_manager: manager,
    });
    let timings = &host.timings;
    sim.set_durations(timings.download.get(), timings.install.get())
        .set_action_time(timings.action.get());
    for (step, fault) in [
        (HostFaultStep::Download, Fault::Download),
        (HostFaultStep::Install, Fault::Install),
        (HostFaultStep::PreAction, Fault::PreAction),
        (HostFaultStep::PostAction, Fault::PostAction),
        (HostFaultStep::Reboot, Fault::Reboot),
    ] {
        match host.fault(step) {
            Some(HostFaultKind::Error) => {
                sim.set_fault(fault, Some(&error_line(fault, manager)));
            }
            Some(HostFaultKind::Hang) => {
                sim.hang(fault);
            }
            None => {}
        }
    }
    if let Some(job) = &host.running_job {
        let until = tokio::time::Instant::now() + host.busy_for().get();
        sim.hold_lock_until(&format!("process {OTHER_JOB_PID} ({job})"), until);
    }
    if !host.products.is_empty() {
        let root = root.join(host.namespace()).join(&host.name);
        products(host, repository, &root, start).map_err(setup(&host.name))?;
        sim.set_root(root, now);
    }
    Ok(sim)
}

/// The line a failing step reports, as the host's package manager (or init system) words it.
fn error_line(fault: Fault, manager: Option<PackageManagerKind>) -> String {
    let line = match (fault, manager) {
        (Fault::Download, Some(PackageManagerKind::Dnf)) => {
            "Error: Failed to download packages: Curl error (28): Timeout was reached"
        }
        (Fault::Download, Some(PackageManagerKind::Zypper)) => {
            "Download (curl) error: Timeout was reached"
        }
        (Fault::Download, _) => {
            "E: Failed to fetch http://deb.debian.org/debian: Connection timed out"
        }
        (Fault::Install, Some(PackageManagerKind::Dnf)) => {
            "Error: Transaction test error: file conflicts"
        }
        (Fault::Install, Some(PackageManagerKind::Zypper)) => {
            "Problem occurred during or after installation"
        }
        (Fault::Install, _) => "E: Sub-process /usr/bin/dpkg returned an error code (1)",
        (Fault::Reboot, _) => "systemctl reboot: Failed to reboot system via logind: Access denied",
        (_, _) => "exit status 1",
    };
    format!("{line} (simulated fault)")
}

/// Writes the host's products under `root`: each location's product file, and its installed
/// packages installed there by the builtin installer (their backups removed where the fleet
/// file says they have none).
fn products(
    host: &FleetHost,
    repository: &[FleetPackage],
    root: &Path,
    start: Timestamp,
) -> Result<(), String> {
    let installer = BuiltinInstaller::new(Arc::new(move || start));
    let work = root.join(".upkeep-sim");
    for product in &host.products {
        let location = product.location();
        let dir = root.join(location.trim_start_matches('/'));
        let file = ProductFile {
            id: product.id.clone(),
            name: product.name.clone().unwrap_or_else(|| product.id.clone()),
            version: product.version.clone(),
            extra: Default::default(),
        };
        write_product(&dir, &file)?;
        for installed in &product.packages {
            let entry = repository.iter().find(|r| r.id == installed.id);
            let mut package = entry.cloned().unwrap_or_else(|| FleetPackage {
                source: format!("{}.pak", installed.id),
                id: installed.id.clone(),
                type_: installed.type_,
                product: product.id.clone(),
                applies_to: ">=0".into(),
                version: None,
                fixes: Vec::new(),
                size: String::new(),
            });
            package.type_ = installed.type_;
            if package.type_ != PackageType::InterimFix {
                package.version = Some(product.version.clone());
            }
            let file_path = work.join(format!("{}.pak", installed.id));
            pak(&work, &file_path, &manifest(&package))?;
            let target = ProductTarget {
                id: product.id.clone(),
                location: dir.clone(),
            };
            let outcome = installer.install(&target, &file_path, Some(&installed.id));
            if outcome.events.is_empty() {
                return Err(format!(
                    "{} could not be put on {}: {}",
                    installed.id, product.id, outcome.run.message
                ));
            }
            if !installed.backup {
                let _ = std::fs::remove_file(dir.join(backup_path(&installed.id)));
            }
        }
        // The fleet file's version is the product's with its packages.
        write_product(&dir, &file)?;
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn write_product(dir: &Path, file: &ProductFile) -> Result<(), String> {
    let path: PathBuf = dir.join(PRODUCT_FILE);
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    std::fs::create_dir_all(path.parent().unwrap_or(dir)).map_err(fail)?;
    let yaml = serde_saphyr::to_string(file).map_err(|e| e.to_string())?;
    std::fs::write(&path, yaml).map_err(fail)
}
