//! Finalizers, deletionTimestamp and owner-reference garbage collection.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource as _;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde_json::json;

use super::*;

fn owned_by(mut t: UpgradeTask, owner: &UpgradeTask) -> UpgradeTask {
    let mut refs = t.metadata.owner_references.take().unwrap_or_default();
    refs.push(owner.controller_owner_ref(&()).unwrap());
    t.metadata.owner_references = Some(refs);
    t
}

fn with_finalizer(mut t: UpgradeTask, finalizer: &str) -> UpgradeTask {
    t.metadata.finalizers = Some(vec![finalizer.into()]);
    t
}

async fn exists(api: &Api<UpgradeTask>, name: &str) -> bool {
    api.get_opt(name).await.unwrap().is_some()
}

#[tokio::test(start_paused = true)]
async fn finalizers_hold_an_object_until_removed() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(
            &api,
            &with_finalizer(task("t1", "dp"), "upkeep.dev/cleanup"),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;

        let pending = api.delete("t1", &DeleteParams::default()).await.unwrap();
        let t = pending.left().expect("the object, still there");
        let at = t.metadata.deletion_timestamp.clone().unwrap().0;
        assert_eq!(at, "2026-03-01T00:00:30Z".parse().unwrap());
        assert_eq!(
            generation(&t.metadata),
            2,
            "setting deletionTimestamp bumps generation"
        );

        // A second delete changes nothing.
        let again = api
            .delete("t1", &DeleteParams::default())
            .await
            .unwrap()
            .left()
            .unwrap();
        assert_eq!(again.metadata.resource_version, t.metadata.resource_version);

        // No new finalizers while deleting.
        let err = api_error(
            api.patch(
                "t1",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"finalizers": ["upkeep.dev/cleanup", "other/x"]}}),
                ),
            )
            .await,
        );
        assert_eq!(err.code, 422);

        // Status writes still work while the object waits.
        api.patch_status(
            "t1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"code": "CLEANING"}})),
        )
        .await
        .unwrap();
        assert!(exists(&api, "t1").await);

        let gone = api
            .patch(
                "t1",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
            .unwrap();
        assert_eq!(gone.metadata.finalizers, None);
        assert!(
            !exists(&api, "t1").await,
            "removing the last finalizer deletes the object"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn dependents_are_collected_in_the_background_in_cascade() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let root = create(&api, &task("root", "dp")).await;
        let child = create(&api, &owned_by(task("child", "dp"), &root)).await;
        create(&api, &owned_by(task("grandchild", "dp"), &child)).await;
        let held = create(
            &api,
            &with_finalizer(owned_by(task("held", "dp"), &root), "upkeep.dev/x"),
        )
        .await;
        create(&api, &task("unrelated", "dp")).await;

        api.delete("root", &DeleteParams::background())
            .await
            .unwrap();
        assert!(!exists(&api, "root").await);
        assert!(!exists(&api, "child").await);
        assert!(!exists(&api, "grandchild").await);
        assert!(exists(&api, "unrelated").await);
        let held_now = api.get("held").await.unwrap();
        assert!(held_now.metadata.deletion_timestamp.is_some());
        assert_ne!(
            held_now.metadata.resource_version,
            held.metadata.resource_version
        );

        api.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": []}})),
        )
        .await
        .unwrap();
        assert!(!exists(&api, "held").await);
        assert_eq!(
            server.write_counts().deletes,
            1,
            "the collector's deletes are not client writes"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_dependent_with_another_live_owner_only_loses_the_reference() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let a = create(&api, &task("a", "dp")).await;
        let b = create(&api, &task("b", "dp")).await;
        let mut shared = owned_by(task("shared", "dp"), &a);
        let mut second: OwnerReference = b.controller_owner_ref(&()).unwrap();
        second.controller = Some(false);
        shared
            .metadata
            .owner_references
            .as_mut()
            .unwrap()
            .push(second);
        create(&api, &shared).await;

        api.delete("a", &DeleteParams::default()).await.unwrap();
        let shared = api.get("shared").await.unwrap();
        let owners: Vec<_> = shared
            .metadata
            .owner_references
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(owners, ["b"]);

        api.delete("b", &DeleteParams::default()).await.unwrap();
        assert!(!exists(&api, "shared").await);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn foreground_deletion_waits_for_dependents() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let root = create(&api, &task("root", "dp")).await;
        create(
            &api,
            &with_finalizer(owned_by(task("slow", "dp"), &root), "upkeep.dev/x"),
        )
        .await;
        create(&api, &owned_by(task("quick", "dp"), &root)).await;

        let pending = api
            .delete("root", &DeleteParams::foreground())
            .await
            .unwrap()
            .left()
            .unwrap();
        assert_eq!(
            pending.metadata.finalizers.as_deref(),
            Some(&["foregroundDeletion".to_string()][..])
        );
        assert!(!exists(&api, "quick").await);
        assert!(exists(&api, "root").await, "root waits for slow");

        api.patch(
            "slow",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
        assert!(!exists(&api, "slow").await);
        assert!(
            !exists(&api, "root").await,
            "the last dependent gone, root goes"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn orphan_deletion_keeps_dependents() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let root = create(&api, &task("root", "dp")).await;
        create(&api, &owned_by(task("child", "dp"), &root)).await;
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Orphan),
            ..Default::default()
        };
        api.delete("root", &dp).await.unwrap();
        let child = api.get("child").await.unwrap();
        assert_eq!(child.metadata.owner_references, None);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn cross_kind_ownership_and_namespace_deletion() {
    bounded(async {
        let server = server();
        let client = server.client();
        let api: Api<UpgradeTask> = Api::namespaced(client.clone(), "team");
        let owner = create(&api, &task("owner", "dp")).await;
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("cm".into()),
                owner_references: Some(vec![owner.controller_owner_ref(&()).unwrap()]),
                ..Default::default()
            },
            ..Default::default()
        };
        maps.create(&PostParams::default(), &cm).await.unwrap();
        api.delete("owner", &DeleteParams::default()).await.unwrap();
        assert!(maps.get_opt("cm").await.unwrap().is_none());

        let namespaces: Api<Namespace> = Api::all(client);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some("team".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let created = namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        assert_eq!(
            created.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
            "team"
        );
        assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
        create(&api, &task("inside", "dp")).await;
        namespaces
            .delete("team", &DeleteParams::default())
            .await
            .unwrap();
        assert!(
            !exists(&api, "inside").await,
            "a namespace's contents go with it"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn delete_preconditions() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let t = create(&api, &task("t1", "dp")).await;
        let dp = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: Some("1".into()),
                uid: None,
            }),
            ..Default::default()
        };
        let err = api_error(api.delete("t1", &dp).await);
        assert_eq!(err.code, 409);
        let dp = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: t.metadata.resource_version.clone(),
                uid: t.metadata.uid.clone(),
            }),
            ..Default::default()
        };
        api.delete("t1", &dp).await.unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_object_whose_owners_are_all_gone_is_collected() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let owner = create(&api, &task("owner", "dp")).await;
        api.delete("owner", &DeleteParams::default()).await.unwrap();
        // Created after its owner went: the collector removes it right after the write.
        let late = api
            .create(
                &PostParams::default(),
                &owned_by(task("late", "dp"), &owner),
            )
            .await
            .unwrap();
        assert_eq!(late.metadata.name.as_deref(), Some("late"));
        assert!(!exists(&api, "late").await);
    })
    .await;
}
