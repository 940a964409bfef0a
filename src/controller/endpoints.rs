//! The operator's HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process
//! runs) and `/readyz` (it is ready to work, or standing by for leadership).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::kit::metrics::Metrics;

/// Shared by the endpoints.
#[derive(Clone)]
pub struct Health {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

impl Health {
    /// Endpoints serving `metrics`; not ready until [`Health::set_ready`].
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks the operator ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// The router with the three endpoints.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .with_state(self.clone())
    }
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        health.metrics.render(),
    )
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn health_and_metrics() {
        let metrics = Metrics::new();
        metrics.reconciled("Device", std::time::Duration::from_millis(3), false);
        let health = Health::new(metrics);
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        let router = health.router();
        assert_eq!(
            router
                .clone()
                .oneshot(get("/healthz"))
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            router
                .clone()
                .oneshot(get("/readyz"))
                .await
                .unwrap()
                .status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_ready(true);
        assert_eq!(
            router
                .clone()
                .oneshot(get("/readyz"))
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let body = router.oneshot(get("/metrics")).await.unwrap().into_body();
        let text =
            String::from_utf8(axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec()).unwrap();
        assert!(
            text.contains("upkeep_reconciles_total{controller=\"Device\"} 1"),
            "{text}"
        );
    }
}
