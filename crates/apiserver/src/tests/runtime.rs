//! kube-runtime on the server: `watcher`, `reflector`, `metadata_watcher` and `Controller`, on
//! a current-thread runtime with paused time, across many virtual hours.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use super::*;

/// name → target of every task in the reflector's store.
fn cached(reader: &Store<UpgradeTask>) -> BTreeMap<String, String> {
    reader
        .state()
        .iter()
        .map(|t| (t.metadata.name.clone().unwrap(), t.spec.target.clone()))
        .collect()
}

/// name → target of every task on the server.
fn stored(server: &ApiServer) -> BTreeMap<String, String> {
    server
        .objects::<UpgradeTask>()
        .unwrap()
        .into_iter()
        .map(|t| (t.metadata.name.unwrap(), t.spec.target))
        .collect()
}

/// Waits (virtual time) until the reflector holds what the server holds.
async fn converge(reader: &Store<UpgradeTask>, server: &ApiServer) {
    while cached(reader) != stored(server) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spawn_reflector(api: Api<UpgradeTask>, config: watcher::Config) -> Store<UpgradeTask> {
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    reader
}

#[tokio::test(start_paused = true)]
async fn a_reflector_converges_across_two_virtual_days() {
    bounded_for(Duration::from_secs(3 * 24 * 3600), async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("before", "dp-0")).await;
        let reader = spawn_reflector(api.clone(), watcher::Config::default());
        reader.wait_until_ready().await.unwrap();
        let started = std::time::Instant::now();
        for hour in 0..48u32 {
            let name = format!("t{}", hour % 5);
            if api.get_opt(&name).await.unwrap().is_some() {
                if hour % 3 == 0 {
                    api.delete(&name, &DeleteParams::default()).await.unwrap();
                } else {
                    api.patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"target": format!("dp-{hour}")}})),
                    )
                    .await
                    .unwrap();
                }
            } else {
                create(&api, &task(&name, &format!("dp-{hour}"))).await;
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
            assert_eq!(cached(&reader), stored(&server), "after hour {hour}");
        }
        // Two virtual days of re-watches and bookmarks cost little real time.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_reflector_relists_after_410() {
    bounded(async {
        let server = super::ApiServer::builder(super::clock())
            .crds(upkeep_core::api::crds())
            .event_log_capacity(4)
            .build();
        let api = tasks(&server);
        let reader = spawn_reflector(api.clone(), watcher::Config::default());
        reader.wait_until_ready().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        // A burst the watch cannot read in between: its version falls out of the log.
        for i in 0..20 {
            server
                .insert_raw(serde_json::to_value(task(&format!("t{i}"), "dp")).unwrap())
                .unwrap();
        }
        converge(&reader, &server).await;
        assert_eq!(reader.state().len(), 20);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn streaming_lists_and_metadata_watchers_work() {
    bounded(async {
        let server = server();
        let api = tasks(&server);
        create(&api, &task("t1", "dp-1")).await;
        let reader = spawn_reflector(api.clone(), watcher::Config::default().streaming_lists());
        reader.wait_until_ready().await.unwrap();
        create(&api, &task("t2", "dp-2")).await;
        converge(&reader, &server).await;

        let meta: Api<PartialObjectMeta<UpgradeTask>> = Api::default_namespaced(server.client());
        let mut names = watcher(meta, watcher::Config::default())
            .applied_objects()
            .map(|m| m.unwrap().metadata.name.unwrap())
            .boxed();
        assert_eq!(names.next().await.unwrap(), "t1");
        assert_eq!(names.next().await.unwrap(), "t2");
    })
    .await;
}

struct Data {
    api: Api<UpgradeTask>,
    reconciles: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::Error);

/// Walks a task through three codes with status applies; each write triggers the next
/// reconcile.
async fn reconcile(task: Arc<UpgradeTask>, data: Arc<Data>) -> Result<Action, ReconcileError> {
    data.reconciles.fetch_add(1, Ordering::SeqCst);
    let next = match task.status.as_ref().and_then(|s| s.code.as_deref()) {
        None => "WAITING_FOR_PRE_VALIDATION",
        Some("WAITING_FOR_PRE_VALIDATION") => "READY_FOR_EXECUTION",
        Some("READY_FOR_EXECUTION") => "SUCCESS",
        Some(_) => return Ok(Action::await_change()),
    };
    let name = task.metadata.name.clone().unwrap();
    let patch = json!({
        "apiVersion": "upkeep.dev/v1alpha1",
        "kind": "UpgradeTask",
        "metadata": {"resourceVersion": task.metadata.resource_version},
        "status": {"code": next, "observedGeneration": task.metadata.generation},
    });
    data.api
        .patch_status(&name, &PatchParams::apply("upkeep"), &Patch::Apply(&patch))
        .await?;
    Ok(Action::requeue(Duration::from_secs(600)))
}

fn error_policy(_: Arc<UpgradeTask>, _: &ReconcileError, _: Arc<Data>) -> Action {
    Action::requeue(Duration::from_secs(5))
}

#[tokio::test(start_paused = true)]
async fn a_controller_reconciles_to_the_end_on_status_writes() {
    bounded(async {
        let server = validating_server();
        let api = tasks(&server);
        let data = Arc::new(Data {
            api: api.clone(),
            reconciles: AtomicUsize::new(0),
        });
        let controller = Controller::new(api.clone(), watcher::Config::default())
            .run(reconcile, error_policy, data.clone())
            .for_each(|_| futures::future::ready(()));
        let handle = tokio::spawn(controller);
        for i in 0..3 {
            create(&api, &task(&format!("t{i}"), "dp")).await;
        }
        let started = tokio::time::Instant::now();
        loop {
            let done = server
                .objects::<UpgradeTask>()
                .unwrap()
                .iter()
                .filter(|t| t.status.as_ref().and_then(|s| s.code.as_deref()) == Some("SUCCESS"))
                .count();
            if done == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "status writes trigger reconciles at once, not after the 600 s requeue"
        );
        let counts = server.write_counts();
        assert_eq!((counts.creates, counts.status_writes), (3, 9));
        // Each task: three writes, and a fourth reconcile that sees SUCCESS.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(data.reconciles.load(Ordering::SeqCst) >= 12);
        // A day later nothing more was written: the finished tasks are left alone.
        tokio::time::sleep(Duration::from_secs(12 * 3600)).await;
        assert_eq!(server.write_counts().total(), 12);
        handle.abort();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn kube_event_recorder_publishes_and_aggregates() {
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use kube::Resource as _;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    bounded(async {
        let server = server();
        let api = tasks(&server);
        let t = create(&api, &task("t1", "dp")).await;
        let recorder = Recorder::new(server.client(), Reporter::from("upkeep"));
        let event = Event {
            type_: EventType::Normal,
            reason: "Started".into(),
            note: Some("upgrade started".into()),
            action: "Upgrade".into(),
            secondary: None,
        };
        let reference = t.object_ref(&());
        recorder.publish(&event, &reference).await.unwrap();
        recorder.publish(&event, &reference).await.unwrap();
        let events: Api<K8sEvent> = Api::default_namespaced(server.client());
        let list = events.list(&Default::default()).await.unwrap();
        assert_eq!(list.items.len(), 1);
        let e = &list.items[0];
        assert_eq!(e.reason.as_deref(), Some("Started"));
        assert_eq!(e.regarding.as_ref().unwrap().name.as_deref(), Some("t1"));
        assert_eq!(e.series.as_ref().unwrap().count, 2);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn kube_lease_manager_takes_and_hands_over_the_lease() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube_lease_manager::LeaseManagerBuilder;

    bounded(async {
        let server = server();
        let manager = |identity: &str| {
            LeaseManagerBuilder::new(server.client(), "upkeep-leader")
                .with_namespace("kube-system")
                .with_identity(identity)
                .with_duration(15)
                .with_grace(5)
                .build()
        };
        let a = manager("a").await.unwrap();
        let b = manager("b").await.unwrap();
        assert!(a.changed().await.unwrap(), "a takes the free lease");
        let leases: Api<Lease> = Api::namespaced(server.client(), "kube-system");
        let lease = leases.get("upkeep-leader").await.unwrap();
        assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("a"));

        a.release().await.unwrap();
        assert!(b.changed().await.unwrap(), "b takes the released lease");
        let spec = leases.get("upkeep-leader").await.unwrap().spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(2));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn events_expire_an_hour_after_their_creation() {
    use k8s_openapi::api::events::v1::Event as K8sEvent;

    bounded(async {
        let server = server();
        let events: Api<K8sEvent> = Api::default_namespaced(server.client());
        let event = |name: &str| K8sEvent {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            event_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                origin(),
            )),
            reason: Some("Test".into()),
            ..Default::default()
        };
        let names = || async {
            let list = events.list(&Default::default()).await.unwrap();
            list.items
                .into_iter()
                .filter_map(|e| e.metadata.name)
                .collect::<Vec<_>>()
        };
        events
            .create(&PostParams::default(), &event("first"))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(59 * 60)).await;
        events
            .create(&PostParams::default(), &event("second"))
            .await
            .unwrap();
        assert_eq!(names().await, ["first", "second"]);
        tokio::time::advance(Duration::from_secs(2 * 60)).await;
        events
            .create(&PostParams::default(), &event("third"))
            .await
            .unwrap();
        assert_eq!(names().await, ["second", "third"], "the first expired");
    })
    .await;
}
