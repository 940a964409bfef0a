//! A simulated host: the machine a simulated agent runs on, with a simulated package manager
//! (the fleet file's offered updates, installed as exact pins), a simulated installer of
//! maintenance packages (the engine's own rules of `engine::packages` applied to the products'
//! records, with the repository's packages) and a simulated rebooter (a new boot id after the
//! reboot time). It answers the agent engine's actions ([`Machine::answer`]) on virtual time.
//!
//! Invariants: an operation started with a key is started once: starting the same key again
//! answers how the first stands; nothing changes on the machine before an operation's time has
//! passed; the agent's journal (its state directory) survives a reboot; the same inputs give the
//! same answers.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::fleet_file::hosts::{FleetHost, FleetPackage, HostFaultKind, HostFaultStep};
use crate::api::codes::PackageResult;
use crate::api::common::GoDuration;
use crate::api::host::{
    HISTORY_LIMIT, HistoryAction, HistoryEvent, InstalledPackage, OsStatus, PackageManagerKind,
    ProductStatus, RebootRequired, UpdatesStatus,
};
use crate::api::patch_job::{Operation, PatchJobSpec};
use crate::api::upgrade_task::PackageOutcome;
use crate::engine::packages::plan::{
    self, Decision, EventNames, EventSubject, PackageInfo, Removal, Step as PackageStep,
};
use crate::engine::patch::agent::{Action, HostFacts, Journal, Observation, Op, OpStatus};
use crate::engine::targets::glob_pattern;
use crate::engine::updates::Pin;

/// The process id the simulation gives another job holding the package manager.
const OTHER_JOB_PID: u32 = 4242;

/// An operation started on the machine.
#[derive(Clone, Debug)]
struct Running {
    /// When it ends; `None` never (a hang).
    ends: Option<Timestamp>,
    /// How it ends.
    outcome: OpStatus,
    /// What it changes on the machine when it ends successfully.
    effect: Effect,
    /// Whether the effect was applied.
    applied: bool,
}

/// What an operation changes when it ends.
#[derive(Clone, Debug)]
enum Effect {
    None,
    Install(Vec<Pin>),
    Package { task: String, index: usize },
    Reboot,
}

/// A simulated host's machine.
#[derive(Debug)]
pub struct Machine {
    host: FleetHost,
    repository: Vec<FleetPackage>,
    /// When the simulation started (`agentOfflineFrom`, `busyFor` and `drainBlockedFor` count
    /// from here).
    start: Timestamp,
    boot: u32,
    /// While rebooting: when the system is up again.
    down_until: Option<Timestamp>,
    /// Installed package versions by name.
    installed: BTreeMap<String, String>,
    reboot_required: RebootRequired,
    reboot_required_by: Vec<String>,
    products: Vec<ProductStatus>,
    history: Vec<HistoryEvent>,
    ops: BTreeMap<String, Running>,
    /// The agent's journals by task (its state directory, kept across reboots).
    journals: BTreeMap<String, Journal>,
    /// Install / Uninstall: each task's package steps, fixed at its first package.
    steps: BTreeMap<String, Vec<PackageStep>>,
    /// Installs (of updates or packages) the agent asked to start and that ran.
    installs_started: usize,
    /// Reboots the agent asked to start.
    reboots_started: usize,
}

