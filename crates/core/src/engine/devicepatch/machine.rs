//! The DevicePatch task state machine: validation, then load → activation delay → activate →
//! confirm, each step an operation started once with an idempotency key and followed until the
//! element itself reports the state the step is for.
//!
//! The controller calls [`TaskState::step`] in a loop: each call takes what the last action
//! returned (or nothing, when time has passed), moves the task, and says what to do next, whether
//! the new state must be stored before doing it, and when to look again.
//!
//! Crash safety: every step reads the element's patches before it starts its operation, and does
//! not start it when the element shows the step done (or, for the activation, under way); the
//! load, the activation and the confirm are stored before they are sent and carry a key derived
//! from the task, so a restarted controller never loads or activates twice.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observe::{
    CallError, FaultKind, ImageEntry, OpStatus, Patch, PatchAction, PatchLifecycle,
    PatchObservation, PatchOp, PatchStart,
};
use super::state::TaskState;
use super::validation::{Readings, Subject, Verdict, validate};
use crate::api::DevicePatchSpec;
use crate::api::codes::DevicePatchCode::{self, *};
use crate::api::common::GoDuration;
use crate::engine::task::{POLL_INTERVAL, duration, later, poll_after};

/// What to do after a step: the next patch action, whether to store the state first, and when
/// to look again.
pub type Step = crate::engine::task::Step<PatchAction>;

/// What the engine needs besides the task's own state.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The parent resource's spec.
    pub spec: &'a DevicePatchSpec,
    /// A stable identity of the task (e.g. `namespace/name/uid`): operation keys and incident
    /// ids derive from it.
    pub task: &'a str,
    /// Whether the Device object exists.
    pub device_exists: bool,
    /// The package's repository entry, if it is there.
    pub package: Option<&'a ImageEntry>,
}

