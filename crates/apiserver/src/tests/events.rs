//! Core `v1` Events as a view of the `events.k8s.io/v1` store: what kube's `Recorder` writes,
//! `kubectl describe` finds through the core API with its field selector, in the core form.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event;
use kube::Resource;
use kube::api::{DeleteParams, ListParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event as Published, EventType, Recorder, Reporter};

use super::*;
use crate::convert::Conversion;

fn events_k8s(server: &ApiServer) -> Api<Event> {
    Api::default_namespaced(server.client())
}

fn core(server: &ApiServer) -> Api<CoreEvent> {
    Api::default_namespaced(server.client())
}

/// An events.k8s.io Event about `target` (an UpgradeTask) with a fixed time.
fn event(name: &str, target: &UpgradeTask, reason: &str, type_: &str) -> Event {
    serde_json::from_value(json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "eventTime": "2026-03-01T00:00:00.000000Z",
        "regarding": {
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
            "name": target.metadata.name, "namespace": "default", "uid": target.metadata.uid,
        },
        "reason": reason, "type": type_, "action": "Reconcile",
        "note": format!("{reason} happened"),
        "reportingController": "upkeep.dev/upkeep", "reportingInstance": "upkeep-0",
    }))
    .unwrap()
}

fn names_of(events: &[CoreEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.metadata.name.clone().unwrap())
        .collect()
}

#[test]
fn core_event_conversion_round_trips_and_is_idempotent() {
    let stored = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e"},
        "regarding": {"kind": "Pod", "name": "p"},
        "note": "hello", "reportingController": "upkeep", "reason": "Started",
        "deprecatedCount": 2, "deprecatedSource": {"component": "kubelet"},
    });
    let mut view = stored.clone();
    Conversion::CoreEvent.to_view(&mut view, "v1");
    assert_eq!(
        view,
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "message": "hello", "reportingComponent": "upkeep", "reason": "Started",
            "count": 2, "source": {"component": "kubelet"},
        })
    );
    let mut again = view.clone();
    Conversion::CoreEvent.to_view(&mut again, "v1");
    assert_eq!(again, view);
    let mut back = view;
    Conversion::CoreEvent.to_storage(&mut back, "events.k8s.io/v1");
    assert_eq!(back, stored);
    let mut twice = back.clone();
    Conversion::CoreEvent.to_storage(&mut twice, "events.k8s.io/v1");
    assert_eq!(twice, stored);
}

