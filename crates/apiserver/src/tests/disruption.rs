//! PodDisruptionBudgets kept current as the disruption controller would, and the Pod eviction
//! subresource through kube's `Api::<Pod>::evict`, 429 included.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, EvictParams, Patch, PatchParams, WatchEvent, WatchParams};

use super::fields::pod;
use super::*;

const READY: &str = "Ready";

/// Creates an object through its URL; the created object.
async fn post(server: &ApiServer, uri: &str, body: Value) -> Value {
    let (code, created) = raw(
        &server.client(),
        http::Method::POST,
        uri,
        "application/json",
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    created
}

/// A controller of pods in `default` (`apps/v1` `kind`, `replicas`): its uid.
async fn controller(server: &ApiServer, kind: &str, name: &str, replicas: i64) -> String {
    let plural = format!("{}s", kind.to_lowercase());
    let created = post(
        server,
        &format!("/apis/apps/v1/namespaces/default/{plural}"),
        json!({
            "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        }),
    )
    .await;
    created["metadata"]["uid"].as_str().unwrap().to_string()
}

/// A pod labelled `app: app`, controlled by `owner` (kind, name, uid) if given, Running and
/// Ready when `ready`, else Running and not ready.
async fn app_pod(
    server: &ApiServer,
    name: &str,
    app: &str,
    owner: Option<(&str, &str, &str)>,
    ready: bool,
) {
    let mut metadata = json!({"name": name, "labels": {"app": app}});
    if let Some((kind, owner_name, uid)) = owner {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": kind, "name": owner_name, "uid": uid, "controller": true,
        }]);
    }
    let status = if ready { "True" } else { "False" };
    pod(
        server,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
               "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i"}]}}),
        Some(json!({"phase": "Running", "conditions": [{"type": READY, "status": status}]})),
    )
    .await;
}

async fn set_ready(server: &ApiServer, name: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    Api::<Pod>::default_namespaced(server.client())
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{"type": READY, "status": status}]}})),
        )
        .await
        .unwrap();
}

async fn pdb(server: &ApiServer, name: &str, spec: Value) {
    post(
        server,
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name}, "spec": spec}),
    )
    .await;
}

/// `(currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed)` of a PDB.
async fn counts(server: &ApiServer, name: &str) -> (i32, i32, i32, i32) {
    let status = Api::<PodDisruptionBudget>::default_namespaced(server.client())
        .get(name)
        .await
        .unwrap()
        .status
        .unwrap();
    (
        status.current_healthy,
        status.desired_healthy,
        status.expected_pods,
        status.disruptions_allowed,
    )
}

/// The `DisruptionAllowed` condition's status and reason.
async fn condition(server: &ApiServer, name: &str) -> (String, String) {
    let status = Api::<PodDisruptionBudget>::default_namespaced(server.client())
        .get(name)
        .await
        .unwrap()
        .status
        .unwrap();
    let c = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "DisruptionAllowed")
        .unwrap();
    (c.status, c.reason)
}

fn pods(server: &ApiServer) -> Api<Pod> {
    Api::default_namespaced(server.client())
}