/// The fixed facts of one step's operation.
struct OpSpec {
    /// How long the step may take from its clock's start, and the spec field that says so.
    timeout: (SignedDuration, &'static str, GoDuration),
    /// The code when the step times out.
    timeout_code: DevicePatchCode,
    /// The code when the element answers the operation with an error.
    error_code: DevicePatchCode,
    /// Store the state before the start is sent: the element must never run it twice.
    persist_first: bool,
}

fn op_spec(op: PatchOp, spec: &DevicePatchSpec) -> OpSpec {
    let activation = (
        duration(spec.activation.timeout.get()),
        "activation.timeout",
        spec.activation.timeout,
    );
    match op {
        PatchOp::Load => OpSpec {
            timeout: (
                duration(spec.load_timeout.get()),
                "loadTimeout",
                spec.load_timeout,
            ),
            timeout_code: ErrorPatchLoadFailed,
            error_code: ErrorPatchLoadFailed,
            persist_first: true,
        },
        PatchOp::SetDelay => OpSpec {
            timeout: activation,
            timeout_code: ErrorPatchActivationTimeout,
            error_code: ErrorPatchConfirmFailed,
            // Setting the same delay twice has the effect of setting it once.
            persist_first: false,
        },
        PatchOp::Activate => OpSpec {
            timeout: activation,
            timeout_code: ErrorPatchActivationTimeout,
            error_code: ErrorPatchConfirmFailed,
            persist_first: true,
        },
        PatchOp::Confirm => OpSpec {
            timeout: (
                duration(spec.confirm_timeout.get()),
                "confirmTimeout",
                spec.confirm_timeout,
            ),
            timeout_code: ErrorPatchConfirmFailed,
            error_code: ErrorPatchConfirmFailed,
            persist_first: true,
        },
    }
}

/// Whether the element's state shows the step's work done, so the operation is not sent.
fn already(op: PatchOp, state: &PatchLifecycle) -> bool {
    use PatchLifecycle::*;
    match op {
        PatchOp::Load => true,
        PatchOp::SetDelay | PatchOp::Activate => matches!(state, Activated | Running),
        PatchOp::Confirm => matches!(state, Running),
    }
}

/// Whether the element's state shows the step's operation under way: it is followed, not sent.
fn under_way(op: PatchOp, state: &PatchLifecycle) -> bool {
    op == PatchOp::Activate && *state == PatchLifecycle::Activating
}

/// Whether, after the operation finished, the element's state is what the step is for.
fn reached(op: PatchOp, state: &PatchLifecycle) -> bool {
    use PatchLifecycle::*;
    match op {
        PatchOp::Load | PatchOp::SetDelay => true,
        PatchOp::Activate => matches!(state, Activated | Running),
        PatchOp::Confirm => matches!(state, Running),
    }
}

impl TaskState {
    /// Advances the task with the answer to the last action (`None` when time passed), at `now`.
    /// `readings` holds device readings within one sequence of steps; it need not be stored.
    pub fn step(
        &mut self,
        ctx: &Context<'_>,
        readings: &mut Readings,
        input: Option<PatchObservation>,
        now: Timestamp,
    ) -> Step {
        if self.is_terminal() {
            return Step::idle();
        }
        if let Some(PatchObservation::Internal(detail)) = &input {
            return self.internal_failure(ctx, detail, now);
        }
        match self.code {
            WaitingForPreValidation => return self.validating(ctx, readings, input, now),
            ReadyForExecution => return Step::idle(),
            _ => {}
        }
        if !ctx.device_exists {
            return self.fail(
                ctx,
                ErrorCommunicationFailed,
                "the Device object no longer exists".into(),
                now,
            );
        }
        match self.code {
            PatchLoading => self.operation(ctx, PatchOp::Load, input, now),
            PatchLoaded => match input {
                // Resumed between the load and the delay: read the element's delay again.
                None => Step::act(PatchAction::ReadPatches),
                Some(PatchObservation::Patches(Ok(patches))) => {
                    let found = self.find(ctx, &patches).cloned();
                    self.begin_waiting(ctx, found.as_ref(), now)
                }
                // Without a reading, no delay of the element's is known; the next step reads
                // the element again within its own time.
                Some(PatchObservation::Patches(Err(_))) => self.begin_waiting(ctx, None, now),
                Some(other) => self.unexpected(ctx, other, now),
            },
            PatchWaitingForActivation => self.waiting(ctx, input, now),
            PatchActivating => self.operation(ctx, PatchOp::Activate, input, now),
            PatchActivated => self.after_activated(ctx, now),
            PatchConfirming => self.operation(ctx, PatchOp::Confirm, input, now),
            code => self.internal_failure(ctx, &format!("no step handles code {code}"), now),
        }
    }

    // ---- validation ----

    fn validating(
        &mut self,
        ctx: &Context<'_>,
        readings: &mut Readings,
        input: Option<PatchObservation>,
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
        match input {
            Some(PatchObservation::Facts(r)) => readings.facts = Some(r),
            Some(other) => return self.unexpected(ctx, other, now),
            None => {}
        }
        let subject = Subject {
            spec: ctx.spec,
            device_exists: ctx.device_exists,
            package: ctx.package,
        };
        match validate(subject, readings) {
            Verdict::Need(action) => Step::act(action),
            Verdict::End(code, message) => {
                let incident = Self::incident(code, ctx.task, now);
                self.end(code, message, incident, now);
                Step::idle()
            }
            Verdict::Pass(message) => {
                self.enter(ReadyForExecution, message, now);
                Step::idle()
            }
        }
    }

    // ---- execution ----

    fn op_key(&self, ctx: &Context<'_>, op: PatchOp) -> String {
        format!("{}/{}", ctx.task, op.as_str())
    }

    fn start(&self, ctx: &Context<'_>, op: PatchOp) -> PatchAction {
        PatchAction::Start(PatchStart {
            op,
            key: self.op_key(ctx, op),
            patch: ctx.spec.patch.clone(),
            delay: match op {
                PatchOp::SetDelay => ctx.spec.activation.delay.map(|d| duration(d.get())),
                _ => None,
            },
        })
    }

