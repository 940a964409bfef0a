//! Create, get, list, replace, the four patch kinds, delete; system metadata.

use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::*;

#[tokio::test(start_paused = true)]
async fn create_get_list_delete_a_task() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let created = create(&api, &task("t1", "dp-1")).await;
        let meta = &created.metadata;
        assert_eq!(meta.namespace.as_deref(), Some("default"));
        assert_eq!(meta.uid.as_deref().map(str::len), Some(36));
        assert_eq!(generation(meta), 1);
        assert_eq!(
            meta.creation_timestamp.as_ref().unwrap().0,
            origin(),
            "creationTimestamp comes from the server's clock"
        );
        let rv: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
        assert!(rv > 0);

        let got = api.get("t1").await.unwrap();
        assert_eq!(
            serde_json::to_value(got).unwrap(),
            serde_json::to_value(&created).unwrap()
        );

        create(&api, &task("t2", "dp-2")).await;
        let list = api.list(&ListParams::default()).await.unwrap();
        let names: Vec<_> = list
            .items
            .iter()
            .map(|t| t.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["t1", "t2"]);
        let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
        assert_eq!(list_rv, server.resource_version());

        let deleted = api.delete("t1", &DeleteParams::default()).await.unwrap();
        assert!(
            deleted.is_left(),
            "a custom resource's delete returns the object"
        );
        let err = api_error(api.get("t1").await);
        assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
        assert_eq!(err.message, "upgradetasks.upkeep.dev \"t1\" not found");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn uids_and_timestamps_are_deterministic() {
    bounded(async {
        let run = || async {
            let server = server();
            let api = tasks(&server);
            tokio::time::sleep(std::time::Duration::from_secs(90)).await;
            let t = create(&api, &task("t1", "dp-1")).await;
            (
                t.metadata.uid.unwrap(),
                t.metadata.creation_timestamp.unwrap().0,
            )
        };
        let (uid_a, at_a) = run().await;
        let (uid_b, at_b) = run().await;
        assert_eq!(uid_a, uid_b);
        assert_eq!(at_a, at_b);
        assert_eq!(at_a, "2026-03-01T00:01:30Z".parse().unwrap());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn create_twice_is_already_exists() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        let err = api_error(
            api.create(&PostParams::default(), &task("t1", "dp-1"))
                .await,
        );
        assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn generate_name_makes_unique_names() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let mut t = task("", "dp-1");
        t.metadata.name = None;
        t.metadata.generate_name = Some("fw-".into());
        let a = create(&api, &t).await.metadata.name.unwrap();
        let b = create(&api, &t).await.metadata.name.unwrap();
        assert!(a.starts_with("fw-") && a.len() == 8, "{a}");
        assert_ne!(a, b);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn replace_bumps_version_and_needs_the_current_one() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let mut t = create(&api, &task("t1", "dp-1")).await;
        t.spec.target = "dp-9".into();
        let replaced = api.replace("t1", &PostParams::default(), &t).await.unwrap();
        assert_eq!(replaced.spec.target, "dp-9");
        assert_eq!(generation(&replaced.metadata), 2);
        assert_ne!(
            replaced.metadata.resource_version,
            t.metadata.resource_version
        );

        // `t` still carries the old resourceVersion.
        t.spec.target = "dp-10".into();
        let err = api_error(api.replace("t1", &PostParams::default(), &t).await);
        assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
        assert!(
            err.message.contains("the object has been modified"),
            "{}",
            err.message
        );

        // A custom resource cannot be replaced without a resourceVersion.
        t.metadata.resource_version = None;
        let err = api_error(api.replace("t1", &PostParams::default(), &t).await);
        assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn merge_patch() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        let patch = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"target": "dp-2"}});
        let t = api
            .patch("t1", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        assert_eq!(t.spec.target, "dp-2");
        assert_eq!(t.metadata.labels.as_ref().unwrap()["a"], "1");
        assert_eq!(
            t.metadata.labels.as_ref().unwrap()["upkeep.dev/parent"],
            "fw"
        );
        assert_eq!(generation(&t.metadata), 2);

        // null removes
        let patch = json!({"metadata": {"labels": {"a": null}}});
        let t = api
            .patch("t1", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        assert!(!t.metadata.labels.as_ref().unwrap().contains_key("a"));
        assert_eq!(
            generation(&t.metadata),
            2,
            "metadata changes keep the generation"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn json_patch_with_test_operation() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        let ops: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/spec/target", "value": "dp-1"},
            {"op": "replace", "path": "/spec/target", "value": "dp-3"},
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
        ]))
        .unwrap();
        let t = api
            .patch("t1", &PatchParams::default(), &Patch::<()>::Json(ops))
            .await
            .unwrap();
        assert_eq!(t.spec.target, "dp-3");
        assert_eq!(t.metadata.labels.unwrap()["b"], "2");

        let failing: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/spec/target", "value": "dp-1"},
            {"op": "replace", "path": "/spec/target", "value": "dp-4"},
        ]))
        .unwrap();
        let err = api_error(
            api.patch("t1", &PatchParams::default(), &Patch::<()>::Json(failing))
                .await,
        );
        assert_eq!(err.code, 422);
        assert_eq!(api.get("t1").await.unwrap().spec.target, "dp-3");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn strategic_merge_patch_on_built_ins_and_415_on_custom_resources() {
    bounded(async {
        let server = server();
        let secrets: Api<Secret> = Api::default_namespaced(server.client());
        let mut s = Secret {
            metadata: ObjectMeta {
                name: Some("creds".into()),
                finalizers: Some(vec!["a/one".into()]),
                ..Default::default()
            },
            ..Default::default()
        };
        s.data = Some([("username".to_string(), ByteString(b"admin".to_vec()))].into());
        secrets.create(&PostParams::default(), &s).await.unwrap();
        let patch = json!({
            "metadata": {"finalizers": ["b/two"]},
            "data": {"password": "c2VjcmV0"},
        });
        let s = secrets
            .patch("creds", &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .unwrap();
        let data = s.data.unwrap();
        assert_eq!(data["username"].0, b"admin");
        assert_eq!(data["password"].0, b"secret");
        assert_eq!(
            s.metadata.finalizers.unwrap(),
            ["a/one", "b/two"],
            "finalizers merge as a set"
        );

        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        let err = api_error(
            api.patch(
                "t1",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"target": "x"}})),
            )
            .await,
        );
        assert_eq!(
            (err.code, err.reason.as_str()),
            (415, "UnsupportedMediaType")
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn strategic_merge_patch_merges_lists_by_key() {
    bounded(async {
        let server = server();
        let nodes: Api<Node> = Api::all(server.client());
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1"},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "DiskPressure", "status": "False"},
            ]},
        }))
        .unwrap();
        let created = nodes.create(&PostParams::default(), &node).await.unwrap();
        assert_eq!(
            created.status.unwrap().conditions.unwrap().len(),
            2,
            "a Node may carry status on create"
        );
        let patch = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "MemoryPressure", "status": "False"},
        ]}});
        let patched = nodes
            .patch_status("n1", &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .unwrap();
        let conditions: Vec<(String, String)> = patched
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .map(|c| (c.type_, c.status))
            .collect();
        assert_eq!(
            conditions,
            [
                ("Ready".to_string(), "False".to_string()),
                ("DiskPressure".into(), "False".into()),
                ("MemoryPressure".into(), "False".into()),
            ]
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn secrets_and_cluster_scoped_nodes() {
    bounded(async {
        let server = server();
        let client = server.client();
        let secrets: Api<Secret> = Api::namespaced(client.clone(), "ops");
        let s = Secret {
            metadata: ObjectMeta {
                name: Some("creds".into()),
                ..Default::default()
            },
            string_data: None,
            data: Some([("k".to_string(), ByteString(b"v".to_vec()))].into()),
            ..Default::default()
        };
        let created = secrets.create(&PostParams::default(), &s).await.unwrap();
        assert_eq!(created.metadata.namespace.as_deref(), Some("ops"));
        // A built-in kind may be replaced without a resourceVersion.
        let mut unconditional = created.clone();
        unconditional.metadata.resource_version = None;
        unconditional.data = Some([("k".to_string(), ByteString(b"w".to_vec()))].into());
        let replaced = secrets
            .replace("creds", &PostParams::default(), &unconditional)
            .await
            .unwrap();
        assert_eq!(replaced.data.unwrap()["k"].0, b"w");
        let deleted = secrets
            .delete("creds", &DeleteParams::default())
            .await
            .unwrap();
        assert!(
            deleted.is_right(),
            "a built-in kind's delete returns a Status"
        );

        let nodes: Api<Node> = Api::all(client.clone());
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let created = nodes.create(&PostParams::default(), &node).await.unwrap();
        assert_eq!(created.metadata.namespace, None);
        assert_eq!(
            nodes
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            1
        );

        let leases: Api<Lease> = Api::namespaced(client, "kube-system");
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some("upkeep".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        leases.create(&PostParams::default(), &lease).await.unwrap();
        assert!(leases.get("upkeep").await.is_ok());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn lists_across_namespaces_and_the_initial_namespaces() {
    bounded(async {
        let server = server();
        let client = server.client();
        for ns in ["a", "b"] {
            let api: Api<UpgradeTask> = Api::namespaced(client.clone(), ns);
            create(&api, &task("t", "dp")).await;
        }
        let all: Api<UpgradeTask> = Api::all(client.clone());
        let list = all.list(&ListParams::default()).await.unwrap();
        let namespaces: Vec<_> = list
            .items
            .iter()
            .map(|t| t.metadata.namespace.clone().unwrap())
            .collect();
        assert_eq!(namespaces, ["a", "b"]);
        let only_a: Api<UpgradeTask> = Api::namespaced(client.clone(), "a");
        assert_eq!(
            only_a
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            1
        );

        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
        let names: Vec<_> = namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|n| n.metadata.name.unwrap())
            .collect();
        assert_eq!(
            names,
            ["default", "kube-node-lease", "kube-public", "kube-system"]
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_no_op_write_stores_no_new_version() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let t = create(&api, &task("t1", "dp-1")).await;
        let before = server.resource_version();
        let same = api
            .patch(
                "t1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"target": "dp-1"}})),
            )
            .await
            .unwrap();
        assert_eq!(same.metadata.resource_version, t.metadata.resource_version);
        assert_eq!(server.resource_version(), before);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_merge_patch_carrying_a_stale_resource_version_conflicts() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let t = create(&api, &task("t1", "dp-1")).await;
        let rv = t.metadata.resource_version.clone().unwrap();
        api.patch(
            "t1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": rv}, "spec": {"target": "x"}})),
        )
        .await
        .unwrap();
        let err = api_error(
            api.patch(
                "t1",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"resourceVersion": rv}, "spec": {"target": "y"}}),
                ),
            )
            .await,
        );
        assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn dry_run_changes_nothing() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let pp = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let t = api.create(&pp, &task("t1", "dp-1")).await.unwrap();
        assert_eq!(t.metadata.name.as_deref(), Some("t1"));
        assert_eq!(api_error(api.get("t1").await).code, 404);
        assert_eq!(server.write_counts().total(), 0);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn secrets_fold_string_data_and_carry_no_generation() {
    bounded(async {
        let server = server();
        let secrets: Api<Secret> = Api::default_namespaced(server.client());
        let s: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"username": "b2xk", "password": "b2xk"},
            "stringData": {"password": "secret"},
        }))
        .unwrap();
        let created = secrets.create(&PostParams::default(), &s).await.unwrap();
        assert_eq!(created.string_data, None);
        let data = created.data.unwrap();
        assert_eq!(data["username"].0, b"old");
        assert_eq!(data["password"].0, b"secret");
        assert_eq!(created.metadata.generation, None);
    })
    .await;
}
