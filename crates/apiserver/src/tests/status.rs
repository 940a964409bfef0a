//! The status subresource: what main-resource and status writes may change, and generation.

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::*;

#[tokio::test(start_paused = true)]
async fn status_is_dropped_on_create() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let mut t = task("t1", "dp-1");
        t.status = Some(status_with("SUCCESS"));
        let created = create(&api, &t).await;
        assert_eq!(created.status, None);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn spec_writes_bump_generation_and_status_writes_do_not() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;

        let status = json!({"status": {"code": "SENT_TO_MDB", "observedGeneration": 1}});
        let t = api
            .patch_status("t1", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        assert_eq!(
            t.status.as_ref().unwrap().code.as_deref(),
            Some("SENT_TO_MDB")
        );
        assert_eq!(generation(&t.metadata), 1);

        let t = api
            .patch(
                "t1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"target": "dp-2"}})),
            )
            .await
            .unwrap();
        assert_eq!(generation(&t.metadata), 2);
        assert_eq!(
            t.status.unwrap().code.as_deref(),
            Some("SENT_TO_MDB"),
            "a spec write keeps the status"
        );

        let t = api
            .patch(
                "t1",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"x": "y"}}})),
            )
            .await
            .unwrap();
        assert_eq!(generation(&t.metadata), 2, "metadata is not spec");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn main_resource_writes_ignore_status() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        api.patch_status(
            "t1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"code": "A"}})),
        )
        .await
        .unwrap();

        let t = api
            .patch(
                "t1",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"code": "B"}})),
            )
            .await
            .unwrap();
        assert_eq!(t.status.as_ref().unwrap().code.as_deref(), Some("A"));

        let mut replacement = t.clone();
        replacement.status = Some(status_with("C"));
        let t = api
            .replace("t1", &PostParams::default(), &replacement)
            .await
            .unwrap();
        assert_eq!(t.status.unwrap().code.as_deref(), Some("A"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn status_writes_ignore_everything_else() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let created = create(&api, &task("t1", "dp-1")).await;
        let mut t = created.clone();
        t.spec.target = "elsewhere".into();
        t.metadata.labels = Some([("sneaky".to_string(), "yes".to_string())].into());
        t.status = Some(status_with("READY_FOR_EXECUTION"));
        let after = api
            .replace_status("t1", &PostParams::default(), &t)
            .await
            .unwrap();
        assert_eq!(after.spec.target, "dp-1");
        assert_eq!(after.metadata.labels, created.metadata.labels);
        assert_eq!(
            after.status.unwrap().code.as_deref(),
            Some("READY_FOR_EXECUTION")
        );
        assert_eq!(generation(&after.metadata), 1);

        // Replacing the status with a stale version conflicts.
        t.status = Some(status_with("SUCCESS"));
        let err = api_error(api.replace_status("t1", &PostParams::default(), &t).await);
        assert_eq!(err.code, 409);

        let got = api.get_status("t1").await.unwrap();
        assert_eq!(
            got.status.unwrap().code.as_deref(),
            Some("READY_FOR_EXECUTION")
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn status_of_a_missing_object_is_not_found() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let err = api_error(
            api.patch_status(
                "nope",
                &PatchParams::apply("upkeep"),
                &Patch::Apply(json!({
                    "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
                    "status": {"code": "X"},
                })),
            )
            .await,
        );
        assert_eq!(err.code, 404);
    })
    .await;
}
