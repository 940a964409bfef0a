//! OpenAPI v3 as `kubectl explain` reads it: the kind from a path's
//! `x-kubernetes-group-version-kind`, then the component carrying the same extension, then its
//! fields through `$ref`s.

use super::*;

async fn get(server: &ApiServer, uri: &str) -> Value {
    let request = http::Request::get(uri).body(Vec::new()).unwrap();
    server.client().request(request).await.unwrap()
}

/// The component whose `x-kubernetes-group-version-kind` lists exactly `gvk` (what explain's
/// template looks for).
fn component<'d>(doc: &'d Value, gvk: &Value) -> (&'d str, &'d Value) {
    doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, s)| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|l| l.contains(gvk))
        })
        .map(|(name, schema)| (name.as_str(), schema))
        .unwrap_or_else(|| panic!("no component for {gvk}"))
}

/// Follows a `$ref` (or a single-`allOf` wrapped one) within the document.
fn resolve<'d>(doc: &'d Value, schema: &'d Value) -> &'d Value {
    let reference = schema["$ref"]
        .as_str()
        .or_else(|| schema["allOf"][0]["$ref"].as_str());
    match reference {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

#[tokio::test(start_paused = true)]
async fn crd_schemas_are_components_with_their_group_version_kind() {
    bounded(async {
        let server = server();
        let root = get(&server, "/openapi/v3").await;
        for key in [
            "api/v1",
            "apis/upkeep.dev/v1alpha1",
            "apis/policy/v1",
            "apis/apps/v1",
        ] {
            assert!(root["paths"][key]["serverRelativeURL"].is_string(), "{key}");
        }
        let doc = get(&server, "/openapi/v3/apis/upkeep.dev/v1alpha1").await;
        let gvk = json!({"group": "upkeep.dev", "version": "v1alpha1", "kind": "FirmwareUpgrade"});
        let path =
            &doc["paths"]["/apis/upkeep.dev/v1alpha1/namespaces/{namespace}/firmwareupgrades"];
        assert_eq!(path["get"]["x-kubernetes-group-version-kind"], gvk);
        let (name, schema) = component(&doc, &gvk);
        assert_eq!(name, "dev.upkeep.v1alpha1.FirmwareUpgrade");
        let rollout = &schema["properties"]["spec"]["properties"]["rollout"];
        assert_eq!(rollout["type"], "object");
        assert!(
            rollout["properties"]["maxConcurrent"]["description"]
                .as_str()
                .unwrap()
                .contains("percentage"),
            "{rollout}"
        );
        assert!(
            schema["properties"]["apiVersion"]["description"]
                .as_str()
                .unwrap()
                .starts_with("APIVersion defines")
        );
        let meta = resolve(&doc, &schema["properties"]["metadata"]);
        assert!(meta["properties"]["ownerReferences"].is_object(), "{meta}");
        // Every reference in the document resolves within it.
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &piece[..piece.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling $ref {name}"
            );
        }
        for kind in ["Device", "MaintenanceWindow", "PatchJob", "UpgradeTask"] {
            let gvk = json!({"group": "upkeep.dev", "version": "v1alpha1", "kind": kind});
            component(&doc, &gvk);
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn built_in_kinds_have_their_schemas() {
    bounded(async {
        let server = server();
        let core = get(&server, "/openapi/v3/api/v1").await;
        let (name, pod) = component(&core, &json!({"group": "", "version": "v1", "kind": "Pod"}));
        assert_eq!(name, "io.k8s.api.core.v1.Pod");
        let spec = resolve(&core, &pod["properties"]["spec"]);
        assert!(
            spec["properties"]["nodeName"]["description"]
                .as_str()
                .unwrap()
                .contains("node"),
            "{spec}"
        );
        for kind in ["Event", "Node", "Namespace", "Secret", "ConfigMap"] {
            component(&core, &json!({"group": "", "version": "v1", "kind": kind}));
        }
        let policy = get(&server, "/openapi/v3/apis/policy/v1").await;
        let (name, _) = component(
            &policy,
            &json!({"group": "policy", "version": "v1", "kind": "PodDisruptionBudget"}),
        );
        assert_eq!(name, "io.k8s.api.policy.v1.PodDisruptionBudget");
        assert!(
            policy["paths"]["/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}"]
                ["patch"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let (code, _) = raw(
            &server.client(),
            http::Method::GET,
            "/openapi/v3/apis/nothing.example/v1",
            "application/json",
            Vec::new(),
        )
        .await;
        assert_eq!(code, 404);
    })
    .await;
}
