//! The agent's half of a host task, as a sans-IO step: given the task as stored, the agent's
//! journal, what the last action observed and `now`, it moves the task on and asks for at most
//! one action. The agent performs the action (a package manager call, an action command, the
//! reboot), feeds the observation back, and writes the task's status and the journal when they
//! changed — the journal always before an action that changes the host (`persist_first`).
//!
//! The path of a started task: applicability (`2053`), `2044 Job Started`, the pre actions, the
//! selection of updates (or the job's packages), `2059 No Patch Available` when there is
//! neither anything to install nor an action, the download (`2031`), `2033 Patching`, the
//! reboot signal, `2034 Pending Reboot` when a reboot is due and the controller's grant, the
//! reboot, `2035 Rebooted` and `2045 Job Resumed` after boot, the post actions, `2036 Completed`.
//!
//! Invariants: no step that changes the host starts twice for one task — the journal records
//! each operation's key before it starts, and a restarted agent asks how that operation stands
//! instead of starting it again; one cut off without a result is a download or an install asked
//! for again with the same exact pins ([`Action::Rerun`]), a package recovered, an action failed
//! (never run twice) unless its job declares it safe to run again (`rerunIfInterrupted`: it is
//! run again), a reboot judged by the boot id; a package manager locked by someone else
//! keeps the task at `2057` (nothing visible changes, so nothing is written) and is tried again
//! every [`LOCK_RETRY`] until a try finds it free; no step starts at or after the window deadline the controller
//! gave with the start (`2037 Timed Out`, its reason naming the step), and none under way is
//! interrupted; a reboot runs only when the controller granted it, and its success is a new boot
//! id, never the agent's word.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::state::HostTask;
use crate::api::codes::{PackageResult, PatchCode, PatchReason};
use crate::api::host::RebootRequired;
use crate::api::patch_job::{Action as JobAction, Operation, PatchJobSpec, RebootPolicy};
use crate::api::upgrade_task::PackageOutcome;
use crate::engine::updates::{self, Pin, Update};

/// How long the agent waits before asking for the package manager's lock again.
pub const LOCK_RETRY: SignedDuration = SignedDuration::from_secs(60);
/// How often a running operation is polled.
pub const POLL_INTERVAL: SignedDuration = SignedDuration::from_secs(5);
/// How long a reboot may take to happen after the agent asked for it before it failed.
pub const REBOOT_TIMEOUT: SignedDuration = SignedDuration::from_mins(15);

/// The host as the applicability check sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Whether upkeep drives a package manager on this host's OS.
    pub package_manager: bool,
    /// The installed packages among the job's `patch.packages` globs (all of them when it
    /// names none).
    pub installed: Vec<String>,
    /// Install / Uninstall: why the job's packages do not apply to the host, if they do not.
    pub packages_not_applicable: Option<String>,
}

/// A host-changing operation, started once with its key and then polled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Run the pre action of this index.
    PreAction(usize),
    /// Run the post action of this index.
    PostAction(usize),
    /// Fetch the selected updates, or the job's packages.
    Download,
    /// Install the selected updates.
    Install,
    /// Install or uninstall the job's package of this index (in the order the job runs them).
    Package(usize),
    /// Reboot the host.
    Reboot,
}

impl Op {
    /// The operation's name in keys and messages.
    pub fn name(&self) -> String {
        match self {
            Self::PreAction(i) => format!("pre-{i}"),
            Self::PostAction(i) => format!("post-{i}"),
            Self::Download => "download".into(),
            Self::Install => "install".into(),
            Self::Package(i) => format!("package-{i}"),
            Self::Reboot => "reboot".into(),
        }
    }
}

/// What the agent is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read what applicability needs ([`Observation::Applicability`]).
    CheckApplicability,
    /// Ask the package manager which updates it offers ([`Observation::Updates`]).
    Scan,
    /// Start `op` with `key` (or report the one already started with it).
    Start {
        /// The operation.
        op: Op,
        /// Its idempotency key.
        key: String,
        /// For [`Op::Download`] and [`Op::Install`]: the exact versions.
        pins: Vec<Pin>,
    },
    /// Run `op` with `key` again: its earlier run was cut off and left no result. A download or
    /// an install asks for the same exact `pins` (the package manager skips the pins already in
    /// place, so nothing is installed twice, and what was cut off is completed); a maintenance
    /// package's product is recovered first, and a package found where the run leads is
    /// reported, not run again.
    Rerun {
        /// The operation.
        op: Op,
        /// Its key.
        key: String,
        /// For [`Op::Download`] and [`Op::Install`]: the exact versions.
        pins: Vec<Pin>,
    },
    /// Ask how the operation with `key` stands.
    Poll {
        /// The operation.
        op: Op,
        /// Its key.
        key: String,
    },
    /// Read the host's reboot signal ([`Observation::Reboot`]).
    ReadRebootSignal,
}

