//! The firmware task state machine: validation, then execution step by step, with timeouts,
//! unquiesce on error, the post hook, and crash-safe resumption.
//!
//! The controller calls [`TaskState::step`] in a loop: each call takes what the last action
//! returned (or nothing, when time has passed), moves the task, and says what to do next, whether
//! the new state must be stored before doing it, and when to look again.

use jiff::{SignedDuration, Timestamp};

use super::observe::{
    Action, CallError, DeviceFamily, FaultKind, HookKind, HookStatus, ImageEntry, Observation,
    OpKind, OpStatus, Start,
};
use super::state::TaskState;
use super::validation::{Readings, Subject, Verdict, validate};
use super::version::same_version;
use crate::api::FirmwareUpgradeSpec;
use crate::api::codes::FirmwareCode;
use crate::api::codes::FirmwareCode::*;
use crate::api::upgrade_task::PendingOutcome;

/// The grace added to every quiesce and unquiesce timeout.
pub const QUIESCE_GRACE: SignedDuration = SignedDuration::from_mins(3);
pub use crate::engine::task::POLL_INTERVAL;
use crate::engine::task::{duration, later, poll_after};

/// What the engine needs besides the task's own state.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The parent resource's spec.
    pub spec: &'a FirmwareUpgradeSpec,
    /// A stable identity of the task (e.g. `namespace/name/uid`): operation keys and incident
    /// ids derive from it.
    pub task: &'a str,
    /// How the device is driven.
    pub family: DeviceFamily,
    /// Whether the Device object exists.
    pub device_exists: bool,
    /// The image's repository entry, if it is there.
    pub image: Option<&'a ImageEntry>,
}

/// What to do after a step: the next firmware action, whether to store the state first, and when
/// to look again.
pub type Step = crate::engine::task::Step<Action>;

/// The fixed facts of one device operation.
struct OpSpec {
    /// The code entered when the operation is requested.
    started: FirmwareCode,
    /// The code while waiting for it (the same for a restart).
    waiting: FirmwareCode,
    /// How long the step may take, from its first code.
    timeout: Option<(SignedDuration, FirmwareCode)>,
    /// The code when the device answers with an error or the call breaks.
    fault: fn(FaultKind) -> Option<FirmwareCode>,
    /// Whether the request must be stored before it is sent: for the steps a device cannot
    /// recognise as repeated (the restart, the upgrade), so a restarted controller polls instead
    /// of starting them again.
    persist_first: bool,
}

fn op_spec(op: OpKind, spec: &FirmwareUpgradeSpec) -> OpSpec {
    let quiesce = duration(spec.quiesce_timeout.get()) + QUIESCE_GRACE;
    match op {
        OpKind::FirstQuiesce => OpSpec {
            started: ExecutionFirstQuiesceStarted,
            waiting: ExecutionFirstQuiesceWaitingForQuiesce,
            timeout: Some((quiesce, ExecutionFirstQuiesceTimeoutOccurred)),
            fault: device_fault_internal,
            persist_first: false,
        },
        OpKind::Restart => OpSpec {
            started: ExecutionRestartWaitingForRestart,
            waiting: ExecutionRestartWaitingForRestart,
            timeout: Some((
                duration(spec.restart.timeout.get()),
                ExecutionRestartTimeoutOccurred,
            )),
            fault: device_fault_internal,
            persist_first: true,
        },
        OpKind::Upload => OpSpec {
            started: ExecutionUploadImageStarted,
            waiting: ExecutionWaitingForUploadImage,
            timeout: None,
            fault: |kind| match kind {
                FaultKind::Error => Some(ExecutionUploadImageError),
                FaultKind::Exception | FaultKind::Unreachable => {
                    Some(ExecutionUploadImageException)
                }
            },
            // Idempotent: started again with the same key, a device reports the upload it has,
            // and skips bytes it already holds with the same checksum.
            persist_first: false,
        },
        OpKind::SecondQuiesce => OpSpec {
            started: ExecutionSecondQuiesceStarted,
            waiting: ExecutionSecondQuiesceWaitingForQuiesce,
            timeout: Some((quiesce, ExecutionSecondQuiesceTimeoutOccurred)),
            fault: |kind| answered(kind, ExecutionSecondQuiesceExceptionOccurred),
            persist_first: false,
        },
        OpKind::Upgrade => OpSpec {
            started: ExecutionUpgradeStarted,
            waiting: ExecutionUpgradeWaitingForUpgrade,
            timeout: Some((
                duration(spec.upgrade_timeout.get()),
                ExecutionUpgradeTimeoutOccurred,
            )),
            fault: |kind| answered(kind, ExecutionUpgradeExceptionOccurred),
            persist_first: true,
        },
        OpKind::Unquiesce => OpSpec {
            started: ExecutionUnquiesceOnErrorStarted,
            waiting: ExecutionUnquiesceOnErrorWaitingForUnquiesce,
            timeout: Some((quiesce, ExecutionUnquiesceOnErrorTimeoutOccurred)),
            fault: |kind| answered(kind, ExecutionUnquiesceOnErrorExceptionOccurred),
            persist_first: false,
        },
    }
}

