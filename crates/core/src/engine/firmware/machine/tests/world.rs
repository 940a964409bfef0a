//! A scripted world for the engine: devices with timings and faults, hook Jobs, the rollout and
//! the gate, on a virtual clock. It plays the controllers' part with nothing but the engine's
//! public API, and can crash the "controller" at any action to test resumption.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::super::{Context, Step};
use crate::api::codes::FirmwareCode;
use crate::api::common::GoDuration;
use crate::api::firmware_upgrade::{FirmwareUpgradeSpec, Hooks};
use crate::api::upgrade_task::UpgradeTaskStatus;
use crate::engine::firmware::observe::*;
use crate::engine::firmware::state::TaskState;
use crate::engine::firmware::validation::Readings;
use crate::engine::rollout::{self, BlackoutRule, Decision, Policy, Queued};
use crate::schedule::gate::Gate;

/// Where a device fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spot {
    Facts,
    Licenses,
    DomainStatus,
    Op(OpKind),
}

impl Spot {
    pub const ALL: [Spot; 9] = [
        Spot::Facts,
        Spot::Licenses,
        Spot::DomainStatus,
        Spot::Op(OpKind::FirstQuiesce),
        Spot::Op(OpKind::Restart),
        Spot::Op(OpKind::Upload),
        Spot::Op(OpKind::SecondQuiesce),
        Spot::Op(OpKind::Upgrade),
        Spot::Op(OpKind::Unquiesce),
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

#[derive(Clone, Debug)]
pub struct Device {
    pub exists: bool,
    pub facts: Facts,
    pub licenses: Vec<String>,
    pub domains: DomainStatus,
    pub faults: Vec<(Spot, Fault)>,
    pub durations: BTreeMap<&'static str, SignedDuration>,
    /// The version the device reports once an upgrade completes.
    pub target_firmware: String,
    /// Someone else changes the firmware once the task is validated.
    pub firmware_changes_to: Option<String>,
    /// The device stops answering once execution starts.
    pub unavailable_in_execution: bool,
    /// The Device object is deleted once the task is validated.
    pub deleted_after_validation: bool,
    pub hook_fails: Vec<HookKind>,
    pub hooks_run: Vec<HookKind>,
    hook_started: BTreeMap<&'static str, Timestamp>,
    ops: BTreeMap<String, (OpKind, Timestamp, bool)>,
    pub upgrade_starts: u32,
    /// Internal failure injected at this spot.
    pub internal_at: Option<Spot>,
    /// The device reboots at the end of a restart or an upgrade and forgets its operations.
    pub forgets_on_reboot: bool,
}

impl Device {
    pub fn healthy() -> Self {
        let durations = BTreeMap::from([
            ("first-quiesce", SignedDuration::from_secs(30)),
            ("second-quiesce", SignedDuration::from_secs(30)),
            ("unquiesce", SignedDuration::from_secs(30)),
            ("restart", SignedDuration::from_mins(5)),
            ("upload", SignedDuration::from_secs(12)),
            ("upgrade", SignedDuration::from_mins(15)),
        ]);
        Self {
            exists: true,
            facts: Facts {
                model: "IDG".into(),
                r#virtual: true,
                firmware: "7.5.1.7".into(),
                free_encrypted: Some(2 << 30),
                free_temporary: Some(2 << 30),
                ..Default::default()
            },
            licenses: vec!["DCO-Oracle".into()],
            domains: DomainStatus {
                domains: vec![Domain {
                    name: "default".into(),
                    quiesced: false,
                }],
                unsaved_changes: false,
            },
            faults: Vec::new(),
            durations,
            target_firmware: "7.5.1.9".into(),
            firmware_changes_to: None,
            unavailable_in_execution: false,
            deleted_after_validation: false,
            hook_fails: Vec::new(),
            hooks_run: Vec::new(),
            hook_started: BTreeMap::new(),
            ops: BTreeMap::new(),
            upgrade_starts: 0,
            internal_at: None,
            forgets_on_reboot: false,
        }
    }

    fn fault(&self, spot: Spot) -> Option<Fault> {
        self.faults
            .iter()
            .find(|(s, _)| *s == spot)
            .map(|(_, f)| *f)
    }

    fn reading<T>(&self, spot: Spot, executing: bool, value: T) -> Result<T, CallError> {
        if executing && self.unavailable_in_execution {
            return Err(CallError::new(FaultKind::Unreachable, "connection refused"));
        }
        match self.fault(spot) {
            Some(Fault::Answer(kind)) => Err(CallError::new(kind, format!("{spot:?} fault"))),
            Some(Fault::Hang) => Err(CallError::new(FaultKind::Unreachable, "no answer in time")),
            _ => Ok(value),
        }
    }

    /// Answers one action at `now`.
    fn answer(&mut self, action: &Action, executing: bool, now: Timestamp) -> Observation {
        let spot = match action {
            Action::ReadFacts => Spot::Facts,
            Action::ReadLicenses => Spot::Licenses,
            Action::ReadDomainStatus => Spot::DomainStatus,
            Action::Start(Start { op, .. }) | Action::Poll(op, _) => Spot::Op(*op),
            Action::Hook(_) => Spot::Facts,
        };
        if self.internal_at == Some(spot) && !matches!(action, Action::Hook(_)) {
            return Observation::Internal("injected".into());
        }
        match action {
            Action::ReadFacts => {
                Observation::Facts(self.reading(spot, executing, self.facts.clone()))
            }
            Action::ReadLicenses => {
                Observation::Licenses(self.reading(spot, executing, self.licenses.clone()))
            }
            Action::ReadDomainStatus => {
                Observation::DomainStatus(self.reading(spot, executing, self.domains.clone()))
            }
            Action::Hook(kind) => {
                let started = *self.hook_started.entry(kind.as_str()).or_insert(now);
                if !self.hooks_run.contains(kind) {
                    self.hooks_run.push(*kind);
                }
                let status = if now.duration_since(started) < SignedDuration::from_secs(20) {
                    HookStatus::Running
                } else if self.hook_fails.contains(kind) {
                    HookStatus::Failed("exit code 3".into())
                } else {
                    HookStatus::Succeeded
                };
                Observation::Hook(*kind, status)
            }
            Action::Start(Start { op, key, .. }) => {
                if let Some(Fault::Answer(kind)) = self.fault(spot) {
                    return Observation::Op(
                        *op,
                        OpStatus::Failed(CallError::new(kind, format!("{} refused", op.as_str()))),
                    );
                }
                if !self.ops.contains_key(key) {
                    if *op == OpKind::Upgrade {
                        self.upgrade_starts += 1;
                    }
                    self.ops.insert(key.clone(), (*op, now, false));
                }
                Observation::Op(*op, self.progress(key, now))
            }
            Action::Poll(op, key) => {
                if !self.ops.contains_key(key) {
                    return Observation::Op(*op, OpStatus::Unknown);
                }
                Observation::Op(*op, self.progress(key, now))
            }
        }
    }

    fn progress(&mut self, key: &str, now: Timestamp) -> OpStatus {
        let Some((op, started, applied)) = self.ops.get(key).copied() else {
            return OpStatus::Unknown;
        };
        let length = match self.fault(Spot::Op(op)) {
            Some(Fault::Hang) => return OpStatus::Running { retry_after: None },
            Some(Fault::Slow(d)) => d,
            _ => self.durations[op.as_str()],
        };
        let done_at = started + length;
        if now < done_at {
            return OpStatus::Running {
                retry_after: Some(done_at.duration_since(now)),
            };
        }
        if !applied {
            match op {
                OpKind::FirstQuiesce | OpKind::SecondQuiesce => self
                    .domains
                    .domains
                    .iter_mut()
                    .for_each(|d| d.quiesced = true),
                OpKind::Unquiesce => self
                    .domains
                    .domains
                    .iter_mut()
                    .for_each(|d| d.quiesced = false),
                OpKind::Upgrade => self.facts.firmware = self.target_firmware.clone(),
                OpKind::Restart | OpKind::Upload => {}
            }
            self.ops.insert(key.to_string(), (op, started, true));
            if self.forgets_on_reboot && matches!(op, OpKind::Restart | OpKind::Upgrade) {
                self.ops.clear();
                return OpStatus::Unknown;
            }
        }
        OpStatus::Done
    }
}

pub fn image(name: &str) -> ImageEntry {
    ImageEntry {
        name: name.into(),
        size: 600 << 20,
        catalog_version: None,
    }
}

/// Tasks of one resource, their devices, and the clock.
pub struct World {
    pub spec: FirmwareUpgradeSpec,
    pub family: DeviceFamily,
    pub image: Option<ImageEntry>,
    pub devices: Vec<Device>,
    pub tasks: Vec<TaskState>,
    /// The last stored state of each task (what a restarted controller reads).
    stored: Vec<UpgradeTaskStatus>,
    pub gate: fn(Timestamp) -> Gate,
    pub now: Timestamp,
    /// Steps taken.
    pub steps: usize,
    /// Actions performed.
    pub actions: usize,
    /// Crash before (false) or after (true) the device acts on the n-th action.
    pub crash: Option<(usize, bool)>,
    keys: Vec<String>,
}

pub fn always_open(_: Timestamp) -> Gate {
    Gate {
        open: true,
        reason: "no maintenance window is required".into(),
        blackout: false,
        next_change: None,
    }
}

pub fn always_closed(_: Timestamp) -> Gate {
    Gate {
        open: false,
        reason: "no maintenance window is open (never)".into(),
        blackout: false,
        next_change: None,
    }
}

/// The path with every optional step: hooks, first quiesce, restart and wait after restart.
pub fn full_path() -> World {
    let mut world = World::single();
    world.spec.first_quiesce = true;
    world.spec.restart.enabled = true;
    world.spec.restart.wait_after = GoDuration::from_secs(45);
    world.with_hooks(true, true, true);
    world
}

impl World {
    pub fn new(devices: usize) -> Self {
        let created = Timestamp::from_second(1_800_000_000).unwrap();
        let spec = FirmwareUpgradeSpec {
            image: "idg7519.oradco.scrypt4".into(),
            ..Default::default()
        };
        let tasks: Vec<TaskState> = (0..devices).map(|_| TaskState::new(created)).collect();
        let stored = tasks.iter().map(status_of).collect();
        Self {
            spec,
            family: DeviceFamily::Appliance,
            image: Some(image("idg7519.oradco.scrypt4")),
            devices: (0..devices).map(|_| Device::healthy()).collect(),
            tasks,
            stored,
            gate: always_open,
            now: created,
            steps: 0,
            actions: 0,
            crash: None,
            keys: (0..devices)
                .map(|i| format!("default/fw-dp-{i}/uid-{i}"))
                .collect(),
        }
    }

    pub fn single() -> Self {
        Self::new(1)
    }

    pub fn with_hooks(&mut self, pre_plan: bool, pre: bool, post: bool) {
        let template = || Some(k8s_openapi::api::batch::v1::JobTemplateSpec::default());
        self.spec.hooks = Some(Hooks {
            pre_plan: if pre_plan { template() } else { None },
            pre: if pre { template() } else { None },
            post: if post { template() } else { None },
        });
    }

    pub fn context(&self, i: usize) -> Context<'_> {
        Context {
            spec: &self.spec,
            task: &self.keys[i],
            family: self.family,
            device_exists: self.devices[i].exists,
            image: self.image.as_ref(),
        }
    }

    pub fn codes(&self, i: usize) -> Vec<FirmwareCode> {
        self.tasks[i].history.iter().map(|(c, _)| *c).collect()
    }

    /// Runs every task until all ended or nothing more happens.
    pub fn run(&mut self) {
        for _ in 0..5_000 {
            let mut wakes = Vec::new();
            for i in 0..self.tasks.len() {
                if let Some(wake) = self.reconcile(i) {
                    wakes.push(wake);
                }
            }
            let (wake, changed) = self.rollout();
            wakes.extend(wake);
            if self.tasks.iter().all(TaskState::is_terminal) {
                return;
            }
            if changed {
                // Granted or ended tasks are reconciled at once, as a watch event would do.
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
            let executing = self.tasks[i].started_at.is_some();
            let validated = self.tasks[i].progress.target_version.is_some();
            let device = &mut self.devices[i];
            if validated && device.deleted_after_validation {
                device.exists = false;
            }
            if executing && let Some(changed) = device.firmware_changes_to.take() {
                device.facts.firmware = changed;
            }
            let ctx = Context {
                spec: &self.spec,
                task: &self.keys[i],
                family: self.family,
                device_exists: self.devices[i].exists,
                image: self.image.as_ref(),
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
                    self.devices[i].answer(&action, executing, self.now);
                }
                self.crash = None;
                self.restore(i);
                return Some(self.now + SignedDuration::from_secs(1));
            }
            input = Some(self.devices[i].answer(&action, executing, self.now));
        }
    }

    fn store(&mut self, i: usize) {
        self.stored[i] = status_of(&self.tasks[i]);
    }

    /// A new controller reads the task back from the stored status.
    fn restore(&mut self, i: usize) {
        self.tasks[i] = TaskState::from_status(&self.stored[i]).unwrap();
    }

    /// The parent controller's part: the rollout plan, applied. Returns when to come back and
    /// whether any task changed.
    fn rollout(&mut self) -> (Option<Timestamp>, bool) {
        let policy = Policy {
            max_concurrent: rollout::max_concurrent(
                &self.spec.rollout.max_concurrent,
                self.tasks.len(),
            )
            .unwrap(),
            error_policy: self.spec.rollout.error_policy,
            outside_window: self.spec.outside_window,
            blackout: BlackoutRule::CloseGate,
            max_wait: SignedDuration::try_from(self.spec.max_wait.get()).unwrap(),
            suspend: self.spec.suspend,
        };
        let targets: Vec<String> = (0..self.tasks.len()).map(|i| format!("dp-{i}")).collect();
        let queued: Vec<Queued<'_, FirmwareCode>> = self
            .tasks
            .iter()
            .zip(&targets)
            .map(|(t, target)| Queued {
                target,
                code: t.code,
                created_at: t.created_at,
                wave: 0,
                released: false,
                blocked: false,
            })
            .collect();
        let plan = rollout::plan(&policy, &queued, &(self.gate)(self.now), self.now);
        let changed = !plan.decisions.is_empty();
        for (i, decision) in plan.decisions {
            match decision {
                Decision::Grant => self.tasks[i].grant(self.now),
                Decision::End(code, _, why) => self.tasks[i].end_unstarted(code, why, self.now),
            }
            self.store(i);
        }
        (plan.wake_at, changed)
    }
}

fn status_of(task: &TaskState) -> UpgradeTaskStatus {
    let mut status = UpgradeTaskStatus::default();
    task.to_status(&mut status);
    status
}