    /// The task's patch in a reading of the element's patches; records its state.
    fn find<'p>(&mut self, ctx: &Context<'_>, patches: &'p [Patch]) -> Option<&'p Patch> {
        let found = patches.iter().find(|p| p.id == ctx.spec.patch);
        self.progress.device_state = found.map(|p| p.state.as_str().to_string());
        found
    }

    /// Starts a step's clock at `since` and its operation afresh.
    fn begin_op(&mut self, since: Timestamp) {
        self.progress.step_since = Some(Time(since));
        self.progress.acknowledged = false;
        self.progress.verifying = false;
    }

    /// One step's operation: read the element's patches, start the operation unless the
    /// element shows it done or under way, follow it to its end, and check the state it left.
    fn operation(
        &mut self,
        ctx: &Context<'_>,
        op: PatchOp,
        input: Option<PatchObservation>,
        now: Timestamp,
    ) -> Step {
        let spec = op_spec(op, ctx.spec);
        let since = self
            .progress
            .step_since
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(|| self.code_since());
        let deadline = later(since, spec.timeout.0);
        let status = match input {
            None => {
                // At the deadline, one last reading: the step may just have got there, and a
                // timeout names the state the element reports now.
                if self.progress.acknowledged && !self.progress.verifying && now < deadline {
                    return Step::act(PatchAction::Poll(op, self.op_key(ctx, op)));
                }
                return Step::act(PatchAction::ReadPatches);
            }
            Some(PatchObservation::Patches(Ok(patches))) => {
                return self.judge(ctx, op, &patches, deadline, now);
            }
            Some(PatchObservation::Patches(Err(e))) => {
                return self.call_failed(ctx, op, Some("reading the patches"), e, deadline, now);
            }
            Some(PatchObservation::Op(kind, status)) if kind == op => status,
            Some(other) => return self.unexpected(ctx, other, now),
        };
        match status {
            OpStatus::Running { retry_after } => {
                self.progress.acknowledged = true;
                self.wait_within(ctx, op, deadline, poll_after(now, retry_after), now)
            }
            OpStatus::Done => {
                self.progress.acknowledged = true;
                self.progress.verifying = true;
                Step::act(PatchAction::ReadPatches)
            }
            // The start did not register: ask again later (the element decides by the key).
            OpStatus::Unknown if !self.progress.acknowledged => {
                self.wait_within(ctx, op, deadline, later(now, POLL_INTERVAL), now)
            }
            // The element lost track of an operation it had acknowledged: judge by the state it
            // reports, and start again only if that shows nothing done.
            OpStatus::Unknown => {
                self.progress.acknowledged = false;
                Step::act(PatchAction::ReadPatches)
            }
            OpStatus::Failed(e) => self.call_failed(ctx, op, None, e, deadline, now),
        }
    }

    /// What a reading of the element's patches means for the step.
    fn judge(
        &mut self,
        ctx: &Context<'_>,
        op: PatchOp,
        patches: &[Patch],
        deadline: Timestamp,
        now: Timestamp,
    ) -> Step {
        let spec = op_spec(op, ctx.spec);
        let found = self.find(ctx, patches).cloned();
        let Some(patch) = found else {
            if op == PatchOp::Load {
                return if self.progress.verifying || now >= deadline {
                    // Done, but not listed (yet): look again within the step's time.
                    self.wait_within(ctx, op, deadline, later(now, POLL_INTERVAL), now)
                } else {
                    self.send(ctx, op, &spec)
                };
            }
            let message = format!("the element no longer lists patch {}", ctx.spec.patch);
            return self.fail(ctx, spec.error_code, message, now);
        };
        if self.progress.verifying {
            if reached(op, &patch.state) {
                return self.op_done(ctx, op, Some(&patch), now);
            }
            return self.wait_within(ctx, op, deadline, later(now, POLL_INTERVAL), now);
        }
        if already(op, &patch.state) {
            return self.op_done(ctx, op, Some(&patch), now);
        }
        if under_way(op, &patch.state) {
            self.progress.verifying = true;
            return self.wait_within(ctx, op, deadline, later(now, POLL_INTERVAL), now);
        }
        if now >= deadline {
            return self.timed_out(ctx, op, now);
        }
        self.send(ctx, op, &spec)
    }

