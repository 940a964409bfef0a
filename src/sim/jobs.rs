//! Hook Jobs in a simulation. No kubelet runs their pods, so this plays the Job controller:
//! every Job upkeep creates for a hook completes, or fails, after the duration and with the exit
//! code that the fleet file gives the task's target device (default: success after 10s).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, ResourceExt as _};
use serde_json::json;

use super::fleet::FleetModel;
use crate::api::UpgradeTask;
use crate::clock::Clock;
use crate::controller::hooks::{LABEL_HOOK, job_status};
use crate::engine::firmware::observe::{HookKind, HookStatus};

/// Completes hook Jobs as the fleet file says, until the future is dropped.
pub async fn run(client: Client, model: Arc<FleetModel>, clock: Clock) {
    let seen: Mutex<HashSet<(String, String)>> = Mutex::default();
    let jobs = watcher(
        Api::<Job>::all(client.clone()),
        watcher::Config::default().labels(LABEL_HOOK),
    )
    .default_backoff()
    .applied_objects();
    jobs.for_each_concurrent(None, |job| async {
        let Ok(job) = job else { return };
        let key = (job.namespace().unwrap_or_default(), job.name_any());
        let fresh = seen.lock().map(|mut s| s.insert(key)).unwrap_or(false);
        if fresh && job_status(&job) == HookStatus::Running {
            finish(&client, &model, clock, &job).await;
        }
    })
    .await;
}

async fn finish(client: &Client, model: &FleetModel, clock: Clock, job: &Job) {
    let namespace = job.namespace().unwrap_or_default();
    let kind = match job.labels().get(LABEL_HOOK).map(String::as_str) {
        Some("pre-plan") => HookKind::PrePlan,
        Some("pre") => HookKind::Pre,
        Some("post") => HookKind::Post,
        _ => return,
    };
    let owner = job
        .owner_references()
        .iter()
        .find(|o| o.kind == "UpgradeTask")
        .map(|o| o.name.clone());
    let task = match owner {
        Some(owner) => Api::<UpgradeTask>::namespaced(client.clone(), &namespace)
            .get(&owner)
            .await
            .ok(),
        None => None,
    };
    let target = task.map(|t| t.spec.target).unwrap_or_default();
    let outcome = model
        .hook_outcome(&(namespace.clone(), target), kind)
        .unwrap_or_default();
    let started = clock.now();
    tokio::time::sleep(outcome.duration.get()).await;
    let now = clock.now();
    let (condition, counts) = if outcome.exit_code == 0 {
        (
            json!({"type": "Complete", "status": "True", "lastTransitionTime": now.to_string()}),
            json!({"succeeded": 1}),
        )
    } else {
        let message = format!("the hook's pod exited with code {}", outcome.exit_code);
        (
            json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": message, "lastTransitionTime": now.to_string()}),
            json!({"failed": 1}),
        )
    };
    let mut status = json!({
        "startTime": started.to_string(),
        "completionTime": now.to_string(),
        "conditions": [condition],
    });
    if let (Some(status), Some(counts)) = (status.as_object_mut(), counts.as_object()) {
        status.extend(counts.clone());
    }
    let patch = json!({ "status": status });
    let api = Api::<Job>::namespaced(client.clone(), &namespace);
    if let Err(error) = api
        .patch_status(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::warn!(%error, job = %job.name_any(), "could not complete a simulated hook Job");
    }
}
