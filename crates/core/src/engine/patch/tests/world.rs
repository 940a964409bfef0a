//! A scripted host with its node, and a loop that drives one started host task through the
//! agent's and the controller's halves until it ends or nothing more happens. What each half
//! stores (the task's status, the agent's journal) is kept apart from what it holds in memory,
//! so a crash can drop the memory at any step and the halves resume from what they stored.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::api::codes::{PatchCode, PatchReason};
use crate::api::common::GoDuration;
use crate::api::host::RebootRequired;
use crate::api::patch_job::{Action as JobAction, Actions, PatchJobSpec, PatchSelection};
use crate::api::upgrade_task::PackageOutcome;
use crate::engine::patch::agent::{self, Action, HostFacts, Journal, Observation, Op, OpStatus};
use crate::engine::patch::coordinator::{self, DrainReport, NodeState};
use crate::engine::patch::state::{HostTask, time};
use crate::engine::updates::Update;

pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// How an operation of the host goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// It fails with this error line.
    Fail(String),
    /// It never ends.
    Hang,
    /// The package manager's lock is held this many more times.
    Locked(u32),
    /// It ends with this package outcome.
    Package(PackageOutcome),
}

/// The host: its package manager, its operations, its reboots.
#[derive(Clone, Debug)]
pub struct Host {
    pub package_manager: bool,
    pub installed: Vec<String>,
    pub offered: Vec<Update>,
    pub scan_error: Option<String>,
    pub packages_not_applicable: Option<String>,
    /// What the reboot signal says after the install.
    pub signal: RebootRequired,
    pub boot_id: String,
    pub faults: BTreeMap<String, Fault>,
    /// How long every operation takes.
    pub op_time: SignedDuration,
    /// Operations by key: the operation, when it ends (`None`: never).
    pub ops: BTreeMap<String, (Op, Option<Timestamp>, OpStatus)>,
    pub installs: u32,
    pub reboots: u32,
    /// A reboot under way: the instant the new boot is up.
    pub rebooting_until: Option<Timestamp>,
    /// The reboot call fails.
    pub reboot_fails: bool,
    /// The reboot is accepted but never happens.
    pub reboot_ignored: bool,
    pub agent_online: bool,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            package_manager: true,
            installed: vec!["openssl".into()],
            offered: vec![
                Update {
                    name: "openssl".into(),
                    from: Some("3.0.11".into()),
                    to: "3.0.13".into(),
                    security: true,
                },
                Update {
                    name: "vim".into(),
                    from: Some("9.0.1".into()),
                    to: "9.0.2".into(),
                    security: false,
                },
            ],
            scan_error: None,
            packages_not_applicable: None,
            signal: RebootRequired::No,
            boot_id: "boot-1".into(),
            faults: BTreeMap::new(),
            op_time: SignedDuration::from_secs(30),
            ops: BTreeMap::new(),
            installs: 0,
            reboots: 0,
            rebooting_until: None,
            reboot_fails: false,
            reboot_ignored: false,
            agent_online: true,
        }
    }
}

/// The node the host is, and its drain.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub unschedulable: bool,
    pub cordoned_by_us: bool,
    /// The PodDisruptionBudget refuses evictions until then.
    pub blocked_until: Option<Timestamp>,
    /// Pods that never leave (the drain times out).
    pub stuck: bool,
}

/// One host task, its halves' stored state and their memory.
#[derive(Clone, Debug)]
pub struct World {
    pub spec: PatchJobSpec,
    pub host: Host,
    pub node: Option<Node>,
    /// The task as stored in the API.
    pub stored: HostTask,
    /// The agent's journal as stored on the host's disk.
    pub journal: Journal,
    pub now: Timestamp,
    /// The Host carries the defer annotation while fewer deferrals than this were used.
    pub defer_rounds: u32,
    /// Crash the halves at the step with this number (counting every step).
    pub crash_at: Option<usize>,
    pub steps: usize,
    /// How often the agent's half wrote the task's status.
    pub agent_writes: usize,
}

impl World {
    /// A task granted its start at `at(0)`, with a window until `until` (if any).
    pub fn new(until: Option<Timestamp>) -> Self {
        let spec = PatchJobSpec {
            patch: Some(PatchSelection::default()),
            ..Default::default()
        };
        let mut task = HostTask::new(at(-60), spec.reboot.max_deferrals);
        task.started_at = Some(at(0));
        task.progress.until = until.map(time);
        Self {
            spec,
            host: Host::default(),
            node: Some(Node::default()),
            stored: task,
            journal: Journal::default(),
            now: at(0),
            defer_rounds: 0,
            crash_at: None,
            steps: 0,
            agent_writes: 0,
        }
    }

    pub fn with_actions(mut self, pre: &[&str], post: &[&str]) -> Self {
        let action = |name: &&str| JobAction {
            name: name.to_string(),
            command: format!("run {name}"),
            timeout: GoDuration::from_mins(10),
            rerun_if_interrupted: false,
        };
        self.spec.actions = Some(Actions {
            pre: pre.iter().map(action).collect(),
            post: post.iter().map(action).collect(),
        });
        self
    }

