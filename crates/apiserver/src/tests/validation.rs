//! Custom resources checked against their CRDs on write: pruning, the structural schema, CEL.

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use upkeep_core::api::FirmwareUpgrade;

use super::*;

#[tokio::test(start_paused = true)]
async fn unknown_fields_are_pruned() {
    bounded(async {
        let server = validating_server();
        let client = server.client();
        let mut body = serde_json::to_value(task("t1", "dp-1")).unwrap();
        body["spec"]["surprise"] = json!(1);
        body["extra"] = json!({"a": 1});
        let (code, created) = raw(
            &client,
            http::Method::POST,
            "/apis/upkeep.dev/v1alpha1/namespaces/default/upgradetasks",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
        assert_eq!(code, 201, "{created}");
        assert_eq!(created["spec"].get("surprise"), None);
        assert_eq!(created.get("extra"), None);

        let api = tasks(&server);
        let t = api
            .patch_status(
                "t1",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"code": "SENT_TO_MDB", "bogus": true}})),
            )
            .await
            .unwrap();
        assert_eq!(t.status.unwrap().code.as_deref(), Some("SENT_TO_MDB"));
        let stored = server.get("UpgradeTask", "default", "t1").unwrap();
        assert_eq!(stored["status"].get("bogus"), None);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn schema_violations_are_invalid() {
    bounded(async {
        let server = validating_server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        let err = api_error(
            api.patch_status(
                "t1",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"result": "Exploded"}})),
            )
            .await,
        );
        assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
        let causes = err.details.unwrap().causes;
        assert_eq!(causes[0].field, "status.result", "{causes:?}");

        let mut bad = serde_json::to_value(task("t2", "dp-2")).unwrap();
        bad["spec"]["parentKind"] = json!("Nope");
        let (code, status) = raw(
            &server.client(),
            http::Method::POST,
            "/apis/upkeep.dev/v1alpha1/namespaces/default/upgradetasks",
            "application/json",
            serde_json::to_vec(&bad).unwrap(),
        )
        .await;
        assert_eq!(code, 422, "{status}");
        assert_eq!(status["details"]["causes"][0]["field"], "spec.parentKind");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn cel_rules_hold_on_create_and_on_update() {
    bounded(async {
        let server = validating_server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        // UpgradeTask: `self == oldSelf` on spec.
        let err = api_error(
            api.patch(
                "t1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"target": "dp-2"}})),
            )
            .await,
        );
        assert_eq!(err.code, 422);
        assert!(err.message.contains("immutable"), "{}", err.message);
        // Metadata and status may change.
        api.patch(
            "t1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();

        // FirmwareUpgrade: at least one target.
        let upgrades: Api<FirmwareUpgrade> = Api::default_namespaced(server.client());
        let fwu: FirmwareUpgrade = serde_json::from_value(json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "FirmwareUpgrade",
            "metadata": {"name": "fw"},
            "spec": {"image": "idg7519.oradco.scrypt4", "targets": {}},
        }))
        .unwrap();
        let err = api_error(upgrades.create(&PostParams::default(), &fwu).await);
        assert_eq!(err.code, 422);
        assert!(
            err.message.contains("at least one target"),
            "{}",
            err.message
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn validation_can_be_turned_off() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        api.patch(
            "t1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"target": "dp-2"}})),
        )
        .await
        .unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_old_invalid_object_may_still_be_written_where_it_is_unchanged() {
    bounded(async {
        let server = validating_server();
        // Written by an older version, before the rule existed.
        server
            .insert_raw(json!({
                "apiVersion": "upkeep.dev/v1alpha1", "kind": "FirmwareUpgrade",
                "metadata": {"name": "old"},
                "spec": {"image": "idg7519.oradco.scrypt4", "targets": {}},
            }))
            .unwrap();
        let upgrades: Api<FirmwareUpgrade> = Api::default_namespaced(server.client());
        // Ratcheting: the failing field did not change.
        upgrades
            .patch(
                "old",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"suspend": true}})),
            )
            .await
            .unwrap();
        upgrades
            .patch_status(
                "old",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"code": "SKIPPED_NO_DEVICES_MATCHING_PATTERN"}})),
            )
            .await
            .unwrap();
        // Changing it to something still invalid is refused.
        let err = api_error(
            upgrades
                .patch(
                    "old",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"targets": {"names": []}}})),
                )
                .await,
        );
        assert_eq!(err.code, 422, "{}", err.message);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_malformed_object_can_still_get_status_writes() {
    bounded(async {
        let server = validating_server();
        server
            .insert_raw(json!({
                "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
                "metadata": {"name": "odd"},
                "spec": {"parentKind": "Nope", "parent": "fw", "target": "dp"},
            }))
            .unwrap();
        let client = server.client();
        let uri = "/apis/upkeep.dev/v1alpha1/namespaces/default/upgradetasks/odd/status";
        let (code, body) = raw(
            &client,
            http::Method::PATCH,
            uri,
            "application/merge-patch+json",
            serde_json::to_vec(&json!({"status": {"code": "ERROR_UNSUPPORTED_DEVICE_TYPE"}}))
                .unwrap(),
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let (code, body) = raw(
            &client,
            http::Method::PATCH,
            uri,
            "application/merge-patch+json",
            serde_json::to_vec(&json!({"status": {"result": "Exploded"}})).unwrap(),
        )
        .await;
        assert_eq!(code, 422, "a new invalid value is still refused: {body}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn schema_defaults_are_filled_in() {
    bounded(async {
        let server = validating_server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        api.patch_status(
            "t1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"code": "SENT_TO_MDB"}})),
        )
        .await
        .unwrap();
        let stored = server.get("UpgradeTask", "default", "t1").unwrap();
        assert_eq!(stored["status"]["result"], "InProgress", "{stored}");
    })
    .await;
}
