//! Tests of the in-memory API server, driven through kube's real `Api`, `watcher`, `reflector`
//! and `Controller` on a current-thread runtime with paused (virtual) time. Every test runs
//! inside [`bounded`], so a hang fails on virtual time instead of blocking.

mod apply;
mod counters;
mod crud;
mod disruption;
mod errors;
mod events;
mod fields;
mod gc;
mod openapi;
mod runtime;
mod scale;
mod selectors;
mod status;
mod tables;
mod transport;
mod validation;
mod watch;

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::{Value, json};

use super::ApiServer;
use upkeep_core::api::upgrade_task::{ParentKind, UpgradeTaskSpec};
use upkeep_core::api::{UpgradeTask, UpgradeTaskStatus};

/// The virtual time every test starts at.
fn origin() -> Timestamp {
    "2026-03-01T00:00:00Z".parse().unwrap()
}

/// A clock that reads [`origin`] now and advances with tokio's (paused) clock.
fn clock() -> impl Fn() -> Timestamp + Send + Sync + 'static {
    let started = tokio::time::Instant::now();
    move || origin() + jiff::SignedDuration::try_from(started.elapsed()).unwrap()
}

/// A server with upkeep's CRDs on a clock starting at [`origin`], without schema
/// validation: the tests of API mechanics change UpgradeTask specs freely, which the CRD's CEL
/// rule forbids (see the `validation` tests for that).
fn server() -> ApiServer {
    ApiServer::builder(clock())
        .crds(upkeep_core::api::crds())
        .schema_validation(false)
        .build()
}

/// A server as built by default: custom resources checked against their CRDs.
fn validating_server() -> ApiServer {
    ApiServer::new(clock(), upkeep_core::api::crds())
}

/// Runs `f`, failing the test if it takes more than a virtual day.
async fn bounded<F: Future>(f: F) -> F::Output {
    bounded_for(Duration::from_secs(24 * 3600), f).await
}

/// Runs `f`, failing the test if it takes longer than `limit` of virtual time.
async fn bounded_for<F: Future>(limit: Duration, f: F) -> F::Output {
    tokio::time::timeout(limit, f)
        .await
        .expect("the test hung (timed out on virtual time)")
}

/// An UpgradeTask for `target`.
fn task(name: &str, target: &str) -> UpgradeTask {
    let mut task = UpgradeTask::new(
        name,
        UpgradeTaskSpec {
            parent_kind: ParentKind::FirmwareUpgrade,
            parent: "fw".into(),
            target: target.into(),
        },
    );
    task.metadata.labels = Some([("upkeep.dev/parent".to_string(), "fw".to_string())].into());
    task
}

/// A task with labels.
fn labelled(name: &str, labels: &[(&str, &str)]) -> UpgradeTask {
    let mut t = task(name, name);
    t.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    t
}

/// A status with `code`.
fn status_with(code: &str) -> UpgradeTaskStatus {
    UpgradeTaskStatus {
        code: Some(code.into()),
        ..Default::default()
    }
}

/// The tasks API in `default`.
fn tasks(server: &ApiServer) -> Api<UpgradeTask> {
    Api::default_namespaced(server.client())
}

/// Creates `t` in `default`.
async fn create(api: &Api<UpgradeTask>, t: &UpgradeTask) -> UpgradeTask {
    api.create(&PostParams::default(), t).await.unwrap()
}

/// The `Status` of a failed call.
fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// `metadata.generation`.
fn generation(meta: &ObjectMeta) -> i64 {
    meta.generation.unwrap()
}

/// A raw JSON request through the client: (HTTP status, body as JSON).
async fn raw(
    client: &kube::Client,
    method: http::Method,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(kube::client::Body::from(body))
        .unwrap();
    let response = client.send(request).await.unwrap();
    let code = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
    (code, value)
}
