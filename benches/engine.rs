//! Engine decisions per second for a large fleet, on one core.
//!
//! Model: a FirmwareUpgrade over N devices (default 100,000). Every task is driven through the
//! whole happy path — validation, READY_FOR_EXECUTION, a rollout grant, execution, SUCCESS — by
//! calling `TaskState::step` with answers a healthy device gives at once, and the rollout's
//! `plan()` grants slots `maxConcurrent` (default 500) at a time over the whole task list (all
//! 100,000 tasks every time). Every `step()` call and every `plan()` call counts as one decision.
//! The timings include the driver's own work (building device answers, keeping the rollout's view
//! of the tasks up to date), so they understate the engine alone.
//!
//! Run: `cargo bench --bench engine` (options after `--`: `--devices N`, `--max-concurrent N`,
//! `--rounds N`, and `--rebuild-view` to rebuild the rollout's list of all tasks before every
//! `plan()` instead of keeping it up to date, as a controller without an index would).

use std::hint::black_box;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use upkeep::api::FirmwareUpgradeSpec;
use upkeep::api::codes::FirmwareCode;
use upkeep::api::common::ErrorPolicy;
use upkeep::api::firmware_upgrade::OutsideWindow;
use upkeep::engine::firmware::machine::{Context, Step};
use upkeep::engine::firmware::observe::{
    Action, DeviceFamily, Domain, DomainStatus, Facts, HookStatus, ImageEntry, Observation, OpKind,
    OpStatus, Start,
};
use upkeep::engine::firmware::state::TaskState;
use upkeep::engine::firmware::validation::Readings;
use upkeep::engine::rollout::{self, BlackoutRule, Decision, Policy, Queued};
use upkeep::schedule::gate::Gate;

/// The goal: decisions per second on one core.
const GOAL: f64 = 1_000_000.0;

struct Options {
    devices: usize,
    max_concurrent: usize,
    rounds: usize,
    rebuild_view: bool,
}

impl Options {
    fn from_args() -> Self {
        let mut options = Self {
            devices: 100_000,
            max_concurrent: 500,
            rounds: 3,
            rebuild_view: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> usize {
                args.next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{name} needs a positive number"))
            };
            match arg.as_str() {
                "--devices" => options.devices = value("--devices").max(1),
                "--max-concurrent" => options.max_concurrent = value("--max-concurrent").max(1),
                "--rounds" => options.rounds = value("--rounds").max(1),
                "--rebuild-view" => options.rebuild_view = true,
                // `cargo bench` passes `--bench`; anything else is a filter we do not use.
                _ => {}
            }
        }
        options
    }
}

/// A healthy virtual IDG at 7.5.1.7 that does what it is asked at once.
struct Device {
    facts: Facts,
    licenses: Vec<String>,
    domains: DomainStatus,
}

impl Device {
    fn healthy() -> Self {
        Self {
            facts: Facts {
                model: "IDG".into(),
                r#virtual: true,
                firmware: "7.5.1.7".into(),
                free_encrypted: Some(2 << 30),
                free_temporary: Some(2 << 30),
                ..Facts::default()
            },
            licenses: vec!["DCO-Oracle".into()],
            domains: DomainStatus {
                domains: vec![Domain {
                    name: "default".into(),
                    quiesced: false,
                }],
                unsaved_changes: false,
            },
        }
    }

    fn answer(&mut self, action: Action) -> Observation {
        match action {
            Action::ReadFacts => Observation::Facts(Ok(self.facts.clone())),
            Action::ReadLicenses => Observation::Licenses(Ok(self.licenses.clone())),
            Action::ReadDomainStatus => Observation::DomainStatus(Ok(self.domains.clone())),
            Action::Hook(kind) => Observation::Hook(kind, HookStatus::Succeeded),
            Action::Start(Start { op, .. }) | Action::Poll(op, _) => {
                match op {
                    OpKind::FirstQuiesce | OpKind::SecondQuiesce => {
                        self.domains
                            .domains
                            .iter_mut()
                            .for_each(|d| d.quiesced = true);
                    }
                    OpKind::Unquiesce | OpKind::Restart => {
                        self.domains
                            .domains
                            .iter_mut()
                            .for_each(|d| d.quiesced = false);
                    }
                    OpKind::Upgrade => {
                        self.facts.firmware = "7.5.1.9".into();
                        self.domains
                            .domains
                            .iter_mut()
                            .for_each(|d| d.quiesced = false);
                    }
                    OpKind::Upload => {}
                }
                Observation::Op(op, OpStatus::Done)
            }
        }
    }
}

/// One fleet and its upgrade.
struct Fleet {
    spec: FirmwareUpgradeSpec,
    image: ImageEntry,
    keys: Vec<String>,
    devices: Vec<Device>,
    tasks: Vec<TaskState>,
}

impl Fleet {
    fn new(targets: &[String], created: Timestamp) -> Self {
        let spec = FirmwareUpgradeSpec {
            image: "idg7519.oradco.scrypt4".into(),
            ..Default::default()
        };
        let devices = targets.len();
        Self {
            image: ImageEntry {
                name: spec.image.clone(),
                size: 600 << 20,
                catalog_version: None,
            },
            spec,
            keys: targets.iter().map(|t| format!("default/fw/{t}")).collect(),
            devices: (0..devices).map(|_| Device::healthy()).collect(),
            tasks: (0..devices).map(|_| TaskState::new(created)).collect(),
        }
    }