impl Machine {
    /// The machine of `host`, as the simulation starting at `start` finds it.
    pub fn new(host: &FleetHost, repository: &[FleetPackage], start: Timestamp) -> Self {
        let mut installed: BTreeMap<String, String> = host
            .installed
            .iter()
            .map(|name| (name.clone(), String::new()))
            .collect();
        for update in &host.updates {
            if let Some(from) = &update.from {
                installed.insert(update.name.clone(), from.clone());
            }
        }
        let products = host
            .products
            .iter()
            .map(|p| ProductStatus {
                id: p.id.clone(),
                name: p.name.clone().unwrap_or_else(|| p.id.clone()),
                version: p.version.clone(),
                location: p.location(),
                packages: p
                    .packages
                    .iter()
                    .map(|k| InstalledPackage {
                        id: k.id.clone(),
                        type_: k.type_,
                        installed_at: None,
                        backup: k.backup,
                        fixes: repository
                            .iter()
                            .find(|r| r.id == k.id)
                            .map(|r| r.fixes.clone())
                            .unwrap_or_default(),
                        previous_version: None,
                    })
                    .collect(),
            })
            .collect();
        Self {
            host: host.clone(),
            repository: repository.to_vec(),
            start,
            boot: 1,
            down_until: None,
            installed,
            reboot_required: RebootRequired::No,
            reboot_required_by: Vec::new(),
            products,
            history: Vec::new(),
            ops: BTreeMap::new(),
            journals: BTreeMap::new(),
            steps: BTreeMap::new(),
            installs_started: 0,
            reboots_started: 0,
        }
    }

    /// How many installs the agent asked to start (a refusal at once, for a held package
    /// manager lock or a package that does not apply, is none); a second ask with a known key
    /// counts again.
    pub fn installs_started(&self) -> usize {
        self.installs_started
    }

    /// How many reboots the agent asked to start; a second ask with a known key counts again.
    pub fn reboots_started(&self) -> usize {
        self.reboots_started
    }

    /// The host as the fleet file describes it.
    pub fn host(&self) -> &FleetHost {
        &self.host
    }

    /// The boot id of the running system.
    pub fn boot_id(&self) -> String {
        format!("{}-boot-{}", self.host.name, self.boot)
    }

    /// While the host reboots: when it is up again.
    pub fn down_until(&self, now: Timestamp) -> Option<Timestamp> {
        self.down_until.filter(|up| now < *up)
    }

    /// When the agent goes away for good, if it does.
    pub fn agent_gone_at(&self) -> Option<Timestamp> {
        self.host.agent_offline_from.map(|d| self.start + signed(d))
    }

    /// When the PodDisruptionBudget guarding the node's workload goes; `None` never (a drain
    /// fault), and no guard at all when the host has neither.
    pub fn drain_guard(&self) -> Option<Option<Timestamp>> {
        if self.host.fault(HostFaultStep::Drain).is_some() {
            return Some(None);
        }
        self.host
            .drain_blocked_for
            .map(|d| Some(self.start + signed(d)))
    }

    /// The agent's journal for `task`.
    pub fn journal(&self, task: &str) -> Journal {
        self.journals.get(task).cloned().unwrap_or_default()
    }

    /// Keeps the agent's journal for `task`.
    pub fn keep_journal(&mut self, task: &str, journal: Journal) {
        self.journals.insert(task.to_string(), journal);
    }

    /// The operating system as the agent reports it.
    pub fn os(&self) -> OsStatus {
        let manager = self.host.os.package_manager();
        OsStatus {
            id: self.host.os.id.clone(),
            version_id: self.host.os.version_id.clone(),
            pretty_name: format!(
                "{} {} (simulated)",
                self.host.os.id, self.host.os.version_id
            ),
            kernel: self
                .installed_version("linux-image-amd64")
                .map_or_else(|| "6.1.0-sim".to_string(), |v| format!("{v}-amd64")),
            arch: "amd64".into(),
            package_manager: manager,
        }
    }

