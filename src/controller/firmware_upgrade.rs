//! The FirmwareUpgrade controller: resolves the targets, creates one UpgradeTask per target,
//! runs the rollout (grants slots, ends queued tasks by the waiting limit, the window gate and
//! the error policy), and keeps a bounded summary with kstatus conditions.
//!
//! New and removed Devices: while a FirmwareUpgrade has unfinished tasks (or no tasks yet), its
//! targets are resolved again on every reconcile (at least every five minutes), so a Device that
//! starts matching gets a task. Once every task has ended, the set is frozen: a newcomer does
//! not reopen a finished upgrade (change the spec, or create a new FirmwareUpgrade). A Device
//! that disappears keeps its task, which ends with a "does not exist" or "not found" code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource as _, ResourceExt as _};
use tracing::{Instrument as _, info_span};

use super::context::{Context, in_namespace};
use super::index::TaskView;
use super::naming::{label_value, task_name};
use super::status;
use super::upgrade_task::render;
use super::watched::Watched;
use crate::api::codes::FirmwareCode;
use crate::api::common::{Summary, TargetFailure};
use crate::api::conditions::{self, Phase};
use crate::api::firmware_upgrade::FirmwareUpgradeStatus;
use crate::api::maintenance_window::WindowType;
use crate::api::upgrade_task::{
    LABEL_PARENT, LABEL_PARENT_KIND, LABEL_TARGET, ParentKind, TaskResult,
};
use crate::api::{FirmwareUpgrade, MaintenanceWindow, UpgradeTask, UpgradeTaskSpec};
use crate::engine::firmware::resource_outcome;
use crate::engine::firmware::state::TaskState;
use crate::engine::rollout::{self, Decision, Policy, Queued};
use crate::engine::targets::{Candidate, Resolution, resolve};
use crate::schedule::gate::{self, Gate, Referenced};
use crate::schedule::window::Window;

/// How many failed targets the status lists.
const FIRST_FAILURES: usize = 10;
/// How often an unfinished FirmwareUpgrade looks for new Devices.
const RESOLVE_INTERVAL: Duration = Duration::from_secs(300);

/// A reconcile that could not finish; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating a task failed.
    #[error("creating UpgradeTask {task}: {source}")]
    CreateTask {
        /// The task.
        task: String,
        /// The API error.
        source: kube::Error,
    },
    /// Writing a task's or the FirmwareUpgrade's status failed.
    #[error("writing the status of {object}: {source}")]
    Write {
        /// The object.
        object: String,
        /// The API error.
        source: kube::Error,
    },
}

/// Reconciles one FirmwareUpgrade.
pub async fn reconcile(
    guard: Arc<Watched<FirmwareUpgrade>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let span = info_span!("reconcile", kind = "FirmwareUpgrade", namespace = %guard.namespace().unwrap_or_default(), name = %guard.name_any());
    let result = async {
        match &guard.0 {
            Ok(upgrade) if upgrade.metadata.deletion_timestamp.is_none() => Box::pin(reconcile_upgrade(upgrade, &ctx)).await,
            Ok(_) => Ok(Action::await_change()),
            Err(invalid) => {
                tracing::warn!(error = %invalid.error, "the FirmwareUpgrade cannot be read; it is left alone");
                Ok(Action::await_change())
            }
        }
    }
    .instrument(span)
    .await;
    ctx.metrics
        .reconciled("FirmwareUpgrade", started.elapsed(), result.is_err());
    result
}

/// A task with its engine state.
/// A task as the rollout and the summary see it: the index's view of it, its code parsed.
struct Known {
    view: Arc<TaskView>,
    code: FirmwareCode,
    created_at: Timestamp,
}

impl Known {
    fn read(view: &Arc<TaskView>, now: Timestamp) -> Option<Self> {
        let code = match view.code.as_deref() {
            Some(code) => code.parse().ok()?,
            None => FirmwareCode::WaitingForPreValidation,
        };
        Some(Self {
            view: view.clone(),
            code,
            created_at: view.created_at.unwrap_or(now),
        })
    }

    fn is_terminal(&self) -> bool {
        self.code.is_terminal()
    }
}

