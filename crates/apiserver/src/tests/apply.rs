//! Server-side apply: create, merge, field ownership, conflicts and force, removal of fields a
//! manager stopped applying, resourceVersion preconditions, the status subresource.

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::*;

fn apply_body(target: &str) -> Value {
    json!({
        "apiVersion": "upkeep.dev/v1alpha1",
        "kind": "UpgradeTask",
        "metadata": {"name": "t1"},
        "spec": {"parentKind": "FirmwareUpgrade", "parent": "fw", "target": target},
    })
}

fn managers(t: &UpgradeTask) -> Vec<(String, String, Option<String>)> {
    t.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap(),
                m.operation.clone().unwrap(),
                m.subresource.clone(),
            )
        })
        .collect()
}

fn fields_of(t: &UpgradeTask, manager: &str) -> Value {
    let entry = t
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .find(|m| m.manager.as_deref() == Some(manager))
        .unwrap_or_else(|| panic!("no managedFields entry for {manager}"));
    entry.fields_v1.as_ref().unwrap().0.clone()
}

#[tokio::test(start_paused = true)]
async fn apply_creates_and_records_ownership() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let t = api
            .patch(
                "t1",
                &PatchParams::apply("upkeep"),
                &Patch::Apply(apply_body("dp-1")),
            )
            .await
            .unwrap();
        assert_eq!(t.spec.target, "dp-1");
        assert_eq!(generation(&t.metadata), 1);
        assert_eq!(managers(&t), [("upkeep".into(), "Apply".into(), None)]);
        assert_eq!(
            fields_of(&t, "upkeep"),
            json!({"f:spec": {"f:parent": {}, "f:parentKind": {}, "f:target": {}}})
        );
        let entry = &t.metadata.managed_fields.as_ref().unwrap()[0];
        assert_eq!(entry.time.as_ref().unwrap().0, origin());
        assert_eq!(entry.api_version.as_deref(), Some("upkeep.dev/v1alpha1"));
        assert_eq!(entry.fields_type.as_deref(), Some("FieldsV1"));

        let t = api
            .patch(
                "t1",
                &PatchParams::apply("upkeep"),
                &Patch::Apply(apply_body("dp-2")),
            )
            .await
            .unwrap();
        assert_eq!(t.spec.target, "dp-2");
        assert_eq!(generation(&t.metadata), 2);
        let counts = server.object_write_counts("UpgradeTask", "default", "t1");
        assert_eq!((counts.creates, counts.applies), (1, 1));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn another_manager_conflicts_unless_forced() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        api.patch(
            "t1",
            &PatchParams::apply("upkeep"),
            &Patch::Apply(apply_body("dp-1")),
        )
        .await
        .unwrap();

        let err = api_error(
            api.patch(
                "t1",
                &PatchParams::apply("intruder"),
                &Patch::Apply(apply_body("dp-9")),
            )
            .await,
        );
        assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"upkeep\": .spec.target"
        );
        let causes = err.details.unwrap().causes;
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].reason, "FieldManagerConflict");
        assert_eq!(causes[0].field, ".spec.target");
        assert_eq!(server.write_counts().conflicts, 1);

        // The same values are shared, not a conflict.
        let t = api
            .patch(
                "t1",
                &PatchParams::apply("observer"),
                &Patch::Apply(apply_body("dp-1")),
            )
            .await
            .unwrap();
        assert_eq!(managers(&t).len(), 2);

        let t = api
            .patch(
                "t1",
                &PatchParams::apply("intruder").force(),
                &Patch::Apply(apply_body("dp-9")),
            )
            .await
            .unwrap();
        assert_eq!(t.spec.target, "dp-9");
        assert_eq!(
            fields_of(&t, "upkeep"),
            json!({"f:spec": {"f:parent": {}, "f:parentKind": {}}}),
            "force takes the field away from its owners"
        );
        assert_eq!(
            fields_of(&t, "intruder"),
            json!({"f:spec": {"f:parent": {}, "f:parentKind": {}, "f:target": {}}})
        );

        // Now the first manager conflicts in turn.
        let err = api_error(
            api.patch(
                "t1",
                &PatchParams::apply("upkeep"),
                &Patch::Apply(apply_body("dp-1")),
            )
            .await,
        );
        assert_eq!(err.code, 409);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_update_by_another_manager_takes_ownership() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        api.patch(
            "t1",
            &PatchParams::apply("upkeep"),
            &Patch::Apply(apply_body("dp-1")),
        )
        .await
        .unwrap();
        let editor = PatchParams {
            field_manager: Some("editor".into()),
            ..Default::default()
        };
        let t = api
            .patch(
                "t1",
                &editor,
                &Patch::Merge(json!({"spec": {"target": "dp-5"}})),
            )
            .await
            .unwrap();
        assert!(managers(&t).contains(&("editor".into(), "Update".into(), None)));
        assert_eq!(fields_of(&t, "editor"), json!({"f:spec": {"f:target": {}}}));

        let err = api_error(
            api.patch(
                "t1",
                &PatchParams::apply("upkeep"),
                &Patch::Apply(apply_body("dp-1")),
            )
            .await,
        );
        assert_eq!(err.code, 409);
        assert!(
            err.message.contains("conflict with \"editor\""),
            "{}",
            err.message
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn fields_no_longer_applied_are_removed_unless_shared() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let mut body = apply_body("dp-1");
        body["metadata"]["labels"] = json!({"a": "1", "b": "2", "c": "3"});
        api.patch("t1", &PatchParams::apply("upkeep"), &Patch::Apply(&body))
            .await
            .unwrap();
        // Another manager shares label c.
        let other = json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
            "metadata": {"name": "t1", "labels": {"c": "3"}},
        });
        api.patch("t1", &PatchParams::apply("other"), &Patch::Apply(&other))
            .await
            .unwrap();

        body["metadata"]["labels"] = json!({"a": "1"});
        let t = api
            .patch("t1", &PatchParams::apply("upkeep"), &Patch::Apply(&body))
            .await
            .unwrap();
        let labels = t.metadata.labels.unwrap();
        let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["a", "c"],
            "b was removed, c is still applied by another manager"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn apply_with_a_stale_resource_version_conflicts() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let t = api
            .patch(
                "t1",
                &PatchParams::apply("upkeep"),
                &Patch::Apply(apply_body("dp-1")),
            )
            .await
            .unwrap();
        let rv = t.metadata.resource_version.clone().unwrap();

        // Compare-and-swap status writes: apply the status with the version read.
        let status = |code: &str| {
            json!({
                "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
                "metadata": {"name": "t1", "resourceVersion": rv},
                "status": {"code": code},
            })
        };
        let t = api
            .patch_status(
                "t1",
                &PatchParams::apply("upkeep"),
                &Patch::Apply(status("A")),
            )
            .await
            .unwrap();
        assert_eq!(t.status.as_ref().unwrap().code.as_deref(), Some("A"));
        assert!(managers(&t).contains(&("upkeep".into(), "Apply".into(), Some("status".into()))));
        assert_eq!(fields_of_status(&t), json!({"f:status": {"f:code": {}}}));
        assert_eq!(generation(&t.metadata), 1);

        let err = api_error(
            api.patch_status(
                "t1",
                &PatchParams::apply("upkeep"),
                &Patch::Apply(status("B")),
            )
            .await,
        );
        assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            api.get("t1").await.unwrap().status.unwrap().code.as_deref(),
            Some("A")
        );

        // The same on the main resource.
        let mut body = apply_body("dp-2");
        body["metadata"]["resourceVersion"] = json!(rv);
        let err = api_error(
            api.patch("t1", &PatchParams::apply("upkeep"), &Patch::Apply(&body))
                .await,
        );
        assert_eq!(err.code, 409);
        let counts = server.object_write_counts("UpgradeTask", "default", "t1");
        assert_eq!((counts.status_writes, counts.conflicts), (1, 2));
    })
    .await;
}

