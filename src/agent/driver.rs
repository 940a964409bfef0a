//! One host task driven through the engine's agent half (`engine::patch::agent::step`) on a
//! [`Machine`], with the task stored wherever a [`TaskStore`] keeps it: an UpgradeTask's status
//! (the agent, [`super::run`]) or memory (`upkeep host patch`).
//!
//! Order of writes, which is what makes a kill at any moment safe:
//! - before an operation starts (the engine's `persist_first`): the journal, then the task's
//!   status, then the operation's `started` record, then the operation;
//! - after it ended: its `result` record, then the task's status, then the journal.
//!
//! A restarted driver finds the operation in the journal and asks how it stands: a result
//! recorded is reported as is; no `started` record means it never began, and it is run now (the
//! only run it gets); a `started` record without a result is reported as cut off
//! ([`OpStatus::Unknown`]), and the engine decides: a download or an install of exact pins is
//! asked for again ([`Action::Rerun`]: the backend skips pins already in place, so nothing is
//! installed twice), an action fails the task (it is not run twice), and the reboot is judged
//! by the boot id. The driver runs an operation a second time only when the engine says
//! `Rerun`.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use jiff::Timestamp;

use super::backends::{PackageError, PackageGlobs, RebootSignal, Update};
use super::machine::Machine;
use super::package_job::PackageJob;
use super::state_dir::{OpRecord, Recorded, StateDir, StateError};
use crate::api::host::{HostProduct, RebootRequired};
use crate::api::patch_job::{Action as JobAction, Operation, PatchJobSpec};
use crate::clock::Clock;
use crate::engine::patch::agent::{self, Action, Context, HostFacts, Observation, Op, OpStatus};
use crate::engine::patch::state::HostTask;
use crate::engine::updates::Pin;

/// A point in the driver's work where a test (or the simulation) may stop it dead, as a kill
/// would: nothing more is written after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checkpoint {
    /// The journal naming `op` as running was written; the operation has not begun.
    JournalPersisted(Op),
    /// The operation's `started` record was written; the operation has not begun.
    OpStarted(Op),
    /// The operation ended and its result was recorded; the task's status does not show it yet.
    OpEnded(Op),
    /// The task's status with this code number was written.
    StatusWritten(u16),
}

/// Called at every [`Checkpoint`]; returning `true` stops the driver there.
pub type Hook = Arc<dyn Fn(&Checkpoint) -> bool + Send + Sync>;

/// Why driving a task stopped short.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The state directory could not be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// The machine's boot id cannot be read.
    #[error("{0}")]
    BootId(String),
    /// The store could not read or write the task.
    #[error("{0}")]
    Store(String),
}

/// How a store write went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saved {
    /// Written (or nothing to write).
    Done,
    /// Someone else changed the task first: read it again.
    Lost,
}

/// Where a task is kept.
pub trait TaskStore: Send {
    /// The task as stored now; `None` when it is gone.
    fn load(&mut self) -> BoxFuture<'_, Result<Option<HostTask>, DriveError>>;
    /// Writes `task` over the version last loaded or saved.
    fn save<'a>(&'a mut self, task: &'a HostTask) -> BoxFuture<'a, Result<Saved, DriveError>>;
}

/// How driving a task ended for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driven {
    /// The task ended.
    Terminal,
    /// Nothing to do until the task changes (a grant from the controller).
    Idle,
    /// Step again at this instant (or when the task changes).
    WakeAt(Timestamp),
    /// The task is gone.
    Gone,
    /// A hook stopped the driver.
    Halted,
}

/// What the driver last learnt about the machine, for the Host's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Learnt {
    /// The updates of the last scan, and when.
    pub updates: Option<(Vec<Update>, Timestamp)>,
    /// The last reboot signal read.
    pub reboot: Option<RebootSignal>,
}