/// How a host-changing operation stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpStatus {
    /// Still running.
    Running,
    /// Done successfully.
    Done,
    /// An install or uninstall of a package finished with this result.
    Package(PackageOutcome),
    /// Failed; the text is the tool's own error line, or what went wrong.
    Failed(String),
    /// Someone else holds the package manager's lock (`process 1234 (apt-get)`).
    Locked(String),
    /// The operation was started (its start is on record) and left no result: it was cut off
    /// by a crash, a kill or a restart of the host, or it is a reboot waiting for the new boot.
    Unknown,
}

/// The answer to an [`Action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// For [`Action::CheckApplicability`].
    Applicability(HostFacts),
    /// For [`Action::Scan`]: the offered updates, or the package manager's error.
    Updates(Result<Vec<Update>, String>),
    /// For [`Action::Start`] and [`Action::Poll`].
    Op(Op, OpStatus),
    /// For [`Action::ReadRebootSignal`].
    Reboot(RebootRequired),
}

/// What the agent keeps on the host for one task (in its state directory), so that a crash or
/// the reboot resumes the task without running any host-changing step twice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// The key of the operation started and not yet finished, with the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<(Op, String)>,
    /// Operations finished, by name (`pre-0`, `download`, `install`, `package-1`, `post-0`…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
    /// The updates selected, fixed once chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pins: Option<Vec<Pin>>,
    /// Whether the reboot signal was read after the install.
    #[serde(default)]
    pub signal_read: bool,
    /// The boot id when the reboot was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_from: Option<String>,
    /// When the reboot was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_at: Option<Timestamp>,
    /// How often the install was tried again after finding the package manager locked (each
    /// try is an operation of its own).
    #[serde(default)]
    pub retries: u32,
    /// While the package manager's lock is held by someone else: when to try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Timestamp>,
}

impl Journal {
    fn is_done(&self, op: &Op) -> bool {
        self.done.contains(&op.name())
    }
}

/// What the step needs besides the task and the journal.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The task's identity (`namespace/name/uid`), the prefix of operation keys.
    pub task: &'a str,
    /// The PatchJob's spec.
    pub spec: &'a PatchJobSpec,
    /// The boot id of the running system.
    pub boot_id: &'a str,
}

impl Context<'_> {
    fn key(&self, op: &Op, journal: &Journal) -> String {
        match (op, journal.retries) {
            (Op::Download | Op::Install | Op::Package(_), n) if n > 0 => {
                format!("{}/{}-retry-{n}", self.task, op.name())
            }
            _ => format!("{}/{}", self.task, op.name()),
        }
    }

    fn pre(&self) -> &[JobAction] {
        self.spec.actions.as_ref().map_or(&[], |a| a.pre.as_slice())
    }

    fn post(&self) -> &[JobAction] {
        self.spec
            .actions
            .as_ref()
            .map_or(&[], |a| a.post.as_slice())
    }

    fn has_actions(&self) -> bool {
        !self.pre().is_empty() || !self.post().is_empty()
    }

    /// The job's action `op` stands for, when it is one.
    fn action(&self, op: &Op) -> Option<&JobAction> {
        match op {
            Op::PreAction(i) => self.pre().get(*i),
            Op::PostAction(i) => self.post().get(*i),
            _ => None,
        }
    }
}

/// The agent's next move.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// What to do now, if anything.
    pub action: Option<Action>,
    /// Write the journal (and the status) before performing the action.
    pub persist_first: bool,
    /// When to step again if nothing happens before.
    pub wake_at: Option<Timestamp>,
}

impl Step {
    fn act(action: Action) -> Self {
        Self {
            action: Some(action),
            ..Default::default()
        }
    }

    fn act_after_persist(action: Action) -> Self {
        Self {
            action: Some(action),
            persist_first: true,
            wake_at: None,
        }
    }

    fn wait(at: Timestamp) -> Self {
        Self {
            wake_at: Some(at),
            ..Default::default()
        }
    }

