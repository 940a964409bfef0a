//! A scripted world for the DevicePatch engine: network elements with patches, an activation
//! delay of their own, timings and faults, on a virtual clock. It plays the controllers' part
//! with nothing but the engine's public API, and can crash the "controller" at any action to test
//! resumption. The queue decisions (grants, the window gate, maxWait and the error policy for
//! queued tasks) are played here the way the DevicePatch plan decides them; the plan itself comes
//! with the controller.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::super::{Context, Step};
use crate::api::DevicePatchSpec;
use crate::api::codes::DevicePatchCode;
use crate::api::common::{ErrorPolicy, TargetSelector};
use crate::api::firmware_upgrade::OutsideWindow;
use crate::api::upgrade_task::UpgradeTaskStatus;
use crate::engine::devicepatch::observe::*;
use crate::engine::devicepatch::state::TaskState;
use crate::engine::devicepatch::validation::Readings;

/// Where an element's fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spot {
    Facts,
    Patches,
    Op(PatchOp),
}

impl Spot {
    pub const ALL: [Spot; 6] = [
        Spot::Facts,
        Spot::Patches,
        Spot::Op(PatchOp::Load),
        Spot::Op(PatchOp::SetDelay),
        Spot::Op(PatchOp::Activate),
        Spot::Op(PatchOp::Confirm),
    ];
}

/// What goes wrong there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails this way.
    Answer(FaultKind),
    /// The operation never completes (a reading never answers: unreachable).
    Hang,
    /// It takes this long.
    Slow(SignedDuration),
}

/// A patch on a scripted element.
#[derive(Clone, Debug)]
struct Held {
    id: String,
    state: PatchLifecycle,
    loaded_at: Option<Timestamp>,
    delay: SignedDuration,
}

/// An operation the element runs.
#[derive(Clone, Debug)]
struct Running {
    op: PatchOp,
    patch: String,
    started: Timestamp,
    delay: Option<SignedDuration>,
    applied: bool,
}

/// A scripted network element.
#[derive(Clone, Debug)]
pub struct Element {
    pub exists: bool,
    pub free_board: Option<u64>,
    held: Vec<Held>,
    /// Its own delay between load and activation.
    pub own_delay: SignedDuration,
    /// Whether its readings say how long the delay has left.
    pub reports_delay: bool,
    pub faults: Vec<(Spot, Fault)>,
    pub durations: BTreeMap<&'static str, SignedDuration>,
    ops: BTreeMap<String, Running>,
    pub loads: u32,
    pub activations: u32,
    /// The delays it was told, in order.
    pub told: Vec<SignedDuration>,
    /// It forgets every operation record once the operation is done.
    pub forgets_ops: bool,
    /// It accepts a confirm and changes nothing (the field case).
    pub ignores_confirm: bool,
    /// Internal failure injected at this spot.
    pub internal_at: Option<Spot>,
    /// The task controller reaches this element's task only from this instant on.
    pub reached_from: Option<Timestamp>,
}

impl Element {
    pub fn healthy() -> Self {
        Self {
            exists: true,
            free_board: Some(2 << 30),
            held: Vec::new(),
            own_delay: SignedDuration::ZERO,
            reports_delay: true,
            faults: Vec::new(),
            durations: BTreeMap::from([
                ("patch-load", SignedDuration::from_mins(1)),
                ("patch-set-delay", SignedDuration::ZERO),
                ("patch-activate", SignedDuration::from_mins(2)),
                ("patch-confirm", SignedDuration::from_secs(30)),
            ]),
            ops: BTreeMap::new(),
            loads: 0,
            activations: 0,
            told: Vec::new(),
            forgets_ops: false,
            ignores_confirm: false,
            internal_at: None,
            reached_from: None,
        }
    }

    /// The element holds `id` in `state` from the start (loaded long ago).
    pub fn holding(mut self, id: &str, state: PatchLifecycle) -> Self {
        self.held.push(Held {
            id: id.into(),
            state,
            loaded_at: None,
            delay: self.own_delay,
        });
        self
    }

    /// The state the element reports for `id`.
    pub fn state_of(&self, id: &str) -> Option<PatchLifecycle> {
        self.held
            .iter()
            .find(|h| h.id == id)
            .map(|h| h.state.clone())
    }

