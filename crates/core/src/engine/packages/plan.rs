//! What installing or uninstalling maintenance packages on a host does, decided without touching
//! it: whether each package applies, the order they run in, the product version after each,
//! the history events each adds, what happens after a failure, and the host task's code.
//!
//! Rules (docs/packages.md lists them with examples):
//! - Install applies when the product is on the host, its version is in `appliesTo`, the
//!   package is not installed yet, and a fix or refresh pack's `version` is above the product's
//!   version. Uninstall applies when the package is installed; it is refused (`failure`,
//!   `BackupMissing`) without its backup.
//! - Order: install runs refresh packs, then fix packs, then interim fixes, each group in the
//!   given order (a pack moves the version that interim fixes are built for); uninstall runs
//!   exactly the reverse. Each step is judged against the product as the steps before it leave
//!   it, so an interim fix for 9.0.5.23 applies after the fix pack that brings 9.0.5.23.
//! - A package that does not apply is skipped (no result, reason `NotApplicable`); a package
//!   that does not end `success` stops the job on the host and every later package ends
//!   `cancelled`.
//! - The task: any `failure` or `partialSuccess` → `2046 Job Failed` with that package's
//!   reason; every package skipped → `2053 Not Applicable`; otherwise packages cancelled by the
//!   window → `2037 Timed Out` (`PatchingOutsideWindow`); otherwise `2036 Completed`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use super::manifest::PackageManifest;
use super::version::{AppliesTo, DottedVersion};
use crate::api::codes::{PackageResult, PatchCode, UnknownCode};
use crate::api::host::{
    EventType, HistoryAction, HistoryEvent, InstalledPackage, ProductStatus, UpdateType,
};
use crate::api::patch_job::PackageType;
use crate::api::upgrade_task::PackageOutcome;

/// Why a package ended as it did or was not run, and why a host task failed or was skipped:
/// the CamelCase words of `UpgradeTask.status.reason` and `packages[].reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// The package does not apply to the product (absent, wrong version, already installed, or
    /// not installed for an uninstall).
    NotApplicable,
    /// An uninstall without the backup its install made.
    BackupMissing,
    /// Processes run from the product location.
    ProcessesRunning,
    /// The installer failed (the message has its error); the product was rolled back.
    InstallFailed,
    /// The package archive breaks a rule of the format (the message names the entry).
    InvalidPackage,
    /// An uninstall of a package whose files a package installed after it changed again.
    NewerPackageInstalled,
    /// The window closed before the package could start.
    PatchingOutsideWindow,
}

impl Reason {
    /// Every reason.
    pub const ALL: &'static [Reason] = &[
        Reason::NotApplicable,
        Reason::BackupMissing,
        Reason::ProcessesRunning,
        Reason::InstallFailed,
        Reason::InvalidPackage,
        Reason::NewerPackageInstalled,
        Reason::PatchingOutsideWindow,
    ];

    /// The word, e.g. `BackupMissing`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::NotApplicable => "NotApplicable",
            Reason::BackupMissing => "BackupMissing",
            Reason::ProcessesRunning => "ProcessesRunning",
            Reason::InstallFailed => "InstallFailed",
            Reason::InvalidPackage => "InvalidPackage",
            Reason::NewerPackageInstalled => "NewerPackageInstalled",
            Reason::PatchingOutsideWindow => "PatchingOutsideWindow",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_string()))
    }
}

/// One component of a package, as history records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentInfo {
    /// The component's name.
    pub name: String,
    /// How it changes the product.
    pub update_type: UpdateType,
}

/// What the engine needs to know of a package to install it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageInfo {
    /// The package id.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub type_: PackageType,
    /// The product it applies to.
    pub product: String,
    /// The versions it applies to, as written (`>=9.0.5.0 <9.0.6.0`).
    pub applies_to: String,
    /// Fix and refresh packs: the version after the install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The defects it fixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<String>,
    /// Its components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentInfo>,
}