    fn idle() -> Self {
        Self::default()
    }
}

/// Whether [`step`] has anything to do for `task` now: not once it ended, nor while a task the
/// agent received waits for the controller's start grant. An agent need not read the task's job
/// (or anything else) for a task that has nothing to do; a change of the task is what gives it
/// something.
pub fn has_work(task: &HostTask) -> bool {
    !task.is_terminal() && (!task.progress.received || task.is_started())
}

/// Moves the task on by one step.
pub fn step(
    ctx: &Context<'_>,
    task: &mut HostTask,
    journal: &mut Journal,
    input: Option<Observation>,
    now: Timestamp,
) -> Step {
    if !has_work(task) {
        return Step::idle();
    }
    if !task.progress.received {
        task.progress.received = true;
        if task.code == PatchCode::Pending {
            task.enter(
                PatchCode::JobReceived,
                "the agent fetched the job; it runs when the rollout starts this host",
                now,
            );
        }
    }
    if !task.is_started() {
        // Waiting for the controller's start grant.
        return Step::idle();
    }
    match input {
        Some(Observation::Applicability(facts)) => return applicability(ctx, task, &facts, now),
        Some(Observation::Updates(offered)) => return selected(ctx, task, journal, offered, now),
        Some(Observation::Op(op, status)) => return operation(ctx, task, journal, op, status, now),
        Some(Observation::Reboot(signal)) => return reboot_signal(ctx, task, journal, signal, now),
        None => {}
    }
    next(ctx, task, journal, now)
}

/// What comes next, from the task's code and the journal.
fn next(ctx: &Context<'_>, task: &mut HostTask, journal: &mut Journal, now: Timestamp) -> Step {
    if let Some((op, key)) = journal.running.clone() {
        return Step::act(Action::Poll { op, key });
    }
    let begun = task
        .history
        .iter()
        .any(|(c, _)| *c == PatchCode::JobStarted);
    if !begun {
        return Step::act(Action::CheckApplicability);
    }
    match task.code {
        PatchCode::ExecutionBlocked => {
            // The package manager's lock was held: try again after a while, staying `2057`
            // (no write) until a try finds it free.
            let retry = journal
                .retry_at
                .unwrap_or_else(|| task.code_since() + LOCK_RETRY);
            if now < retry {
                return Step::wait(retry);
            }
            journal.retries += 1;
            journal.retry_at = None;
            work(ctx, task, journal, now)
        }
        PatchCode::PendingReboot | PatchCode::RebootDeferred => {
            after_reboot_due(ctx, task, journal, now)
        }
        _ => work(ctx, task, journal, now),
    }
}

fn applicability(
    ctx: &Context<'_>,
    task: &mut HostTask,
    facts: &HostFacts,
    now: Timestamp,
) -> Step {
    let not_applicable = match ctx.spec.operation {
        Operation::Patch if !facts.package_manager => {
            Some("upkeep drives no package manager on this host's operating system".to_string())
        }
        Operation::Patch => {
            let wanted = ctx
                .spec
                .patch
                .as_ref()
                .map_or(&[][..], |p| p.packages.as_slice());
            (!wanted.is_empty() && facts.installed.is_empty()).then(|| {
                format!(
                    "none of the job's packages ({}) is installed",
                    wanted.join(", ")
                )
            })
        }
        Operation::Install | Operation::Uninstall => facts.packages_not_applicable.clone(),
    };
    if let Some(why) = not_applicable {
        task.end(
            PatchCode::NotApplicable,
            Some(PatchReason::NotApplicable),
            why,
            now,
        );
        return Step::idle();
    }
    task.enter(PatchCode::JobStarted, "the agent started the job", now);
    Step::wait(now)
}