    fn fault(&self, spot: Spot) -> Option<Fault> {
        self.faults
            .iter()
            .find(|(s, _)| *s == spot)
            .map(|(_, f)| *f)
    }

    fn held_mut(&mut self, id: &str) -> Option<&mut Held> {
        self.held.iter_mut().find(|h| h.id == id)
    }

    fn readings(&self, now: Timestamp) -> Vec<Patch> {
        self.held
            .iter()
            .map(|h| Patch {
                id: h.id.clone(),
                state: h.state.clone(),
                activates_in: h
                    .loaded_at
                    .map(|at| at + h.delay)
                    .filter(|end| {
                        self.reports_delay
                            && *end > now
                            && matches!(
                                h.state,
                                PatchLifecycle::Loaded | PatchLifecycle::Activating
                            )
                    })
                    .map(|end| end.duration_since(now)),
            })
            .collect()
    }

    fn reading<T>(&self, spot: Spot, value: T) -> Result<T, CallError> {
        match self.fault(spot) {
            Some(Fault::Answer(kind)) => Err(CallError::new(kind, format!("{spot:?} fault"))),
            Some(Fault::Hang) => Err(CallError::new(FaultKind::Unreachable, "no answer in time")),
            _ => Ok(value),
        }
    }

    /// When an operation completes: an activation once its patch's delay has passed.
    fn done_at(&self, run: &Running) -> Option<Timestamp> {
        let length = match self.fault(Spot::Op(run.op)) {
            Some(Fault::Hang) => return None,
            Some(Fault::Slow(d)) => d,
            _ => self.durations[run.op.as_str()],
        };
        let from = match run.op {
            PatchOp::Activate => self
                .held
                .iter()
                .find(|h| h.id == run.patch)
                .and_then(|h| h.loaded_at.map(|at| at + h.delay))
                .map_or(run.started, |end| end.max(run.started)),
            _ => run.started,
        };
        Some(from + length)
    }

    /// Applies what finished by `now`.
    fn advance(&mut self, now: Timestamp) {
        let mut done: Vec<(Timestamp, String)> = self
            .ops
            .iter()
            .filter(|(_, r)| !r.applied)
            .filter_map(|(k, r)| Some((self.done_at(r)?, k.clone())))
            .filter(|(at, _)| *at <= now)
            .collect();
        done.sort();
        for (at, key) in done {
            let Some(run) = self.ops.get_mut(&key) else {
                continue;
            };
            run.applied = true;
            let run = run.clone();
            let own = self.own_delay;
            let ignores = self.ignores_confirm;
            match run.op {
                PatchOp::Load => self.held.push(Held {
                    id: run.patch,
                    state: PatchLifecycle::Loaded,
                    loaded_at: Some(at),
                    delay: own,
                }),
                PatchOp::SetDelay => {
                    if let (Some(h), Some(d)) = (self.held_mut(&run.patch), run.delay) {
                        h.delay = d;
                    }
                }
                PatchOp::Activate => {
                    if let Some(h) = self.held_mut(&run.patch) {
                        h.state = PatchLifecycle::Activated;
                    }
                }
                PatchOp::Confirm => {
                    if let Some(h) = self.held_mut(&run.patch)
                        && h.state == PatchLifecycle::Activated
                        && !ignores
                    {
                        h.state = PatchLifecycle::Running;
                    }
                }
            }
        }
    }

    fn progress(&mut self, key: &str, now: Timestamp) -> OpStatus {
        let Some(run) = self.ops.get(key) else {
            return OpStatus::Unknown;
        };
        match self.done_at(run) {
            None => OpStatus::Running { retry_after: None },
            Some(at) if now < at => OpStatus::Running {
                retry_after: Some(at.duration_since(now)),
            },
            Some(_) => {
                if self.forgets_ops {
                    self.ops.clear();
                    return OpStatus::Unknown;
                }
                OpStatus::Done
            }
        }
    }