impl From<&PackageManifest> for PackageInfo {
    fn from(m: &PackageManifest) -> Self {
        Self {
            id: m.id.clone(),
            type_: m.type_,
            product: m.product.clone(),
            applies_to: m.applies_to.clone(),
            version: m.version.clone(),
            fixes: m.fixes.clone(),
            components: m
                .components
                .iter()
                .map(|c| ComponentInfo {
                    name: c.name.clone(),
                    update_type: c.update_type,
                })
                .collect(),
        }
    }
}

/// Why a package does not apply, or is refused before it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The reason word.
    pub reason: Reason,
    /// A sentence naming the package, the product and the fact that decided.
    pub message: String,
}

impl Refusal {
    fn not_applicable(message: String) -> Self {
        Self {
            reason: Reason::NotApplicable,
            message,
        }
    }
}

/// Whether `package` can be installed on `product` (the host's product of that id, if any).
pub fn install_applicability(
    product: Option<&ProductStatus>,
    package: &PackageInfo,
) -> Result<(), Refusal> {
    let id = &package.id;
    let Some(product) = product else {
        return Err(Refusal::not_applicable(format!(
            "{id}: product {:?} is not on the host",
            package.product
        )));
    };
    if product.packages.iter().any(|p| p.id == *id) {
        return Err(Refusal::not_applicable(format!(
            "{id} is already installed on {}",
            product.id
        )));
    }
    let range: AppliesTo =
        package
            .applies_to
            .parse()
            .map_err(|e: super::version::VersionError| Refusal {
                reason: Reason::InvalidPackage,
                message: format!("{id}: appliesTo: {e}"),
            })?;
    let version: DottedVersion = product.version.parse().map_err(|_| {
        Refusal::not_applicable(format!(
            "{id}: {}'s version {:?} is not a dotted version, so appliesTo {:?} cannot hold",
            product.id, product.version, package.applies_to
        ))
    })?;
    if !range.matches(&version) {
        return Err(Refusal::not_applicable(format!(
            "{id} applies to {} {range}; the host has {}",
            product.id, product.version
        )));
    }
    if let Some(target) = &package.version {
        let target: DottedVersion = target.parse().map_err(|_| Refusal {
            reason: Reason::InvalidPackage,
            message: format!("{id}: version {target:?} is not a dotted version"),
        })?;
        if target <= version {
            return Err(Refusal::not_applicable(format!(
                "{id} leads to {target}; {} is already at {}",
                product.id, product.version
            )));
        }
    }
    Ok(())
}

/// Whether package `id` can be uninstalled from `product`: installed, with its backup.
pub fn uninstall_applicability<'a>(
    product: Option<&'a ProductStatus>,
    product_id: &str,
    id: &str,
) -> Result<&'a InstalledPackage, Refusal> {
    let Some(product) = product else {
        return Err(Refusal::not_applicable(format!(
            "{id}: product {product_id:?} is not on the host"
        )));
    };
    let installed = product
        .packages
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| Refusal::not_applicable(format!("{id} is not installed on {product_id}")))?;
    if !installed.backup {
        return Err(Refusal {
            reason: Reason::BackupMissing,
            message: format!("{id} cannot be uninstalled from {product_id}: its backup is missing"),
        });
    }
    Ok(installed)
}

/// The package installed after `target` that changed one of its files again, if any: such a
/// package must be uninstalled first, or restoring `target`'s backup would undo it too.
/// `installed` lists each installed package's id and the files it touched, oldest first.
pub fn blocking_package<'a>(
    target: &str,
    installed: &[(&'a str, &BTreeSet<String>)],
) -> Option<&'a str> {
    let at = installed.iter().position(|(id, _)| *id == target)?;
    let files = installed[at].1;
    installed[at + 1..]
        .iter()
        .find(|(_, later)| !later.is_disjoint(files))
        .map(|(id, _)| *id)
}