/// `code` for an error answer or a broken call; nothing (keep waiting) when the device does not
/// answer, as it may be restarting.
fn answered(kind: FaultKind, code: FirmwareCode) -> Option<FirmwareCode> {
    (kind != FaultKind::Unreachable).then_some(code)
}

/// Steps with no code of their own for a device fault (the first quiesce, the restart) end as an
/// internal exception whose message names the step.
fn device_fault_internal(kind: FaultKind) -> Option<FirmwareCode> {
    answered(kind, ExecutionFailedWithInternalException)
}

/// The operation a code belongs to, if it is one of an operation's codes.
fn op_of(code: FirmwareCode) -> Option<OpKind> {
    match code {
        ExecutionFirstQuiesceStarted | ExecutionFirstQuiesceWaitingForQuiesce => {
            Some(OpKind::FirstQuiesce)
        }
        ExecutionRestartWaitingForRestart => Some(OpKind::Restart),
        ExecutionUploadImageStarted | ExecutionWaitingForUploadImage => Some(OpKind::Upload),
        ExecutionSecondQuiesceStarted | ExecutionSecondQuiesceWaitingForQuiesce => {
            Some(OpKind::SecondQuiesce)
        }
        ExecutionUpgradeStarted | ExecutionUpgradeWaitingForUpgrade => Some(OpKind::Upgrade),
        ExecutionUnquiesceOnErrorStarted | ExecutionUnquiesceOnErrorWaitingForUnquiesce => {
            Some(OpKind::Unquiesce)
        }
        _ => None,
    }
}

impl TaskState {
    /// Advances the task with the answer to the last action (`None` when time passed), at `now`.
    /// `readings` holds device readings within one sequence of steps; it need not be stored.
    pub fn step(
        &mut self,
        ctx: &Context<'_>,
        readings: &mut Readings,
        input: Option<Observation>,
        now: Timestamp,
    ) -> Step {
        if self.is_terminal() {
            return Step::idle();
        }
        if let Some(Observation::Internal(detail)) = &input {
            return self.internal_failure(ctx, detail, now);
        }
        if self.progress.post_hook && self.progress.pending.is_some() {
            return self.post_hook(input, now);
        }
        match self.code {
            WaitingForPreValidation => self.validating(ctx, readings, input, now),
            ReadyForExecution => Step::idle(),
            SentToMdb => {
                self.enter(ExecutionStarted, "the executor took the task", now);
                self.begin_pre_checks(readings, now)
            }
            ExecutionStarted => self.begin_pre_checks(readings, now),
            code => {
                if let Some(step) = self.long_running(ctx, now) {
                    return step;
                }
                match code {
                    ExecutionPreChecksStarted => self.pre_checks(ctx, readings, input, now),
                    ExecutionWaitingForPreScript => self.pre_hook(ctx, input, now),
                    ExecutionWaitAfterRestartStarted => self.waiting_after_restart(ctx, now),
                    code => match op_of(code) {
                        Some(op) => self.operation(ctx, op, readings, input, now),
                        None => {
                            self.internal_failure(ctx, &format!("no step handles code {code}"), now)
                        }
                    },
                }
            }
        }
    }

    // ---- validation ----

