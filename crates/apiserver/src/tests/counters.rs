//! Write counters and snapshots.

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::super::{ObjectKey, WriteCounts};
use super::*;

#[tokio::test(start_paused = true)]
async fn writes_are_counted_per_object_and_in_total() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let t = create(&api, &task("t1", "dp")).await;
        create(&api, &task("t2", "dp")).await;
        api.replace("t1", &PostParams::default(), &t).await.unwrap();
        api.patch(
            "t1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"target": "x"}})),
        )
        .await
        .unwrap();
        api.patch_status(
            "t1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"code": "A"}})),
        )
        .await
        .unwrap();
        api.patch_status(
            "t1",
            &PatchParams::apply("upkeep").force(),
            &Patch::Apply(json!({
                "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask", "status": {"code": "B"},
            })),
        )
        .await
        .unwrap();
        let _ = api.create(&PostParams::default(), &task("t2", "dp")).await;
        api.delete("t2", &DeleteParams::default()).await.unwrap();

        let t1 = server.object_write_counts("UpgradeTask", "default", "t1");
        assert_eq!(
            t1,
            WriteCounts {
                creates: 1,
                replaces: 1,
                patches: 1,
                applies: 0,
                deletes: 0,
                status_writes: 2,
                conflicts: 0
            }
        );
        let t2 = server.object_write_counts("UpgradeTask", "default", "t2");
        assert_eq!((t2.creates, t2.deletes, t2.conflicts), (1, 1, 1));
        let total = server.write_counts();
        assert_eq!(total.total(), 7);
        assert_eq!(total.conflicts, 1);
        let by_object = server.write_counts_by_object();
        assert_eq!(
            by_object.keys().cloned().collect::<Vec<_>>(),
            [
                ObjectKey {
                    kind: "UpgradeTask".into(),
                    namespace: "default".into(),
                    name: "t1".into()
                },
                ObjectKey {
                    kind: "UpgradeTask".into(),
                    namespace: "default".into(),
                    name: "t2".into()
                },
            ]
        );
        server.reset_write_counts();
        assert_eq!(server.write_counts(), WriteCounts::default());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn events_are_counted_in_the_totals_only() {
    bounded(async {
        let server = server();
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::default_namespaced(server.client());
        let event = |name: &str| {
            serde_json::from_value(json!({
                "apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": name, "namespace": "default"},
                "eventTime": "2026-03-01T00:00:00.000000Z",
                "reason": "Started", "type": "Normal", "action": "Upgrade",
                "reportingController": "upkeep.dev/upkeep", "reportingInstance": "upkeep-0",
            }))
            .unwrap()
        };
        events
            .create(&PostParams::default(), &event("e1"))
            .await
            .unwrap();
        events
            .create(&PostParams::default(), &event("e2"))
            .await
            .unwrap();
        create(&tasks(&server), &task("t1", "dp")).await;
        let total = server.write_counts();
        assert_eq!((total.creates, total.total()), (3, 3));
        assert_eq!(
            server.object_write_counts("Event", "default", "e1"),
            WriteCounts::default(),
            "no count is kept per Event"
        );
        let kinds: Vec<_> = server
            .write_counts_by_object()
            .into_keys()
            .map(|k| k.kind)
            .collect();
        assert_eq!(kinds, ["UpgradeTask"]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn snapshots_and_raw_inserts() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("b", "dp")).await;
        let raw = server
            .insert_raw(json!({
                "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
                "metadata": {"name": "a"},
                "spec": "not an object",
            }))
            .unwrap();
        assert_eq!(raw["metadata"]["namespace"], "default");
        assert!(raw["metadata"]["uid"].is_string());
        let names: Vec<_> = server
            .snapshot("UpgradeTask")
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(
            server.objects::<UpgradeTask>().is_err(),
            "one object is malformed"
        );
        assert_eq!(
            server.get("UpgradeTask", "default", "b").unwrap()["spec"]["target"],
            "dp"
        );
        assert_eq!(
            server.write_counts().creates,
            1,
            "raw inserts are not counted"
        );
        assert_eq!(
            server
                .insert_raw(json!({"apiVersion": "v9", "kind": "Nope", "metadata": {"name": "x"}})),
            Err(super::super::InsertRawError::UnknownKind {
                api_version: "v9".into(),
                kind: "Nope".into()
            })
        );

        // The well-formed object still reads through kube; the list of all does not.
        assert_eq!(api.get("b").await.unwrap().spec.target, "dp");
        assert!(api.get("a").await.is_err());
    })
    .await;
}