/// The product after `package` was installed at `at`: its version for a fix or refresh pack,
/// and the package in its list (with its backup).
pub fn after_install(
    product: &ProductStatus,
    package: &PackageInfo,
    at: Timestamp,
) -> ProductStatus {
    let mut next = product.clone();
    let previous_version = package.version.as_ref().map(|_| product.version.clone());
    if let Some(version) = &package.version {
        next.version = version.clone();
    }
    next.packages.retain(|p| p.id != package.id);
    next.packages.push(InstalledPackage {
        id: package.id.clone(),
        type_: package.type_,
        installed_at: Some(Time(at)),
        backup: true,
        fixes: package.fixes.clone(),
        previous_version,
    });
    next
}

/// The product after package `id` was uninstalled: out of the list, and a fix or refresh pack's
/// previous version restored.
pub fn after_uninstall(product: &ProductStatus, id: &str) -> ProductStatus {
    let mut next = product.clone();
    if let Some(at) = next.packages.iter().position(|p| p.id == id) {
        let removed = next.packages.remove(at);
        if let Some(previous) = removed.previous_version {
            next.version = previous;
        }
    }
    next
}

/// One package of a job on one host, in the order it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Its position in the job's list of packages.
    pub index: usize,
    /// The package id.
    pub id: String,
    /// The product id.
    pub product: String,
    /// Install or uninstall.
    pub action: HistoryAction,
    /// Run it, skip it, or end it without running.
    pub decision: Decision,
    /// The product's version before the step (as the earlier steps leave it), if on the host.
    pub version_before: Option<String>,
    /// The product's version after the step, if it runs and succeeds.
    pub version_after: Option<String>,
}

/// What happens to a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The installer runs it.
    Run,
    /// It does not apply: no result, reason `NotApplicable`.
    Skip(Refusal),
    /// It ends `failure` without running (e.g. `BackupMissing`).
    Refuse(Refusal),
}

fn rank(type_: PackageType) -> u8 {
    match type_ {
        PackageType::RefreshPack => 0,
        PackageType::FixPack => 1,
        PackageType::InterimFix => 2,
    }
}

/// The order packages install in: refresh packs, fix packs, then interim fixes, each group in
/// the given order. Returns indices into `types`.
pub fn install_order(types: &[PackageType]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..types.len()).collect();
    order.sort_by_key(|&i| rank(types[i]));
    order
}

/// The order packages uninstall in: the exact reverse of [`install_order`].
pub fn uninstall_order(types: &[PackageType]) -> Vec<usize> {
    let mut order = install_order(types);
    order.reverse();
    order
}

/// The steps of installing `packages` on a host with `products`, in the order they run, each
/// judged on the product as the steps before it leave it (assuming they succeed) at `at`.
pub fn plan_install(
    products: &[ProductStatus],
    packages: &[PackageInfo],
    at: Timestamp,
) -> Vec<Step> {
    let mut state = products.to_vec();
    let types: Vec<PackageType> = packages.iter().map(|p| p.type_).collect();
    install_order(&types)
        .into_iter()
        .map(|index| {
            let package = &packages[index];
            let current = state.iter().position(|p| p.id == package.product);
            let version_before = current.map(|i| state[i].version.clone());
            let decision = match install_applicability(current.map(|i| &state[i]), package) {
                Ok(()) => Decision::Run,
                Err(r) if r.reason == Reason::NotApplicable => Decision::Skip(r),
                Err(r) => Decision::Refuse(r),
            };
            let version_after = match (&decision, current) {
                (Decision::Run, Some(i)) => {
                    state[i] = after_install(&state[i], package, at);
                    Some(state[i].version.clone())
                }
                _ => None,
            };
            Step {
                index,
                id: package.id.clone(),
                product: package.product.clone(),
                action: HistoryAction::Install,
                decision,
                version_before,
                version_after,
            }
        })
        .collect()
}

/// A package to uninstall: its id and product. Its type comes from the product's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// The package id.
    pub id: String,
    /// The product id.
    pub product: String,
}

