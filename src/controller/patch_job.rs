//! The PatchJob controller, as a pipeline: resolve what the round needs from the caches (the
//! job's tasks, the Hosts of its namespace with their agents' Leases and locks, the window
//! gate and when it closes), let the engine's pure plan decide (`engine::patch::plan`), apply
//! the decisions, and write the status the engine derives from the tasks as they then stand.
//!
//! The host lock is the Host's `status.heldBy`, written by this controller alone and only with
//! compare-and-swap on the Host: a start is written to a task only after its job holds the
//! host, so two jobs never run on one host at once; the lock is released once the job's task
//! there has ended or the host is released (a reboot upkeep will not do). A crash between the
//! lock and the start leaves the job holding the host, and the next round starts it.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::controller::Action;
use rustc_hash::FxHashMap;
use serde_json::json;

use super::kit::context::{Context, in_namespace};
use super::kit::index::TaskView;
use super::kit::reconcile::guarded;
use super::kit::status;
use super::kit::tasks::create_task;
use super::kit::watched::Watched;
use super::kit::windows::window_gate;
use crate::api::codes::PatchCode;
use crate::api::host::{PatchManagement, ProductStatus};
use crate::api::upgrade_task::ParentKind;
use crate::api::{Host, PatchJob, PatchJobStatus, UpgradeTask};
use crate::engine::patch::plan::{self, Child, HostDecision, HostInfo, Input};
use crate::engine::patch::state::HostTask;
use crate::engine::patch::{HostCode, agent_online, lease_expires};
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
    /// Writing an object's status failed.
    #[error("writing the status of {object}: {source}")]
    Write {
        /// The object.
        object: String,
        /// The API error.
        source: kube::Error,
    },
}

impl From<super::kit::tasks::CreateError> for Error {
    fn from(e: super::kit::tasks::CreateError) -> Self {
        Self::CreateTask {
            task: e.task,
            source: e.source,
        }
    }
}

