//! The Host controller: what the operator keeps of each Host that its agent cannot keep itself.
//! It writes the Host's liveness (`status.agent.online` and the conditions `AgentOnline`,
//! `RebootRequired`, `Ready`, from the agent's Lease and what the agent reported), releases a
//! lock (`status.heldBy`) whose PatchJob no longer exists, and uncordons the Host's node when
//! upkeep cordoned it for a task that is gone (its job was deleted mid-drain).
//!
//! Host status is shared field by field (the agent writes its facts with its own field
//! manager), so these writes are merge patches of the fields this controller owns, with
//! compare-and-swap on the Host.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;

use super::kit::context::{Context, lookup};
use super::kit::metadata::metadata_opt;
use super::kit::reconcile::guarded;
use super::kit::status;
use super::kit::watched::Watched;
use super::patch_job::agent_lease_expires;
use crate::api::host::CORDONED_BY_ANNOTATION;
use crate::api::{Host, PatchJob, UpgradeTask};
use crate::engine::patch::agent_online;
use crate::engine::patch::host::set_conditions;

/// How often a Host whose agent is offline is looked at again when nothing changes (its agent
/// may come back); one whose agent is online is looked at again when its Lease would run out.
const RECHECK: Duration = Duration::from_secs(30);

/// A reconcile that could not finish; it is retried.
#[derive(Debug, thiserror::Error)]
#[error("writing {object}: {source}")]
pub struct Error {
    /// The object.
    object: String,
    /// The API error.
    source: kube::Error,
}

/// Reconciles one Host.
pub async fn reconcile(guard: Arc<Watched<Host>>, ctx: Arc<Context>) -> Result<Action, Error> {
    guarded("Host", &guard, &ctx.metrics, async |host| {
        Box::pin(reconcile_host(host, &ctx)).await
    })
    .await
}

async fn reconcile_host(host: &Host, ctx: &Context) -> Result<Action, Error> {
    let namespace = host.namespace().unwrap_or_default();
    let name = host.name_any();
    let now = ctx.clock.now();
    let error = |object: String| move |source| Error { object, source };
    let api = Api::<Host>::namespaced(ctx.client.clone(), &namespace);
    let previous = host.status.clone().unwrap_or_default();
    let expires = agent_lease_expires(ctx, &namespace, host);
    let online = agent_online(expires, now);

    let mut patch = serde_json::Map::new();
    let mut conditions = previous.conditions.clone();
    if set_conditions(
        &mut conditions,
        &previous,
        online,
        host.metadata.generation,
        now,
    ) || previous.agent.online != online
    {
        patch.insert("agent".into(), json!({ "online": online }));
        patch.insert("conditions".into(), json!(conditions));
    }
    if let Some(holder) = &previous.held_by
        && !job_exists(ctx, holder)
    {
        tracing::info!(
            holder,
            "the job that held the host is gone; releasing the host"
        );
        patch.insert("heldBy".into(), serde_json::Value::Null);
    }
    if !patch.is_empty() {
        match status::merge(
            &api,
            &name,
            patch.into(),
            host.resource_version().as_deref(),
        )
        .await
        {
            Ok(_) => ctx.metrics.wrote("Host", "status"),
            Err(e) if status::is_conflict(&e) => return Ok(Action::requeue(ctx.settings.retry)),
            Err(e) if status::is_not_found(&e) => return Ok(Action::await_change()),
            Err(source) => {
                return Err(error(format!("the status of Host {namespace}/{name}"))(
                    source,
                ));
            }
        }
    }
    if let Some(node) = &host.spec.node_name {
        release_orphaned_cordon(ctx, node)
            .await
            .map_err(error(format!("Node {node}")))?;
    }
    Ok(Action::requeue(match expires {
        // A renewal moves the expiry on; a second's margin so the look finds it run out.
        Some(expires) if online => ctx.clock.until(expires) + Duration::from_secs(1),
        _ => RECHECK,
    }))
}

/// Whether the `PatchJob/<namespace>/<name>` that holds a host still exists.
fn job_exists(ctx: &Context, holder: &str) -> bool {
    let mut parts = holder.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("PatchJob"), Some(namespace), Some(name)) => {
            lookup::<PatchJob>(&ctx.stores.patch_jobs, namespace, name).is_some()
        }
        _ => false,
    }
}

/// Uncordons `node` when upkeep cordoned it for a task that no longer exists.
async fn release_orphaned_cordon(ctx: &Context, node: &str) -> Result<(), kube::Error> {
    /// The Node's annotations: all this reads of it, on every Host's recheck.
    #[derive(serde::Deserialize)]
    struct Annotated {
        metadata: AnnotatedMeta,
    }
    #[derive(serde::Deserialize)]
    struct AnnotatedMeta {
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let Some(current) = metadata_opt::<Node, Annotated>(&ctx.client, None, node).await? else {
        return Ok(());
    };
    let Some(task_key) = current.metadata.annotations.get(CORDONED_BY_ANNOTATION) else {
        return Ok(());
    };
    let Some((namespace, task)) = task_key.split_once('/') else {
        return Ok(());
    };
    let tasks = Api::<UpgradeTask>::namespaced(ctx.client.clone(), namespace);
    if tasks.get_opt(task).await?.is_some() {
        // The task's own reconcile uncordons it when it ends.
        return Ok(());
    }
    tracing::info!(node, task = %task_key, "the task that cordoned the node is gone; uncordoning it");
    let patch = json!({
        "metadata": {"annotations": {CORDONED_BY_ANNOTATION: null}},
        "spec": {"unschedulable": null},
    });
    Api::<Node>::all(ctx.client.clone())
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    ctx.metrics.wrote("Node", "object");
    Ok(())
}
