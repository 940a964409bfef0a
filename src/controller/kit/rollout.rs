//! The controller of every rollout parent whose targets are Devices (FirmwareUpgrade,
//! DevicePatch), as a pipeline: resolve what the round needs from the caches (its tasks, the
//! Devices of its namespace when the targets are to be resolved, the window gate), let the
//! engine's pure round decide (`engine::parent::round`), apply the decisions (create tasks,
//! write grants and ends to tasks), and write the status the engine derives from the tasks as
//! they then stand. Every rule is in the engine; this file only reads and writes, and each kind
//! only says where its parts are ([`ControlledParent`]).
//!
//! A decision is written to a task as it is now (read fresh from the API) and only if the task
//! did not change meanwhile (compare-and-swap); a task that moved on is decided again next
//! round. Decisions written but not yet in the task cache are remembered (`Expectations`), so a
//! round on a stale cache never grants more than `maxConcurrent`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::str::FromStr;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::controller::Action;
use serde::de::DeserializeOwned;

use super::context::{Context, Expectations, in_namespace};
use super::index::TaskView;
use super::reconcile::guarded;
use super::status;
use super::tasks::create_task;
use super::watched::Watched;
use super::windows::window_gate;
use crate::api::UpgradeTask;
use crate::api::firmware_upgrade::FirmwareUpgradeStatus;
use crate::api::upgrade_task::{ParentKind, UpgradeTaskStatus};
use crate::engine::parent::round::{self, Child, Input, RolloutParent, RoundTask};
use crate::engine::rollout::Decision;
use crate::engine::targets::Candidate;
use crate::engine::task::StatusError;
use crate::engine::task_status::{StoredTask, render};

/// A rollout parent kind this controller runs: where its parts are.
pub trait ControlledParent:
    RolloutParent
    + kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
where
    Self::Code: FromStr,
{
    /// The kind, as its tasks' `parentKind`.
    const KIND: ParentKind;
    /// The first code of a task.
    const FIRST: Self::Code;
    /// Its tasks' engine state.
    type State: RoundTask<Code = Self::Code> + StoredTask;
    /// A new task's state.
    fn new_state(created_at: Timestamp) -> Self::State;
    /// A task's state read back from its status.
    fn read_state(status: &UpgradeTaskStatus) -> Result<Self::State, StatusError>;
    /// The kind's rollout decisions not yet in the task cache.
    fn expectations(ctx: &Context) -> &Expectations<Self::Code>;
    /// The names of its MaintenanceWindows.
    fn maintenance_windows(&self) -> &[String];
}

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
    /// Writing a task's or the parent's status failed.
    #[error("writing the status of {object}: {source}")]
    Write {
        /// The object.
        object: String,
        /// The API error.
        source: kube::Error,
    },
}

/// Reconciles one parent of kind `P`.
pub async fn reconcile<P>(guard: Arc<Watched<P>>, ctx: Arc<Context>) -> Result<Action, Error>
where
    P: ControlledParent,
    P::Code: FromStr,
{
    guarded(P::KIND.as_str(), &guard, &ctx.metrics, async |parent| {
        if parent.meta().deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        Box::pin(reconcile_parent(parent, &ctx)).await
    })
    .await
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

async fn reconcile_parent<P>(parent: &P, ctx: &Context) -> Result<Action, Error>
where
    P: ControlledParent,
    P::Code: FromStr,
{
    let namespace = parent.namespace().unwrap_or_default();
    let name = parent.name_any();
    let now = ctx.clock.now();

    // Resolve: the tasks, the Devices when the targets are to be resolved, the window gate.
    let views = ctx.stores.tasks.of_parent(&namespace, P::KIND, &name);
    let (views, mut tasks): (Vec<&Arc<TaskView>>, Vec<Child<'_, P::Code>>) = views
        .iter()
        .filter_map(|view| Some((view, child::<P>(ctx, &namespace, view, now)?)))
        .unzip();
    let devices = round::resolves_targets(parent, &tasks)
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
    let (gate, _) = window_gate(ctx, parent.maintenance_windows(), &namespace, now);

    // Plan.
    let resource = format!("{namespace}/{name}");
    let plan = round::plan(&Input {
        parent,
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
        create_task(ctx, parent, P::KIND, target)
            .await
            .map_err(|e| Error::CreateTask {
                task: e.task,
                source: e.source,
            })?;
    }
    let retry =
        apply_decisions::<P>(ctx, &namespace, &views, &mut tasks, &plan.decisions, now).await?;

    // Status.
    let status = round::status(parent, &tasks, plan.outcome.as_ref(), &gate, now);
    write_status(ctx, parent, status).await?;
    let wake = match (plan.wake_at, retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(match round::next_look(&tasks, wake, now) {
        Some(at) => Action::requeue(ctx.clock.until(at).max(std::time::Duration::from_millis(1))),
        None => Action::await_change(),
    })
}

/// A task as the round sees it, from the index's view of it; `None` for a code this version
/// does not know (the task is left alone). The code the rollout counts is the one this
/// controller last wrote while the cache does not show it yet.
fn child<'a, P>(
    ctx: &Context,
    namespace: &str,
    view: &'a TaskView,
    now: Timestamp,
) -> Option<Child<'a, P::Code>>
where
    P: ControlledParent,
    P::Code: FromStr,
{
    let code = match view.code.as_deref() {
        Some(code) => code.parse().ok()?,
        None => P::FIRST,
    };
    Some(Child {
        target: &view.target,
        code,
        counted: P::expectations(ctx).view(namespace, &view.name, code),
        result: view.result,
        created_at: view.created_at.unwrap_or(now),
        finished_at: view.finished_at,
        message: &view.message,
    })
}

/// Writes the rollout's decisions, each to its task as it is now; updates `tasks` with what was
/// written. Returns when to retry a decision that lost a compare-and-swap.
async fn apply_decisions<P>(
    ctx: &Context,
    namespace: &str,
    views: &[&Arc<TaskView>],
    tasks: &mut [Child<'_, P::Code>],
    decisions: &[(usize, Decision<P::Code>)],
    now: Timestamp,
) -> Result<Option<Timestamp>, Error>
where
    P: ControlledParent,
    P::Code: FromStr,
{
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
            Some(status) => P::read_state(status).ok(),
            None => Some(P::new_state(tasks[*i].created_at)),
        };
        let Some(mut state) = state else { continue };
        if !round::decide(&mut state, decision, now) {
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
                P::expectations(ctx).expect(namespace, task_name, state.code());
                tasks[*i].code = state.code();
                tasks[*i].result = state.result();
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

/// Writes the parent's status when it changed.
async fn write_status<P>(
    ctx: &Context,
    parent: &P,
    status: FirmwareUpgradeStatus,
) -> Result<(), Error>
where
    P: ControlledParent,
    P::Code: FromStr,
{
    if Some(&status) == parent.rollout_status() {
        return Ok(());
    }
    let name = parent.name_any();
    let api = Api::<P>::namespaced(ctx.client.clone(), &parent.namespace().unwrap_or_default());
    match status::apply(&api, &name, &status, None).await {
        Ok(_) => {
            ctx.metrics.wrote(P::KIND.as_str(), "status");
            Ok(())
        }
        Err(e) if status::is_not_found(&e) => Ok(()),
        Err(source) => Err(Error::Write {
            object: format!("{} {name}", P::KIND.as_str()),
            source,
        }),
    }
}
