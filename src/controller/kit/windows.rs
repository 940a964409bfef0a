//! The window gate of a resource, from the MaintenanceWindows of its namespace in the cache:
//! the windows it names (a name without a usable window counts as a window that never opens)
//! and every Blackout of the namespace. The verdict and the instant the gate closes are the
//! schedule's (`schedule::gate`); this only reads the cache.

use std::collections::BTreeMap;

use jiff::Timestamp;
use kube::ResourceExt as _;

use super::context::{Context, in_namespace};
use crate::api::MaintenanceWindow;
use crate::api::maintenance_window::WindowType;
use crate::schedule::gate::{self, Gate, Referenced};
use crate::schedule::window::Window;

/// The gate at `now` of a resource in `namespace` that names the windows `names`, and when it
/// closes next (`None`: no window bounds it).
pub fn window_gate(
    ctx: &Context,
    names: &[String],
    namespace: &str,
    now: Timestamp,
) -> (Gate, Option<Timestamp>) {
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
    let referenced: Vec<Referenced<'_>> = names
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
    (
        gate::evaluate(&referenced, &blackouts, now),
        gate::closes_at(&referenced, &blackouts, now),
    )
}