fn fields_of_status(t: &UpgradeTask) -> Value {
    t.metadata
        .managed_fields
        .iter()
        .flatten()
        .find(|m| m.subresource.as_deref() == Some("status"))
        .unwrap()
        .fields_v1
        .as_ref()
        .unwrap()
        .0
        .clone()
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_apply_is_a_no_op() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let first = api
            .patch(
                "t1",
                &PatchParams::apply("upkeep"),
                &Patch::Apply(apply_body("dp-1")),
            )
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        let second = api
            .patch(
                "t1",
                &PatchParams::apply("upkeep"),
                &Patch::Apply(apply_body("dp-1")),
            )
            .await
            .unwrap();
        assert_eq!(
            serde_json::to_value(first).unwrap(),
            serde_json::to_value(second).unwrap(),
            "no new version, managedFields time unchanged"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn apply_needs_a_field_manager_and_accepts_yaml() {
    bounded(async {
        let server = server();
        let client = server.client();
        let uri = "/apis/upkeep.dev/v1alpha1/namespaces/default/upgradetasks/t1";
        let yaml = "apiVersion: upkeep.dev/v1alpha1\nkind: UpgradeTask\nmetadata:\n  name: t1\nspec:\n  parentKind: FirmwareUpgrade\n  parent: fw\n  target: dp-1\n";
        let (code, body) = raw(
            &client,
            http::Method::PATCH,
            uri,
            "application/apply-patch+yaml",
            yaml.into(),
        )
        .await;
        assert_eq!(code, 400, "{body}");
        let (code, body) = raw(
            &client,
            http::Method::PATCH,
            &format!("{uri}?fieldManager=kubectl"),
            "application/apply-patch+yaml",
            yaml.into(),
        )
        .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["spec"]["target"], "dp-1");
    })
    .await;
}