async fn reconcile_upgrade(upgrade: &FirmwareUpgrade, ctx: &Context) -> Result<Action, Error> {
    let namespace = upgrade.namespace().unwrap_or_default();
    let name = upgrade.name_any();
    let now = ctx.clock.now();
    let generation = upgrade.metadata.generation;
    let tasks = ctx
        .stores
        .tasks
        .of_parent(&namespace, ParentKind::FirmwareUpgrade, &name);
    let mut known: Vec<Known> = tasks
        .iter()
        .filter_map(|view| Known::read(view, now))
        .collect();

    let observed = upgrade.status.as_ref().and_then(|s| s.observed_generation);
    let frozen =
        !known.is_empty() && known.iter().all(Known::is_terminal) && observed == generation;
    let mut outcome = None;
    if !frozen {
        let devices = in_namespace(&ctx.stores.devices, &namespace);
        let candidates: Vec<Candidate<'_>> = devices
            .iter()
            .filter_map(|g| g.0.as_ref().ok())
            .map(|d| Candidate {
                name: d.metadata.name.as_deref().unwrap_or_default(),
                labels: d.metadata.labels.as_ref().unwrap_or(&EMPTY),
            })
            .collect();
        let resolution = resolve(&upgrade.spec.targets, &candidates);
        // A resolution problem matters only while there are no tasks: existing tasks go on.
        outcome = resource_outcome(&resolution, &format!("{namespace}/{name}"), now)
            .filter(|_| known.is_empty());
        if let Ok(Resolution::Targets(targets)) = &resolution {
            let existing: BTreeSet<&str> = known.iter().map(|k| k.view.target.as_str()).collect();
            let missing: Vec<String> = targets
                .iter()
                .filter(|t| !existing.contains(t.name.as_str()))
                .map(|t| t.name.clone())
                .collect();
            for target in missing {
                create_task(ctx, upgrade, &target).await?;
            }
        }
        if let Some(o) = &outcome
            && let Some(incident) = &o.incident_id
        {
            tracing::error!(incident = %incident, code = %o.code, message = %o.message, "the targets could not be resolved");
        }
    }

    let gate = window_gate(ctx, upgrade, &namespace, now);
    let mut wake = None;
    if !known.is_empty() {
        match rollout_policy(upgrade, known.len()) {
            Ok(policy) => {
                let plan = apply_plan(ctx, &namespace, &policy, &mut known, &gate, now).await?;
                wake = plan;
            }
            Err(problem) => outcome = Some(problem),
        }
    }

    write_status(ctx, upgrade, &known, outcome.as_ref(), &gate, now).await?;

    let all_ended = !known.is_empty() && known.iter().all(Known::is_terminal);
    let mut next = if all_ended {
        None
    } else {
        Some(RESOLVE_INTERVAL)
    };
    if let Some(at) = wake {
        let until = ctx.clock.until(at).max(Duration::from_millis(1));
        next = Some(next.map_or(until, |n| n.min(until)));
    }
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

/// Creates the task of `upgrade` for `target` (an existing one is left as it is).
async fn create_task(ctx: &Context, upgrade: &FirmwareUpgrade, target: &str) -> Result<(), Error> {
    let namespace = upgrade.namespace().unwrap_or_default();
    let parent = upgrade.name_any();
    let name = task_name(&parent, target);
    let labels = BTreeMap::from([
        (
            LABEL_PARENT_KIND.to_string(),
            ParentKind::FirmwareUpgrade.as_str().to_string(),
        ),
        (LABEL_PARENT.to_string(), label_value(&parent)),
        (LABEL_TARGET.to_string(), label_value(target)),
    ]);
    let task = UpgradeTask {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            owner_references: upgrade.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: UpgradeTaskSpec {
            parent_kind: ParentKind::FirmwareUpgrade,
            parent,
            target: target.to_string(),
        },
        status: None,
    };
    match Api::<UpgradeTask>::namespaced(ctx.client.clone(), &namespace)
        .create(&PostParams::default(), &task)
        .await
    {
        Ok(_) => {
            ctx.metrics.wrote("UpgradeTask", "object");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(Error::CreateTask { task: name, source }),
    }
}

fn rollout_policy(
    upgrade: &FirmwareUpgrade,
    total: usize,
) -> Result<Policy, crate::engine::firmware::ResourceOutcome> {
    let spec = &upgrade.spec;
    let max_concurrent =
        rollout::max_concurrent(&spec.rollout.max_concurrent, total).map_err(|e| {
            crate::engine::firmware::ResourceOutcome {
                code: FirmwareCode::SkippedInternalException,
                message: e.to_string(),
                incident_id: None,
            }
        })?;
    Ok(Policy {
        max_concurrent,
        error_policy: spec.rollout.error_policy,
        outside_window: spec.outside_window,
        max_wait: SignedDuration::try_from(spec.max_wait.get()).unwrap_or(SignedDuration::MAX),
        suspend: spec.suspend,
    })
}

/// The window gate of `upgrade` at `now`, from the MaintenanceWindows in its namespace.
fn window_gate(ctx: &Context, upgrade: &FirmwareUpgrade, namespace: &str, now: Timestamp) -> Gate {
    let objects = in_namespace(&ctx.stores.windows, namespace);
    let windows: BTreeMap<String, Result<Window, String>> = objects
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .map(|w: &MaintenanceWindow| {
            let name = w.name_any();
            let window = Window::from_spec(&name, &w.spec).map_err(|e| e.to_string());
            (name, window)
        })
        .collect();
    let missing = "no such MaintenanceWindow".to_string();
    let referenced: Vec<Referenced<'_>> = upgrade
        .spec
        .maintenance_windows
        .iter()
        .map(|name| match windows.get(name) {
            Some(Ok(window)) => Referenced::Usable(window),
            Some(Err(reason)) => Referenced::Unusable { name, reason },
            None => Referenced::Unusable {
                name,
                reason: &missing,
            },
        })
        .collect();
    let blackouts: Vec<&Window> = windows
        .values()
        .filter_map(|w| w.as_ref().ok())
        .filter(|w| w.kind == WindowType::Blackout)
        .collect();
    gate::evaluate(&referenced, &blackouts, now)
}

/// Runs the rollout plan and writes its decisions; returns when to look again.
async fn apply_plan(
    ctx: &Context,
    namespace: &str,
    policy: &Policy,
    known: &mut [Known],
    gate: &Gate,
    now: Timestamp,
) -> Result<Option<Timestamp>, Error> {
    let queued: Vec<Queued<'_>> = known
        .iter()
        .map(|k| Queued {
            target: &k.view.target,
            code: ctx.expectations.view(namespace, &k.view.name, k.code),
            created_at: k.created_at,
        })
        .collect();
    let plan = rollout::plan(policy, &queued, gate, now);
    let api = Api::<UpgradeTask>::namespaced(ctx.client.clone(), namespace);
    let mut wake = plan.wake_at;
    for (i, decision) in plan.decisions {
        let entry = &mut known[i];
        let task_name = entry.view.name.clone();
        // Decide on the task as it is now, and write only if it did not change meanwhile.
        let task = match api.get_opt(&task_name).await {
            Ok(Some(task)) => task,
            Ok(None) => continue,
            Err(source) => {
                return Err(Error::Write {
                    object: format!("UpgradeTask {namespace}/{task_name}"),
                    source,
                });
            }
        };
        let state = match task.status.as_ref().filter(|s| s.code.is_some()) {
            Some(status) => TaskState::from_status(status).ok(),
            None => Some(TaskState::new(entry.created_at)),
        };
        let Some(mut state) = state else { continue };
        let before = state.code;
        match decision {
            Decision::Grant => state.grant(now),
            Decision::End(code, why) => state.end_unstarted(code, why, now),
        }
        if state.code == before {
            continue;
        }
        let rendered = render(&state, task.status.as_ref(), task.metadata.generation, now);
        match status::apply(
            &api,
            &task_name,
            &rendered,
            task.resource_version().as_deref(),
        )
        .await
        {
            Ok(_) => {
                ctx.metrics.wrote("UpgradeTask", "status");
                ctx.expectations.expect(namespace, &task_name, state.code);
                entry.code = state.code;
            }
            Err(e) if status::is_conflict(&e) || status::is_not_found(&e) => {
                // The task moved on meanwhile; the next reconcile decides on fresh state.
                let retry = now
                    .checked_add(
                        SignedDuration::try_from(ctx.settings.retry)
                            .unwrap_or(SignedDuration::ZERO),
                    )
                    .unwrap_or(now);
                wake = Some(wake.map_or(retry, |w| w.min(retry)));
            }
            Err(source) => {
                return Err(Error::Write {
                    object: format!("UpgradeTask {namespace}/{task_name}"),
                    source,
                });
            }
        }
    }
    Ok(wake)
}

/// Writes the summary, the whole-resource code and the conditions, when they changed.
async fn write_status(
    ctx: &Context,
    upgrade: &FirmwareUpgrade,
    known: &[Known],
    outcome: Option<&crate::engine::firmware::ResourceOutcome>,
    gate: &Gate,
    now: Timestamp,
) -> Result<(), Error> {
    let generation = upgrade.metadata.generation;
    let previous = upgrade.status.clone().unwrap_or_default();
    let mut status = FirmwareUpgradeStatus {
        observed_generation: generation,
        summary: summarize(known),
        first_failures: first_failures(known),
        code: None,
        message: None,
        conditions: previous.conditions.clone(),
    };
    let (phase, reason, message) = if let Some(o) = outcome.filter(|_| known.is_empty()) {
        status.code = Some(o.code.name().to_string());
        status.message = Some(o.message.clone());
        (
            Phase::Stalled,
            super::events::reason_of(o.code.name()),
            o.message.clone(),
        )
    } else if let Some(o) = outcome {
        (
            Phase::Stalled,
            "InvalidRollout".to_string(),
            o.message.clone(),
        )
    } else {
        progress(upgrade, &status.summary, gate)
    };
    conditions::set_phase(
        &mut status.conditions,
        phase,
        &reason,
        &message,
        generation,
        now,
    );
    if upgrade.spec.suspend && phase == Phase::Reconciling {
        conditions::set(
            &mut status.conditions,
            conditions::Desired::new(conditions::RECONCILING, false, "Suspended", message),
            generation,
            now,
        );
    }
    if Some(&status) == upgrade.status.as_ref() {
        return Ok(());
    }
    let name = upgrade.name_any();
    let api = Api::<FirmwareUpgrade>::namespaced(
        ctx.client.clone(),
        &upgrade.namespace().unwrap_or_default(),
    );
    match status::apply(&api, &name, &status, None).await {
        Ok(_) => {
            ctx.metrics.wrote("FirmwareUpgrade", "status");
            Ok(())
        }
        Err(e) if status::is_not_found(&e) => Ok(()),
        Err(source) => Err(Error::Write {
            object: format!("FirmwareUpgrade {name}"),
            source,
        }),
    }
}

/// Where the rollout stands, as a kstatus phase, a reason and a message.
fn progress(upgrade: &FirmwareUpgrade, summary: &Summary, gate: &Gate) -> (Phase, String, String) {
    let ended = summary.total - summary.running - summary.waiting;
    if summary.total == 0 {
        return (
            Phase::Reconciling,
            "Resolving".into(),
            "resolving the targets".into(),
        );
    }
    if ended < summary.total {
        let mut message = format!(
            "{ended} of {} targets done ({} succeeded, {} failed); {} running, {} waiting",
            summary.total, summary.succeeded, summary.failed, summary.running, summary.waiting
        );
        if summary.waiting > 0 {
            message.push_str(&format!("; window gate: {}", gate.reason));
        }
        let reason = if upgrade.spec.suspend {
            "Suspended"
        } else {
            "RollingOut"
        };
        return (Phase::Reconciling, reason.into(), message);
    }
    if summary.failed > 0 {
        let message = format!(
            "{} of {} targets failed; {} succeeded",
            summary.failed, summary.total, summary.succeeded
        );
        return (Phase::Stalled, "TargetsFailed".into(), message);
    }
    let skipped = summary.total - summary.succeeded;
    (
        Phase::Ready,
        "Completed".into(),
        format!(
            "all {} targets done: {} succeeded, {skipped} skipped or canceled",
            summary.total, summary.succeeded
        ),
    )
}

fn summarize(known: &[Known]) -> Summary {
    let mut summary = Summary {
        total: u32::try_from(known.len()).unwrap_or(u32::MAX),
        ..Default::default()
    };
    for k in known {
        *summary
            .by_code
            .entry(k.code.name().to_string())
            .or_default() += 1;
        let executing = Queued {
            target: "",
            code: k.code,
            created_at: k.created_at,
        }
        .is_executing();
        match k.code.result() {
            TaskResult::Succeeded => summary.succeeded += 1,
            TaskResult::Failed => summary.failed += 1,
            TaskResult::InProgress if executing => summary.running += 1,
            TaskResult::InProgress => summary.waiting += 1,
            TaskResult::Skipped | TaskResult::Canceled => {}
        }
    }
    summary
}

fn first_failures(known: &[Known]) -> Vec<TargetFailure> {
    let mut failed: Vec<&Known> = known
        .iter()
        .filter(|k| k.code.result() == TaskResult::Failed)
        .collect();
    failed.sort_by(|a, b| {
        a.view
            .finished_at
            .cmp(&b.view.finished_at)
            .then(a.view.target.cmp(&b.view.target))
    });
    failed
        .into_iter()
        .take(FIRST_FAILURES)
        .map(|k| TargetFailure {
            target: k.view.target.clone(),
            code: k.code.name().to_string(),
            message: k.view.message.clone(),
        })
        .collect()
}
