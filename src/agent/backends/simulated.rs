//! A simulated host for `upkeep simulate` and tests: a deterministic, in-memory package manager
//! ([`SimulatedPackageManager`]), a rebooter that records each reboot and gives the host a new
//! boot id ([`SimulatedRebooter`]), actions that succeed unless told to fail, the facts of its
//! OS (Debian-like unless set), and its products read from a directory standing for its root
//! file system, changed by the real installers — all sharing one [`SimulatedHost`], and bundled
//! as a [`Machine`] by [`SimulatedHost::machine`], on which the real agent loop runs unchanged
//! (`upkeep simulate` runs one per fleet host).
//!
//! Faults are injected per operation ([`Fault`]): the scan, the download, the install, an
//! action or the reboot fails with a given line or hangs ([`SimulatedHost::hang`]), or the
//! package manager's lock is held by someone (until an instant). Operations take the configured
//! time on tokio's clock (the simulation's virtual clock).
//!
//! A reboot is like a real one: the call never returns to the running system (the machine goes
//! down; a harness drops the agent on [`SimulatedHost::boots`] changing and starts it again).
//!
//! Invariants: the same calls give the same results (no randomness, no wall clock); like the
//! real backends, an install of pins already installed at their version is a no-op, and a lock
//! held is reported before anything changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use std::path::{Path, PathBuf};

use super::{PackageError, PackageGlobs, PackageManager, Pin, RebootSignal, Update};
use crate::agent::actions::{ActionOutcome, ActionResult};
use crate::agent::installers::{self, InstallOutcome, Installer, Now, ProductTarget};
use crate::agent::machine::{ActionRunner, FactsSource, InstallerSource, Machine, RootFacts};
use crate::agent::reboot::{RebootError, Rebooter};
use crate::api::host::{
    HistoryEvent, HostProduct, OsStatus, PackageManagerKind, ProductStatus, RebootRequired,
};
use crate::api::patch_job::Action as JobAction;
use crate::engine::patch::agent::Op;

/// An operation a fault can be injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Listing the updates fails.
    Scan,
    /// The download fails.
    Download,
    /// The install fails.
    Install,
    /// The package manager's lock is held (downloads and installs report `Locked`).
    Lock,
    /// The reboot request is refused (a hang: accepted, and the host never goes down).
    Reboot,
    /// A pre action exits 1 with the line as its output (a hang: it runs past its timeout).
    PreAction,
    /// A post action, likewise.
    PostAction,
}

/// Something the simulated host did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimEvent {
    /// The updates were listed.
    Scan,
    /// These pins were downloaded.
    Download(Vec<Pin>),
    /// These pins were installed.
    Install(Vec<Pin>),
    /// The action of this name ran.
    Action(String),
    /// The host rebooted into this boot id.
    Reboot(String),
    /// A maintenance package of this id was installed or uninstalled (`true`: install).
    Package(String, bool),
}

#[derive(Clone, Debug)]
struct Offer {
    version: String,
    security: bool,
    reboot: bool,
}