    fn validating(
        &mut self,
        ctx: &Context<'_>,
        readings: &mut Readings,
        input: Option<Observation>,
        now: Timestamp,
    ) -> Step {
        let deadline = later(self.created_at, duration(ctx.spec.max_wait.get()));
        if now >= deadline {
            let message = format!(
                "not started within maxWait ({}) of its creation",
                ctx.spec.max_wait
            );
            self.end(ExecutionCanceledBecauseADayPassed, message, None, now);
            return Step::idle();
        }
        let mut hook = None;
        match input {
            Some(Observation::Facts(r)) => readings.facts = Some(r),
            Some(Observation::Licenses(r)) => readings.licenses = Some(r),
            Some(Observation::DomainStatus(r)) => readings.domains = Some(r),
            Some(Observation::Hook(HookKind::PrePlan, status)) => hook = Some(status),
            Some(other) => {
                return self.internal_failure(
                    ctx,
                    &format!("unexpected answer while validating: {other:?}"),
                    now,
                );
            }
            None => {}
        }
        if self.progress.target_version.is_none() {
            let subject = Subject {
                spec: ctx.spec,
                family: ctx.family,
                device_exists: ctx.device_exists,
                image: ctx.image,
            };
            match validate(subject, readings) {
                Verdict::Need(action) => return Step::act(action),
                Verdict::Fail(failure) => {
                    let incident = Self::incident(failure.code, ctx.task, now);
                    self.end(failure.code, failure.message, incident, now);
                    return Step::idle();
                }
                Verdict::Pass(passed) => {
                    self.progress.device_firmware = Some(passed.device_firmware);
                    self.progress.target_version = Some(passed.target_version);
                }
            }
        }
        if ctx
            .spec
            .hooks
            .as_ref()
            .is_some_and(|h| h.pre_plan.is_some())
        {
            match hook {
                None => return Step::act(Action::Hook(HookKind::PrePlan)),
                Some(HookStatus::Running) => {
                    return Step::wait_until(later(now, POLL_INTERVAL).min(deadline));
                }
                Some(HookStatus::Failed(why)) => {
                    self.end(
                        PlanFailedPreScript,
                        format!("the prePlan hook failed: {why}"),
                        None,
                        now,
                    );
                    return Step::idle();
                }
                Some(HookStatus::Succeeded) => {}
            }
        }
        let message = format!(
            "validated: {} → {}; waiting for a rollout slot and an open window",
            self.progress.device_firmware.as_deref().unwrap_or("?"),
            self.progress.target_version.as_deref().unwrap_or("?")
        );
        self.enter(ReadyForExecution, message, now);
        Step::idle()
    }

    // ---- execution ----

    fn long_running(&mut self, ctx: &Context<'_>, now: Timestamp) -> Option<Step> {
        let started = self.started_at?;
        let limit = duration(ctx.spec.max_run_duration.get());
        if now < later(started, limit) || self.progress.pending.is_some() {
            return None;
        }
        let message = format!(
            "executing for longer than maxRunDuration ({}); the device may still be busy",
            ctx.spec.max_run_duration
        );
        Some(self.fail(ctx, ExecutionFailedLongRunning, message, now))
    }

    fn begin_pre_checks(&mut self, readings: &mut Readings, now: Timestamp) -> Step {
        *readings = Readings::default();
        self.progress.step_since = Some(k8s_time(now));
        self.enter(
            ExecutionPreChecksStarted,
            "checking the device again before changing it",
            now,
        );
        Step::act(Action::ReadFacts)
    }