#[tokio::test(start_paused = true)]
async fn describe_finds_a_recorders_events_through_the_core_api() {
    bounded(async {
        let server = server();
        let t = create(&tasks(&server), &task("t1", "dp-1")).await;
        let other = create(&tasks(&server), &task("t2", "dp-2")).await;
        let recorder = Recorder::new(server.client(), Reporter::from("upkeep.dev/upkeep"));
        for (target, reason) in [(&t, "Started"), (&other, "Elsewhere")] {
            recorder
                .publish(
                    &Published {
                        type_: EventType::Warning,
                        reason: reason.into(),
                        note: Some(format!("{reason} note")),
                        action: "Reconcile".into(),
                        secondary: None,
                    },
                    &target.object_ref(&()),
                )
                .await
                .unwrap();
        }
        // What `kubectl describe ut t1` asks for.
        let selector = format!(
            "involvedObject.name=t1,involvedObject.namespace=default,involvedObject.kind=UpgradeTask,involvedObject.uid={}",
            t.metadata.uid.as_deref().unwrap()
        );
        let found = core(&server)
            .list(&ListParams::default().fields(&selector))
            .await
            .unwrap()
            .items;
        assert_eq!(found.len(), 1, "{found:?}");
        let e = &found[0];
        assert_eq!(e.involved_object.name.as_deref(), Some("t1"));
        assert_eq!(e.involved_object.kind.as_deref(), Some("UpgradeTask"));
        assert_eq!(e.message.as_deref(), Some("Started note"));
        assert_eq!(e.reason.as_deref(), Some("Started"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reporting_component.as_deref(), Some("upkeep.dev/upkeep"));
        // `source` falls back to the reporting controller, as on a real server.
        let by_source = core(&server)
            .list(&ListParams::default().fields("source=upkeep.dev/upkeep,type=Warning"))
            .await
            .unwrap()
            .items;
        assert_eq!(by_source.len(), 2);
        // The same Events through events.k8s.io, selected by `regarding`.
        let stored = events_k8s(&server)
            .list(&ListParams::default().fields("regarding.name=t2,reason=Elsewhere"))
            .await
            .unwrap()
            .items;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].note.as_deref(), Some("Elsewhere note"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn every_core_event_label_selects_and_unknown_labels_are_refused() {
    bounded(async {
        let server = server();
        let t = create(&tasks(&server), &task("t1", "dp-1")).await;
        let mut e = event("e1", &t, "Started", "Normal");
        e.regarding.as_mut().unwrap().field_path = Some("spec.target".into());
        e.regarding.as_mut().unwrap().resource_version = Some("7".into());
        events_k8s(&server)
            .create(&PostParams::default(), &e)
            .await
            .unwrap();
        events_k8s(&server)
            .create(&PostParams::default(), &event("e2", &t, "Done", "Warning"))
            .await
            .unwrap();
        let uid = t.metadata.uid.clone().unwrap();
        let cases: Vec<(String, Vec<&str>)> = vec![
            ("involvedObject.kind=UpgradeTask".into(), vec!["e1", "e2"]),
            ("involvedObject.namespace=default".into(), vec!["e1", "e2"]),
            ("involvedObject.name=t1".into(), vec!["e1", "e2"]),
            (format!("involvedObject.uid={uid}"), vec!["e1", "e2"]),
            (
                "involvedObject.apiVersion=upkeep.dev/v1alpha1".into(),
                vec!["e1", "e2"],
            ),
            ("involvedObject.resourceVersion=7".into(), vec!["e1"]),
            ("involvedObject.fieldPath=spec.target".into(), vec!["e1"]),
            ("reason=Done".into(), vec!["e2"]),
            (
                "reportingComponent=upkeep.dev/upkeep".into(),
                vec!["e1", "e2"],
            ),
            ("source=upkeep.dev/upkeep".into(), vec!["e1", "e2"]),
            ("type!=Normal".into(), vec!["e2"]),
            ("metadata.name=e1".into(), vec!["e1"]),
            ("metadata.namespace=default".into(), vec!["e1", "e2"]),
        ];
        for (selector, expected) in cases {
            let found = core(&server)
                .list(&ListParams::default().fields(&selector))
                .await
                .unwrap()
                .items;
            assert_eq!(names_of(&found), expected, "{selector}");
        }
        for (label, api) in [
            ("regarding.name", "core"),
            ("note", "core"),
            ("involvedObject.name", "events.k8s.io"),
            ("source", "events.k8s.io"),
        ] {
            let result = if api == "core" {
                core(&server)
                    .list(&ListParams::default().fields(&format!("{label}=x")))
                    .await
                    .map(|_| ())
            } else {
                events_k8s(&server)
                    .list(&ListParams::default().fields(&format!("{label}=x")))
                    .await
                    .map(|_| ())
            };
            let err = api_error(result);
            assert_eq!(err.code, 400, "{label} on {api}");
            assert_eq!(err.reason, "BadRequest");
            assert_eq!(err.message, format!("field label not supported: {label}"));
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn core_writes_land_in_the_events_k8s_io_store() {
    bounded(async {
        let server = server();
        let core_event: CoreEvent = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "legacy", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Pulled", "message": "pulled the image", "type": "Normal",
            "source": {"component": "kubelet", "host": "node-1"},
            "count": 3,
            "firstTimestamp": "2026-03-01T00:00:00Z", "lastTimestamp": "2026-03-01T00:00:00Z",
        }))
        .unwrap();
        let created = core(&server)
            .create(&PostParams::default(), &core_event)
            .await
            .unwrap();
        assert_eq!(created.message.as_deref(), Some("pulled the image"));
        assert_eq!(created.count, Some(3));
        let stored = server.get("Event", "default", "legacy").unwrap();
        assert_eq!(stored["apiVersion"], "events.k8s.io/v1");
        assert_eq!(stored["note"], "pulled the image");
        assert_eq!(stored["regarding"]["name"], "p");
        assert_eq!(stored["deprecatedSource"]["host"], "node-1");
        assert_eq!(stored["deprecatedCount"], 3);
        assert!(stored.get("message").is_none(), "{stored}");
        let patched = core(&server)
            .patch(
                "legacy",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"message": "pulled it again", "count": 4})),
            )
            .await
            .unwrap();
        assert_eq!(patched.message.as_deref(), Some("pulled it again"));
        let stored = server.get("Event", "default", "legacy").unwrap();
        assert_eq!(stored["note"], "pulled it again");
        assert_eq!(stored["deprecatedCount"], 4);
        let typed: Vec<CoreEvent> = server.objects().unwrap();
        assert_eq!(typed[0].involved_object.name.as_deref(), Some("p"));
        core(&server)
            .delete("legacy", &DeleteParams::default())
            .await
            .unwrap();
        assert!(server.get("Event", "default", "legacy").is_none());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn core_event_watches_select_by_field_and_show_the_core_form() {
    bounded(async {
        let server = server();
        let t = create(&tasks(&server), &task("t1", "dp-1")).await;
        let other = create(&tasks(&server), &task("t2", "dp-2")).await;
        let api = core(&server);
        let rv = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        let mut stream = api
            .watch(
                &WatchParams::default()
                    .fields("involvedObject.name=t1")
                    .timeout(60),
                &rv,
            )
            .await
            .unwrap()
            .boxed();
        let events = events_k8s(&server);
        events
            .create(
                &PostParams::default(),
                &event("other", &other, "X", "Normal"),
            )
            .await
            .unwrap();
        events
            .create(
                &PostParams::default(),
                &event("mine", &t, "Started", "Normal"),
            )
            .await
            .unwrap();
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(e) => {
                assert_eq!(e.metadata.name.as_deref(), Some("mine"));
                assert_eq!(e.message.as_deref(), Some("Started happened"));
                assert_eq!(e.involved_object.name.as_deref(), Some("t1"));
            }
            other => panic!("expected ADDED, got {other:?}"),
        }
    })
    .await;
}
