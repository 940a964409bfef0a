//! The FirmwareUpgrade controller, as a pipeline: resolve what the round needs from the caches
//! (its tasks, the Devices of its namespace when the targets are to be resolved, the window
//! gate), let the engine's pure plan decide (`engine::firmware::plan`), apply the decisions
//! (create tasks, write grants and ends to tasks), and write the status the engine derives from
//! the tasks as they then stand. Every rule is in the engine; this file only reads and writes.
//!
//! A decision is written to a task as it is now (read fresh from the API) and only if the task
//! did not change meanwhile (compare-and-swap); a task that moved on is decided again next
//! round. Decisions written but not yet in the task cache are remembered (`Expectations`), so a
//! round on a stale cache never grants more than `maxConcurrent`.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::controller::Action;

use super::kit::context::{Context, in_namespace};
use super::kit::index::TaskView;
use super::kit::reconcile::guarded;
use super::kit::status;
use super::kit::tasks::create_task;
use super::kit::watched::Watched;
use super::kit::windows::window_gate;
use crate::api::codes::FirmwareCode;
use crate::api::upgrade_task::ParentKind;
use crate::api::{FirmwareUpgrade, FirmwareUpgradeStatus, UpgradeTask};
use crate::engine::firmware::plan::{self, Child, Input};
use crate::engine::firmware::state::TaskState;
use crate::engine::rollout::Decision;
use crate::engine::targets::Candidate;
use crate::engine::task_status::render;

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
    guarded("FirmwareUpgrade", &guard, &ctx.metrics, async |upgrade| {
        if upgrade.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        Box::pin(reconcile_upgrade(upgrade, &ctx)).await
    })
    .await
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

async fn reconcile_upgrade(upgrade: &FirmwareUpgrade, ctx: &Context) -> Result<Action, Error> {
    let namespace = upgrade.namespace().unwrap_or_default();
    let name = upgrade.name_any();
    let now = ctx.clock.now();

    // Resolve: the tasks, the Devices when the targets are to be resolved, the window gate.
    let views = ctx
        .stores
        .tasks
        .of_parent(&namespace, ParentKind::FirmwareUpgrade, &name);
    let (views, mut tasks): (Vec<&Arc<TaskView>>, Vec<Child<'_>>) = views
        .iter()
        .filter_map(|view| Some((view, child(ctx, &namespace, view, now)?)))
        .unzip();
    let devices = plan::resolves_targets(upgrade, &tasks)
        .then(|| in_namespace(&ctx.stores.devices, &namespace));
    let candidates: Option<Vec<Candidate<'_>>> = devices.as_ref().map(|devices| {
        devices
            .iter()
            .filter_map(|g| g.0.as_ref().ok())
            .map(|d| Candidate {
                name: d.metadata.name.as_deref().unwrap_or_default(),
                labels: d.metadata.labels.as_ref().unwrap_or(&EMPTY),
            })
            .collect()
    });
    let (gate, _) = window_gate(ctx, &upgrade.spec.maintenance_windows, &namespace, now);

    // Plan.
    let resource = format!("{namespace}/{name}");
    let plan = plan::plan(&Input {
        upgrade,
        resource: &resource,
        tasks: &tasks,
        candidates: candidates.as_deref(),
        gate: &gate,
        now,
    });
    if let Some(outcome) = &plan.outcome
        && let Some(incident) = &outcome.incident_id
    {
        tracing::error!(incident = %incident, code = %outcome.code, message = %outcome.message, "the targets could not be resolved");
    }

    // Apply.
    for target in &plan.create {
        create_task(ctx, upgrade, ParentKind::FirmwareUpgrade, target)
            .await
            .map_err(|e| Error::CreateTask {
                task: e.task,
                source: e.source,
            })?;
    }
    let retry = apply_decisions(ctx, &namespace, &views, &mut tasks, &plan.decisions, now).await?;

    // Status.
    let status = plan::status(upgrade, &tasks, plan.outcome.as_ref(), &gate, now);
    write_status(ctx, upgrade, status).await?;
    let wake = match (plan.wake_at, retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(match plan::next_look(&tasks, wake, now) {
        Some(at) => Action::requeue(ctx.clock.until(at).max(std::time::Duration::from_millis(1))),
        None => Action::await_change(),
    })
}

/// A task as the plan sees it, from the index's view of it; `None` for a code this version does
/// not know (the task is left alone). The code the rollout counts is the one this controller
/// last wrote while the cache does not show it yet.
fn child<'a>(
    ctx: &Context,
    namespace: &str,
    view: &'a TaskView,
    now: Timestamp,
) -> Option<Child<'a>> {
    let code = match view.code.as_deref() {
        Some(code) => code.parse().ok()?,
        None => FirmwareCode::WaitingForPreValidation,
    };
    Some(Child {
        target: &view.target,
        code,
        counted: ctx.expectations.view(namespace, &view.name, code),
        created_at: view.created_at.unwrap_or(now),
        finished_at: view.finished_at,
        message: &view.message,
    })
}

/// Writes the rollout's decisions, each to its task as it is now; updates `tasks` with what was
/// written. Returns when to retry a decision that lost a compare-and-swap.
async fn apply_decisions(
    ctx: &Context,
    namespace: &str,
    views: &[&Arc<TaskView>],
    tasks: &mut [Child<'_>],
    decisions: &[(usize, Decision<FirmwareCode>)],
    now: Timestamp,
) -> Result<Option<Timestamp>, Error> {
    let api = Api::<UpgradeTask>::namespaced(ctx.client.clone(), namespace);
    let mut retry = None;
    for (i, decision) in decisions {
        let task_name = &views[*i].name;
        let write_error = |source| Error::Write {
            object: format!("UpgradeTask {namespace}/{task_name}"),
            source,
        };
        let task = match api.get_opt(task_name).await {
            Ok(Some(task)) => task,
            Ok(None) => continue,
            Err(source) => return Err(write_error(source)),
        };
        let state = match task.status.as_ref().filter(|s| s.code.is_some()) {
            Some(status) => TaskState::from_status(status).ok(),
            None => Some(TaskState::new(tasks[*i].created_at)),
        };
        let Some(mut state) = state else { continue };
        if !plan::decide(&mut state, decision, now) {
            continue;
        }
        let rendered = render(&state, task.status.as_ref(), task.metadata.generation, now);
        match status::apply(
            &api,
            task_name,
            &rendered,
            task.resource_version().as_deref(),
        )
        .await
        {
            Ok(_) => {
                ctx.metrics.wrote("UpgradeTask", "status");
                ctx.expectations.expect(namespace, task_name, state.code);
                tasks[*i].code = state.code;
            }
            Err(e) if status::is_conflict(&e) || status::is_not_found(&e) => {
                // The task moved on meanwhile; the next round decides on fresh state.
                let at = now
                    .checked_add(
                        SignedDuration::try_from(ctx.settings.retry)
                            .unwrap_or(SignedDuration::ZERO),
                    )
                    .unwrap_or(now);
                retry = Some(retry.map_or(at, |r: Timestamp| r.min(at)));
            }
            Err(source) => return Err(write_error(source)),
        }
    }
    Ok(retry)
}

/// Writes the FirmwareUpgrade's status when it changed.
async fn write_status(
    ctx: &Context,
    upgrade: &FirmwareUpgrade,
    status: FirmwareUpgradeStatus,
) -> Result<(), Error> {
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