    fn pre_checks(
        &mut self,
        ctx: &Context<'_>,
        readings: &mut Readings,
        input: Option<Observation>,
        now: Timestamp,
    ) -> Step {
        match input {
            Some(Observation::Facts(r)) => readings.facts = Some(r),
            Some(Observation::DomainStatus(r)) => readings.domains = Some(r),
            Some(other) => {
                return self.internal_failure(
                    ctx,
                    &format!("unexpected answer during the pre-checks: {other:?}"),
                    now,
                );
            }
            None => {}
        }
        if !ctx.device_exists {
            return self.fail(
                ctx,
                ExecutionPreChecksDeviceNotFound,
                "the Device object no longer exists".into(),
                now,
            );
        }
        let facts = match &readings.facts {
            None => return Step::act(Action::ReadFacts),
            Some(Err(e)) => {
                return self.fail(
                    ctx,
                    ExecutionPreChecksDeviceNotAvailable,
                    format!("reading the device's facts failed: {e}"),
                    now,
                );
            }
            Some(Ok(facts)) => facts,
        };
        let validated = self.progress.device_firmware.clone().unwrap_or_default();
        if !same_version(&facts.firmware, &validated) {
            let message = format!(
                "the device's firmware changed from {validated} to {} since validation; another upgrade may be running",
                facts.firmware
            );
            return self.fail(
                ctx,
                ExecutionPreChecksDeviceFirmwareLevelChanged,
                message,
                now,
            );
        }
        if ctx.family == DeviceFamily::Appliance {
            let domains = match &readings.domains {
                None => return Step::act(Action::ReadDomainStatus),
                Some(Err(e)) => {
                    return self.fail(
                        ctx,
                        ExecutionPreChecksDeviceNotAvailable,
                        format!("reading the domain status failed: {e}"),
                        now,
                    );
                }
                Some(Ok(domains)) => domains,
            };
            let quiesced: Vec<&str> = domains
                .domains
                .iter()
                .filter(|d| d.quiesced)
                .map(|d| d.name.as_str())
                .collect();
            if !quiesced.is_empty() {
                let message = format!(
                    "quiesced domains: {}; unquiesce them before upgrading",
                    quiesced.join(", ")
                );
                return self.fail(
                    ctx,
                    ExecutionPreChecksFoundQuiescedDomainInDevice,
                    message,
                    now,
                );
            }
        }
        if ctx.spec.hooks.as_ref().is_some_and(|h| h.pre.is_some()) {
            self.enter(
                ExecutionWaitingForPreScript,
                "the pre hook Job is running",
                now,
            );
            return Step::act(Action::Hook(HookKind::Pre));
        }
        self.after_pre_hook(ctx, now)
    }

    fn pre_hook(&mut self, ctx: &Context<'_>, input: Option<Observation>, now: Timestamp) -> Step {
        match input {
            None => Step::act(Action::Hook(HookKind::Pre)),
            Some(Observation::Hook(HookKind::Pre, HookStatus::Running)) => {
                self.wait(ctx, later(now, POLL_INTERVAL))
            }
            Some(Observation::Hook(HookKind::Pre, HookStatus::Succeeded)) => {
                self.after_pre_hook(ctx, now)
            }
            Some(Observation::Hook(HookKind::Pre, HookStatus::Failed(why))) => self.fail(
                ctx,
                ExecutionPreScriptError,
                format!("the pre hook failed: {why}"),
                now,
            ),
            Some(other) => self.internal_failure(
                ctx,
                &format!("unexpected answer while the pre hook runs: {other:?}"),
                now,
            ),
        }
    }

    fn after_pre_hook(&mut self, ctx: &Context<'_>, now: Timestamp) -> Step {
        if ctx.spec.first_quiesce && ctx.family == DeviceFamily::Appliance {
            return self.begin(ctx, OpKind::FirstQuiesce, now);
        }
        self.after_first_quiesce(ctx, now)
    }

    fn after_first_quiesce(&mut self, ctx: &Context<'_>, now: Timestamp) -> Step {
        if ctx.spec.restart.enabled {
            return self.begin(ctx, OpKind::Restart, now);
        }
        self.begin(ctx, OpKind::Upload, now)
    }

    fn after_restart(&mut self, ctx: &Context<'_>, now: Timestamp) -> Step {
        if ctx.spec.restart.wait_after.get().is_zero() {
            return self.begin(ctx, OpKind::Upload, now);
        }
        self.progress.step_since = Some(k8s_time(now));
        let message = format!(
            "the device is back; waiting {} before the upload",
            ctx.spec.restart.wait_after
        );
        self.enter(ExecutionWaitAfterRestartStarted, message, now);
        self.waiting_after_restart(ctx, now)
    }