#[tokio::test(start_paused = true)]
async fn pdb_status_follows_the_pods_as_they_come_and_go() {
    bounded(async {
        let server = server();
        let rs = controller(&server, "ReplicaSet", "web", 3).await;
        pdb(
            &server,
            "web",
            json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}),
        )
        .await;
        assert_eq!(counts(&server, "web").await, (0, 2, 0, 0));
        let api: Api<PodDisruptionBudget> = Api::default_namespaced(server.client());
        let mut watch = api
            .watch(&WatchParams::default().timeout(60), "0")
            .await
            .unwrap()
            .boxed();
        assert!(matches!(
            watch.try_next().await.unwrap(),
            Some(WatchEvent::Added(_))
        ));
        for name in ["web-1", "web-2", "web-3"] {
            app_pod(&server, name, "web", Some(("ReplicaSet", "web", &rs)), true).await;
        }
        app_pod(&server, "other", "other", None, true).await;
        assert_eq!(counts(&server, "web").await, (3, 2, 3, 1));
        assert_eq!(
            condition(&server, "web").await,
            ("True".to_string(), "SufficientPods".to_string())
        );
        let current = api.get("web").await.unwrap();
        assert_eq!(current.status.unwrap().observed_generation, Some(1));
        // Watchers of PDBs see the server's status writes.
        let mut modified = 0;
        while let Some(WatchEvent::Modified(p)) = watch.try_next().await.unwrap() {
            modified += 1;
            if p.status.is_some_and(|s| s.current_healthy == 3) {
                break;
            }
        }
        assert!(modified >= 3, "{modified} MODIFIED events");
        set_ready(&server, "web-2", false).await;
        assert_eq!(counts(&server, "web").await, (2, 2, 3, 0));
        assert_eq!(
            condition(&server, "web").await,
            ("False".to_string(), "InsufficientPods".to_string())
        );
        set_ready(&server, "web-2", true).await;
        pods(&server)
            .delete("web-3", &DeleteParams::default())
            .await
            .unwrap();
        assert_eq!(counts(&server, "web").await, (2, 2, 2, 0));
        // A spec change is observed at once.
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": 1}})),
        )
        .await
        .unwrap();
        assert_eq!(counts(&server, "web").await, (2, 1, 2, 1));
        let status = api.get("web").await.unwrap().status.unwrap();
        assert_eq!(status.observed_generation, Some(2));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn percentages_and_max_unavailable_count_the_controllers_scale() {
    bounded(async {
        let server = server();
        let rs = controller(&server, "ReplicaSet", "web", 4).await;
        for name in ["web-1", "web-2", "web-3"] {
            app_pod(&server, name, "web", Some(("ReplicaSet", "web", &rs)), true).await;
        }
        let web = json!({"matchLabels": {"app": "web"}});
        pdb(&server, "max-int", json!({"maxUnavailable": 1, "selector": web})).await;
        pdb(&server, "max-pct", json!({"maxUnavailable": "30%", "selector": web})).await;
        pdb(&server, "min-pct", json!({"minAvailable": "50%", "selector": web})).await;
        pdb(&server, "none", json!({"minAvailable": 1})).await;
        // Scale 4 (the ReplicaSet's replicas), 3 healthy.
        assert_eq!(counts(&server, "max-int").await, (3, 3, 4, 0));
        assert_eq!(counts(&server, "max-pct").await, (3, 2, 4, 1));
        assert_eq!(counts(&server, "min-pct").await, (3, 2, 4, 1));
        // A null selector matches no pod.
        assert_eq!(counts(&server, "none").await, (0, 1, 0, 0));

        // A ReplicaSet of a Deployment counts the Deployment's replicas.
        let deployment = controller(&server, "Deployment", "api", 2).await;
        let owned = post(
            &server,
            "/apis/apps/v1/namespaces/default/replicasets",
            json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": "api-1", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": deployment, "controller": true}]},
                "spec": {"replicas": 9, "selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            }),
        )
        .await;
        let owned_uid = owned["metadata"]["uid"].as_str().unwrap().to_string();
        app_pod(&server, "api-a", "api", Some(("ReplicaSet", "api-1", &owned_uid)), true).await;
        app_pod(&server, "api-b", "api", Some(("ReplicaSet", "api-1", &owned_uid)), true).await;
        pdb(&server, "api", json!({"maxUnavailable": "50%", "selector": {"matchLabels": {"app": "api"}}})).await;
        assert_eq!(counts(&server, "api").await, (2, 1, 2, 1));

        // Pods without a controller are not counted for maxUnavailable: nothing may go.
        app_pod(&server, "solo", "solo", None, true).await;
        pdb(&server, "solo", json!({"maxUnavailable": 1, "selector": {"matchLabels": {"app": "solo"}}})).await;
        assert_eq!(counts(&server, "solo").await, (1, 0, 0, 0));

        // A pod controlled by a kind without a scale fails the sync, as on a real cluster.
        let ds = controller(&server, "DaemonSet", "agent", 1).await;
        app_pod(&server, "agent-x", "agent", Some(("DaemonSet", "agent", &ds)), true).await;
        pdb(&server, "agent", json!({"maxUnavailable": 1, "selector": {"matchLabels": {"app": "agent"}}})).await;
        assert_eq!(counts(&server, "agent").await.3, 0);
        assert_eq!(
            condition(&server, "agent").await,
            ("False".to_string(), "SyncFailed".to_string())
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn kube_evict_deletes_what_the_budget_allows_and_gets_429_beyond() {
    bounded(async {
        let server = server();
        let rs = controller(&server, "ReplicaSet", "web", 3).await;
        for name in ["web-1", "web-2", "web-3"] {
            app_pod(&server, name, "web", Some(("ReplicaSet", "web", &rs)), true).await;
        }
        pdb(&server, "web", json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}})).await;
        let api = pods(&server);
        let status = api.evict("web-1", &EvictParams::default()).await.unwrap();
        assert_eq!(status.code, 201);
        assert!(status.is_success(), "{status:?}");
        assert!(api.get_opt("web-1").await.unwrap().is_none());
        assert_eq!(counts(&server, "web").await, (2, 2, 2, 0));

        let refused = api_error(api.evict("web-2", &EvictParams::default()).await);
        assert_eq!(refused.code, 429);
        assert_eq!(refused.reason, "TooManyRequests");
        assert_eq!(
            refused.message,
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        let causes = refused.details.unwrap().causes;
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].reason, "DisruptionBudget");
        assert_eq!(
            causes[0].message,
            "The disruption budget web needs 2 healthy pods and has 2 currently"
        );
        assert!(api.get_opt("web-2").await.unwrap().is_some());

        // The raw body is the real server's Status.
        let (code, body) = raw(
            &server.client(),
            http::Method::POST,
            "/api/v1/namespaces/default/pods/web-2/eviction",
            "application/json",
            serde_json::to_vec(&json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-2"}})).unwrap(),
        )
        .await;
        assert_eq!(code, 429);
        assert_eq!(
            body,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                "reason": "TooManyRequests",
                "details": {"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]},
                "code": 429,
            })
        );

        // Once a replacement is ready the budget allows one more.
        app_pod(&server, "web-4", "web", Some(("ReplicaSet", "web", &rs)), true).await;
        api.evict("web-2", &EvictParams::default()).await.unwrap();
        assert!(api.get_opt("web-2").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn evictions_that_need_no_budget() {
    bounded(async {
        let server = server();
        let rs = controller(&server, "ReplicaSet", "web", 2).await;
        app_pod(&server, "web-1", "web", Some(("ReplicaSet", "web", &rs)), true).await;
        app_pod(&server, "web-2", "web", Some(("ReplicaSet", "web", &rs)), false).await;
        pdb(&server, "web", json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}})).await;
        assert_eq!(counts(&server, "web").await, (1, 1, 2, 0));
        let api = pods(&server);
        // An unready pod may go while the budget is met without it.
        api.evict("web-2", &EvictParams::default()).await.unwrap();
        assert!(api.get_opt("web-2").await.unwrap().is_none());
        // The ready one may not.
        assert_eq!(api_error(api.evict("web-1", &EvictParams::default()).await).code, 429);
        // A pod no budget covers is just deleted; so is a Pending one.
        app_pod(&server, "loner", "loner", None, true).await;
        api.evict("loner", &EvictParams::default()).await.unwrap();
        assert!(api.get_opt("loner").await.unwrap().is_none());
        pod(
            &server,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "starting", "labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "c", "image": "i"}]}}),
            None,
        )
        .await;
        api.evict("starting", &EvictParams::default()).await.unwrap();
        assert!(api.get_opt("starting").await.unwrap().is_none());
        // A dry run deletes nothing.
        app_pod(&server, "kept", "kept", None, true).await;
        let dry = EvictParams {
            post_options: PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            ..EvictParams::default()
        };
        api.evict("kept", &dry).await.unwrap();
        assert!(api.get_opt("kept").await.unwrap().is_some());
        // A missing pod is 404.
        let missing = api_error(api.evict("nothing", &EvictParams::default()).await);
        assert_eq!((missing.code, missing.message.as_str()), (404, "pods \"nothing\" not found"));
        // Two budgets over one pod: the real server's 500.
        pdb(&server, "web-too", json!({"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}}})).await;
        let two = api_error(api.evict("web-1", &EvictParams::default()).await);
        assert_eq!(two.code, 500);
        assert_eq!(
            two.message,
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn eviction_bodies_and_delete_options() {
    bounded(async {
        let server = server();
        app_pod(&server, "p", "p", None, true).await;
        let uid = pods(&server).get("p").await.unwrap().metadata.uid.unwrap();
        let evict = |body: Value| {
            let server = server.clone();
            async move {
                raw(
                    &server.client(),
                    http::Method::POST,
                    "/api/v1/namespaces/default/pods/p/eviction",
                    "application/json",
                    serde_json::to_vec(&body).unwrap(),
                )
                .await
            }
        };
        let (code, body) = evict(json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "q"}})).await;
        assert_eq!(code, 400);
        assert_eq!(body["message"], "name in URL does not match name in Eviction object");
        let (code, body) = evict(json!({
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"},
            "deleteOptions": {"preconditions": {"uid": "someone-else"}},
        }))
        .await;
        assert_eq!(code, 409, "{body}");
        assert!(pods(&server).get_opt("p").await.unwrap().is_some());
        let (code, body) = evict(json!({
            "apiVersion": "policy/v1beta1", "kind": "Eviction", "metadata": {"name": "p"},
            "deleteOptions": {"preconditions": {"uid": uid}},
        }))
        .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(
            body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
        );
        assert!(pods(&server).get_opt("p").await.unwrap().is_none());
        // Discovery offers the subresource as kubectl drain looks for it.
        let core: Value = server
            .client()
            .request(http::Request::get("/api/v1").body(Vec::new()).unwrap())
            .await
            .unwrap();
        let eviction = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .unwrap();
        assert_eq!(
            (&eviction["group"], &eviction["version"], &eviction["kind"]),
            (&json!("policy"), &json!("v1"), &json!("Eviction"))
        );
    })
    .await;
}