/// The steps of uninstalling `packages` from a host with `products`, in the order they run.
pub fn plan_uninstall(products: &[ProductStatus], packages: &[Removal]) -> Vec<Step> {
    let mut state = products.to_vec();
    let type_of = |r: &Removal| {
        products
            .iter()
            .find(|p| p.id == r.product)
            .and_then(|p| p.packages.iter().find(|i| i.id == r.id))
            .map_or(PackageType::InterimFix, |i| i.type_)
    };
    let types: Vec<PackageType> = packages.iter().map(type_of).collect();
    uninstall_order(&types)
        .into_iter()
        .map(|index| {
            let removal = &packages[index];
            let current = state.iter().position(|p| p.id == removal.product);
            let version_before = current.map(|i| state[i].version.clone());
            let verdict =
                uninstall_applicability(current.map(|i| &state[i]), &removal.product, &removal.id)
                    .map(|_| ());
            let decision = match verdict {
                Ok(()) => Decision::Run,
                Err(r) if r.reason == Reason::NotApplicable => Decision::Skip(r),
                Err(r) => Decision::Refuse(r),
            };
            let version_after = match (&decision, current) {
                (Decision::Run, Some(i)) => {
                    state[i] = after_uninstall(&state[i], &removal.id);
                    Some(state[i].version.clone())
                }
                _ => None,
            };
            Step {
                index,
                id: removal.id.clone(),
                product: removal.product.clone(),
                action: HistoryAction::Uninstall,
                decision,
                version_before,
                version_after,
            }
        })
        .collect()
}

/// How one package of a job ended on a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageRun {
    /// The package id.
    pub id: String,
    /// Its result; `None` when it was skipped (did not apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<PackageResult>,
    /// Why, when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// What happened, in a sentence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl PackageRun {
    /// A package that succeeded.
    pub fn success(id: &str, message: impl Into<String>) -> Self {
        Self {
            id: id.to_string(),
            result: Some(PackageResult::Success),
            reason: None,
            message: message.into(),
        }
    }

    /// A package that ended `result` for `reason`.
    pub fn ended(
        id: &str,
        result: PackageResult,
        reason: Reason,
        message: impl Into<String>,
    ) -> Self {
        Self {
            id: id.to_string(),
            result: Some(result),
            reason: Some(reason),
            message: message.into(),
        }
    }

    /// A package that did not apply.
    pub fn skipped(id: &str, refusal: &Refusal) -> Self {
        Self {
            id: id.to_string(),
            result: None,
            reason: Some(refusal.reason),
            message: refusal.message.clone(),
        }
    }
}

impl From<&PackageRun> for PackageOutcome {
    fn from(run: &PackageRun) -> Self {
        PackageOutcome {
            id: run.id.clone(),
            result: run.result.map(|r| r.name().to_string()),
            reason: run.reason.map(|r| r.as_str().to_string()),
        }
    }
}

/// What to do next in a job on one host, given the runs recorded so far (one per step, in
/// step order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// Run this step with the installer, then record its run.
    Run(&'a Step),
    /// Record this run without running anything (a skip, a refusal, or a cancellation after a
    /// failure).
    Record(PackageRun),
    /// Every step has its run: the host task ends with this outcome.
    Done(HostOutcome),
}

/// The next thing to do in a job: resumable, since it depends only on the steps and the runs
/// recorded so far.
pub fn next<'a>(steps: &'a [Step], runs: &[PackageRun]) -> Next<'a> {
    let Some(step) = steps.get(runs.len()) else {
        return Next::Done(host_outcome(runs));
    };
    if let Some(failed) = runs
        .iter()
        .find(|r| r.result.is_some_and(|r| r != PackageResult::Success))
    {
        return Next::Record(PackageRun {
            id: step.id.clone(),
            result: Some(PackageResult::Cancelled),
            reason: None,
            message: format!("{} did not run: {} ended before it", step.id, failed.id),
        });
    }
    match &step.decision {
        Decision::Run => Next::Run(step),
        Decision::Skip(refusal) => Next::Record(PackageRun::skipped(&step.id, refusal)),
        Decision::Refuse(refusal) => Next::Record(PackageRun::ended(
            &step.id,
            PackageResult::Failure,
            refusal.reason,
            refusal.message.clone(),
        )),
    }
}

