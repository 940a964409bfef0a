//! The chart's Grafana dashboard (`charts/upkeep/dashboards/upkeep.json`) queries only metrics
//! the operator exports: a real operator runs a rollout in the in-memory API, and its `/metrics`
//! endpoint is scraped while it runs. The chart's CI step (`.ci/check_chart.py`) checks the
//! dashboard's structure and the ConfigMap that ships it.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use jiff::SignedDuration;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use upkeep::controller::endpoints::Health;
use upkeep::controller::kit::metrics::Metrics;
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::runner::{Scenario, World};

use crate::common::on_virtual_clock;

const DASHBOARD: &str = include_str!("../../charts/upkeep/dashboards/upkeep.json");

/// Every `upkeep_*` name in the dashboard's queries (panel targets and template variables).
fn queried(dashboard: &Value) -> BTreeSet<String> {
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            queries.push(query.to_string());
        }
    }
    assert!(!queries.is_empty());
    queries
        .iter()
        .flat_map(|q| {
            q.match_indices("upkeep_").map(move |(at, _)| {
                q[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
        })
        .collect()
}

/// The series names a scrape offers: each family by its type (a counter `x` is `x_total`, a
/// histogram `x` is `x_bucket`, `x_sum` and `x_count`), and every sample's name.
fn exported(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(family) = line.strip_prefix("# TYPE ") {
            let (name, kind) = family.split_once(' ').unwrap();
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            names.insert(name.to_string());
        }
    }
    names
}

async fn scrape(health: &Health) -> String {
    let request = Request::get("/metrics").body(Body::empty()).unwrap();
    let body = health.router().oneshot(request).await.unwrap().into_body();
    String::from_utf8(axum::body::to_bytes(body, 1 << 24).await.unwrap().to_vec()).unwrap()
}

const UPGRADE: &str = "apiVersion: upkeep.dev/v1alpha1\nkind: FirmwareUpgrade\nmetadata: { name: fw, namespace: default }\nspec:\n  image: idg7519.oradco.scrypt4\n  targets: { pattern: \"dp-*\" }\n";

#[test]
fn the_dashboard_queries_only_metrics_the_operator_exports() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let queried = queried(&dashboard);
    on_virtual_clock(move || async move {
        let fleet = Fleet::from_yaml("apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nimages:\n  - { name: idg7519.oradco.scrypt4, size: 600Mi }\ndevices:\n  - { name: dp-1 }\n  - { name: dp-2, unsavedChanges: true }\n").unwrap();
        let scenario = Scenario {
            fleet,
            manifests: vec![serde_saphyr::from_str(UPGRADE).unwrap()],
            start: "2026-11-23T09:00:00Z".parse().unwrap(),
            horizon: SignedDuration::from_hours(2),
        };
        let world = World::new(&scenario).await.unwrap();
        let metrics = Metrics::new();
        let health = Health::new(metrics.clone());
        let stop = CancellationToken::new();
        let operator = world.operator_with_metrics(stop.clone(), metrics);
        let jobs = world.jobs();
        let look = async {
            // Mid-rollout: dp-1 is upgrading (15 minutes), dp-2 has failed its validation.
            tokio::time::sleep(Duration::from_secs(120)).await;
            let during = scrape(&health).await;
            while !world.finished() {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            (during, scrape(&health).await)
        };
        let (during, end) = tokio::select! {
            scrapes = look => scrapes,
            () = operator => panic!("the operator stopped"),
            () = jobs => panic!("the jobs stopped"),
        };
        stop.cancel();

        for sample in [
            "upkeep_rollouts_in_progress{kind=\"FirmwareUpgrade\"} 1",
            "upkeep_tasks{parent_kind=\"FirmwareUpgrade\",code=\"ERROR_FOUND_UNSAVED_CHANGES_ON_DEVICE\",result=\"Failed\"} 1",
        ] {
            assert!(
                during.lines().any(|l| l == sample),
                "{sample} missing:\n{during}"
            );
        }
        for sample in [
            "upkeep_rollouts_in_progress{kind=\"FirmwareUpgrade\"} 0",
            "upkeep_tasks{parent_kind=\"FirmwareUpgrade\",code=\"SUCCESS\",result=\"Succeeded\"} 1",
        ] {
            assert!(end.lines().any(|l| l == sample), "{sample} missing:\n{end}");
        }

        let exported = exported(&end);
        for name in [
            "upkeep_reconcile_errors_total",
            "upkeep_api_writes_total",
            "upkeep_reconcile_duration_seconds_bucket",
        ] {
            assert!(exported.contains(name), "{name} is not exported:\n{end}");
        }
        assert!(
            exported.iter().all(|n| n.starts_with("upkeep_")),
            "{exported:?}"
        );
        let missing: Vec<&String> = queried.iter().filter(|n| !exported.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "the dashboard queries metrics nobody exports: {missing:?}\nexported: {exported:?}"
        );
        for name in [
            "upkeep_tasks",
            "upkeep_rollouts_in_progress",
            "upkeep_reconcile_errors_total",
        ] {
            assert!(queried.contains(name), "the dashboard shows no {name}");
        }
    });
}
