//! Raw watches: resume from a version, selections, bookmarks, timeouts, 410 as an event.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::json;

use super::*;

fn describe(event: &WatchEvent<UpgradeTask>) -> String {
    match event {
        WatchEvent::Added(t) => format!("ADDED {}", t.metadata.name.as_deref().unwrap()),
        WatchEvent::Modified(t) => format!("MODIFIED {}", t.metadata.name.as_deref().unwrap()),
        WatchEvent::Deleted(t) => format!("DELETED {}", t.metadata.name.as_deref().unwrap()),
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(e) => format!("ERROR {} {}", e.code, e.reason),
    }
}

async fn next(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<UpgradeTask>>> + Unpin),
) -> String {
    describe(&stream.try_next().await.unwrap().expect("the watch ended"))
}

#[tokio::test(start_paused = true)]
async fn watch_resumes_from_a_resource_version() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        let rv = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        create(&api, &task("t2", "dp-2")).await;
        api.patch(
            "t1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"target": "dp-3"}})),
        )
        .await
        .unwrap();

        let mut from_list = api
            .watch(&WatchParams::default(), &rv)
            .await
            .unwrap()
            .boxed();
        assert_eq!(next(&mut from_list).await, "ADDED t2");
        assert_eq!(next(&mut from_list).await, "MODIFIED t1");

        // Live events follow the replay.
        api.delete("t2", &DeleteParams::default()).await.unwrap();
        assert_eq!(next(&mut from_list).await, "DELETED t2");

        // A watch from "0" starts with the current objects.
        let mut current = api
            .watch(&WatchParams::default(), "0")
            .await
            .unwrap()
            .boxed();
        assert_eq!(next(&mut current).await, "ADDED t1");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn deleted_events_carry_the_delete_version() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let t = create(&api, &task("t1", "dp-1")).await;
        let rv = t.metadata.resource_version.unwrap();
        let mut stream = api
            .watch(&WatchParams::default(), &rv)
            .await
            .unwrap()
            .boxed();
        api.delete("t1", &DeleteParams::default()).await.unwrap();
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Deleted(t) => {
                assert_eq!(
                    t.metadata.resource_version.unwrap(),
                    server.resource_version().to_string()
                );
            }
            other => panic!("expected DELETED, got {}", describe(&other)),
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn watches_filter_by_namespace_and_labels() {
    bounded(async {
        let server = server();
        let client = server.client();
        let a: Api<UpgradeTask> = Api::namespaced(client.clone(), "a");
        let b: Api<UpgradeTask> = Api::namespaced(client.clone(), "b");
        let rv = server.resource_version().to_string();
        let wp = WatchParams::default().labels("site=x");
        let mut stream = a.watch(&wp, &rv).await.unwrap().boxed();

        create(&b, &labelled("other-ns", &[("site", "x")])).await;
        create(&a, &labelled("other-site", &[("site", "y")])).await;
        create(&a, &labelled("match", &[("site", "x")])).await;
        assert_eq!(next(&mut stream).await, "ADDED match");

        // Leaving the selection is a DELETED, entering it an ADDED.
        let relabel = |site: &str| Patch::Merge(json!({"metadata": {"labels": {"site": site}}}));
        a.patch("match", &PatchParams::default(), &relabel("y"))
            .await
            .unwrap();
        assert_eq!(next(&mut stream).await, "DELETED match");
        a.patch("other-site", &PatchParams::default(), &relabel("x"))
            .await
            .unwrap();
        assert_eq!(next(&mut stream).await, "ADDED other-site");
        a.patch(
            "other-site",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"target": "t"}})),
        )
        .await
        .unwrap();
        assert_eq!(next(&mut stream).await, "MODIFIED other-site");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn bookmarks_arrive_every_minute_of_virtual_time() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        let rv = server.resource_version().to_string();
        let mut stream = api
            .watch(&WatchParams::default(), &rv)
            .await
            .unwrap()
            .boxed();
        let started = tokio::time::Instant::now();
        assert_eq!(next(&mut stream).await, format!("BOOKMARK {rv}"));
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        create(&api, &task("t2", "dp-2")).await;
        assert_eq!(next(&mut stream).await, "ADDED t2");
        let now = server.resource_version();
        assert_eq!(next(&mut stream).await, format!("BOOKMARK {now}"));

        // Without allowWatchBookmarks there are none.
        let quiet = WatchParams::default().disable_bookmarks().timeout(200);
        let events: Vec<_> = api
            .watch(&quiet, &now.to_string())
            .await
            .unwrap()
            .collect()
            .await;
        assert!(events.is_empty());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_watch_ends_after_its_timeout() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let started = tokio::time::Instant::now();
        let events: Vec<_> = api
            .watch(&WatchParams::default().timeout(290), "0")
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(started.elapsed(), Duration::from_secs(290));
        assert_eq!(events.len(), 4, "bookmarks at 60, 120, 180 and 240 s");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn too_old_a_version_is_a_410_event_not_an_http_error() {
    bounded(async {
        let server = super::ApiServer::builder(super::clock())
            .crds(upkeep_core::api::crds())
            .event_log_capacity(3)
            .build();
        let api = tasks(&server);
        for i in 0..6 {
            create(&api, &task(&format!("t{i}"), "dp")).await;
        }
        let mut stream = api
            .watch(&WatchParams::default(), "1")
            .await
            .unwrap()
            .boxed();
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Error(status) => {
                assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
                assert!(
                    status.message.starts_with("too old resource version: 1"),
                    "{}",
                    status.message
                );
            }
            other => panic!("expected an ERROR event, got {}", describe(&other)),
        }
        assert!(
            stream.try_next().await.unwrap().is_none(),
            "the watch ends after the error"
        );

        // The last three events are still there.
        let from = (server.resource_version() - 3).to_string();
        let mut stream = api
            .watch(&WatchParams::default(), &from)
            .await
            .unwrap()
            .boxed();
        assert_eq!(next(&mut stream).await, "ADDED t3");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn initial_events_end_with_a_marked_bookmark() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        create(&api, &task("t2", "dp-2")).await;
        let wp = WatchParams::default().initial_events();
        let mut stream = api.watch(&wp, "0").await.unwrap().boxed();
        assert_eq!(next(&mut stream).await, "ADDED t1");
        assert_eq!(next(&mut stream).await, "ADDED t2");
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Bookmark(b) => {
                assert_eq!(b.metadata.annotations["k8s.io/initial-events-end"], "true");
                assert_eq!(
                    b.metadata.resource_version,
                    server.resource_version().to_string()
                );
            }
            other => panic!(
                "expected the initial-events-end bookmark, got {}",
                describe(&other)
            ),
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_malformed_object_does_not_stop_a_watch() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let rv = server.resource_version().to_string();
        let mut stream = api
            .watch(&WatchParams::default(), &rv)
            .await
            .unwrap()
            .boxed();
        server
            .insert_raw(json!({
                "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
                "metadata": {"name": "broken"},
                "spec": {"parentKind": 42},
            }))
            .unwrap();
        create(&api, &task("fine", "dp-1")).await;
        // kube reports the line it cannot read as an error item, and the stream goes on.
        let first = stream.next().await.unwrap();
        assert!(first.is_err(), "{first:?}");
        assert_eq!(next(&mut stream).await, "ADDED fine");
        assert_eq!(server.snapshot("UpgradeTask").len(), 2);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_watch_for_one_label_value_is_not_expired_by_the_writes_it_skips_only_by_its_own() {
    bounded(async {
        let server = super::ApiServer::builder(super::clock())
            .crds(upkeep_core::api::crds())
            .event_log_capacity(3)
            .build();
        let api = tasks(&server);
        let rv = server.resource_version().to_string();
        let wp = WatchParams::default().labels("site=x");
        let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
        create(&api, &labelled("x-1", &[("site", "x")])).await;
        assert_eq!(next(&mut stream).await, "ADDED x-1");

        // Five writes it is not woken for push its position out of the log of three.
        for i in 0..5 {
            create(&api, &labelled(&format!("y-{i}"), &[("site", "y")])).await;
        }
        create(&api, &labelled("x-2", &[("site", "x")])).await;
        assert_eq!(next(&mut stream).await, "ADDED x-2");
        // Its bookmark says it is current, though it was woken for none of the later writes.
        create(&api, &labelled("y-5", &[("site", "y")])).await;
        let now = server.resource_version();
        assert_eq!(next(&mut stream).await, format!("BOOKMARK {now}"));

        // An event for it that left the log before it read it expires it, as it must.
        create(&api, &labelled("x-3", &[("site", "x")])).await;
        for i in 6..10 {
            create(&api, &labelled(&format!("y-{i}"), &[("site", "y")])).await;
        }
        assert_eq!(next(&mut stream).await, "ERROR 410 Expired");

        // A keyed watch from an old version it never saw cannot tell what it missed: expired.
        let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
        assert_eq!(next(&mut stream).await, "ERROR 410 Expired");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_keyed_watch_gets_each_of_its_events_once_in_order_among_others() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let rv = server.resource_version().to_string();
        let wp = WatchParams::default().labels("site=x");
        let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
        create(&api, &labelled("x-1", &[("site", "x")])).await;
        assert_eq!(next(&mut stream).await, "ADDED x-1");

        // Several of its events wait unread among writes of other objects: it gets each one
        // once, in order, a label change away as DELETED and back as ADDED.
        let relabel = |site: &str| Patch::Merge(json!({"metadata": {"labels": {"site": site}}}));
        create(&api, &labelled("y-1", &[("site", "y")])).await;
        create(&api, &labelled("x-2", &[("site", "x")])).await;
        create(&api, &labelled("y-2", &[("site", "y")])).await;
        for (name, site) in [("x-1", "y"), ("y-1", "z"), ("x-1", "x")] {
            api.patch(name, &PatchParams::default(), &relabel(site))
                .await
                .unwrap();
        }
        api.delete("x-2", &DeleteParams::default()).await.unwrap();
        assert_eq!(next(&mut stream).await, "ADDED x-2");
        assert_eq!(next(&mut stream).await, "DELETED x-1");
        assert_eq!(next(&mut stream).await, "ADDED x-1");
        assert_eq!(next(&mut stream).await, "DELETED x-2");
        // Nothing more: the next line is the bookmark at the present.
        let now = server.resource_version();
        assert_eq!(next(&mut stream).await, format!("BOOKMARK {now}"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_log_keeps_five_minutes_of_events_as_a_compacted_etcd_would() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let before = server.resource_version().to_string();
        create(&api, &task("t1", "dp-1")).await;
        tokio::time::sleep(Duration::from_secs(4 * 60)).await;
        let recent = server.resource_version().to_string();
        create(&api, &task("t2", "dp-2")).await;
        tokio::time::sleep(Duration::from_secs(2 * 60)).await;
        // The write that compacts: t1's event is six minutes old, t2's two.
        create(&api, &task("t3", "dp-3")).await;

        let mut old = api
            .watch(&WatchParams::default(), &before)
            .await
            .unwrap()
            .boxed();
        assert_eq!(next(&mut old).await, "ERROR 410 Expired");
        let mut fresh = api
            .watch(&WatchParams::default(), &recent)
            .await
            .unwrap()
            .boxed();
        assert_eq!(next(&mut fresh).await, "ADDED t2");
        assert_eq!(next(&mut fresh).await, "ADDED t3");
    })
    .await;
}

/// The next data frame of a raw watch's body.
async fn next_chunk(body: &mut kube::client::Body) -> bytes::Bytes {
    let frame = http_body_util::BodyExt::frame(body)
        .await
        .expect("the watch ended")
        .expect("a frame");
    frame.into_data().expect("a data frame")
}

#[tokio::test(start_paused = true)]
async fn each_chunk_of_events_is_followed_by_an_empty_one() {
    // A reader that keeps its last chunk until the next one (kube's watch does) lets go of the
    // events it has read at once, instead of holding them for as long as the watch is quiet.
    bounded(async {
        let server = server();
        let api = tasks(&server);
        let uri = format!(
            "/apis/upkeep.dev/v1alpha1/namespaces/default/upgradetasks?watch=true&resourceVersion={}",
            server.resource_version()
        );
        let request = http::Request::get(uri)
            .body(kube::client::Body::from(Vec::new()))
            .unwrap();
        let mut body = server.client().send(request).await.unwrap().into_body();
        for name in ["t1", "t2"] {
            create(&api, &task(name, "dp")).await;
            let chunk = next_chunk(&mut body).await;
            let line: Value = serde_json::from_slice(&chunk).expect("one JSON line");
            assert_eq!(
                (line["type"].as_str(), line["object"]["metadata"]["name"].as_str()),
                (Some("ADDED"), Some(name))
            );
            assert!(chunk.ends_with(b"\n"), "a whole line");
            assert!(next_chunk(&mut body).await.is_empty(), "after {name}");
        }
    })
    .await;
}