/// The pre actions, the selection, the download and the install, in that order.
fn work(ctx: &Context<'_>, task: &mut HostTask, journal: &mut Journal, now: Timestamp) -> Step {
    for i in 0..ctx.pre().len() {
        let op = Op::PreAction(i);
        if !journal.is_done(&op) {
            return start(
                ctx,
                task,
                journal,
                op,
                Vec::new(),
                PatchReason::ActionOutsideWindow,
                now,
            );
        }
    }
    let pins = match (&journal.pins, ctx.spec.operation) {
        (Some(pins), _) => pins.clone(),
        (None, Operation::Patch) => return Step::act(Action::Scan),
        (None, _) => {
            journal.pins = Some(Vec::new());
            Vec::new()
        }
    };
    let packages = ctx.spec.operation != Operation::Patch;
    if pins.is_empty() && !packages && !ctx.has_actions() {
        task.end(
            PatchCode::NoPatchAvailable,
            None,
            "nothing to install and no action to run: the host is current",
            now,
        );
        return Step::idle();
    }
    if (!pins.is_empty() || packages) && !journal.is_done(&Op::Download) {
        return start(
            ctx,
            task,
            journal,
            Op::Download,
            pins,
            PatchReason::DownloadOutsideWindow,
            now,
        );
    }
    if packages {
        for i in 0..ctx.spec.packages.len() {
            let op = Op::Package(i);
            if !journal.is_done(&op) {
                return start(
                    ctx,
                    task,
                    journal,
                    op,
                    Vec::new(),
                    PatchReason::PatchingOutsideWindow,
                    now,
                );
            }
        }
    } else if !pins.is_empty() && !journal.is_done(&Op::Install) {
        return start(
            ctx,
            task,
            journal,
            Op::Install,
            pins,
            PatchReason::PatchingOutsideWindow,
            now,
        );
    }
    if !journal.signal_read {
        return Step::act(Action::ReadRebootSignal);
    }
    post_actions(ctx, task, journal, now)
}

/// Starts `op` unless the window closed (then the task times out for `late`); records it in
/// the journal first.
fn start(
    ctx: &Context<'_>,
    task: &mut HostTask,
    journal: &mut Journal,
    op: Op,
    pins: Vec<Pin>,
    late: PatchReason,
    now: Timestamp,
) -> Step {
    // An install waiting for the package manager's lock times out for that lock.
    let late = if task.code == PatchCode::ExecutionBlocked {
        PatchReason::AnotherJobRunning
    } else {
        late
    };
    if let Some(until) = &task.progress.until
        && now >= until.0
    {
        let what = match &op {
            Op::PreAction(_) => format!("pre action {}", name_of(ctx, &op)),
            Op::PostAction(_) => format!("post action {}", name_of(ctx, &op)),
            Op::Download => "the download".into(),
            Op::Install | Op::Package(_) => "the install".into(),
            Op::Reboot => "the reboot".into(),
        };
        task.end(
            PatchCode::TimedOut,
            Some(late),
            format!("the window closed at {} before {what} could start", until.0),
            now,
        );
        return Step::idle();
    }
    // A try after the lock was found held stays `2057` until it is seen free.
    if matches!(op, Op::Install | Op::Package(_)) && task.code != PatchCode::ExecutionBlocked {
        task.enter(PatchCode::Patching, "installing", now);
    }
    let key = ctx.key(&op, journal);
    journal.running = Some((op.clone(), key.clone()));
    Step::act_after_persist(Action::Start { op, key, pins })
}

fn name_of<'a>(ctx: &'a Context<'_>, op: &Op) -> &'a str {
    ctx.action(op).map_or("?", |a| a.name.as_str())
}

fn selected(
    ctx: &Context<'_>,
    task: &mut HostTask,
    journal: &mut Journal,
    offered: Result<Vec<Update>, String>,
    now: Timestamp,
) -> Step {
    let selection = ctx.spec.patch.clone().unwrap_or_default();
    match offered.map(|offered| updates::select(&selection, &offered)) {
        Ok(Ok(pins)) => {
            journal.pins = Some(pins);
            Step::wait(now)
        }
        Ok(Err(bad)) => {
            task.end(
                PatchCode::JobFailed,
                Some(PatchReason::InstallFailed),
                format!("the job's package selection cannot be used: {bad}"),
                now,
            );
            Step::idle()
        }
        Err(error) => {
            task.end(
                PatchCode::DownloadingFailed,
                Some(PatchReason::DownloadFailed),
                format!("the package manager could not list the updates: {error}"),
                now,
            );
            Step::idle()
        }
    }
}