/// Drives tasks on one machine.
#[derive(Clone)]
pub struct Driver {
    /// The machine.
    pub machine: Machine,
    /// The state directory.
    pub state: StateDir,
    /// Where time is read.
    pub clock: Clock,
    /// Checkpoint hook, if any.
    pub hook: Option<Hook>,
    /// Stop before the first operation that changes the host (a dry run).
    pub dry_run: bool,
    /// What was learnt about the machine while driving.
    pub learnt: Arc<Mutex<Learnt>>,
    /// The Host's products (its `spec.products`), which Install / Uninstall jobs act on.
    pub products: Arc<Mutex<Vec<HostProduct>>>,
    /// The package repository the packages' relative `source` is in.
    pub repository: Option<super::package_fetch::PackageRepository>,
}

impl Driver {
    /// A driver of tasks on `machine` keeping its records in `state`.
    pub fn new(machine: Machine, state: StateDir, clock: Clock) -> Self {
        Self {
            machine,
            state,
            clock,
            hook: None,
            dry_run: false,
            learnt: Arc::new(Mutex::new(Learnt::default())),
            products: Arc::new(Mutex::new(Vec::new())),
            repository: None,
        }
    }

    fn halt(&self, at: Checkpoint) -> bool {
        self.hook.as_ref().is_some_and(|hook| hook(&at))
    }