    fn waiting_after_restart(&mut self, ctx: &Context<'_>, now: Timestamp) -> Step {
        let since = self
            .progress
            .step_since
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(now);
        let until = later(since, duration(ctx.spec.restart.wait_after.get()));
        if now >= until {
            return self.begin(ctx, OpKind::Upload, now);
        }
        self.wait(ctx, until)
    }

    fn op_done(&mut self, ctx: &Context<'_>, op: OpKind, now: Timestamp) -> Step {
        match op {
            OpKind::FirstQuiesce => self.after_first_quiesce(ctx, now),
            OpKind::Restart => self.after_restart(ctx, now),
            OpKind::Upload if ctx.family == DeviceFamily::Appliance => {
                self.begin(ctx, OpKind::SecondQuiesce, now)
            }
            OpKind::Upload | OpKind::SecondQuiesce => self.begin(ctx, OpKind::Upgrade, now),
            OpKind::Upgrade => {
                self.progress.verifying = true;
                Step::act(Action::ReadFacts)
            }
            OpKind::Unquiesce => {
                self.progress.quiesced = false;
                let pending = self.progress.pending.take();
                match pending {
                    Some(p) => self.finish(ctx, p, now),
                    None => self.internal_failure(
                        ctx,
                        "an unquiesce finished with no failure to report",
                        now,
                    ),
                }
            }
        }
    }

    /// Requests an operation: enters its first code and sends the start.
    fn begin(&mut self, ctx: &Context<'_>, op: OpKind, now: Timestamp) -> Step {
        let spec = op_spec(op, ctx.spec);
        self.progress.step_since = Some(k8s_time(now));
        self.progress.acknowledged = false;
        self.progress.verifying = false;
        if matches!(op, OpKind::FirstQuiesce | OpKind::SecondQuiesce) {
            self.progress.quiesced = true;
        }
        self.enter(spec.started, spec.started.description(), now);
        let action = self.start(ctx, op);
        if spec.persist_first {
            Step::act_after_persist(action)
        } else {
            Step::act(action)
        }
    }

    fn op_key(&self, ctx: &Context<'_>, op: OpKind) -> String {
        format!("{}/{}", ctx.task, op.as_str())
    }

    /// The action that starts `op` (or reports it, when the device already has it).
    fn start(&self, ctx: &Context<'_>, op: OpKind) -> Action {
        let target = self.progress.target_version.clone().unwrap_or_default();
        Action::Start(Start::new(op, self.op_key(ctx, op), target))
    }

    fn operation(
        &mut self,
        ctx: &Context<'_>,
        op: OpKind,
        readings: &mut Readings,
        input: Option<Observation>,
        now: Timestamp,
    ) -> Step {
        let spec = op_spec(op, ctx.spec);
        let since = self
            .progress
            .step_since
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(|| self.code_since());
        let deadline = spec
            .timeout
            .map(|(limit, code)| (later(since, limit), code));
        let key = self.op_key(ctx, op);
        let status = match input {
            None => {
                if let Some((at, code)) = deadline
                    && now >= at
                {
                    return self.timed_out(ctx, op, code, now);
                }
                return if self.progress.acknowledged {
                    Step::act(Action::Poll(op, key))
                } else {
                    Step::act(self.start(ctx, op))
                };
            }
            Some(Observation::Op(kind, status)) if kind == op => status,
            Some(Observation::Facts(facts)) if op == OpKind::Upgrade => {
                readings.facts = Some(facts.clone());
                return self.confirm_upgrade(ctx, facts, deadline.map(|d| d.0), now);
            }
            Some(other) => {
                return self.internal_failure(
                    ctx,
                    &format!("unexpected answer during {}: {other:?}", op.as_str()),
                    now,
                );
            }
        };
        match status {
            OpStatus::Running { retry_after } => {
                self.acknowledge(spec.started, spec.waiting, now);
                self.wait_within(ctx, op, deadline, poll_after(now, retry_after), now)
            }
            OpStatus::Done => {
                self.acknowledge(spec.started, spec.waiting, now);
                self.op_done(ctx, op, now)
            }
            OpStatus::Unknown if !self.progress.acknowledged => Step::act(self.start(ctx, op)),
            // The device lost track of an operation it had acknowledged: it restarted. A restart
            // is then done; an upgrade is judged by the version the device reports; idempotent
            // operations are simply requested again.
            OpStatus::Unknown => match op {
                OpKind::Restart => self.op_done(ctx, op, now),
                OpKind::Upgrade => Step::act(Action::ReadFacts),
                _ => Step::act(self.start(ctx, op)),
            },
            OpStatus::Failed(error) => match (spec.fault)(error.kind) {
                Some(code) => {
                    let message = format!("{} failed: {error}", op.as_str());
                    self.fail(ctx, code, message, now)
                }
                None => {
                    // Unreachable mid-operation: the device may be restarting; keep waiting.
                    self.wait_within(ctx, op, deadline, later(now, POLL_INTERVAL), now)
                }
            },
        }
    }