    fn start(&mut self, start: &PatchStart, now: Timestamp) -> OpStatus {
        if let Some(Fault::Answer(kind)) = self.fault(Spot::Op(start.op)) {
            return OpStatus::Failed(CallError::new(
                kind,
                format!("{} refused", start.op.as_str()),
            ));
        }
        if !self.ops.contains_key(&start.key) {
            if start.op != PatchOp::Load && !self.held.iter().any(|h| h.id == start.patch) {
                return OpStatus::Failed(CallError::new(FaultKind::Error, "no such patch"));
            }
            match start.op {
                PatchOp::Load => self.loads += 1,
                PatchOp::SetDelay => self.told.extend(start.delay),
                PatchOp::Activate => {
                    if let Some(h) = self.held_mut(&start.patch)
                        && h.state == PatchLifecycle::Loaded
                    {
                        h.state = PatchLifecycle::Activating;
                        self.activations += 1;
                    }
                }
                PatchOp::Confirm => {}
            }
            self.ops.insert(
                start.key.clone(),
                Running {
                    op: start.op,
                    patch: start.patch.clone(),
                    started: now,
                    delay: start.delay,
                    applied: false,
                },
            );
            self.advance(now);
        }
        self.progress(&start.key, now)
    }

    /// Answers one action at `now`.
    fn answer(&mut self, action: &PatchAction, now: Timestamp) -> PatchObservation {
        self.advance(now);
        let spot = match action {
            PatchAction::ReadFacts => Spot::Facts,
            PatchAction::ReadPatches => Spot::Patches,
            PatchAction::Start(PatchStart { op, .. }) | PatchAction::Poll(op, _) => Spot::Op(*op),
        };
        if self.internal_at == Some(spot) {
            return PatchObservation::Internal("injected".into());
        }
        match action {
            PatchAction::ReadFacts => {
                let facts = Facts {
                    model: "OSN6800".into(),
                    firmware: "V100R004C01".into(),
                    free_board: self.free_board,
                    patches: self.readings(now),
                    ..Facts::default()
                };
                PatchObservation::Facts(self.reading(spot, facts))
            }
            PatchAction::ReadPatches => {
                PatchObservation::Patches(self.reading(spot, self.readings(now)))
            }
            PatchAction::Start(start) => PatchObservation::Op(start.op, self.start(start, now)),
            PatchAction::Poll(op, key) => PatchObservation::Op(*op, self.progress(key, now)),
        }
    }
}

pub fn package() -> ImageEntry {
    ImageEntry {
        name: "V100R004C01SPH106.pkg".into(),
        size: 200 << 20,
        catalog_version: None,
    }
}

/// The gate as the world plays it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    Closed,
}

/// Tasks of one resource, their elements, and the clock.
pub struct World {
    pub spec: DevicePatchSpec,
    pub package: Option<ImageEntry>,
    pub elements: Vec<Element>,
    pub tasks: Vec<TaskState>,
    /// The last stored state of each task (what a restarted controller reads).
    stored: Vec<UpgradeTaskStatus>,
    pub gate: Gate,
    pub now: Timestamp,
    pub steps: usize,
    pub actions: usize,
    /// Crash before (false) or after (true) the element acts on the n-th action.
    pub crash: Option<(usize, bool)>,
    keys: Vec<String>,
}

impl World {
    pub fn new(elements: usize) -> Self {
        let created = Timestamp::from_second(1_800_000_000).unwrap();
        let spec = DevicePatchSpec {
            patch: "V100R004C01SPH106".into(),
            package: "V100R004C01SPH106.pkg".into(),
            targets: TargetSelector {
                pattern: Some("ne-*".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let tasks: Vec<TaskState> = (0..elements).map(|_| TaskState::new(created)).collect();
        let stored = tasks.iter().map(status_of).collect();
        Self {
            spec,
            package: Some(package()),
            elements: (0..elements).map(|_| Element::healthy()).collect(),
            tasks,
            stored,
            gate: Gate::Open,
            now: created,
            steps: 0,
            actions: 0,
            crash: None,
            keys: (0..elements)
                .map(|i| format!("default/dpatch-ne-{i}/uid-{i}"))
                .collect(),
        }
    }

    pub fn single() -> Self {
        Self::new(1)
    }

    pub fn context(&self, i: usize) -> Context<'_> {
        Context {
            spec: &self.spec,
            task: &self.keys[i],
            device_exists: self.elements[i].exists,
            package: self.package.as_ref(),
        }
    }

    pub fn codes(&self, i: usize) -> Vec<DevicePatchCode> {
        self.tasks[i].history.iter().map(|(c, _)| *c).collect()
    }

    /// When task `i` entered `code` (first time).
    pub fn entered(&self, i: usize, code: DevicePatchCode) -> Option<Timestamp> {
        self.tasks[i]
            .history
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, at)| *at)
    }