    /// The packages of the job `spec` for task `task`, on the Host's products.
    fn package_job<'a>(
        &'a self,
        task: &'a str,
        spec: &'a PatchJobSpec,
        products: &'a [HostProduct],
    ) -> PackageJob<'a> {
        PackageJob {
            spec,
            task,
            products,
            machine: &self.machine,
            state: &self.state,
            repository: self.repository.as_ref(),
        }
    }

    fn host_products(&self) -> Vec<HostProduct> {
        self.products.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn learn(&self, change: impl FnOnce(&mut Learnt)) {
        if let Ok(mut learnt) = self.learnt.lock() {
            change(&mut learnt);
        }
    }

    /// Writes `journal` of the task `key` to the state directory unless it equals `kept`, the
    /// copy the directory holds, and makes it the kept copy.
    fn keep_journal(
        &self,
        key: &str,
        journal: &agent::Journal,
        kept: &mut agent::Journal,
    ) -> Result<(), DriveError> {
        if journal != kept {
            self.state.save_journal(key, journal)?;
            kept.clone_from(journal);
        }
        Ok(())
    }

    /// Drives the task `key` (`namespace/name/uid`) of the job `spec` until it waits for
    /// something or ends.
    #[tracing::instrument(skip_all, fields(task = %key))]
    pub async fn drive(
        &self,
        key: &str,
        spec: &PatchJobSpec,
        store: &mut dyn TaskStore,
    ) -> Result<Driven, DriveError> {
        let Some(mut task) = store.load().await? else {
            return Ok(Driven::Gone);
        };
        let mut saved = task.clone();
        let mut journal = self.state.journal(key)?;
        // The journal as the state directory holds it: written again only when it changed.
        let mut kept = journal.clone();
        let mut input = None;
        loop {
            let boot_id = self.machine.facts.boot_id().map_err(DriveError::BootId)?;
            let ctx = Context {
                task: key,
                spec,
                boot_id: &boot_id,
            };
            let step = agent::step(
                &ctx,
                &mut task,
                &mut journal,
                input.take(),
                self.clock.now(),
            );
            if self.dry_run && matches!(step.action, Some(Action::Start { .. })) {
                return Ok(Driven::Halted);
            }
            if step.persist_first {
                self.keep_journal(key, &journal, &mut kept)?;
                if let Some(Action::Start { op, .. }) = &step.action
                    && self.halt(Checkpoint::JournalPersisted(op.clone()))
                {
                    return Ok(Driven::Halted);
                }
            }
            if task != saved {
                match store.save(&task).await? {
                    Saved::Done => {
                        saved = task.clone();
                        if self.halt(Checkpoint::StatusWritten(task.code.number())) {
                            return Ok(Driven::Halted);
                        }
                    }
                    Saved::Lost => {
                        // Decide again from the task as stored and the journal as kept.
                        let Some(fresh) = store.load().await? else {
                            return Ok(Driven::Gone);
                        };
                        task = fresh;
                        saved = task.clone();
                        journal = self.state.journal(key)?;
                        kept = journal.clone();
                        continue;
                    }
                }
            }
            let Some(action) = step.action else {
                self.keep_journal(key, &journal, &mut kept)?;
                if task.is_terminal() {
                    return Ok(Driven::Terminal);
                }
                match step.wake_at {
                    Some(at) if at <= self.clock.now() => continue,
                    Some(at) => return Ok(Driven::WakeAt(at)),
                    None => return Ok(Driven::Idle),
                }
            };
            let package_started = matches!(
                action,
                Action::Start {
                    op: Op::Package(_),
                    ..
                }
            );
            match self.perform(key, spec, &journal, action).await? {
                // A package ran: return, so the Host's products and history are reported now;
                // its result is recorded, and the next drive reads it back (a poll).
                Some(Observation::Op(_, OpStatus::Package(_))) if package_started => {
                    return Ok(Driven::WakeAt(self.clock.now()));
                }
                Some(observation) => input = Some(observation),
                None => return Ok(Driven::Halted),
            }
        }
    }

    /// Performs one action; `None` when a hook stopped the driver.
    async fn perform(
        &self,
        key: &str,
        spec: &PatchJobSpec,
        journal: &agent::Journal,
        action: Action,
    ) -> Result<Option<Observation>, DriveError> {
        Ok(Some(match action {
            Action::CheckApplicability => {
                Observation::Applicability(self.applicability(key, spec).await)
            }
            Action::Scan => {
                let offered = match &self.machine.packages {
                    Some(pm) => pm.refresh_and_scan().await.map_err(|e| e.to_string()),
                    None => Err("upkeep drives no package manager on this host".to_string()),
                };
                if let Ok(updates) = &offered {
                    let now = self.clock.now();
                    self.learn(|l| l.updates = Some((updates.clone(), now)));
                }
                Observation::Updates(offered)
            }
            Action::ReadRebootSignal => {
                let signal = match &self.machine.packages {
                    Some(pm) => pm.reboot_required().await,
                    None => RebootSignal::unknown(),
                };
                let required = signal.required;
                self.learn(|l| l.reboot = Some(signal));
                Observation::Reboot(required)
            }
            Action::Start {
                op,
                key: op_key,
                pins,
            } => {
                return self.operation(key, spec, op, &op_key, &pins, false).await;
            }
            Action::Rerun {
                op,
                key: op_key,
                pins,
            } => {
                return self.operation(key, spec, op, &op_key, &pins, true).await;
            }
            Action::Poll { op, key: op_key } => {
                let pins = journal.pins.clone().unwrap_or_default();
                return self.operation(key, spec, op, &op_key, &pins, false).await;
            }
        }))
    }

    async fn applicability(&self, task: &str, spec: &PatchJobSpec) -> HostFacts {
        if spec.operation != Operation::Patch {
            let products = self.host_products();
            let job = self.package_job(task, spec, &products);
            return HostFacts {
                package_manager: self.machine.packages.is_some(),
                installed: Vec::new(),
                packages_not_applicable: job.not_applicable(self.clock.now()),
            };
        }
        let wanted = spec
            .patch
            .as_ref()
            .map_or(&[][..], |p| p.packages.as_slice());
        let installed = match (&self.machine.packages, wanted.is_empty()) {
            (Some(pm), false) => match PackageGlobs::new("spec.patch.packages", wanted) {
                Ok(globs) => pm.installed(&globs).await.unwrap_or_else(|error| {
                    tracing::warn!(%error, "the installed packages cannot be listed");
                    Vec::new()
                }),
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        };
        HostFacts {
            package_manager: self.machine.packages.is_some(),
            installed,
            packages_not_applicable: None,
        }
    }

    /// Starts `op` unless its records say it began, or reports how it stands; `rerun`: the
    /// engine asks to run again an operation that was cut off.
    async fn operation(
        &self,
        task: &str,
        spec: &PatchJobSpec,
        op: Op,
        key: &str,
        pins: &[Pin],
        rerun: bool,
    ) -> Result<Option<Observation>, DriveError> {
        let status = match self.state.op(task, key)? {
            OpRecord::Ended(recorded) => Some(recorded.status()),
            OpRecord::Started if rerun => self.finish_op(task, spec, &op, key, pins, true).await?,
            OpRecord::Started => Some(OpStatus::Unknown),
            OpRecord::NotStarted => {
                self.state.mark_started(task, key)?;
                if self.halt(Checkpoint::OpStarted(op.clone())) {
                    return Ok(None);
                }
                self.finish_op(task, spec, &op, key, pins, false).await?
            }
        };
        // `None`: a hook stopped the driver after the result was recorded.
        Ok(status.map(|status| Observation::Op(op, status)))
    }

    /// Runs `op` and records how it ended; `None` when a hook stopped the driver after that.
    async fn finish_op(
        &self,
        task: &str,
        spec: &PatchJobSpec,
        op: &Op,
        key: &str,
        pins: &[Pin],
        resumed: bool,
    ) -> Result<Option<OpStatus>, DriveError> {
        let status = self.run_op(task, spec, op, pins, resumed).await;
        if let Some(recorded) = Recorded::of(&status) {
            self.state.record_result(task, key, &recorded)?;
            if self.halt(Checkpoint::OpEnded(op.clone())) {
                return Ok(None);
            }
        }
        Ok(Some(status))
    }

    /// Runs one operation on the machine (`resumed`: a package's earlier run was cut off).
    async fn run_op(
        &self,
        task: &str,
        spec: &PatchJobSpec,
        op: &Op,
        pins: &[Pin],
        resumed: bool,
    ) -> OpStatus {
        let packages_job = spec.operation != Operation::Patch;
        let products = self.host_products();
        let job = self.package_job(task, spec, &products);
        match op {
            Op::PreAction(i) | Op::PostAction(i) => {
                let list = spec.actions.as_ref().map(|a| match op {
                    Op::PreAction(_) => &a.pre,
                    _ => &a.post,
                });
                match list.and_then(|l| l.get(*i)) {
                    Some(action) => self.action(op, action).await,
                    None => OpStatus::Failed(format!("{} is not in the job", op.name())),
                }
            }
            Op::Package(i) => job.package(*i, resumed, self.clock.now()).await,
            Op::Download if packages_job => job.fetch().await,
            Op::Download | Op::Install => {
                let Some(pm) = &self.machine.packages else {
                    return OpStatus::Failed(
                        "upkeep drives no package manager on this host".into(),
                    );
                };
                let done = if *op == Op::Download {
                    pm.download(pins).await
                } else {
                    pm.install(pins).await
                };
                match done {
                    Ok(()) => OpStatus::Done,
                    Err(PackageError::Locked { holder }) => OpStatus::Locked(holder),
                    Err(e) => OpStatus::Failed(e.to_string()),
                }
            }
            Op::Reboot => match self.machine.rebooter.reboot().await {
                Ok(()) => {
                    tracing::info!("the reboot was requested; the task resumes after the boot");
                    OpStatus::Running
                }
                Err(e) => OpStatus::Failed(e.to_string()),
            },
        }
    }

    async fn action(&self, op: &Op, action: &JobAction) -> OpStatus {
        match self.machine.actions.run(op, action).await {
            Ok(outcome) if outcome.succeeded() => OpStatus::Done,
            Ok(outcome) => OpStatus::Failed(outcome.summary(&action.name, action.timeout.0)),
            Err(error) => OpStatus::Failed(error),
        }
    }
}

/// The reboot signal learnt, as the Host reports it.
pub fn reboot_of(learnt: &Learnt) -> (RebootRequired, Vec<String>) {
    learnt
        .reboot
        .as_ref()
        .map_or((RebootRequired::Unknown, Vec::new()), |s| {
            (s.required, s.by.clone())
        })
}
