//! The MaintenanceWindow controller: computes whether the window is open, the current
//! occurrence and the next opening and closing, and comes back at the next boundary.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::controller::Action;

use super::kit::context::Context;
use super::kit::reconcile::guarded;
use super::kit::status;
use super::kit::watched::Watched;
use crate::api::MaintenanceWindow;
use crate::api::conditions::{self, Phase};
use crate::api::maintenance_window::{MaintenanceWindowStatus, WindowOccurrence};
use crate::schedule::window::Window;

/// A reconcile that could not finish; it is retried.
#[derive(Debug, thiserror::Error)]
#[error("writing the status of MaintenanceWindow {window}: {source}")]
pub struct Error {
    window: String,
    source: kube::Error,
}

/// Reconciles one MaintenanceWindow.
pub async fn reconcile(
    guard: Arc<Watched<MaintenanceWindow>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    guarded("MaintenanceWindow", &guard, &ctx.metrics, async |window| {
        reconcile_window(window, &ctx).await
    })
    .await
}

async fn reconcile_window(object: &MaintenanceWindow, ctx: &Context) -> Result<Action, Error> {
    let name = object.name_any();
    let now = ctx.clock.now();
    let generation = object.metadata.generation;
    let mut status = MaintenanceWindowStatus {
        observed_generation: generation,
        conditions: object
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut next = None;
    match Window::from_spec(&name, &object.spec) {
        Ok(window) => {
            let state = window.state_at(now);
            status.open = state.open();
            status.current_window = state.current.map(|o| WindowOccurrence {
                start: Time(o.start),
                end: Time(o.end),
            });
            status.next_open = state.next_open.map(Time);
            status.next_close = state.next_close.map(Time);
            let (reason, message) = match (&state.current, state.next_open) {
                (Some(o), _) => ("Open", format!("open until {}", o.end)),
                (None, Some(at)) => ("Closed", format!("closed; opens at {at}")),
                (None, None) => ("Closed", "closed; it does not open again".to_string()),
            };
            conditions::set_phase(
                &mut status.conditions,
                Phase::Ready,
                reason,
                &message,
                generation,
                now,
            );
            next = state.next_change();
        }
        Err(error) => {
            conditions::set_phase(
                &mut status.conditions,
                Phase::Stalled,
                "InvalidSchedule",
                &error.to_string(),
                generation,
                now,
            );
        }
    }
    if object.status.as_ref() != Some(&status) {
        let api = Api::<MaintenanceWindow>::namespaced(
            ctx.client.clone(),
            &object.namespace().unwrap_or_default(),
        );
        match status::apply(&api, &name, &status, None).await {
            Ok(_) => ctx.metrics.wrote("MaintenanceWindow", "status"),
            Err(e) if status::is_not_found(&e) => return Ok(Action::await_change()),
            Err(source) => {
                return Err(Error {
                    window: name,
                    source,
                });
            }
        }
    }
    Ok(match next {
        Some(at) => Action::requeue(ctx.clock.until(at).max(Duration::from_millis(1))),
        None => Action::await_change(),
    })
}
