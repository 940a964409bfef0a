//! End to end against a real Kubernetes cluster. Ignored by default: everything else runs on the
//! in-memory API, and no cluster is at hand in CI.
//!
//! What it does: applies the CRDs (server-side apply), creates a fresh namespace, serves a small
//! fleet with devicesim on this machine, creates Devices pointing at it and a FirmwareUpgrade,
//! runs the operator in-process against the cluster (as `upkeep run` would from a kubeconfig),
//! and waits until every task has ended with the codes the fleet promises. The namespace is
//! deleted at the end.
//!
//! How to run it, e.g. with kind:
//!
//! ```sh
//! kind create cluster --name upkeep-e2e
//! UPKEEP_E2E=1 cargo nextest run --run-ignored only -E 'test(/^e2e::/)'
//! ```
//!
//! The kubeconfig's current context is used. The operator runs on this machine, so the cluster
//! only stores objects; devicesim listens on 127.0.0.1. The test refuses to run unless
//! `UPKEEP_E2E=1` is set, so a developer's default context is never touched by accident.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt as _};
use tokio_util::sync::CancellationToken;
use upkeep::api::{Device, FirmwareUpgrade, UpgradeTask};
use upkeep::clock::Clock;
use upkeep::controller::connections::ClusterConnections;
use upkeep::controller::kit::context::Settings;
use upkeep::controller::kit::metrics::Metrics;
use upkeep::controller::operator::{self, Parts};
use upkeep::sim::devicesim;
use upkeep::sim::fleet_file::Fleet;

const FLEET: &str = r#"
apiVersion: upkeep.dev/v1alpha1
kind: Fleet
images:
  - { name: idg7519.oradco.scrypt4, size: 4Mi }
devices:
  - { name: e2e-1, namespace: NS, timings: { upgrade: 5s, quiesce: 1s } }
  - { name: e2e-2, namespace: NS, timings: { upgrade: 5s, quiesce: 1s }, faults: [ { step: upload, kind: error } ] }
"#;

#[tokio::test]
#[ignore = "needs a real cluster: UPKEEP_E2E=1 and a kubeconfig (see the file's docs)"]
async fn a_firmware_upgrade_runs_end_to_end_on_a_real_cluster() {
    assert_eq!(
        std::env::var("UPKEEP_E2E").as_deref(),
        Ok("1"),
        "set UPKEEP_E2E=1 to run against the current kubeconfig context"
    );
    let client = Client::try_default()
        .await
        .expect("a kubeconfig or in-cluster config");

    // The CRDs, as `upkeep crds | kubectl apply --server-side -f -` would.
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in upkeep::api::crds() {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("upkeep-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let ns = format!("upkeep-e2e-{}", std::process::id());
    let namespaces = Api::<Namespace>::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();

    // The devices, served on this machine.
    let fleet = Fleet::from_yaml(&FLEET.replace("NS", &ns)).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let credentials = upkeep::drivers::credentials::Credentials::new("admin", "e2e-secret");
    let sim = devicesim::start(
        &fleet,
        listener,
        devicesim::Options {
            credentials: Some(credentials),
            tls: None,
        },
    )
    .unwrap();
    let images = tempfile::tempdir().unwrap();
    std::fs::write(
        images.path().join("idg7519.oradco.scrypt4"),
        vec![0u8; 4 << 20],
    )
    .unwrap();

    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "e2e-credentials", "namespace": ns},
        "stringData": {"username": "admin", "password": "e2e-secret"},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let devices = Api::<Device>::namespaced(client.clone(), &ns);
    for name in ["e2e-1", "e2e-2"] {
        let device: Device = serde_json::from_value(serde_json::json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "Device",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"driver": "upkeep", "address": sim.device_url(&ns, name).unwrap(), "credentialsSecretRef": {"name": "e2e-credentials"}},
        }))
        .unwrap();
        devices
            .create(&PostParams::default(), &device)
            .await
            .unwrap();
    }
    let upgrade: FirmwareUpgrade = serde_json::from_value(serde_json::json!({
        "apiVersion": "upkeep.dev/v1alpha1", "kind": "FirmwareUpgrade",
        "metadata": {"name": "e2e", "namespace": ns},
        "spec": {"image": "idg7519.oradco.scrypt4", "targets": {"pattern": "e2e-*"}, "rollout": {"maxConcurrent": 2}},
    }))
    .unwrap();
    Api::<FirmwareUpgrade>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &upgrade)
        .await
        .unwrap();

    // The operator, watching only this namespace.
    let stop = CancellationToken::new();
    let parts = Parts {
        client: client.clone(),
        clock: Clock::system(),
        repository: std::sync::Arc::new(upkeep::images::repository::DirRepository::new(
            images.path(),
        )),
        connections: std::sync::Arc::new(ClusterConnections::new(
            client.clone(),
            None,
            Duration::from_secs(10),
        )),
        settings: Settings::default(),
        instance: "upkeep-e2e".into(),
        namespace: Some(ns.clone()),
        metrics: Metrics::new(),
    };
    let operator = tokio::spawn(operator::run(parts, stop.clone()));

    let tasks = Api::<UpgradeTask>::namespaced(client.clone(), &ns);
    let outcome = tokio::time::timeout(Duration::from_secs(180), async {
        loop {
            let list = tasks.list(&Default::default()).await.unwrap();
            let codes: Vec<(String, String)> = list
                .items
                .iter()
                .map(|t| {
                    (
                        t.spec.target.clone(),
                        t.status
                            .as_ref()
                            .and_then(|s| s.code.clone())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            if codes.len() == 2
                && list
                    .items
                    .iter()
                    .all(|t| t.status.as_ref().is_some_and(|s| s.terminal))
            {
                break codes;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
    .await;
    stop.cancel();
    let _ = operator.await;
    sim.stop();
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();

    let mut codes = outcome.expect("every task ended within three minutes");
    codes.sort();
    assert_eq!(
        codes,
        [
            ("e2e-1".to_string(), "SUCCESS".to_string()),
            (
                "e2e-2".to_string(),
                "EXECUTION_UPLOAD_IMAGE_ERROR".to_string()
            )
        ]
    );
}