/// Ends every step that has no run yet `cancelled` with `reason` (the window closed).
pub fn cancel_rest(steps: &[Step], runs: &mut Vec<PackageRun>, reason: Reason, message: &str) {
    for step in &steps[runs.len().min(steps.len())..] {
        runs.push(PackageRun::ended(
            &step.id,
            PackageResult::Cancelled,
            reason,
            format!("{}: {message}", step.id),
        ));
    }
}

/// How a host task ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostOutcome {
    /// The task's code.
    pub code: PatchCode,
    /// Its reason, for every code but `2036`.
    pub reason: Option<Reason>,
    /// The task's message.
    pub message: String,
}

/// The host task's code from its packages' runs (see the module's rules).
pub fn host_outcome(runs: &[PackageRun]) -> HostOutcome {
    let failed = runs.iter().find(|r| {
        matches!(
            r.result,
            Some(PackageResult::Failure | PackageResult::PartialSuccess)
        )
    });
    if let Some(run) = failed {
        let result = run.result.map_or("failure", PackageResult::name);
        return HostOutcome {
            code: PatchCode::JobFailed,
            reason: Some(run.reason.unwrap_or(Reason::InstallFailed)),
            message: format!("{} ended {result}: {}", run.id, run.message),
        };
    }
    if !runs.is_empty() && runs.iter().all(|r| r.result.is_none()) {
        let why: Vec<&str> = runs.iter().map(|r| r.message.as_str()).collect();
        return HostOutcome {
            code: PatchCode::NotApplicable,
            reason: Some(Reason::NotApplicable),
            message: why.join("; "),
        };
    }
    if let Some(run) = runs
        .iter()
        .find(|r| r.result == Some(PackageResult::Cancelled))
    {
        return HostOutcome {
            code: PatchCode::TimedOut,
            reason: Some(run.reason.unwrap_or(Reason::PatchingOutsideWindow)),
            message: run.message.clone(),
        };
    }
    let done = runs.iter().filter(|r| r.result.is_some()).count();
    let skipped = runs.len() - done;
    let mut message = format!("{done} package(s) done");
    if skipped > 0 {
        message.push_str(&format!(", {skipped} not applicable"));
    }
    HostOutcome {
        code: PatchCode::Completed,
        reason: None,
        message,
    }
}

/// The update type a package's own history event carries: the components' type when they all
/// share one, else `replace`.
pub fn package_update_type(components: &[ComponentInfo]) -> UpdateType {
    let mut types = components.iter().map(|c| c.update_type);
    match types.next() {
        Some(first) if types.all(|t| t == first) => first,
        _ => UpdateType::Replace,
    }
}

/// The names an event records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventNames {
    /// The package file, e.g. `9.0.5-WS-WAS-IFPH12345.pak`.
    pub primary_content: String,
    /// The update log's path.
    pub log_name: String,
    /// The backup's path.
    pub backup_name: String,
}

/// The package an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventSubject<'a> {
    /// The product id.
    pub product: &'a str,
    /// The package id.
    pub id: &'a str,
    /// The package's components.
    pub components: &'a [ComponentInfo],
}

/// What a product's history gains from one install or uninstall: the package's event, then one
/// event per component, every one with the package's result.
pub fn history_events(
    subject: EventSubject<'_>,
    action: HistoryAction,
    result: PackageResult,
    names: &EventNames,
    start: Timestamp,
    end: Timestamp,
) -> Vec<HistoryEvent> {
    let EventSubject {
        product,
        id,
        components,
    } = subject;
    let event = |event_type, id: &str, update_type, primary_content: &str| HistoryEvent {
        product: product.to_string(),
        event_type,
        id: id.to_string(),
        action,
        update_type: Some(update_type),
        primary_content: primary_content.to_string(),
        log_name: names.log_name.clone(),
        backup_name: names.backup_name.clone(),
        start_time: Some(Time(start)),
        end_time: Some(Time(end)),
        result: result.name().to_string(),
    };
    std::iter::once(event(
        EventType::Ptf,
        id,
        package_update_type(components),
        &names.primary_content,
    ))
    .chain(
        components
            .iter()
            .map(|c| event(EventType::Component, &c.name, c.update_type, "")),
    )
    .collect()
}

#[cfg(test)]
mod tests;