    /// Sends the step's start, stored first when the step says so.
    fn send(&mut self, ctx: &Context<'_>, op: PatchOp, spec: &OpSpec) -> Step {
        let action = self.start(ctx, op);
        if spec.persist_first {
            Step::act_after_persist(action)
        } else {
            Step::act(action)
        }
    }

    /// A call of the step failed (`reading`: a reading made for it, else its operation): the
    /// element's error answer to the operation is the step's failure; a broken call, or an error
    /// answer to a reading, a communication failure; no answer is waited out within the step's
    /// time.
    fn call_failed(
        &mut self,
        ctx: &Context<'_>,
        op: PatchOp,
        reading: Option<&str>,
        error: CallError,
        deadline: Timestamp,
        now: Timestamp,
    ) -> Step {
        let spec = op_spec(op, ctx.spec);
        let what = match reading {
            Some(reading) => format!("{} ({reading})", op.doing()),
            None => op.doing().to_string(),
        };
        match (error.kind, reading) {
            (FaultKind::Unreachable, _) => {
                self.wait_within(ctx, op, deadline, later(now, POLL_INTERVAL), now)
            }
            (FaultKind::Error, None) => {
                self.fail(ctx, spec.error_code, format!("{what} failed: {error}"), now)
            }
            (FaultKind::Error | FaultKind::Exception, _) => self.fail(
                ctx,
                ErrorCommunicationFailed,
                format!("{what} failed: {error}"),
                now,
            ),
        }
    }

    /// The element shows the step's work done.
    fn op_done(
        &mut self,
        ctx: &Context<'_>,
        op: PatchOp,
        patch: Option<&Patch>,
        now: Timestamp,
    ) -> Step {
        self.progress.acknowledged = false;
        self.progress.verifying = false;
        match op {
            PatchOp::Load => {
                let state = patch.map_or("loaded".into(), |p| p.state.to_string());
                let message = format!("the element reports patch {} {state}", ctx.spec.patch);
                self.enter(PatchLoaded, message, now);
                self.begin_waiting(ctx, patch, now)
            }
            PatchOp::SetDelay => {
                self.progress.delay_told = true;
                self.waiting(ctx, None, now)
            }
            PatchOp::Activate => {
                let message = format!("the element reports patch {} activated", ctx.spec.patch);
                self.enter(PatchActivated, message, now);
                if patch.is_some_and(|p| p.state.is_running()) {
                    let message = format!(
                        "the element reports patch {} running (it needed no confirm)",
                        ctx.spec.patch
                    );
                    self.end(PatchRunning, message, None, now);
                    return Step::idle();
                }
                self.after_activated(ctx, now)
            }
            PatchOp::Confirm => {
                let message = format!("the element reports patch {} running", ctx.spec.patch);
                self.end(PatchRunning, message, None, now);
                Step::idle()
            }
        }
    }

    /// Enters the activation delay: the resource's (told to the element first), else the one
    /// the element reports for the loaded patch, else none.
    fn begin_waiting(&mut self, ctx: &Context<'_>, patch: Option<&Patch>, now: Timestamp) -> Step {
        let (delay, message) = match ctx.spec.activation.delay {
            Some(delay) => (
                duration(delay.get()),
                format!("telling the element the activation delay ({delay}, activation.delay)"),
            ),
            None => match patch
                .and_then(|p| p.activates_in)
                .filter(|d| d.is_positive())
            {
                Some(own) => (
                    own,
                    format!(
                        "waiting {} for the element's own activation delay (set activation.delay to tell it another)",
                        GoDuration(own.unsigned_abs())
                    ),
                ),
                None => (
                    SignedDuration::ZERO,
                    "the element reports no activation delay".into(),
                ),
            },
        };
        self.begin_op(now);
        self.progress.activate_at = Some(Time(later(now, delay)));
        self.progress.delay_told = false;
        self.enter(PatchWaitingForActivation, message, now);
        self.waiting(ctx, None, now)
    }