fn operation(
    ctx: &Context<'_>,
    task: &mut HostTask,
    journal: &mut Journal,
    op: Op,
    status: OpStatus,
    now: Timestamp,
) -> Step {
    let blocked = task.code == PatchCode::ExecutionBlocked;
    match status {
        OpStatus::Running => {
            if blocked {
                // The lock was free: the retry runs.
                task.enter(PatchCode::Patching, "installing", now);
            }
            Step::wait(now + POLL_INTERVAL)
        }
        OpStatus::Unknown
            if op == Op::Reboot
                && !matches!(
                    task.code,
                    PatchCode::PendingReboot | PatchCode::RebootDeferred
                ) =>
        {
            // The task already resumed after the boot (the agent stopped before its journal
            // said so): the reboot is done, and it is not reported again.
            journal.running = None;
            if !journal.is_done(&Op::Reboot) {
                journal.done.push(Op::Reboot.name());
            }
            Step::wait(now)
        }
        OpStatus::Unknown if op == Op::Reboot => {
            // The reboot is judged by the boot id; an unknown answer changes nothing.
            after_reboot_due(ctx, task, journal, now)
        }
        OpStatus::Unknown
            if matches!(op, Op::Download | Op::Install | Op::Package(_))
                || ctx.action(&op).is_some_and(|a| a.rerun_if_interrupted) =>
        {
            // Cut off: asked for again with the same pins (see `Action::Rerun`), or an action
            // its job declares safe to run again.
            let key = match &journal.running {
                Some((running, key)) if *running == op => key.clone(),
                _ => ctx.key(&op, journal),
            };
            journal.running = Some((op.clone(), key.clone()));
            let pins = match op {
                Op::Download | Op::Install => journal.pins.clone().unwrap_or_default(),
                _ => Vec::new(),
            };
            Step::act(Action::Rerun { op, key, pins })
        }
        OpStatus::Unknown => {
            // An action started and gone without an answer: it is not run twice.
            journal.running = None;
            let message = format!(
                "{} was interrupted and left no result (the host may have restarted during it); check the host before running the job again",
                op.name()
            );
            fail(task, &op, message, now)
        }
        OpStatus::Done => {
            journal.running = None;
            journal.done.push(op.name());
            finished(ctx, task, journal, &op, now)
        }
        OpStatus::Package(outcome) => {
            journal.running = None;
            journal.done.push(op.name());
            let result: Option<PackageResult> =
                outcome.result.as_deref().and_then(|r| r.parse().ok());
            let ok = result == Some(PackageResult::Success);
            let reason = outcome.reason.as_deref().and_then(|r| r.parse().ok());
            let id = outcome.id.clone();
            task.packages.retain(|p| p.id != id);
            task.packages.push(outcome);
            if ok {
                if blocked {
                    task.enter(PatchCode::Patching, "installing", now);
                }
                Step::wait(now)
            } else {
                let reason = reason.unwrap_or(PatchReason::InstallFailed);
                task.end(
                    PatchCode::JobFailed,
                    Some(reason),
                    format!(
                        "package {id} ended {}",
                        result.map_or("without a result", PackageResult::name)
                    ),
                    now,
                );
                Step::idle()
            }
        }
        OpStatus::Failed(error) => {
            journal.running = None;
            fail(task, &op, error, now)
        }
        OpStatus::Locked(holder) => {
            journal.running = None;
            let retry = now + LOCK_RETRY;
            journal.retry_at = Some(retry);
            // Entered once: the same holder found again changes nothing visible (no write).
            task.enter(
                PatchCode::ExecutionBlocked,
                format!(
                    "the package manager is locked by {holder}: another job is running; the install is tried again while the window is open"
                ),
                now,
            );
            Step::wait(retry)
        }
    }
}

/// A step finished: where the task stands now.
fn finished(
    ctx: &Context<'_>,
    task: &mut HostTask,
    journal: &mut Journal,
    op: &Op,
    now: Timestamp,
) -> Step {
    match op {
        Op::Download => {
            let message = match ctx.spec.operation {
                Operation::Patch => format!(
                    "{} update(s) downloaded",
                    journal.pins.as_ref().map_or(0, Vec::len)
                ),
                _ => format!("{} package(s) fetched", ctx.spec.packages.len()),
            };
            task.enter(PatchCode::Downloaded, message, now);
        }
        Op::Install => task.enter(PatchCode::Patching, "the updates are installed", now),
        _ => {}
    }
    Step::wait(now)
}

fn fail(task: &mut HostTask, op: &Op, error: String, now: Timestamp) -> Step {
    let (code, reason, what) = match op {
        Op::PreAction(_) | Op::PostAction(_) => {
            (PatchCode::JobFailed, PatchReason::ActionFailed, op.name())
        }
        Op::Download => (
            PatchCode::DownloadingFailed,
            PatchReason::DownloadFailed,
            "the download".to_string(),
        ),
        Op::Install | Op::Package(_) => (
            PatchCode::JobFailed,
            PatchReason::InstallFailed,
            "the install".to_string(),
        ),
        Op::Reboot => (
            PatchCode::JobFailed,
            PatchReason::RebootFailed,
            "the reboot".to_string(),
        ),
    };
    task.end(code, Some(reason), format!("{what} failed: {error}"), now);
    Step::idle()
}