    pub fn fault(mut self, op: &str, fault: Fault) -> Self {
        self.host.faults.insert(op.to_string(), fault);
        self
    }

    fn crash(&mut self) -> bool {
        self.steps += 1;
        self.crash_at == Some(self.steps)
    }

    /// Runs until the task ends or nothing happens any more (at most a simulated week).
    pub fn run(&mut self) -> &HostTask {
        for _ in 0..10_000 {
            let before = self.stored.clone();
            let wake_agent = self.agent_round();
            // The controller also wakes when the agent's Lease would run out: never, here.
            let wake_controller = self.controller_round().filter(|at| *at != Timestamp::MAX);
            if self.stored.is_terminal() && !self.node_cordoned() {
                break;
            }
            if self.stored != before {
                // A write wakes the other half, as a watch event does.
                continue;
            }
            let next = [wake_agent, wake_controller, self.host_event()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t > self.now => self.now = t,
                Some(_) => {}
                None => break,
            }
            if self.now > at(7 * 86_400) {
                break;
            }
        }
        &self.stored
    }

    /// When the agent's Lease runs out, as the controller reads it: never while the agent is
    /// online (the world renews it all the time; the coordinator's own tests check the wake at
    /// a Lease's end), none while it is not.
    fn lease_expires(&self) -> Option<Timestamp> {
        self.host.agent_online.then_some(Timestamp::MAX)
    }

    fn node_cordoned(&self) -> bool {
        self.node.as_ref().is_some_and(|n| n.cordoned_by_us)
    }

    /// When the host changes by itself next: an operation ends, a reboot completes.
    fn host_event(&self) -> Option<Timestamp> {
        let ops = self.host.ops.values().filter_map(|(_, end, status)| {
            (*status == OpStatus::Running).then_some(*end).flatten()
        });
        ops.chain(self.host.rebooting_until)
            .filter(|t| *t > self.now)
            .min()
    }

    fn advance_host(&mut self) {
        for (_, end, status) in self.host.ops.values_mut() {
            if *status == OpStatus::Running && end.is_some_and(|e| e <= self.now) {
                *status = OpStatus::Done;
            }
        }
        if let Some(t) = self.host.rebooting_until
            && t <= self.now
        {
            self.host.rebooting_until = None;
            self.host.reboots += 1;
            self.host.boot_id = format!("boot-{}", self.host.reboots + 1);
            self.host.agent_online = true;
        }
    }

    /// The agent steps until it waits; returns its wake time.
    fn agent_round(&mut self) -> Option<Timestamp> {
        self.advance_host();
        if self.host.rebooting_until.is_some() || !self.host.agent_online {
            return None;
        }
        let spec = self.spec.clone();
        let boot_id = self.host.boot_id.clone();
        let ctx = agent::Context {
            task: "default/job-web-1/uid",
            spec: &spec,
            boot_id: &boot_id,
        };
        let mut task = self.stored.clone();
        let mut journal = self.journal.clone();
        let mut input = None;
        for _ in 0..200 {
            let step = agent::step(&ctx, &mut task, &mut journal, input.take(), self.now);
            if self.crash() {
                return Some(self.now);
            }
            if step.persist_first {
                self.journal = journal.clone();
                self.store_from_agent(&task);
            }
            let Some(action) = step.action else {
                self.journal = journal;
                self.store_from_agent(&task);
                return step.wake_at;
            };
            let observation = self.perform(action);
            if self.crash() {
                // The answer is lost; what was stored stays.
                return Some(self.now);
            }
            input = Some(observation);
        }
        panic!("the agent did not settle: {:?}", self.stored.code);
    }

    /// The agent writes the task's status when it changed.
    fn store_from_agent(&mut self, task: &HostTask) {
        if *task != self.stored {
            self.agent_writes += 1;
            self.stored = task.clone();
        }
    }

    fn perform(&mut self, action: Action) -> Observation {
        match action {
            Action::CheckApplicability => Observation::Applicability(HostFacts {
                package_manager: self.host.package_manager,
                installed: self.host.installed.clone(),
                packages_not_applicable: self.host.packages_not_applicable.clone(),
            }),
            Action::Scan => Observation::Updates(match &self.host.scan_error {
                Some(e) => Err(e.clone()),
                None => Ok(self.host.offered.clone()),
            }),
            Action::ReadRebootSignal => Observation::Reboot(self.host.signal),
            Action::Start { op, key, .. } => {
                let status = self.start(&op, &key);
                Observation::Op(op.clone(), self.package_result(&op, status))
            }
            Action::Rerun { op, key, .. } => {
                // Run again as the package manager would: what is in place stays, the rest runs.
                self.host.ops.remove(&key);
                let status = self.start(&op, &key);
                Observation::Op(op.clone(), self.package_result(&op, status))
            }
            Action::Poll { op, key } => {
                let status = self
                    .host
                    .ops
                    .get(&key)
                    .map_or(OpStatus::Unknown, |(_, _, s)| s.clone());
                Observation::Op(op.clone(), self.package_result(&op, status))
            }
        }
    }

