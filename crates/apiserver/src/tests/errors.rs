//! Failures as `Status` objects with the real codes and reasons.

use http::Method;
use kube::api::PostParams;
use serde_json::json;

use super::*;

/// Method, URI, Content-Type, body, expected code and reason.
type Case = (Method, String, &'static str, Vec<u8>, u16, &'static str);

const TASKS: &str = "/apis/upkeep.dev/v1alpha1/namespaces/default/upgradetasks";

fn body(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

#[tokio::test(start_paused = true)]
async fn status_codes_and_reasons() {
    bounded(async {
        let server = server();
        let client = server.client();
        let good = serde_json::to_value(task("t1", "dp")).unwrap();
        let cases: Vec<Case> = vec![
            (Method::GET, "/apis/nope.dev/v1/things".into(), "", vec![], 404, "NotFound"),
            (Method::GET, format!("{TASKS}/missing"), "", vec![], 404, "NotFound"),
            (Method::POST, format!("{TASKS}/t1"), "application/json", body(good.clone()), 405, "MethodNotAllowed"),
            (Method::POST, TASKS.into(), "application/vnd.kubernetes.protobuf", vec![1, 2], 415, "UnsupportedMediaType"),
            (Method::POST, TASKS.into(), "application/json", b"{not json".to_vec(), 400, "BadRequest"),
            (
                Method::POST,
                TASKS.into(),
                "application/json",
                body(json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "Device", "metadata": {"name": "x"}})),
                400,
                "BadRequest",
            ),
            (
                Method::POST,
                TASKS.into(),
                "application/json",
                body(json!({"apiVersion": "upkeep.dev/v2", "kind": "UpgradeTask", "metadata": {"name": "x"}})),
                400,
                "BadRequest",
            ),
            (
                Method::POST,
                TASKS.into(),
                "application/json",
                body(json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask", "metadata": {"name": "Bad_Name"}})),
                422,
                "Invalid",
            ),
            (
                Method::POST,
                TASKS.into(),
                "application/json",
                body(json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask", "metadata": {"name": "x", "labels": {"a": 1}}})),
                422,
                "Invalid",
            ),
            (
                Method::POST,
                TASKS.into(),
                "application/json",
                body(json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask", "metadata": {}})),
                422,
                "Invalid",
            ),
            (
                Method::POST,
                "/apis/upkeep.dev/v1alpha1/namespaces/other/upgradetasks".into(),
                "application/json",
                body(json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask", "metadata": {"name": "x", "namespace": "default"}})),
                400,
                "BadRequest",
            ),
            (Method::PATCH, format!("{TASKS}/t1"), "text/plain", b"{}".to_vec(), 415, "UnsupportedMediaType"),
            (Method::PATCH, format!("{TASKS}/t1"), "application/merge-patch+json", b"{".to_vec(), 400, "BadRequest"),
            (Method::PATCH, format!("{TASKS}/missing"), "application/merge-patch+json", b"{}".to_vec(), 404, "NotFound"),
            (Method::DELETE, format!("{TASKS}/t1/status"), "", vec![], 405, "MethodNotAllowed"),
            (Method::GET, "/apis/upkeep.dev/v1alpha1/upgradetasks/t1".into(), "", vec![], 404, "NotFound"),
            (Method::GET, "/api/v1/namespaces/default/nodes".into(), "", vec![], 404, "NotFound"),
        ];
        tasks(&server)
            .create(&PostParams::default(), &task("t1", "dp"))
            .await
            .unwrap();
        for (method, uri, content_type, payload, code, reason) in cases {
            let (got, status) = raw(&client, method.clone(), &uri, content_type, payload).await;
            assert_eq!(got, code, "{method} {uri}: {status}");
            assert_eq!(status["kind"], "Status", "{method} {uri}");
            assert_eq!(status["status"], "Failure");
            assert_eq!(status["reason"], reason, "{method} {uri}: {status}");
            assert_eq!(status["code"], code);
        }

        // A PUT whose name differs from the URL's.
        let mut other = serde_json::to_value(tasks(&server).get("t1").await.unwrap()).unwrap();
        other["metadata"]["name"] = json!("t2");
        let (code, status) = raw(&client, Method::PUT, &format!("{TASKS}/t1"), "application/json", body(other)).await;
        assert_eq!(code, 400, "{status}");
        assert_eq!(
            status["message"],
            "the name of the object (t2) does not match the name on the URL (t1)"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn not_found_details_name_the_resource() {
    bounded(async {
        let server = server();
        let err = api_error(tasks(&server).get("ghost").await);
        let details = err.details.unwrap();
        assert_eq!(details.name, "ghost");
        assert_eq!(details.group, "upkeep.dev");
        assert_eq!(details.kind, "upgradetasks");
    })
    .await;
}