struct SimState {
    name: String,
    installed: BTreeMap<String, String>,
    offers: BTreeMap<String, Offer>,
    reboot_by: Vec<String>,
    boot: u64,
    faults: BTreeMap<Fault, String>,
    hangs: BTreeSet<Fault>,
    /// The lock fault ends at this instant.
    lock_until: Option<tokio::time::Instant>,
    failing_actions: BTreeSet<String>,
    /// Actions that ran to their end (an agent stopped mid-action cuts its action off).
    actions_ended: usize,
    events: Vec<SimEvent>,
    download_time: Duration,
    install_time: Duration,
    action_time: Duration,
    os: OsStatus,
    /// The directory standing for the root file system (products live under it).
    root: Option<PathBuf>,
    /// Where the installers read time.
    now: Now,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState")
            .field("name", &self.name)
            .field("boot", &self.boot)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// One simulated host; clones share it.
#[derive(Clone, Debug)]
pub struct SimulatedHost {
    state: Arc<Mutex<SimState>>,
    boots: Arc<tokio::sync::watch::Sender<u64>>,
}

impl SimulatedHost {
    /// A host named `name` with nothing installed, on its first boot, with downloads and
    /// installs that take 30 s and 2 min.
    pub fn new(name: impl Into<String>) -> Self {
        let (boots, _) = tokio::sync::watch::channel(1);
        Self {
            state: Arc::new(Mutex::new(SimState {
                name: name.into(),
                installed: BTreeMap::new(),
                offers: BTreeMap::new(),
                reboot_by: Vec::new(),
                boot: 1,
                faults: BTreeMap::new(),
                hangs: BTreeSet::new(),
                lock_until: None,
                failing_actions: BTreeSet::new(),
                actions_ended: 0,
                events: Vec::new(),
                download_time: Duration::from_secs(30),
                install_time: Duration::from_secs(120),
                action_time: Duration::ZERO,
                os: OsStatus {
                    id: "debian".into(),
                    version_id: "12".into(),
                    pretty_name: "Debian GNU/Linux 12 (simulated)".into(),
                    kernel: "6.1.0-sim".into(),
                    arch: "amd64".into(),
                    package_manager: Some(PackageManagerKind::Apt),
                },
                root: None,
                now: Arc::new(jiff::Timestamp::now),
            })),
            boots: Arc::new(boots),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock cannot leave the state half-changed: every change is
        // one assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `package` installed at `version`.
    pub fn install_package(&self, package: impl Into<String>, version: impl Into<String>) -> &Self {
        self.lock().installed.insert(package.into(), version.into());
        self
    }

    /// Offers `version` of the installed `package`, as a security update or not; installing it
    /// flags a reboot when `reboot`.
    pub fn offer(
        &self,
        package: impl Into<String>,
        version: impl Into<String>,
        security: bool,
        reboot: bool,
    ) -> &Self {
        self.lock().offers.insert(
            package.into(),
            Offer {
                version: version.into(),
                security,
                reboot,
            },
        );
        self
    }

    /// Injects a fault (`Some(line)`: the operation fails with that line, or for [`Fault::Lock`]
    /// that holder holds the lock) or removes it (`None`).
    pub fn set_fault(&self, fault: Fault, line: Option<&str>) -> &Self {
        let mut state = self.lock();
        match line {
            Some(line) => state.faults.insert(fault, line.to_string()),
            None => state.faults.remove(&fault),
        };
        self
    }

    /// Makes `fault`'s operation hang: a download or an install never ends, an action runs
    /// past its timeout, a reboot is accepted and never happens.
    pub fn hang(&self, fault: Fault) -> &Self {
        self.lock().hangs.insert(fault);
        self
    }

    /// Holds the package manager's lock for `holder` until the instant `until` (tokio's clock).
    pub fn hold_lock_until(&self, holder: &str, until: tokio::time::Instant) -> &Self {
        let mut state = self.lock();
        state.faults.insert(Fault::Lock, holder.to_string());
        state.lock_until = Some(until);
        self
    }

    /// The operating system the host reports; with no package manager the machine has none.
    pub fn set_os(&self, os: OsStatus) -> &Self {
        self.lock().os = os;
        self
    }

    /// How long an action runs.
    pub fn set_action_time(&self, time: Duration) -> &Self {
        self.lock().action_time = time;
        self
    }

    /// The directory standing for the host's root file system: products are read from their
    /// locations under it and changed there by the real installers, which read time from
    /// `now`.
    pub fn set_root(&self, root: impl Into<PathBuf>, now: Now) -> &Self {
        let mut state = self.lock();
        state.root = Some(root.into());
        state.now = now;
        self
    }

    /// Makes the action named `name` exit 1.
    pub fn fail_action(&self, name: impl Into<String>) -> &Self {
        self.lock().failing_actions.insert(name.into());
        self
    }

    /// How long a download and an install take.
    pub fn set_durations(&self, download: Duration, install: Duration) -> &Self {
        let mut state = self.lock();
        state.download_time = download;
        state.install_time = install;
        self
    }

    /// The installed version of `package`.
    pub fn installed_version(&self, package: &str) -> Option<String> {
        self.lock().installed.get(package).cloned()
    }

    /// The boot id of the running boot.
    pub fn boot_id(&self) -> String {
        let state = self.lock();
        format!("{}-boot-{}", state.name, state.boot)
    }

    /// Whether the host needs a reboot now.
    pub fn reboot_required(&self) -> bool {
        !self.lock().reboot_by.is_empty()
    }

    /// Everything the host did, oldest first.
    pub fn events(&self) -> Vec<SimEvent> {
        self.lock().events.clone()
    }

    /// How many installs ran (no-op installs of pins already installed are not counted), with
    /// the maintenance packages installed or uninstalled.
    pub fn installs(&self) -> usize {
        self.count(|e| matches!(e, SimEvent::Install(_) | SimEvent::Package(..)))
    }

    /// How many actions were started and did not run to their end: the agent that ran them
    /// stopped (as a real agent's actions are killed with it) or was still waiting for them.
    pub fn actions_cut_off(&self) -> usize {
        let state = self.lock();
        let started = state
            .events
            .iter()
            .filter(|e| matches!(e, SimEvent::Action(_)))
            .count();
        started.saturating_sub(state.actions_ended)
    }

    /// How many reboots happened.
    pub fn reboots(&self) -> usize {
        self.count(|e| matches!(e, SimEvent::Reboot(_)))
    }

    fn count(&self, which: impl Fn(&SimEvent) -> bool) -> usize {
        self.lock().events.iter().filter(|e| which(e)).count()
    }

    /// The boot counter, changing at each reboot (a harness restarts the agent on a change, as
    /// the host's init system would).
    pub fn boots(&self) -> tokio::sync::watch::Receiver<u64> {
        self.boots.subscribe()
    }

    /// The host's package manager.
    pub fn package_manager(&self) -> SimulatedPackageManager {
        SimulatedPackageManager(self.clone())
    }

    /// The host's rebooter.
    pub fn rebooter(&self) -> SimulatedRebooter {
        SimulatedRebooter(self.clone())
    }

    /// The whole machine, for the agent loop.
    pub fn machine(&self) -> Machine {
        let packages = self.lock().os.package_manager.is_some();
        Machine {
            packages: packages.then(|| Arc::new(self.package_manager()) as Arc<dyn PackageManager>),
            rebooter: Arc::new(self.rebooter()),
            actions: Arc::new(self.clone()),
            facts: Arc::new(self.clone()),
            installers: Arc::new(self.clone()),
        }
    }

    fn pins_fault(&self, fault: Fault) -> Result<(), PackageError> {
        let state = self.lock();
        let held = state
            .lock_until
            .is_none_or(|until| tokio::time::Instant::now() < until);
        if let Some(holder) = state.faults.get(&Fault::Lock).filter(|_| held) {
            return Err(PackageError::Locked {
                holder: holder.clone(),
            });
        }
        match state.faults.get(&fault) {
            Some(line) => Err(PackageError::Failed { line: line.clone() }),
            None => Ok(()),
        }
    }
}

/// The simulated package manager (apt-like) of a [`SimulatedHost`].
#[derive(Clone, Debug)]
pub struct SimulatedPackageManager(SimulatedHost);

impl PackageManager for SimulatedPackageManager {
    fn kind(&self) -> PackageManagerKind {
        self.0
            .lock()
            .os
            .package_manager
            .unwrap_or(PackageManagerKind::Apt)
    }

    fn refresh_and_scan(&self) -> BoxFuture<'_, Result<Vec<Update>, PackageError>> {
        async move {
            let mut state = self.0.lock();
            if let Some(line) = state.faults.get(&Fault::Scan) {
                return Err(PackageError::Failed { line: line.clone() });
            }
            state.events.push(SimEvent::Scan);
            Ok(state
                .offers
                .iter()
                .filter_map(|(name, offer)| {
                    let from = state.installed.get(name)?;
                    (from != &offer.version).then(|| Update {
                        name: name.clone(),
                        from: Some(from.clone()),
                        to: offer.version.clone(),
                        security: offer.security,
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn installed<'a>(
        &'a self,
        globs: &'a PackageGlobs,
    ) -> BoxFuture<'a, Result<Vec<String>, PackageError>> {
        async move {
            Ok(self
                .0
                .lock()
                .installed
                .keys()
                .filter(|name| globs.matches(name))
                .cloned()
                .collect())
        }
        .boxed()
    }

    fn download<'a>(&'a self, pins: &'a [Pin]) -> BoxFuture<'a, Result<(), PackageError>> {
        async move {
            self.0.pins_fault(Fault::Download)?;
            let (time, hangs) = {
                let state = self.0.lock();
                (state.download_time, state.hangs.contains(&Fault::Download))
            };
            if hangs {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(time).await;
            self.0.lock().events.push(SimEvent::Download(pins.to_vec()));
            Ok(())
        }
        .boxed()
    }

    fn install<'a>(&'a self, pins: &'a [Pin]) -> BoxFuture<'a, Result<(), PackageError>> {
        async move {
            self.0.pins_fault(Fault::Install)?;
            let pending: Vec<Pin> = {
                let state = self.0.lock();
                pins.iter()
                    .filter(|p| state.installed.get(&p.name) != Some(&p.version))
                    .cloned()
                    .collect()
            };
            if pending.is_empty() {
                return Ok(());
            }
            let (time, hangs) = {
                let state = self.0.lock();
                (state.install_time, state.hangs.contains(&Fault::Install))
            };
            if hangs {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(time).await;
            let mut state = self.0.lock();
            for pin in &pending {
                state
                    .installed
                    .insert(pin.name.clone(), pin.version.clone());
                if state.offers.get(&pin.name).is_some_and(|o| o.reboot)
                    && !state.reboot_by.contains(&pin.name)
                {
                    state.reboot_by.push(pin.name.clone());
                }
            }
            state.events.push(SimEvent::Install(pending));
            Ok(())
        }
        .boxed()
    }

    fn reboot_required(&self) -> BoxFuture<'_, RebootSignal> {
        async move {
            let state = self.0.lock();
            RebootSignal {
                required: if state.reboot_by.is_empty() {
                    RebootRequired::No
                } else {
                    RebootRequired::Yes
                },
                by: state.reboot_by.clone(),
            }
        }
        .boxed()
    }
}

/// The simulated rebooter of a [`SimulatedHost`]: each reboot is recorded, clears the reboot
/// flag and starts a new boot (a new boot id); the call then never returns, as the running
/// system is gone.
#[derive(Clone, Debug)]
pub struct SimulatedRebooter(SimulatedHost);

impl Rebooter for SimulatedRebooter {
    fn reboot(&self) -> BoxFuture<'_, Result<(), RebootError>> {
        async move {
            let boot = {
                let mut state = self.0.lock();
                if let Some(line) = state.faults.get(&Fault::Reboot) {
                    return Err(RebootError::Refused(line.clone()));
                }
                if state.hangs.contains(&Fault::Reboot) {
                    return Ok(());
                }
                state.boot += 1;
                state.reboot_by.clear();
                let id = format!("{}-boot-{}", state.name, state.boot);
                state.events.push(SimEvent::Reboot(id));
                state.boot
            };
            self.0.boots.send_replace(boot);
            std::future::pending().await
        }
        .boxed()
    }
}

impl ActionRunner for SimulatedHost {
    fn run<'a>(
        &'a self,
        op: &'a Op,
        action: &'a JobAction,
    ) -> BoxFuture<'a, Result<ActionOutcome, String>> {
        async move {
            let phase = match op {
                Op::PostAction(_) => Fault::PostAction,
                _ => Fault::PreAction,
            };
            let (failing, hangs, time) = {
                let mut state = self.lock();
                state.events.push(SimEvent::Action(action.name.clone()));
                let failing = state.faults.get(&phase).cloned().or_else(|| {
                    state
                        .failing_actions
                        .contains(&action.name)
                        .then(|| "simulated failure".to_string())
                });
                (failing, state.hangs.contains(&phase), state.action_time)
            };
            if hangs {
                tokio::time::sleep(action.timeout.0).await;
                return Ok(ActionOutcome {
                    result: ActionResult::TimedOut,
                    output: String::new(),
                    elapsed: action.timeout.0,
                });
            }
            tokio::time::sleep(time).await;
            self.lock().actions_ended += 1;
            Ok(ActionOutcome {
                result: ActionResult::Exited(i32::from(failing.is_some())),
                output: failing.unwrap_or_default(),
                elapsed: time,
            })
        }
        .boxed()
    }
}

impl SimulatedHost {
    /// The facts of the root, when the host has one.
    fn root_facts(&self) -> Option<RootFacts> {
        self.lock()
            .root
            .clone()
            .map(|root| RootFacts { root: Some(root) })
    }
}

impl FactsSource for SimulatedHost {
    fn os(&self) -> Result<OsStatus, String> {
        Ok(self.lock().os.clone())
    }

    fn boot_id(&self) -> Result<String, String> {
        Ok(SimulatedHost::boot_id(self))
    }

    fn products(&self, products: &[HostProduct]) -> Vec<ProductStatus> {
        self.root_facts()
            .map(|f| f.products(products))
            .unwrap_or_default()
    }

    fn history(&self, products: &[HostProduct]) -> Vec<HistoryEvent> {
        self.root_facts()
            .map(|f| f.history(products))
            .unwrap_or_default()
    }

    fn location(&self, product: &HostProduct) -> PathBuf {
        match self.root_facts() {
            Some(facts) => facts.location(product),
            None => PathBuf::from(&product.location),
        }
    }
}

impl InstallerSource for SimulatedHost {
    fn installer(&self, product: &HostProduct) -> Box<dyn Installer> {
        let now = self.lock().now.clone();
        Box::new(Recording {
            inner: installers::for_product(product, now),
            host: self.clone(),
        })
    }
}

/// A real installer whose installs and uninstalls the host records.
struct Recording {
    inner: Box<dyn Installer>,
    host: SimulatedHost,
}

impl Recording {
    fn record(&self, outcome: InstallOutcome, install: bool) -> InstallOutcome {
        if !outcome.events.is_empty() {
            let id = outcome.run.id.clone();
            self.host.lock().events.push(SimEvent::Package(id, install));
        }
        outcome
    }
}

impl Installer for Recording {
    fn install(&self, product: &ProductTarget, package: &Path, id: Option<&str>) -> InstallOutcome {
        self.record(self.inner.install(product, package, id), true)
    }

    fn uninstall(&self, product: &ProductTarget, id: &str) -> InstallOutcome {
        self.record(self.inner.uninstall(product, id), false)
    }

    fn recover(&self, product: &ProductTarget) -> Result<Option<InstallOutcome>, String> {
        self.inner.recover(product)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(name: &str, version: &str) -> Pin {
        Pin {
            name: name.into(),
            version: version.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn installs_flag_reboots_and_a_reboot_starts_a_new_boot() {
        let host = SimulatedHost::new("web-1");
        host.install_package("kernel", "1.0")
            .install_package("tool", "1.0")
            .offer("kernel", "1.1", true, true)
            .offer("tool", "1.0", false, false);
        let pm = host.package_manager();
        let offered = pm.refresh_and_scan().await.unwrap();
        assert_eq!(offered.len(), 1, "tool is current: {offered:?}");
        assert!(offered[0].security);
        pm.install(&[pin("kernel", "1.1")]).await.unwrap();
        pm.install(&[pin("kernel", "1.1")]).await.unwrap();
        assert_eq!(host.installs(), 1, "the rerun is a no-op");
        assert_eq!(pm.reboot_required().await.required, RebootRequired::Yes);
        let mut boots = host.boots();
        let rebooter = host.rebooter();
        tokio::select! {
            _ = rebooter.reboot() => panic!("a reboot never returns to the running system"),
            changed = boots.changed() => changed.unwrap(),
        }
        assert_eq!(host.boot_id(), "web-1-boot-2");
        assert_eq!(*boots.borrow(), 2);
        assert_eq!(pm.reboot_required().await.required, RebootRequired::No);
    }

    #[tokio::test(start_paused = true)]
    async fn faults_fail_their_operation_and_a_held_lock_changes_nothing() {
        let host = SimulatedHost::new("web-1");
        host.install_package("libfoo", "1.0");
        host.set_fault(Fault::Lock, Some("process 42 (apt-get)"));
        let pm = host.package_manager();
        assert!(matches!(
            pm.install(&[pin("libfoo", "1.1")]).await,
            Err(PackageError::Locked { holder }) if holder == "process 42 (apt-get)"
        ));
        assert_eq!(host.installed_version("libfoo").as_deref(), Some("1.0"));
        host.set_fault(Fault::Lock, None)
            .set_fault(Fault::Download, Some("E: Failed to fetch"));
        assert_eq!(
            pm.download(&[pin("libfoo", "1.1")]).await,
            Err(PackageError::Failed {
                line: "E: Failed to fetch".into()
            })
        );
        host.set_fault(Fault::Reboot, Some("no"));
        assert!(host.rebooter().reboot().await.is_err());
        assert_eq!(host.reboots(), 0);
        // A lock held until an instant frees then.
        let until = tokio::time::Instant::now() + Duration::from_secs(600);
        host.set_fault(Fault::Download, None)
            .hold_lock_until("process 7 (unattended-upgr)", until);
        assert!(matches!(
            pm.download(&[pin("libfoo", "1.1")]).await,
            Err(PackageError::Locked { .. })
        ));
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(pm.download(&[pin("libfoo", "1.1")]).await, Ok(()));
    }
}
