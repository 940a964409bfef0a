//! The controller's part of one PatchJob task (the UpgradeTask controller hands PatchJob tasks
//! here): it writes a new task's first status (`2032 Pending`), and for a started task runs the
//! engine's coordinator (`engine::patch::coordinator`) — drain the node through the Eviction
//! API, defer, grant the reboot, time it out with the window, notice an agent gone away,
//! uncordon what upkeep cordoned — performing each action on the API and writing the task with
//! compare-and-swap (the host's agent writes the same status with its own field manager).
//!
//! A drain evicts every pod of the node but DaemonSet pods, mirror (static) pods and pods that
//! have ended; an eviction a PodDisruptionBudget refuses (429) names the budget. A node is
//! cordoned only when it was schedulable, and marked with `upkeep.dev/cordoned-by`; only a node
//! so marked for this task is uncordoned.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt as _;
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Action;
use serde_json::json;

use super::kit::context::{Context, lookup};
use super::kit::task_writer::{TaskWriter, Written};
use super::upgrade_task::{Error, unreadable};
use crate::api::host::{CORDONED_BY_ANNOTATION, DEFER_REBOOT_ANNOTATION, LEASE_PREFIX};
use crate::api::{PatchJob, UpgradeTask};
use crate::engine::patch::coordinator::{
    self, Action as NodeAction, DrainReport, NodeState, Observation,
};
use crate::engine::patch::lease_expires;
use crate::engine::patch::state::HostTask;

pub use super::kit::task_writer::{announce, announce_seen};

/// Reconciles one PatchJob task.
pub async fn reconcile_task(task: &UpgradeTask, ctx: &Context) -> Result<Action, Error> {
    let namespace = task.namespace().unwrap_or_default();
    let name = task.name_any();
    let write_error = |source| Error::Write {
        task: name.clone(),
        source,
    };
    let Some(job) = lookup::<PatchJob>(&ctx.stores.patch_jobs, &namespace, &task.spec.parent)
    else {
        // The job is gone (its tasks are garbage-collected) or cannot be read.
        return Ok(Action::await_change());
    };
    let mut writer = TaskWriter::new(ctx, task);
    let now = ctx.clock.now();
    let created = task
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let mut state = match task.status.as_ref().filter(|s| s.code.is_some()) {
        None => HostTask::new(created, job.spec.reboot.max_deferrals),
        Some(stored) => match HostTask::from_status(stored) {
            Ok(state) => state,
            Err(error) => return unreadable(ctx, &mut writer, task, &error.to_string()).await,
        },
    };
    if task.status.as_ref().and_then(|s| s.code.as_ref()).is_none() {
        if writer.write(ctx, &state).await.map_err(write_error)? == Written::Lost {
            return Ok(Action::requeue(ctx.settings.retry));
        }
        return Ok(Action::await_change());
    }
    announce_seen(ctx, task, &state).await;
    if !state.is_started() && !state.is_terminal() {
        // Before its start the task is the parent's (and its agent's).
        return Ok(Action::await_change());
    }
    let host = lookup(&ctx.stores.hosts, &namespace, &task.spec.target);
    let node_name = host.as_ref().and_then(|h| h.spec.node_name.clone());
    let task_key = format!("{namespace}/{name}");
    let lease = lookup(
        &ctx.stores.leases,
        &namespace,
        &format!("{LEASE_PREFIX}{}", task.spec.target),
    );
    let renewed = lease
        .as_ref()
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    let duration = lease
        .as_ref()
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.lease_duration_seconds);
    let nodes = Api::<Node>::all(ctx.client.clone());
    let node = match &node_name {
        Some(node_name) => match nodes.get_opt(node_name).await {
            Ok(node) => node,
            Err(source) => return Err(write_error(source)),
        },
        None => None,
    };
    let mut cctx = coordinator::Context {
        spec: &job.spec,
        node: node.as_ref().map(|n| node_state(n, &task_key)),
        lease_expires: lease_expires(renewed, duration),
        agent_seen: renewed,
        defer_requested: host
            .as_ref()
            .is_some_and(|h| h.annotations().contains_key(DEFER_REBOOT_ANNOTATION)),
    };
    let mut input = None;
    let wake = loop {
        let step = coordinator::step(&cctx, &mut state, input.take(), ctx.clock.now());
        if (step.persist_first || step.action.is_none())
            && writer.write(ctx, &state).await.map_err(write_error)? == Written::Lost
        {
            return Ok(Action::requeue(ctx.settings.retry));
        }
        let Some(action) = step.action else {
            break step.wake_at;
        };
        let Some(node_name) = &node_name else {
            input = Some(Observation::Cordoned(Err(
                "the host is no Kubernetes node".into()
            )));
            continue;
        };
        let changes_node = matches!(action, NodeAction::Cordon | NodeAction::Uncordon);
        input = Some(perform(ctx, &nodes, node_name, &task_key, action).await);
        if changes_node {
            // The coordinator decides from the node as it now is (upkeep's mark on it says
            // whether upkeep holds it). A failed read ends the round: the next one starts
            // from the node as it then is.
            let fresh = nodes.get_opt(node_name).await.map_err(write_error)?;
            cctx.node = fresh.as_ref().map(|n| node_state(n, &task_key));
        }
    };
    Ok(match wake {
        Some(at) => Action::requeue(ctx.clock.until(at).max(std::time::Duration::from_millis(1))),
        None => Action::await_change(),
    })
}