/// Reconciles one PatchJob.
pub async fn reconcile(guard: Arc<Watched<PatchJob>>, ctx: Arc<Context>) -> Result<Action, Error> {
    guarded("PatchJob", &guard, &ctx.metrics, async |job| {
        let (namespace, name) = (job.namespace().unwrap_or_default(), job.name_any());
        if job.metadata.deletion_timestamp.is_some() {
            ctx.patch_job_rounds.forget(&namespace, &name);
            return Ok(Action::await_change());
        }
        let every = ctx.settings.patch_job_round_every;
        if let Some(due) = ctx
            .patch_job_rounds
            .hold(&namespace, &name, ctx.clock.now(), every)
        {
            return Ok(Action::requeue(ctx.clock.until(due).max(MIN_REQUEUE)));
        }
        Box::pin(reconcile_job(job, &ctx)).await
    })
    .await
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

/// The shortest requeue (a requeue of zero would spin).
const MIN_REQUEUE: std::time::Duration = std::time::Duration::from_millis(1);

async fn reconcile_job(job: &PatchJob, ctx: &Context) -> Result<Action, Error> {
    let namespace = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let holder = format!("PatchJob/{namespace}/{name}");
    let now = ctx.clock.now();

    // Resolve: the tasks, the Hosts with their agents and locks, the window gate.
    let views = ctx
        .stores
        .tasks
        .of_parent(&namespace, ParentKind::PatchJob, &name);
    let (views, mut tasks): (Vec<&Arc<TaskView>>, Vec<Child<'_>>) = views
        .iter()
        .filter_map(|view| Some((view, child(ctx, &namespace, view, now)?)))
        .unzip();
    let host_objects = in_namespace(&ctx.stores.hosts, &namespace);
    let lease_objects = in_namespace(&ctx.stores.leases, &namespace);
    let expiries = lease_expiries(&lease_objects);
    let hosts: Vec<HostInfo<'_>> = host_objects
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .map(|h: &Host| {
            let read = HostRead::of(h);
            HostInfo {
                name: read.name,
                labels: read.labels,
                disabled: read.disabled,
                online: agent_online(expiries.get(read.name).copied(), now),
                held_by: read.held_by,
                products: read.products,
            }
        })
        .collect();
    // Who holds each host (looked up per task: a fleet has thousands).
    let held_by: FxHashMap<&str, Option<&str>> =
        hosts.iter().map(|h| (h.name, h.held_by)).collect();
    let (gate, closes_at) = window_gate(ctx, &job.spec.maintenance_windows, &namespace, now);

    // Plan.
    let plan = plan::plan(&Input {
        job,
        holder: &holder,
        tasks: &tasks,
        hosts: &hosts,
        gate: &gate,
        closes_at,
        now,
    });

    // Apply.
    for target in &plan.create {
        create_task(ctx, job, ParentKind::PatchJob, target).await?;
    }
    let mut retry = None;
    for (i, decision) in &plan.decisions {
        if let HostDecision::Grant { .. } = decision {
            let held = held_by.get(tasks[*i].target).copied().flatten();
            if held != Some(holder.as_str())
                && !lock(ctx, &namespace, tasks[*i].target, Some(&holder)).await?
            {
                retry = Some(now);
                continue;
            }
        }
        match write_decision(
            ctx,
            &namespace,
            &views[*i].name,
            tasks[*i].created_at,
            decision,
            now,
        )
        .await?
        {
            Some(state) => {
                let code = state.host_code();
                ctx.patch_expectations
                    .expect(&namespace, &views[*i].name, code);
                tasks[*i].code = code;
            }
            None => retry = Some(now),
        }
    }
    // Release the hosts whose task here has ended or is released.
    for task in &tasks {
        let done = task.code.code.is_terminal() || task.released;
        if done && held_by.get(task.target).copied().flatten() == Some(holder.as_str()) {
            lock(ctx, &namespace, task.target, None).await?;
        }
    }

    // Status.
    let status = plan::status(job, &tasks, &hosts, plan.outcome.as_ref(), &gate, now);
    write_status(ctx, job, status).await?;
    let retry = retry.map(|at: Timestamp| {
        at + jiff::SignedDuration::try_from(ctx.settings.retry).unwrap_or_default()
    });
    let wake = match (plan.wake_at, retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(match plan::next_look(&tasks, wake, now) {
        Some(at) => Action::requeue(ctx.clock.until(at).max(MIN_REQUEUE)),
        None => Action::await_change(),
    })
}

/// What a round reads of a Host itself (its agent's liveness comes from its Lease).
#[derive(serde::Serialize)]
struct HostRead<'a> {
    name: &'a str,
    labels: &'a BTreeMap<String, String>,
    disabled: bool,
    held_by: Option<&'a str>,
    products: &'a [ProductStatus],
    /// Not read by a round, but the Host controller writes it when the Lease runs out or is
    /// renewed again: the change that tells the jobs an agent went or came back.
    reported_online: bool,
    /// Not read by a round either: a Host being deleted leaves the jobs' view soon.
    deleting: bool,
}

impl<'a> HostRead<'a> {
    fn of(h: &'a Host) -> Self {
        let status = h.status.as_ref();
        Self {
            name: h.metadata.name.as_deref().unwrap_or_default(),
            labels: h.metadata.labels.as_ref().unwrap_or(&EMPTY),
            disabled: h.spec.patch_management == PatchManagement::Disabled,
            held_by: status.and_then(|s| s.held_by.as_deref()),
            products: status.map_or(&[], |s| s.products.as_slice()),
            reported_online: status.is_some_and(|s| s.agent.online),
            deleting: h.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// A fingerprint of what a PatchJob's round reads of `host`: a change of the Host that leaves
/// it alone (the agent's facts, its updates, its conditions) concerns no job.
pub fn host_fingerprint(host: &Watched<Host>) -> u64 {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    let mut hasher = DefaultHasher::new();
    match &host.0 {
        Ok(h) => serde_json::to_vec(&HostRead::of(h))
            .unwrap_or_default()
            .hash(&mut hasher),
        // An object that does not parse: any change may matter.
        Err(invalid) => invalid.metadata.resource_version.hash(&mut hasher),
    }
    hasher.finish()
}

/// A task as the plan sees it; `None` for a code this version does not know.
fn child<'a>(
    ctx: &Context,
    namespace: &str,
    view: &'a TaskView,
    now: Timestamp,
) -> Option<Child<'a>> {
    let code = match view.code.as_deref() {
        Some(code) => code.parse().ok()?,
        None => PatchCode::Pending,
    };
    let code = HostCode {
        code,
        started: view.started,
    };
    Some(Child {
        target: &view.target,
        code,
        counted: ctx.patch_expectations.view(namespace, &view.name, code),
        created_at: view.created_at.unwrap_or(now),
        finished_at: view.finished_at,
        message: &view.message,
        released: view.released,
    })
}

/// When the agents' Leases among `leases` run out, by host: read once a round rather than
/// looked up host by host (a fleet has thousands, and each lookup builds its Lease's name).
fn lease_expiries(leases: &[Arc<Watched<Lease>>]) -> FxHashMap<&str, Timestamp> {
    leases
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter_map(|lease| {
            let host = lease
                .metadata
                .name
                .as_deref()?
                .strip_prefix(crate::api::host::LEASE_PREFIX)?;
            Some((host, lease_expiry(lease)?))
        })
        .collect()
}

/// When `lease` runs out unless it is renewed again.
fn lease_expiry(lease: &Lease) -> Option<Timestamp> {
    let spec = lease.spec.as_ref();
    lease_expires(
        spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
        spec.and_then(|s| s.lease_duration_seconds),
    )
}

/// When the Host's agent's Lease runs out (`None`: it has none); it is online until then.
pub fn agent_lease_expires(ctx: &Context, namespace: &str, host: &Host) -> Option<Timestamp> {
    let lease = super::kit::context::lookup(
        &ctx.stores.leases,
        namespace,
        &format!("{}{}", crate::api::host::LEASE_PREFIX, host.name_any()),
    )?;
    lease_expiry(&lease)
}

/// Takes (`Some(holder)`) or releases (`None`) the lock of Host `host`, with compare-and-swap;
/// returns whether it was written.
async fn lock(
    ctx: &Context,
    namespace: &str,
    host: &str,
    holder: Option<&str>,
) -> Result<bool, Error> {
    let api = Api::<Host>::namespaced(ctx.client.clone(), namespace);
    let current = match api.get_opt(host).await {
        Ok(Some(current)) => current,
        Ok(None) => return Ok(false),
        Err(source) => {
            return Err(Error::Write {
                object: format!("Host {namespace}/{host}"),
                source,
            });
        }
    };
    let held = current.status.as_ref().and_then(|s| s.held_by.as_deref());
    match (held, holder) {
        (Some(other), Some(me)) if other != me => return Ok(false),
        (None, None) => return Ok(true),
        _ => {}
    }
    let body = json!({ "heldBy": holder });
    match status::merge(&api, host, body, current.resource_version().as_deref()).await {
        Ok(_) => {
            ctx.metrics.wrote("Host", "status");
            Ok(true)
        }
        Err(e) if status::is_conflict(&e) || status::is_not_found(&e) => Ok(false),
        Err(source) => Err(Error::Write {
            object: format!("Host {namespace}/{host}"),
            source,
        }),
    }
}

/// Writes a decision to the task as it is now; returns the task as written, or `None` when it
/// moved on meanwhile (the next round decides again).
async fn write_decision(
    ctx: &Context,
    namespace: &str,
    task_name: &str,
    created_at: Timestamp,
    decision: &HostDecision,
    now: Timestamp,
) -> Result<Option<HostTask>, Error> {
    let api = Api::<UpgradeTask>::namespaced(ctx.client.clone(), namespace);
    let write_error = |source| Error::Write {
        object: format!("UpgradeTask {namespace}/{task_name}"),
        source,
    };
    let task = match api.get_opt(task_name).await {
        Ok(Some(task)) => task,
        Ok(None) => return Ok(None),
        Err(source) => return Err(write_error(source)),
    };
    let Some(parent) =
        super::kit::context::lookup(&ctx.stores.patch_jobs, namespace, &task.spec.parent)
    else {
        return Ok(None);
    };
    let state = match task.status.as_ref().filter(|s| s.code.is_some()) {
        Some(status) => HostTask::from_status(status).ok(),
        None => Some(HostTask::new(created_at, parent.spec.reboot.max_deferrals)),
    };
    let Some(mut state) = state else {
        return Ok(None);
    };
    let before = state.code;
    if !plan::decide(&mut state, decision, now) {
        return Ok(Some(state));
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
            if state.code != before {
                super::patch_task::announce(ctx, &task, &state).await;
            }
            Ok(Some(state))
        }
        Err(e) if status::is_conflict(&e) || status::is_not_found(&e) => Ok(None),
        Err(source) => Err(write_error(source)),
    }
}

/// Writes the PatchJob's status when it changed.
async fn write_status(ctx: &Context, job: &PatchJob, status: PatchJobStatus) -> Result<(), Error> {
    if Some(&status) == job.status.as_ref() {
        return Ok(());
    }
    let name = job.name_any();
    let api = Api::<PatchJob>::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    match status::apply(&api, &name, &status, None).await {
        Ok(_) => {
            ctx.metrics.wrote("PatchJob", "status");
            Ok(())
        }
        Err(e) if status::is_not_found(&e) => Ok(()),
        Err(source) => Err(Error::Write {
            object: format!("PatchJob {name}"),
            source,
        }),
    }
}