    fn waiting(
        &mut self,
        ctx: &Context<'_>,
        input: Option<PatchObservation>,
        now: Timestamp,
    ) -> Step {
        if ctx.spec.activation.delay.is_some() && !self.progress.delay_told {
            return self.operation(ctx, PatchOp::SetDelay, input, now);
        }
        if let Some(other) = input {
            return self.unexpected(ctx, other, now);
        }
        let at = self.progress.activate_at.as_ref().map_or(now, |t| t.0);
        if now < at {
            return Step::wait_until(at);
        }
        // The activation's time counts from the end of the delay.
        self.begin_op(at);
        self.enter(
            PatchActivating,
            format!("asking the element to activate patch {}", ctx.spec.patch),
            now,
        );
        self.operation(ctx, PatchOp::Activate, None, now)
    }

    fn after_activated(&mut self, ctx: &Context<'_>, now: Timestamp) -> Step {
        if !ctx.spec.confirm {
            let message = format!(
                "the element reports patch {} activated; confirm is false, so it is not running and does not take effect",
                ctx.spec.patch
            );
            self.end(PatchActivated, message, None, now);
            return Step::idle();
        }
        self.begin_op(now);
        self.enter(
            PatchConfirming,
            format!("asking the element to confirm patch {}", ctx.spec.patch),
            now,
        );
        self.operation(ctx, PatchOp::Confirm, None, now)
    }

    /// Waits until `wake`, but not past the step's deadline; past it, the step timed out.
    fn wait_within(
        &mut self,
        ctx: &Context<'_>,
        op: PatchOp,
        deadline: Timestamp,
        wake: Timestamp,
        now: Timestamp,
    ) -> Step {
        if now >= deadline {
            return self.timed_out(ctx, op, now);
        }
        Step::wait_until(wake.min(deadline))
    }

    fn timed_out(&mut self, ctx: &Context<'_>, op: PatchOp, now: Timestamp) -> Step {
        let spec = op_spec(op, ctx.spec);
        let (_, field, limit) = spec.timeout;
        let reported = match &self.progress.device_state {
            Some(state) => format!("the element reports patch {} {state}", ctx.spec.patch),
            None => format!("the element does not list patch {}", ctx.spec.patch),
        };
        let message = match op {
            PatchOp::Activate => {
                let hint = if ctx.spec.activation.delay.is_none() {
                    "; if the element applies an activation delay of its own, set activation.delay (e.g. 0s) so that it is told"
                } else {
                    ""
                };
                format!(
                    "the element did not report the patch activated within {field} ({limit}) after the activation delay ended; {reported}{hint}"
                )
            }
            PatchOp::Confirm => format!(
                "the element did not report the patch running within {field} ({limit}) after the confirm; {reported}"
            ),
            PatchOp::Load | PatchOp::SetDelay => format!(
                "{} did not finish within {field} ({limit}); {reported}",
                op.doing()
            ),
        };
        self.fail(ctx, spec.timeout_code, message, now)
    }

    // ---- endings ----

    fn fail(
        &mut self,
        ctx: &Context<'_>,
        code: DevicePatchCode,
        message: String,
        now: Timestamp,
    ) -> Step {
        let incident = Self::incident(code, ctx.task, now);
        self.end(code, message, incident, now);
        Step::idle()
    }

    fn unexpected(&mut self, ctx: &Context<'_>, input: PatchObservation, now: Timestamp) -> Step {
        self.internal_failure(
            ctx,
            &format!("unexpected answer at {}: {input:?}", self.code),
            now,
        )
    }

    fn internal_failure(&mut self, ctx: &Context<'_>, detail: &str, now: Timestamp) -> Step {
        let (code, doing) = if self.started_at.is_none() {
            (ValidationInternalException, "validating")
        } else {
            (ExecutionFailedWithInternalException, "executing")
        };
        self.fail(
            ctx,
            code,
            format!("upkeep failed while {doing}: {detail}"),
            now,
        )
    }
}

#[cfg(test)]
mod tests;
