//! Kubernetes Events (events.k8s.io/v1) about upkeep's objects.
//!
//! kube's `Recorder` stamps events with the system clock; upkeep stamps them with its own clock
//! so that a simulation on the virtual clock reports virtual times and runs the same every time.
//! Events are best effort: a failed publish is logged, never a reconcile failure.

use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::clock::Clock;

/// The name upkeep reports events and field ownership under.
pub const MANAGER: &str = "upkeep";

/// Whether an event reports something normal or a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Progress.
    Normal,
    /// A failure.
    Warning,
}

/// Publishes events.
pub struct Events {
    client: Client,
    clock: Clock,
    instance: String,
    sequence: AtomicU64,
}

impl Events {
    /// A publisher reporting as `instance` (e.g. the pod name).
    pub fn new(client: Client, clock: Clock, instance: impl Into<String>) -> Self {
        Self {
            client,
            clock,
            instance: instance.into(),
            sequence: AtomicU64::new(0),
        }
    }

    /// Publishes an event about `regarding`. `reason` is CamelCase; `note` at most 1 kB.
    pub async fn publish(
        &self,
        regarding: ObjectReference,
        severity: Severity,
        reason: &str,
        action: &str,
        note: &str,
    ) -> bool {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let now = self.clock.now();
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{}.{:x}.{sequence:x}",
            regarding.name.as_deref().unwrap_or(MANAGER),
            now.as_second()
        );
        let note: String = note.chars().take(1000).collect();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(action.chars().take(128).collect()),
            reason: Some(reason.chars().take(128).collect()),
            note: Some(note),
            regarding: Some(regarding),
            reporting_controller: Some(format!("upkeep.dev/{MANAGER}")),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(match severity {
                Severity::Normal => "Normal".into(),
                Severity::Warning => "Warning".into(),
            }),
            ..Default::default()
        };
        match Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await
        {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%error, reason, "could not publish an event");
                false
            }
        }
    }
}