    /// Waits until `wake`, but not past the step's deadline; past it, the step timed out.
    fn wait_within(
        &mut self,
        ctx: &Context<'_>,
        op: OpKind,
        deadline: Option<(Timestamp, FirmwareCode)>,
        wake: Timestamp,
        now: Timestamp,
    ) -> Step {
        match deadline {
            Some((at, code)) if now >= at => self.timed_out(ctx, op, code, now),
            Some((at, _)) => self.wait(ctx, wake.min(at)),
            None => self.wait(ctx, wake),
        }
    }

    /// The device acknowledged the operation: move from its first code to its waiting code.
    fn acknowledge(&mut self, started: FirmwareCode, waiting: FirmwareCode, now: Timestamp) {
        self.progress.acknowledged = true;
        if self.code == started && started != waiting {
            self.enter(waiting, waiting.description(), now);
        }
    }

    fn confirm_upgrade(
        &mut self,
        ctx: &Context<'_>,
        facts: Result<super::observe::Facts, CallError>,
        deadline: Option<Timestamp>,
        now: Timestamp,
    ) -> Step {
        let target = self.progress.target_version.clone().unwrap_or_default();
        match facts {
            Ok(facts) if same_version(&facts.firmware, &target) => {
                let outcome = PendingOutcome::new(
                    Success,
                    format!("the device reports {target}"),
                    ctx.task,
                    now,
                );
                self.finish(ctx, outcome, now)
            }
            Ok(facts) if self.progress.verifying => {
                let message = format!(
                    "the device finished the upgrade but reports {} instead of {target}",
                    facts.firmware
                );
                self.fail(ctx, ExecutionUpgradeExceptionOccurred, message, now)
            }
            Err(e) if self.progress.verifying && e.kind != FaultKind::Unreachable => self.fail(
                ctx,
                ExecutionUpgradeExceptionOccurred,
                format!("confirming the new version failed: {e}"),
                now,
            ),
            // Still restarting into the new image: look again, within the upgrade timeout.
            _ => {
                let wake = later(now, POLL_INTERVAL);
                self.wait(ctx, deadline.map_or(wake, |d| wake.min(d)))
            }
        }
    }

    fn timed_out(
        &mut self,
        ctx: &Context<'_>,
        op: OpKind,
        code: FirmwareCode,
        now: Timestamp,
    ) -> Step {
        let message = match op {
            OpKind::FirstQuiesce | OpKind::SecondQuiesce => {
                format!(
                    "the quiesce did not finish within quiesceTimeout ({}) plus 3m",
                    ctx.spec.quiesce_timeout
                )
            }
            OpKind::Restart => format!(
                "the device did not come back within restart.timeout ({})",
                ctx.spec.restart.timeout
            ),
            OpKind::Upgrade => format!(
                "the device did not report {} within upgradeTimeout ({}); check it by hand",
                self.progress
                    .target_version
                    .as_deref()
                    .unwrap_or("the new version"),
                ctx.spec.upgrade_timeout
            ),
            OpKind::Upload | OpKind::Unquiesce => {
                format!(
                    "{} did not finish within quiesceTimeout ({}) plus 3m",
                    op.as_str(),
                    ctx.spec.quiesce_timeout
                )
            }
        };
        self.fail(ctx, code, message, now)
    }

    /// Waits until `at`, but never past the moment the task runs too long.
    fn wait(&self, ctx: &Context<'_>, at: Timestamp) -> Step {
        let limit = self
            .started_at
            .filter(|_| self.progress.pending.is_none())
            .map(|s| later(s, duration(ctx.spec.max_run_duration.get())));
        Step::wait_until(limit.map_or(at, |l| at.min(l)))
    }