    fn installed_version(&self, name: &str) -> Option<String> {
        self.installed.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// The updates still offered.
    pub fn offered(&self) -> Vec<crate::engine::updates::Update> {
        self.host
            .updates
            .iter()
            .filter(|u| self.installed.get(&u.name) != Some(&u.to))
            .map(|u| crate::engine::updates::Update {
                name: u.name.clone(),
                from: self
                    .installed
                    .get(&u.name)
                    .cloned()
                    .filter(|v| !v.is_empty()),
                to: u.to.clone(),
                security: u.security,
            })
            .collect()
    }

    /// The updates summary of Host status.
    pub fn updates_status(&self, now: Timestamp) -> UpdatesStatus {
        let offered = self.offered();
        UpdatesStatus {
            available: u32::try_from(offered.len()).unwrap_or(u32::MAX),
            security: u32::try_from(offered.iter().filter(|u| u.security).count())
                .unwrap_or(u32::MAX),
            checked_at: Some(Time(now)),
        }
    }

    /// Whether the host needs a reboot, and the packages that say so.
    pub fn reboot_signal(&self) -> (RebootRequired, Vec<String>) {
        (self.reboot_required, self.reboot_required_by.clone())
    }

    /// The products as the agent reports them.
    pub fn products(&self) -> &[ProductStatus] {
        &self.products
    }

    /// The newest install and uninstall events (at most [`HISTORY_LIMIT`]).
    pub fn history(&self) -> &[HistoryEvent] {
        let from = self.history.len().saturating_sub(HISTORY_LIMIT);
        &self.history[from..]
    }

    /// Applies the effects of the operations whose time has come (a reboot included: the new
    /// boot starts when the reboot begins, and the host is down until its reboot time passed).
    pub fn advance(&mut self, now: Timestamp) {
        let due: Vec<String> = self
            .ops
            .iter()
            .filter(|(_, r)| !r.applied && r.ends.is_some_and(|e| e <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(running) = self.ops.get_mut(&key) else {
                continue;
            };
            running.applied = true;
            let effect = running.effect.clone();
            let ok = !matches!(running.outcome, OpStatus::Failed(_));
            if ok {
                let ended = running.ends.unwrap_or(now);
                if let Some(outcome) = self.apply(&effect, ended)
                    && let Some(r) = self.ops.get_mut(&key)
                {
                    r.outcome = OpStatus::Package(outcome);
                }
            }
        }
    }

    /// Answers one action of the agent engine for task `task` of a job with `spec`.
    pub fn answer(
        &mut self,
        task: &str,
        spec: &PatchJobSpec,
        action: Action,
        now: Timestamp,
    ) -> Observation {
        self.advance(now);
        let rerun = matches!(action, Action::Rerun { .. });
        match action {
            Action::CheckApplicability => Observation::Applicability(self.facts(task, spec, now)),
            Action::Scan => Observation::Updates(Ok(self.offered())),
            Action::ReadRebootSignal => Observation::Reboot(self.reboot_required),
            Action::Poll { op, key } => {
                let status = match self.ops.get(&key) {
                    Some(r) if r.ends.is_some_and(|e| e <= now) => r.outcome.clone(),
                    Some(_) => OpStatus::Running,
                    None => OpStatus::Unknown,
                };
                Observation::Op(op, status)
            }
            Action::Start { op, key, pins } | Action::Rerun { op, key, pins } => {
                let ran = if self.ops.contains_key(&key) {
                    // A Start again for a known key would be a second run (the journal lost);
                    // a Rerun of an interrupted operation asks how it stands.
                    !rerun
                } else {
                    let running = self.begin(task, spec, &op, pins, now);
                    let ran = !running.applied;
                    self.ops.insert(key.clone(), running);
                    self.advance(now);
                    ran
                };
                match op {
                    Op::Install | Op::Package(_) if ran => self.installs_started += 1,
                    Op::Reboot => self.reboots_started += 1,
                    _ => {}
                }
                let status = match self.ops.get(&key) {
                    Some(r) if r.ends.is_some_and(|e| e <= now) => r.outcome.clone(),
                    Some(_) => OpStatus::Running,
                    None => OpStatus::Unknown,
                };
                Observation::Op(op, status)
            }
        }
    }

    fn facts(&mut self, task: &str, spec: &PatchJobSpec, now: Timestamp) -> HostFacts {
        let wanted = spec
            .patch
            .as_ref()
            .map_or(&[][..], |p| p.packages.as_slice());
        let patterns: Vec<glob::Pattern> =
            wanted.iter().filter_map(|w| glob_pattern(w).ok()).collect();
        let installed = self
            .installed
            .keys()
            .filter(|name| patterns.is_empty() || patterns.iter().any(|p| p.matches(name)))
            .cloned()
            .collect();
        let packages_not_applicable = match spec.operation {
            Operation::Patch => None,
            Operation::Install | Operation::Uninstall => {
                let steps = self.package_steps(task, spec, now);
                let skipped: Vec<String> = steps
                    .iter()
                    .filter_map(|s| match &s.decision {
                        Decision::Skip(r) => Some(r.message.clone()),
                        _ => None,
                    })
                    .collect();
                (skipped.len() == steps.len()).then(|| {
                    if skipped.is_empty() {
                        "the job names no package".to_string()
                    } else {
                        skipped.join("; ")
                    }
                })
            }
        };
        HostFacts {
            package_manager: self.host.os.package_manager().is_some(),
            installed,
            packages_not_applicable,
        }
    }

    /// The package steps of `task`, planned once on the products as they are then.
    fn package_steps(
        &mut self,
        task: &str,
        spec: &PatchJobSpec,
        now: Timestamp,
    ) -> Vec<PackageStep> {
        if let Some(steps) = self.steps.get(task) {
            return steps.clone();
        }
        let steps = match spec.operation {
            Operation::Install => {
                let infos: Vec<PackageInfo> = spec.packages.iter().map(|p| self.info(p)).collect();
                plan::plan_install(&self.products, &infos, now)
            }
            _ => {
                let removals: Vec<Removal> = spec
                    .packages
                    .iter()
                    .map(|p| Removal {
                        id: p.id.clone(),
                        product: p.product.clone(),
                    })
                    .collect();
                plan::plan_uninstall(&self.products, &removals)
            }
        };
        self.steps.insert(task.to_string(), steps.clone());
        steps
    }

    /// What the engine knows of a job's package: the repository's entry for its source (or
    /// id), else what the job says of it (which applies to no version).
    fn info(&self, package: &crate::api::patch_job::MaintenancePackage) -> PackageInfo {
        let entry = self.repository.iter().find(|r| {
            package.source.as_deref().is_some_and(|s| s == r.source) || r.id == package.id
        });
        PackageInfo {
            id: package.id.clone(),
            type_: package.type_,
            product: package.product.clone(),
            applies_to: entry.map_or_else(|| ">=0".to_string(), |e| e.applies_to.clone()),
            version: entry.and_then(|e| e.version.clone()),
            fixes: entry.map(|e| e.fixes.clone()).unwrap_or_default(),
            components: Vec::new(),
        }
    }

    fn begin(
        &mut self,
        task: &str,
        spec: &PatchJobSpec,
        op: &Op,
        pins: Vec<Pin>,
        now: Timestamp,
    ) -> Running {
        let timings = self.host.timings.clone();
        let at = |d: GoDuration| Some(now + signed(d));
        let done = |ends, effect| Running {
            ends,
            outcome: OpStatus::Done,
            effect,
            applied: false,
        };
        let failed = |ends, error: String| Running {
            ends,
            outcome: OpStatus::Failed(error),
            effect: Effect::None,
            applied: false,
        };
        match op {
            Op::PreAction(i) | Op::PostAction(i) => {
                let (step, list) = match op {
                    Op::PreAction(_) => (
                        HostFaultStep::PreAction,
                        spec.actions.as_ref().map(|a| &a.pre),
                    ),
                    _ => (
                        HostFaultStep::PostAction,
                        spec.actions.as_ref().map(|a| &a.post),
                    ),
                };
                let action = list.and_then(|l| l.get(*i));
                let name = action.map_or("?", |a| a.name.as_str());
                let timeout = action.map_or(GoDuration::from_mins(10), |a| a.timeout);
                match self.host.fault(step) {
                    Some(HostFaultKind::Error) => failed(
                        at(timings.action),
                        format!("action {name} exited with code 1 (simulated fault)"),
                    ),
                    Some(HostFaultKind::Hang) => failed(
                        at(timeout),
                        format!("action {name} did not end within its timeout {timeout} and was killed"),
                    ),
                    None => done(at(timings.action), Effect::None),
                }
            }
            Op::Download => match self.host.fault(HostFaultStep::Download) {
                Some(HostFaultKind::Error) => failed(at(timings.download), self.download_error()),
                Some(HostFaultKind::Hang) => done(None, Effect::None),
                None => match self.missing_source(spec) {
                    Some(missing) => failed(at(timings.download), missing),
                    None => done(at(timings.download), Effect::None),
                },
            },
            Op::Install | Op::Package(_) => {
                if let Some(holder) = self.busy(now) {
                    return Running {
                        ends: Some(now),
                        outcome: OpStatus::Locked(holder),
                        effect: Effect::None,
                        applied: true,
                    };
                }
                match (self.host.fault(HostFaultStep::Install), op) {
                    (Some(HostFaultKind::Error), Op::Install) => {
                        failed(at(timings.install), self.install_error())
                    }
                    (Some(HostFaultKind::Hang), _) => done(None, Effect::None),
                    (_, Op::Package(index)) => {
                        let steps = self.package_steps(task, spec, now);
                        let step = steps.get(*index);
                        let refused = step.and_then(|s| match &s.decision {
                            Decision::Run => None,
                            Decision::Skip(r) | Decision::Refuse(r) => Some((s, r)),
                        });
                        if let Some((s, r)) = refused {
                            let result = matches!(s.decision, Decision::Refuse(_))
                                .then(|| PackageResult::Failure.name().to_string());
                            return Running {
                                ends: Some(now),
                                outcome: OpStatus::Package(PackageOutcome {
                                    id: s.id.clone(),
                                    result,
                                    reason: Some(r.reason.as_str().to_string()),
                                }),
                                effect: Effect::None,
                                applied: true,
                            };
                        }
                        let faulty = self.host.fault(HostFaultStep::Install).is_some();
                        let id = step.map_or_else(String::new, |s| s.id.clone());
                        Running {
                            ends: at(timings.install),
                            outcome: OpStatus::Package(PackageOutcome {
                                id,
                                result: Some(PackageResult::Failure.name().to_string()),
                                reason: Some("InstallFailed".into()),
                            }),
                            effect: if faulty {
                                Effect::None
                            } else {
                                Effect::Package {
                                    task: task.to_string(),
                                    index: *index,
                                }
                            },
                            applied: false,
                        }
                    }
                    (_, _) => done(at(timings.install), Effect::Install(pins)),
                }
            }
            Op::Reboot => match self.host.fault(HostFaultStep::Reboot) {
                Some(HostFaultKind::Error) => failed(
                    Some(now),
                    "systemctl reboot: Failed to reboot system via logind: Access denied (simulated fault)"
                        .into(),
                ),
                Some(HostFaultKind::Hang) => Running {
                    ends: None,
                    outcome: OpStatus::Running,
                    effect: Effect::None,
                    applied: false,
                },
                None => done(Some(now), Effect::Reboot),
            },
        }
    }

    fn busy(&self, now: Timestamp) -> Option<String> {
        let job = self.host.running_job.as_ref()?;
        let until = self.start + signed(self.host.busy_for());
        (now < until).then(|| format!("process {OTHER_JOB_PID} ({job})"))
    }

    fn download_error(&self) -> String {
        match self.host.os.package_manager() {
            Some(PackageManagerKind::Dnf) => {
                "Error: Failed to download packages: Curl error (28): Timeout was reached (simulated fault)".into()
            }
            Some(PackageManagerKind::Zypper) => {
                "Download (curl) error: Timeout was reached (simulated fault)".into()
            }
            _ => "E: Failed to fetch http://deb.debian.org/debian: Connection timed out (simulated fault)"
                .into(),
        }
    }

    fn install_error(&self) -> String {
        match self.host.os.package_manager() {
            Some(PackageManagerKind::Dnf) => {
                "Error: Transaction test error: file conflicts (simulated fault)".into()
            }
            Some(PackageManagerKind::Zypper) => {
                "Problem occurred during or after installation (simulated fault)".into()
            }
            _ => "E: Sub-process /usr/bin/dpkg returned an error code (1) (simulated fault)".into(),
        }
    }

    /// Install: the first package whose source the repository lacks.
    fn missing_source(&self, spec: &PatchJobSpec) -> Option<String> {
        if spec.operation != Operation::Install {
            return None;
        }
        spec.packages.iter().find_map(|p| {
            let source = p.source.as_deref().unwrap_or_default();
            (!self.repository.iter().any(|r| r.source == source)).then(|| {
                format!(
                    "package {}: {source:?} is not in the package repository (the fleet file's repository)",
                    p.id
                )
            })
        })
    }

    /// Applies an operation's effect at `at`; a package's outcome when it was one.
    fn apply(&mut self, effect: &Effect, at: Timestamp) -> Option<PackageOutcome> {
        match effect {
            Effect::None => None,
            Effect::Install(pins) => {
                for pin in pins {
                    self.installed.insert(pin.name.clone(), pin.version.clone());
                    let needs = self
                        .host
                        .updates
                        .iter()
                        .any(|u| u.name == pin.name && u.reboot_required);
                    if needs {
                        self.reboot_required = RebootRequired::Yes;
                        if !self.reboot_required_by.contains(&pin.name) {
                            self.reboot_required_by.push(pin.name.clone());
                        }
                    }
                }
                None
            }
            Effect::Reboot => {
                self.boot += 1;
                self.down_until = Some(at + signed(self.host.timings.reboot));
                self.reboot_required = RebootRequired::No;
                self.reboot_required_by.clear();
                None
            }
            Effect::Package { task, index } => {
                let step = self.steps.get(task)?.get(*index)?.clone();
                Some(self.run_package(&step, at))
            }
        }
    }

    fn run_package(&mut self, step: &PackageStep, end: Timestamp) -> PackageOutcome {
        let start = end - signed(self.host.timings.install);
        let spec_package = self.repository.iter().find(|r| r.id == step.id).cloned();
        let Some(at) = self.products.iter().position(|p| p.id == step.product) else {
            return PackageOutcome {
                id: step.id.clone(),
                result: Some(PackageResult::Failure.name().into()),
                reason: Some("NotApplicable".into()),
            };
        };
        let product = &self.products[at];
        let stamp = end.strftime("%Y%m%d_%H%M%S");
        let (next, verb) = match step.action {
            HistoryAction::Install => {
                let info = PackageInfo {
                    id: step.id.clone(),
                    type_: spec_package
                        .as_ref()
                        .map_or(crate::api::patch_job::PackageType::InterimFix, |p| p.type_),
                    product: step.product.clone(),
                    applies_to: spec_package
                        .as_ref()
                        .map_or_else(|| ">=0".into(), |p| p.applies_to.clone()),
                    version: spec_package.as_ref().and_then(|p| p.version.clone()),
                    fixes: spec_package
                        .as_ref()
                        .map(|p| p.fixes.clone())
                        .unwrap_or_default(),
                    components: Vec::new(),
                };
                (plan::after_install(product, &info, end), "install")
            }
            HistoryAction::Uninstall => (plan::after_uninstall(product, &step.id), "uninstall"),
        };
        let names = EventNames {
            primary_content: spec_package
                .as_ref()
                .map(|p| p.source.rsplit('/').next().unwrap_or(&p.source).to_string())
                .unwrap_or_else(|| format!("{}.pak", step.id)),
            log_name: format!("logs/update/{stamp}_{}_{verb}.log", step.id),
            backup_name: crate::agent::products::backup_path(&step.id),
        };
        let events = plan::history_events(
            EventSubject {
                product: &step.product,
                id: &step.id,
                components: &[],
            },
            step.action,
            PackageResult::Success,
            &names,
            start,
            end,
        );
        self.history.extend(events);
        self.products[at] = next;
        PackageOutcome {
            id: step.id.clone(),
            result: Some(PackageResult::Success.name().into()),
            reason: None,
        }
    }
}

fn signed(d: GoDuration) -> SignedDuration {
    SignedDuration::try_from(d.get()).unwrap_or(SignedDuration::MAX)
}