fn node_state(node: &Node, task_key: &str) -> NodeState {
    NodeState {
        unschedulable: node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        cordoned_by_us: node
            .annotations()
            .get(CORDONED_BY_ANNOTATION)
            .is_some_and(|v| v == task_key),
    }
}

/// Performs one coordinator action on the API.
async fn perform(
    ctx: &Context,
    nodes: &Api<Node>,
    node: &str,
    task_key: &str,
    action: NodeAction,
) -> Observation {
    match action {
        NodeAction::Cordon => {
            let patch = json!({
                "metadata": {"annotations": {CORDONED_BY_ANNOTATION: task_key}},
                "spec": {"unschedulable": true},
            });
            Observation::Cordoned(patch_node(ctx, nodes, node, &patch).await)
        }
        NodeAction::Uncordon => {
            // Only a node upkeep marked for this task is uncordoned.
            let ours = match nodes.get_opt(node).await {
                Ok(Some(n)) => n
                    .annotations()
                    .get(CORDONED_BY_ANNOTATION)
                    .is_some_and(|v| v == task_key),
                Ok(None) => false,
                Err(e) => return Observation::Uncordoned(Err(e.to_string())),
            };
            if !ours {
                return Observation::Uncordoned(Ok(()));
            }
            let patch = json!({
                "metadata": {"annotations": {CORDONED_BY_ANNOTATION: null}},
                "spec": {"unschedulable": null},
            });
            Observation::Uncordoned(patch_node(ctx, nodes, node, &patch).await)
        }
        NodeAction::Drain => Observation::Drain(drain(ctx, node).await),
    }
}

async fn patch_node(
    ctx: &Context,
    nodes: &Api<Node>,
    node: &str,
    patch: &serde_json::Value,
) -> Result<(), String> {
    match nodes
        .patch(node, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => {
            ctx.metrics.wrote("Node", "object");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Evicts every pod a drain evicts from `node`; reports what is left and the budget that
/// refused, if one did.
async fn drain(ctx: &Context, node: &str) -> Result<DrainReport, String> {
    let pods = Api::<Pod>::all(ctx.client.clone());
    let on_node = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(|e| e.to_string())?;
    let mut report = DrainReport::default();
    for pod in on_node.items.iter().filter(|p| evicted_by_a_drain(p)) {
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let api = Api::<Pod>::namespaced(ctx.client.clone(), &namespace);
        match api.evict(&name, &EvictParams::default()).await {
            Ok(_) => ctx.metrics.wrote("Pod", "eviction"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(kube::Error::Api(s)) if s.code == 429 => {
                report.remaining += 1;
                if report.blocked_by.is_none() {
                    report.blocked_by = Some(
                        budget_of(ctx, pod)
                            .await
                            .unwrap_or_else(|| "(a PodDisruptionBudget)".into()),
                    );
                }
            }
            Err(e) => return Err(format!("evicting pod {namespace}/{name}: {e}")),
        }
    }
    Ok(report)
}

/// Whether a drain evicts `pod`: not a DaemonSet's, not a mirror pod, not one that ended.
fn evicted_by_a_drain(pod: &Pod) -> bool {
    let daemon = pod
        .owner_references()
        .iter()
        .any(|o| o.kind == "DaemonSet" && o.controller == Some(true));
    let mirror = pod
        .annotations()
        .contains_key("kubernetes.io/config.mirror");
    let ended = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    !daemon && !mirror && !ended && pod.metadata.deletion_timestamp.is_none()
}

/// The PodDisruptionBudget of `pod`'s namespace whose selector matches it.
async fn budget_of(ctx: &Context, pod: &Pod) -> Option<String> {
    let namespace = pod.namespace().unwrap_or_default();
    let budgets = Api::<PodDisruptionBudget>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .ok()?;
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    budgets.items.iter().find_map(|b| {
        let selector = b.spec.as_ref()?.selector.clone()?;
        Selector::try_from(selector)
            .ok()?
            .matches(labels)
            .then(|| format!("{namespace}/{}", b.name_any()))
    })
}