    // ---- endings ----

    /// A step failed with `code`: unquiesce first when a quiesce is in force and the upgrade has
    /// not started; then the post hook; then the end.
    fn fail(
        &mut self,
        ctx: &Context<'_>,
        code: FirmwareCode,
        message: String,
        now: Timestamp,
    ) -> Step {
        let in_unquiesce = matches!(
            self.code,
            ExecutionUnquiesceOnErrorStarted | ExecutionUnquiesceOnErrorWaitingForUnquiesce
        );
        if in_unquiesce {
            let original = self.progress.pending.take();
            let named = original
                .as_ref()
                .map(|p| format!(" after {}: {}", p.code, p.message))
                .unwrap_or_default();
            let outcome = PendingOutcome::new(
                code,
                format!("unquiescing{named} failed: {message}"),
                ctx.task,
                now,
            );
            return self.finish(ctx, outcome, now);
        }
        let outcome = PendingOutcome::new(code, message, ctx.task, now);
        let upgrade_started = matches!(
            self.code,
            ExecutionUpgradeStarted | ExecutionUpgradeWaitingForUpgrade
        );
        if self.progress.quiesced && !upgrade_started {
            self.progress.pending = Some(outcome);
            return self.begin(ctx, OpKind::Unquiesce, now);
        }
        self.finish(ctx, outcome, now)
    }

    /// Ends with `outcome`, after the post hook when the execution had started and one is set.
    fn finish(&mut self, ctx: &Context<'_>, outcome: PendingOutcome, now: Timestamp) -> Step {
        let post_hook = ctx.spec.hooks.as_ref().is_some_and(|h| h.post.is_some());
        if self.started_at.is_some() && post_hook && !self.progress.post_hook {
            self.message = format!(
                "the post hook is running; the task then ends {}",
                outcome.code
            );
            self.progress.pending = Some(outcome);
            self.progress.post_hook = true;
            return Step::act(Action::Hook(HookKind::Post));
        }
        self.end(outcome.code, outcome.message, outcome.incident_id, now);
        Step::idle()
    }

    fn post_hook(&mut self, input: Option<Observation>, now: Timestamp) -> Step {
        let note = match input {
            None => return Step::act(Action::Hook(HookKind::Post)),
            Some(Observation::Hook(HookKind::Post, HookStatus::Running)) => {
                return Step::wait_until(later(now, POLL_INTERVAL));
            }
            Some(Observation::Hook(HookKind::Post, HookStatus::Succeeded)) => String::new(),
            Some(Observation::Hook(HookKind::Post, HookStatus::Failed(why))) => {
                format!(" (the post hook failed: {why})")
            }
            Some(other) => format!(" (unexpected answer while the post hook ran: {other:?})"),
        };
        let Some(outcome) = self.progress.pending.take() else {
            return Step::idle();
        };
        self.end(
            outcome.code,
            format!("{}{note}", outcome.message),
            outcome.incident_id,
            now,
        );
        Step::idle()
    }

    fn internal_failure(&mut self, ctx: &Context<'_>, detail: &str, now: Timestamp) -> Step {
        if self.code.is_unstarted() {
            let code = ValidationInternalException;
            let incident = Self::incident(code, ctx.task, now);
            self.end(
                code,
                format!("upkeep failed while validating: {detail}"),
                incident,
                now,
            );
            return Step::idle();
        }
        let code = ExecutionFailedWithInternalException;
        let message = format!("upkeep failed while executing: {detail}");
        if self.progress.pending.is_some() {
            // Already ending: keep the decided outcome and say what else went wrong.
            let mut outcome = self
                .progress
                .pending
                .take()
                .unwrap_or_else(|| PendingOutcome::new(code, message.clone(), ctx.task, now));
            outcome.message = format!("{} ({message})", outcome.message);
            self.end(outcome.code, outcome.message, outcome.incident_id, now);
            return Step::idle();
        }
        self.fail(ctx, code, message, now)
    }
}

fn k8s_time(t: Timestamp) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t)
}

#[cfg(test)]
mod tests;
