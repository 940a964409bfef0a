//! The Device controller: reads the device's facts through its driver and reports them with
//! `Reachable` and `Ready` conditions, a bounded history of reachability changes, and the time
//! the device last answered (refreshed at least hourly, so a healthy fleet costs few writes).

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::controller::Action;

use super::kit::context::Context;
use super::kit::reconcile::guarded;
use super::kit::status;
use super::kit::watched::Watched;
use crate::api::Device;
use crate::api::conditions::{self, Desired, Phase};
use crate::api::device::{DeviceEvent, DeviceStatus};
use crate::drivers::{Caller, Phase as CallPhase};
use crate::engine::firmware::observe::FaultKind;

/// The most history entries a Device keeps.
const HISTORY_LIMIT: usize = 20;
/// How stale `lastSeen` may get before a refresh writes it although nothing else changed.
const LAST_SEEN_REFRESH: SignedDuration = SignedDuration::from_hours(1);
/// How soon an unreachable device is tried again.
const UNREACHABLE_RETRY: Duration = Duration::from_secs(60);

/// A reconcile that could not finish; it is retried.
#[derive(Debug, thiserror::Error)]
#[error("writing the status of Device {device}: {source}")]
pub struct Error {
    device: String,
    source: kube::Error,
}

/// Reconciles one Device.
pub async fn reconcile(guard: Arc<Watched<Device>>, ctx: Arc<Context>) -> Result<Action, Error> {
    guarded("Device", &guard, &ctx.metrics, async |device| {
        reconcile_device(device, &ctx).await
    })
    .await
}

async fn reconcile_device(device: &Device, ctx: &Context) -> Result<Action, Error> {
    let name = device.name_any();
    let driver = ctx.connections.driver(device).await;
    let caller = Caller {
        task: None,
        phase: CallPhase::Inventory,
    };
    let inventory = driver.inventory(caller).await;
    let now = ctx.clock.now();
    let previous = device.status.clone().unwrap_or_default();
    let generation = device.metadata.generation;
    // A device that answers with an error is reachable, but its facts are not current.
    let reachable = !matches!(&inventory, Err(e) if e.kind == FaultKind::Unreachable);
    let mut status = DeviceStatus {
        observed_generation: generation,
        conditions: previous.conditions.clone(),
        history: previous.history.clone(),
        last_seen: previous.last_seen.clone(),
        facts: previous.facts.clone(),
        reachable,
    };
    let current = inventory.is_ok();
    let message = match inventory {
        Ok(inventory) => {
            status.facts = Some(inventory.to_device_facts());
            format!("the device answers; firmware {}", inventory.facts.firmware)
        }
        Err(error) => error.to_string(),
    };
    if previous.reachable != status.reachable || previous.conditions.is_empty() {
        let event = if status.reachable {
            "Reachable"
        } else {
            "Unreachable"
        };
        status.history.push(DeviceEvent {
            at: Time(now),
            event: event.into(),
            message: message.clone(),
        });
        let excess = status.history.len().saturating_sub(HISTORY_LIMIT);
        status.history.drain(..excess);
    }
    let reason = if status.reachable {
        "Answered"
    } else {
        "NotAnswering"
    };
    conditions::set(
        &mut status.conditions,
        Desired::new(
            conditions::REACHABLE,
            status.reachable,
            reason,
            message.clone(),
        ),
        generation,
        now,
    );
    let (phase, reason) = match (status.reachable, current) {
        (true, true) => (Phase::Ready, "FactsRead"),
        (true, false) => (Phase::Stalled, "FactsUnreadable"),
        (false, _) => (Phase::Stalled, reason),
    };
    conditions::set_phase(
        &mut status.conditions,
        phase,
        reason,
        &message,
        generation,
        now,
    );
    // Reconciling is not a state of a Device; keep only Ready, Reachable and Stalled.
    status
        .conditions
        .retain(|c| c.type_ != conditions::RECONCILING);

    let stale = previous
        .last_seen
        .as_ref()
        .is_none_or(|t| now.duration_since(t.0) >= LAST_SEEN_REFRESH);
    let changed = device.status.as_ref() != Some(&status);
    if status.reachable && (changed || stale) {
        status.last_seen = Some(Time(now));
    }
    if device.status.as_ref() != Some(&status) {
        let api =
            Api::<Device>::namespaced(ctx.client.clone(), &device.namespace().unwrap_or_default());
        match status::apply(&api, &name, &status, None).await {
            Ok(_) => ctx.metrics.wrote("Device", "status"),
            Err(e) if status::is_not_found(&e) => return Ok(Action::await_change()),
            Err(source) => {
                return Err(Error {
                    device: name,
                    source,
                });
            }
        }
    }
    let next = if status.reachable {
        ctx.settings.device_refresh
    } else {
        UNREACHABLE_RETRY.min(ctx.settings.device_refresh)
    };
    Ok(Action::requeue(next))
}