    /// One reconcile of task `i` at `now`, as the task controller runs it: step, perform the
    /// action, feed the answer back, until the engine stops asking. Returns the steps taken.
    fn reconcile(&mut self, i: usize, now: Timestamp) -> u64 {
        let ctx = Context {
            spec: &self.spec,
            task: &self.keys[i],
            family: DeviceFamily::Appliance,
            device_exists: true,
            image: Some(&self.image),
        };
        let task = &mut self.tasks[i];
        let device = &mut self.devices[i];
        let mut readings = Readings::default();
        let mut input = None;
        let mut steps = 0;
        loop {
            let Step { action, .. } = task.step(&ctx, &mut readings, input.take(), now);
            steps += 1;
            match action {
                Some(action) => input = Some(device.answer(action)),
                None => return steps,
            }
        }
    }
}

struct Outcome {
    steps: u64,
    plans: u64,
    validation: Duration,
    rollout: Duration,
    /// Of `rollout`: `plan()` calls and building the rollout's task list once.
    planning: Duration,
}

impl Outcome {
    fn decisions(&self) -> u64 {
        self.steps + self.plans
    }

    fn total(&self) -> Duration {
        self.validation + self.rollout
    }

    fn rate(&self) -> f64 {
        self.decisions() as f64 / self.total().as_secs_f64()
    }
}

fn run(options: &Options) -> Outcome {
    let created = Timestamp::from_second(1_800_000_000).expect("a valid instant");
    let targets: Vec<String> = (0..options.devices).map(|i| format!("dp-{i:06}")).collect();
    let mut fleet = Fleet::new(&targets, created);
    let policy = Policy {
        max_concurrent: options.max_concurrent,
        error_policy: ErrorPolicy::Continue,
        outside_window: OutsideWindow::Wait,
        blackout: BlackoutRule::CloseGate,
        max_wait: SignedDuration::from_hours(24),
        suspend: false,
    };
    let gate = Gate {
        open: true,
        reason: "no maintenance window is required".into(),
        blackout: false,
        next_change: None,
    };
    let (mut steps, mut plans) = (0u64, 0u64);

    // Validation: every task until it is ready and waits for a slot.
    let started = Instant::now();
    let mut now = created + SignedDuration::from_secs(1);
    for i in 0..fleet.tasks.len() {
        steps += fleet.reconcile(i, now);
    }
    let validation = started.elapsed();

    // The rollout: plan over the whole task list, grant, run the granted tasks to their end.
    // The parent's view of its tasks is kept up to date as they change, as a controller's
    // cache is by watch events.
    let started = Instant::now();
    let mut queued: Vec<Queued<'_, FirmwareCode>> = fleet
        .tasks
        .iter()
        .zip(&targets)
        .map(|(task, target)| Queued {
            target,
            code: task.code,
            created_at: task.created_at,
            wave: 0,
            released: false,
            blocked: false,
        })
        .collect();
    let mut planning = started.elapsed();
    loop {
        now += SignedDuration::from_secs(1);
        let planned = Instant::now();
        if options.rebuild_view {
            queued = fleet
                .tasks
                .iter()
                .zip(&targets)
                .map(|(task, target)| Queued {
                    target,
                    code: task.code,
                    created_at: task.created_at,
                    wave: 0,
                    released: false,
                    blocked: false,
                })
                .collect();
        }
        let plan = rollout::plan(&policy, &queued, &gate, now);
        planning += planned.elapsed();
        plans += 1;
        let mut granted = 0;
        for (i, decision) in black_box(plan).decisions {
            match decision {
                Decision::Grant => {
                    fleet.tasks[i].grant(now);
                    steps += fleet.reconcile(i, now);
                    granted += 1;
                }
                Decision::End(code, _, why) => fleet.tasks[i].end_unstarted(code, why, now),
            }
            queued[i].code = fleet.tasks[i].code;
        }
        if granted == 0 {
            break;
        }
    }
    let rollout = started.elapsed();

    let succeeded = fleet
        .tasks
        .iter()
        .filter(|t| t.code == FirmwareCode::Success)
        .count();
    assert_eq!(succeeded, options.devices, "every task ends SUCCESS");
    assert_eq!(
        fleet.tasks[0].history.len(),
        12,
        "the full happy path: {:?}",
        fleet.tasks[0].history
    );
    Outcome {
        steps,
        plans,
        validation,
        rollout,
        planning,
    }
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.round());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    let options = Options::from_args();
    println!(
        "engine bench: {} devices, maxConcurrent {}, {} rounds (one thread){}",
        thousands(options.devices as f64),
        options.max_concurrent,
        options.rounds,
        if options.rebuild_view {
            ", rollout view rebuilt before every plan()"
        } else {
            ""
        }
    );
    let mut outcomes = Vec::new();
    for round in 1..=options.rounds {
        let outcome = run(&options);
        println!(
            "  round {round}: {} decisions ({} step + {} plan) in {:.3} s \
             (validation {:.3} s, rollout {:.3} s of which planning {:.3} s): {} decisions/s",
            thousands(outcome.decisions() as f64),
            thousands(outcome.steps as f64),
            thousands(outcome.plans as f64),
            outcome.total().as_secs_f64(),
            outcome.validation.as_secs_f64(),
            outcome.rollout.as_secs_f64(),
            outcome.planning.as_secs_f64(),
            thousands(outcome.rate()),
        );
        outcomes.push(outcome);
    }
    outcomes.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let median = &outcomes[outcomes.len() / 2];
    let per_task = median.total().as_secs_f64() / options.devices as f64;
    let verdict = if median.rate() > GOAL {
        "met"
    } else {
        "MISSED"
    };
    println!(
        "result: {} decisions/s (median of {}), {} decisions in {:.3} s, {:.2} µs per task \
         ({:.1} decisions per task); goal > {} decisions/s on one core: {verdict}",
        thousands(median.rate()),
        outcomes.len(),
        thousands(median.decisions() as f64),
        median.total().as_secs_f64(),
        per_task * 1e6,
        median.decisions() as f64 / options.devices as f64,
        thousands(GOAL),
    );
}
