//! A smoke test at fleet scale: 10,000 objects created, listed and watched through kube (the
//! times it took are printed).

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};

use super::*;

const OBJECTS: usize = 10_000;

#[tokio::test(start_paused = true)]
async fn ten_thousand_objects_create_list_watch() {
    bounded(async {
        let server = validating_server();
        let api = tasks(&server);
        let (reader, writer) = reflector::store();
        let reflector = watcher(api.clone(), watcher::Config::default())
            .reflect(writer)
            .applied_objects()
            .for_each(|_| futures::future::ready(()));
        tokio::spawn(reflector);
        reader.wait_until_ready().await.unwrap();
        let start_rv = server.resource_version().to_string();
        let mut watch = api
            .watch(&WatchParams::default(), &start_rv)
            .await
            .unwrap()
            .boxed();

        let started = Instant::now();
        for i in 0..OBJECTS {
            let site = if i % 2 == 0 { "even" } else { "odd" };
            create(&api, &labelled(&format!("t{i:05}"), &[("site", site)])).await;
        }
        let created = started.elapsed();

        let listing = Instant::now();
        let list = api.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), OBJECTS);
        let evens = api
            .list(&ListParams::default().labels("site=even"))
            .await
            .unwrap();
        assert_eq!(evens.items.len(), OBJECTS / 2);
        let listed = listing.elapsed();

        let watching = Instant::now();
        let mut seen = 0;
        while seen < OBJECTS {
            match watch.try_next().await.unwrap().unwrap() {
                WatchEvent::Added(_) => seen += 1,
                WatchEvent::Bookmark(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        while reader.state().len() < OBJECTS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let watched = watching.elapsed();
        let total = started.elapsed();
        eprintln!(
            "{OBJECTS} objects: create {created:?}, 2 lists {listed:?}, watch + reflector {watched:?}, total {total:?}"
        );
        // How long this takes is measured by `cargo bench --bench fleet`, not asserted here: a
        // wall-clock bound fails on a loaded machine without saying anything about the server.
        assert_eq!(server.write_counts().creates, OBJECTS as u64);
    })
    .await;
}
