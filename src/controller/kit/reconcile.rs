//! The wrapper every reconcile runs in, so no controller repeats it: a span named for the object
//! (kind, namespace, name), an object that cannot be read (a guarded watch kept it as invalid)
//! logged and left alone rather than failing the controller, and the reconcile's duration and
//! outcome recorded in the metrics.

use std::time::Instant;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt as _};
use tracing::{Instrument as _, info_span};

use super::metrics::Metrics;
use super::watched::Watched;

/// Runs `reconcile` on the object `guard` holds, within the object's span, recording the
/// reconcile in `metrics` as one of `kind`. An unreadable object waits for a change.
pub async fn guarded<K, E>(
    kind: &'static str,
    guard: &Watched<K>,
    metrics: &Metrics,
    reconcile: impl AsyncFnOnce(&K) -> Result<Action, E>,
) -> Result<Action, E>
where
    K: Resource,
{
    let started = Instant::now();
    let span = info_span!(
        "reconcile",
        kind,
        namespace = %guard.namespace().unwrap_or_default(),
        name = %guard.name_any()
    );
    let result = async {
        match &guard.0 {
            Ok(object) => reconcile(object).await,
            Err(invalid) => {
                tracing::warn!(error = %invalid.error, "the {kind} cannot be read; it is left alone");
                Ok(Action::await_change())
            }
        }
    }
    .instrument(span)
    .await;
    metrics.reconciled(kind, started.elapsed(), result.is_err());
    result
}