    /// A package operation that finished reports its package's result.
    fn package_result(&self, op: &Op, status: OpStatus) -> OpStatus {
        match (op, status) {
            (Op::Package(i), OpStatus::Done) => OpStatus::Package(PackageOutcome {
                id: self
                    .spec
                    .packages
                    .get(*i)
                    .map_or("?".into(), |p| p.id.clone()),
                result: Some("success".into()),
                reason: None,
            }),
            (_, status) => status,
        }
    }

    fn start(&mut self, op: &Op, key: &str) -> OpStatus {
        if let Some((_, _, status)) = self.host.ops.get(key) {
            return status.clone();
        }
        let name = op.name();
        let fault = self.host.faults.get(&name).cloned();
        if *op == Op::Reboot {
            if self.host.reboot_fails {
                return OpStatus::Failed("logind refused the reboot".into());
            }
            if !self.host.reboot_ignored {
                self.host.rebooting_until = Some(self.now + SignedDuration::from_mins(3));
                self.host.agent_online = false;
            }
            self.host
                .ops
                .insert(key.to_string(), (op.clone(), None, OpStatus::Done));
            return OpStatus::Done;
        }
        if matches!(op, Op::Install | Op::Package(_)) && !matches!(fault, Some(Fault::Locked(_))) {
            self.host.installs += 1;
        }
        let (end, status) = match fault {
            Some(Fault::Fail(line)) => (Some(self.now), OpStatus::Failed(line)),
            Some(Fault::Hang) => (None, OpStatus::Running),
            Some(Fault::Locked(n)) => {
                if n <= 1 {
                    self.host.faults.remove(&name);
                } else {
                    self.host.faults.insert(name, Fault::Locked(n - 1));
                }
                (
                    Some(self.now),
                    OpStatus::Locked("process 4242 (apt-get)".into()),
                )
            }
            Some(Fault::Package(outcome)) => (Some(self.now), OpStatus::Package(outcome)),
            None => (Some(self.now + self.host.op_time), OpStatus::Running),
        };
        self.host
            .ops
            .insert(key.to_string(), (op.clone(), end, status.clone()));
        status
    }

    /// The controller steps until it waits; returns its wake time.
    fn controller_round(&mut self) -> Option<Timestamp> {
        let spec = self.spec.clone();
        let node = self.node.as_ref().map(|n| NodeState {
            unschedulable: n.unschedulable,
            cordoned_by_us: n.cordoned_by_us,
        });
        let ctx = coordinator::Context {
            spec: &spec,
            node,
            lease_expires: self.lease_expires(),
            agent_seen: (!self.host.agent_online).then_some(self.offline_since()),
            defer_requested: self.stored.deferrals.used < self.defer_rounds,
        };
        let mut task = self.stored.clone();
        let mut input = None;
        for _ in 0..50 {
            let step = coordinator::step(&ctx, &mut task, input.take(), self.now);
            if self.crash() {
                return Some(self.now);
            }
            if step.persist_first {
                self.stored = task.clone();
            }
            let Some(action) = step.action else {
                self.stored = task;
                return step.wake_at;
            };
            input = Some(self.node_action(action));
        }
        panic!("the controller did not settle: {:?}", self.stored.code);
    }

    fn offline_since(&self) -> Timestamp {
        self.host
            .rebooting_until
            .map_or(at(0), |t| t - SignedDuration::from_mins(3))
    }

    fn node_action(&mut self, action: coordinator::Action) -> coordinator::Observation {
        let now = self.now;
        let Some(node) = self.node.as_mut() else {
            return coordinator::Observation::Cordoned(Err("no node".into()));
        };
        match action {
            coordinator::Action::Cordon => {
                node.unschedulable = true;
                node.cordoned_by_us = true;
                coordinator::Observation::Cordoned(Ok(()))
            }
            coordinator::Action::Uncordon => {
                node.unschedulable = false;
                node.cordoned_by_us = false;
                coordinator::Observation::Uncordoned(Ok(()))
            }
            coordinator::Action::Drain => {
                let blocked = node.blocked_until.is_some_and(|t| now < t);
                coordinator::Observation::Drain(Ok(DrainReport {
                    remaining: u32::from(blocked || node.stuck),
                    blocked_by: blocked.then(|| "web-pdb".to_string()),
                }))
            }
        }
    }

    /// The codes the task passed.
    pub fn codes(&self) -> Vec<PatchCode> {
        self.stored.history.iter().map(|(c, _)| *c).collect()
    }

    pub fn reason(&self) -> Option<PatchReason> {
        self.stored.reason
    }
}
