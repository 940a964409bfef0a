//! The field-selector labels of the built-in kinds, as the real server's conversion functions
//! accept them, with the values its defaulting would give absent fields; on lists and watches.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams, WatchEvent, WatchParams};

use super::*;

/// Names of the objects `api` lists with the field selector `fields`.
async fn selected<K>(api: &Api<K>, fields: &str) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default().fields(fields))
        .await
        .unwrap_or_else(|e| panic!("{fields}: {e}"))
        .items
        .into_iter()
        .map(|o| o.meta().name.clone().unwrap())
        .collect()
}

/// Creates a pod from JSON, then sets its status (a create drops it).
pub(super) async fn pod(server: &ApiServer, spec: Value, status: Option<Value>) -> Pod {
    let api: Api<Pod> = Api::default_namespaced(server.client());
    let pod: Pod = serde_json::from_value(spec).unwrap();
    let name = pod.metadata.name.clone().unwrap();
    let created = api.create(&PostParams::default(), &pod).await.unwrap();
    match status {
        Some(status) => api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .unwrap(),
        None => created,
    }
}

#[tokio::test(start_paused = true)]
async fn pod_labels_read_fields_and_the_real_defaults() {
    bounded(async {
        let server = server();
        pod(
            &server,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "a"},
                "spec": {
                    "nodeName": "node-1", "restartPolicy": "Never", "schedulerName": "mine",
                    "serviceAccountName": "robot", "hostNetwork": true,
                    "containers": [{"name": "c", "image": "i"}],
                },
            }),
            Some(json!({"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}], "podIP": "10.0.0.7", "nominatedNodeName": "node-2"})),
        )
        .await;
        // A bare pod: Pending, and the defaults of a real server.
        let b = pod(
            &server,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"},
                   "spec": {"containers": [{"name": "c", "image": "i"}]}}),
            None,
        )
        .await;
        assert_eq!(b.status.unwrap().phase.as_deref(), Some("Pending"));
        let api: Api<Pod> = Api::default_namespaced(server.client());
        let cases: &[(&str, &[&str])] = &[
            ("spec.nodeName=node-1", &["a"]),
            ("spec.nodeName=", &["b"]),
            ("spec.host=node-1", &["a"]),
            ("spec.restartPolicy=Always", &["b"]),
            ("spec.restartPolicy=Never", &["a"]),
            ("spec.schedulerName=default-scheduler", &["b"]),
            ("spec.serviceAccountName=robot", &["a"]),
            ("spec.hostNetwork=false", &["b"]),
            ("spec.hostNetwork=true", &["a"]),
            ("status.phase=Pending", &["b"]),
            ("status.phase!=Pending", &["a"]),
            ("status.podIP=10.0.0.7", &["a"]),
            ("status.nominatedNodeName=node-2", &["a"]),
            ("metadata.namespace=default,metadata.name=b", &["b"]),
        ];
        for (fields, expected) in cases {
            assert_eq!(selected(&api, fields).await, *expected, "{fields}");
        }
        let err = api_error(
            api.list(&ListParams::default().fields("spec.containers=x"))
                .await,
        );
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "field label not supported: spec.containers")
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_list_of_one_nodes_pods_follows_creates_and_deletes_in_every_namespace() {
    bounded(async {
        let server = server();
        let client = server.client();
        let core: Api<Namespace> = Api::all(client.clone());
        core.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap(),
        )
        .await
        .unwrap();
        for (namespace, name, node) in [
            ("default", "a", "node-1"),
            ("default", "b", "node-2"),
            ("other", "c", "node-1"),
            ("default", "d", "node-10"),
        ] {
            let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
            }))
            .unwrap();
            api.create(&PostParams::default(), &pod).await.unwrap();
        }
        let all: Api<Pod> = Api::all(client.clone());
        let default: Api<Pod> = Api::default_namespaced(client.clone());
        assert_eq!(selected(&all, "spec.nodeName=node-1").await, ["a", "c"]);
        assert_eq!(selected(&default, "spec.nodeName=node-1").await, ["a"]);
        assert_eq!(
            selected(&all, "spec.nodeName=node-1,metadata.namespace=other").await,
            ["c"]
        );
        assert!(selected(&all, "spec.nodeName=node-3").await.is_empty());
        default.delete("a", &Default::default()).await.unwrap();
        assert_eq!(selected(&all, "spec.nodeName=node-1").await, ["c"]);
        assert_eq!(selected(&all, "spec.nodeName!=node-1").await, ["b", "d"]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn node_namespace_secret_and_job_labels() {
    bounded(async {
        let server = server();
        let client = server.client();
        let nodes: Api<Node> = Api::all(client.clone());
        for (name, unschedulable) in [("n1", json!(true)), ("n2", Value::Null)] {
            let node: Node = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                "spec": {"unschedulable": unschedulable},
            }))
            .unwrap();
            nodes.create(&PostParams::default(), &node).await.unwrap();
        }
        assert_eq!(selected(&nodes, "spec.unschedulable=true").await, ["n1"]);
        assert_eq!(selected(&nodes, "spec.unschedulable=false").await, ["n2"]);
        assert_eq!(selected(&nodes, "metadata.name=n2").await, ["n2"]);
        // Nodes and Namespaces take metadata.name but not metadata.namespace, as on a real
        // server.
        let err = api_error(
            nodes
                .list(&ListParams::default().fields("metadata.namespace=x"))
                .await,
        );
        assert_eq!(err.message, "field label not supported: metadata.namespace");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        assert_eq!(
            selected(&namespaces, "status.phase=Active,metadata.name=default").await,
            ["default"]
        );
        assert_eq!(
            api_error(
                namespaces
                    .list(&ListParams::default().fields("metadata.namespace=x"))
                    .await
            )
            .code,
            400
        );
        let secrets: Api<Secret> = Api::default_namespaced(client.clone());
        for (name, type_) in [("plain", None), ("tls", Some("kubernetes.io/tls"))] {
            let mut secret = Secret::default();
            secret.metadata.name = Some(name.into());
            secret.type_ = type_.map(str::to_string);
            secrets.create(&PostParams::default(), &secret).await.unwrap();
        }
        // A Secret without a type is Opaque, as the real server defaults it.
        assert_eq!(selected(&secrets, "type=Opaque").await, ["plain"]);
        assert_eq!(selected(&secrets, "type=kubernetes.io/tls").await, ["tls"]);
        let jobs: Api<Job> = Api::default_namespaced(client);
        let job: Job = serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}}},
        }))
        .unwrap();
        jobs.create(&PostParams::default(), &job).await.unwrap();
        assert_eq!(selected(&jobs, "status.successful=0").await, ["j"]);
        jobs.patch_status(
            "j",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"succeeded": 1}})),
        )
        .await
        .unwrap();
        assert_eq!(selected(&jobs, "status.successful=1").await, ["j"]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn field_selectors_escape_commas_and_equals_in_values() {
    bounded(async {
        let server = server();
        let t = create(&tasks(&server), &task("t1", "dp-1")).await;
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::default_namespaced(server.client());
        let event = serde_json::from_value(json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"},
            "eventTime": "2026-03-01T00:00:00.000000Z",
            "regarding": {"kind": "UpgradeTask", "name": t.metadata.name, "fieldPath": "a,b=c"},
            "reason": "R", "action": "A", "reportingController": "c", "reportingInstance": "i",
        }))
        .unwrap();
        api.create(&PostParams::default(), &event).await.unwrap();
        assert_eq!(selected(&api, r"regarding.fieldPath=a\,b\=c").await, ["e"]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn pod_watches_by_node_see_pods_arrive_and_leave() {
    bounded(async {
        let server = server();
        let api: Api<Pod> = Api::all(server.client());
        let mut stream = api
            .watch(
                &WatchParams::default()
                    .fields("spec.nodeName=node-1")
                    .timeout(60),
                "0",
            )
            .await
            .unwrap()
            .boxed();
        pod(
            &server,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "elsewhere"},
                   "spec": {"nodeName": "node-2", "containers": [{"name": "c", "image": "i"}]}}),
            None,
        )
        .await;
        pod(
            &server,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "here"},
                   "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i"}]}}),
            None,
        )
        .await;
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(p) => assert_eq!(p.metadata.name.as_deref(), Some("here")),
            other => panic!("expected ADDED here, got {other:?}"),
        }
        let pods: Api<Pod> = Api::default_namespaced(server.client());
        pods.delete("here", &Default::default()).await.unwrap();
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Deleted(p) => assert_eq!(p.metadata.name.as_deref(), Some("here")),
            other => panic!("expected DELETED here, got {other:?}"),
        }
    })
    .await;
}