fn reboot_signal(
    ctx: &Context<'_>,
    task: &mut HostTask,
    journal: &mut Journal,
    signal: RebootRequired,
    now: Timestamp,
) -> Step {
    journal.signal_read = true;
    let policy = ctx.spec.reboot.policy;
    let required = signal == RebootRequired::Yes;
    let due = policy == RebootPolicy::Always || (policy == RebootPolicy::IfRequired && required);
    if due {
        task.progress.reboot_due = true;
        task.progress.boot_id = Some(ctx.boot_id.to_string());
        let why = if required {
            "the installed updates need a reboot"
        } else {
            "the job's reboot policy is Always"
        };
        task.enter(
            PatchCode::PendingReboot,
            format!("{why}; waiting for the reboot to be granted"),
            now,
        );
        return Step::idle();
    }
    if policy == RebootPolicy::Never && required {
        task.progress.released = true;
        task.progress.boot_id = Some(ctx.boot_id.to_string());
        task.enter(
            PatchCode::PendingReboot,
            "a reboot is needed and the reboot policy is Never: the task ends when the host boots by other means",
            now,
        );
        return Step::idle();
    }
    post_actions(ctx, task, journal, now)
}

/// A reboot is due: wait for the grant, reboot once, and resume after the boot.
fn after_reboot_due(
    ctx: &Context<'_>,
    task: &mut HostTask,
    journal: &mut Journal,
    now: Timestamp,
) -> Step {
    let before = task
        .progress
        .boot_id
        .clone()
        .or_else(|| journal.reboot_from.clone());
    if before.as_deref().is_some_and(|b| b != ctx.boot_id) {
        // A new boot: the reboot happened (granted, or by other means with policy Never).
        journal.running = None;
        if !journal.is_done(&Op::Reboot) {
            journal.done.push(Op::Reboot.name());
        }
        task.progress.released = false;
        task.enter(
            PatchCode::Rebooted,
            format!("the host booted again (boot id {})", ctx.boot_id),
            now,
        );
        task.enter(
            PatchCode::JobResumed,
            "the agent resumed the job after the reboot",
            now,
        );
        return Step::wait(now);
    }
    if !task.progress.reboot_granted {
        return Step::idle();
    }
    match journal.reboot_at {
        None => {
            let op = Op::Reboot;
            let key = ctx.key(&op, journal);
            journal.reboot_from = Some(ctx.boot_id.to_string());
            journal.reboot_at = Some(now);
            journal.running = Some((op.clone(), key.clone()));
            Step::act_after_persist(Action::Start {
                op,
                key,
                pins: Vec::new(),
            })
        }
        Some(asked) if now >= asked + REBOOT_TIMEOUT => {
            journal.running = None;
            task.end(
                PatchCode::JobFailed,
                Some(PatchReason::RebootFailed),
                format!(
                    "the host was asked to reboot at {asked} and still runs boot {} after {}",
                    ctx.boot_id,
                    crate::api::common::GoDuration(REBOOT_TIMEOUT.unsigned_abs())
                ),
                now,
            );
            Step::idle()
        }
        Some(asked) => Step::wait(asked + REBOOT_TIMEOUT),
    }
}

fn post_actions(
    ctx: &Context<'_>,
    task: &mut HostTask,
    journal: &mut Journal,
    now: Timestamp,
) -> Step {
    for i in 0..ctx.post().len() {
        let op = Op::PostAction(i);
        if !journal.is_done(&op) {
            return start(
                ctx,
                task,
                journal,
                op,
                Vec::new(),
                PatchReason::ActionOutsideWindow,
                now,
            );
        }
    }
    let message = match (
        ctx.spec.operation,
        journal.pins.as_ref().map_or(0, Vec::len),
    ) {
        (Operation::Patch, 0) => "no update to install; the actions ran".to_string(),
        (Operation::Patch, n) => format!("{n} update(s) installed"),
        (_, _) => format!("{} package(s) done", task.packages.len()),
    };
    task.end(PatchCode::Completed, None, message, now);
    Step::idle()
}

#[cfg(test)]
mod tests;