    /// Runs every task until all ended or nothing more happens.
    pub fn run(&mut self) {
        for _ in 0..5_000 {
            let mut wakes = Vec::new();
            for i in 0..self.tasks.len() {
                match self.elements[i].reached_from {
                    Some(at) if self.now < at => wakes.push(at),
                    _ => wakes.extend(self.reconcile(i)),
                }
            }
            let (wake, changed) = self.queue();
            wakes.extend(wake);
            if self.tasks.iter().all(TaskState::is_terminal) {
                return;
            }
            if changed {
                continue;
            }
            match wakes.into_iter().filter(|w| *w > self.now).min() {
                Some(next) => self.now = next,
                None => return,
            }
        }
    }

    /// One reconcile of task `i`, as the task controller runs it; returns when to come back.
    fn reconcile(&mut self, i: usize) -> Option<Timestamp> {
        let mut readings = Readings::default();
        let mut input = None;
        loop {
            let ctx = Context {
                spec: &self.spec,
                task: &self.keys[i],
                device_exists: self.elements[i].exists,
                package: self.package.as_ref(),
            };
            let Step {
                action,
                persist_first,
                wake_at,
            } = self.tasks[i].step(&ctx, &mut readings, input.take(), self.now);
            self.steps += 1;
            let Some(action) = action else {
                self.store(i);
                return wake_at;
            };
            if persist_first {
                self.store(i);
            }
            let n = self.actions;
            self.actions += 1;
            if let Some((at, after)) = self.crash
                && at == n
            {
                if after {
                    self.elements[i].answer(&action, self.now);
                }
                self.crash = None;
                self.restore(i);
                return Some(self.now + SignedDuration::from_secs(1));
            }
            input = Some(self.elements[i].answer(&action, self.now));
        }
    }

    fn store(&mut self, i: usize) {
        self.stored[i] = status_of(&self.tasks[i]);
    }

    /// A new controller reads the task back from the stored status.
    fn restore(&mut self, i: usize) {
        self.tasks[i] = TaskState::from_status(&self.stored[i]).unwrap();
    }

    /// The parent's queue decisions. Returns when to come back and whether any task changed.
    fn queue(&mut self) -> (Option<Timestamp>, bool) {
        let mut changed = false;
        let failed = self
            .tasks
            .iter()
            .any(|t| t.is_terminal() && t.code.is_failure());
        let max_wait = SignedDuration::try_from(self.spec.max_wait.get()).unwrap();
        let mut wake = None;
        let limit = match &self.spec.rollout.max_concurrent {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => *n as usize,
            _ => 1,
        };
        for i in 0..self.tasks.len() {
            let task = &self.tasks[i];
            if task.is_terminal() || !task.code.is_unstarted() {
                continue;
            }
            let ready = task.code == DevicePatchCode::ReadyForExecution;
            let end = if failed && self.spec.rollout.error_policy == ErrorPolicy::Fail {
                Some(if ready {
                    DevicePatchCode::ExecutionCanceledBecauseErrorPolicy
                } else {
                    DevicePatchCode::SkippedBecauseErrorPolicy
                })
            } else if !ready {
                None
            } else if self.now >= task.created_at + max_wait {
                Some(DevicePatchCode::ExecutionCanceledBecauseADayPassed)
            } else if self.gate == Gate::Closed {
                wake = Some(task.created_at + max_wait);
                (self.spec.outside_window == OutsideWindow::Cancel)
                    .then_some(DevicePatchCode::ExecutionCanceledBecauseMaintenanceWindow)
            } else {
                let executing = self.tasks.iter().filter(|t| t.is_executing()).count();
                if executing < limit {
                    self.tasks[i].grant(self.now);
                    self.store(i);
                    changed = true;
                }
                None
            };
            if let Some(code) = end {
                self.tasks[i].end_unstarted(code, "the queue decided", self.now);
                self.store(i);
                changed = true;
            }
        }
        (wake, changed)
    }
}

fn status_of(task: &TaskState) -> UpgradeTaskStatus {
    let mut status = UpgradeTaskStatus::default();
    task.to_status(&mut status);
    status
}
