//! The operator: its controllers and the caches they share, run together until shutdown.
//! Everything runs inside one future (nothing is spawned detached), so dropping it stops the
//! operator at once, as a crash would.

use std::fmt::Debug;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{Future, FutureExt as _, Stream, StreamExt as _};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::connections::Connections;
use super::hooks::JobHooks;
use super::kit::changes::changed;
use super::kit::context::{Context, Settings, Stores};
use super::kit::events::Events;
use super::kit::index::TaskIndex;
use super::kit::metrics::Metrics;
use super::kit::watched::Watched;
use super::{
    device, device_patch, firmware_upgrade, host, maintenance_window, patch_job, upgrade_task,
};
use k8s_openapi::api::coordination::v1::Lease;

use crate::api::host::LEASE_LABEL;
use crate::api::upgrade_task::{LABEL_PARENT_KIND, ParentKind};
use crate::api::{
    Device, DevicePatch, FirmwareUpgrade, Host, MaintenanceWindow, PatchJob, UpgradeTask,
};
use crate::clock::Clock;
use crate::images::repository::ImageRepository;

/// How many Hosts are reconciled at once. kube's runner polls every running reconcile each
/// time one may have finished, so a fleet's Hosts all due at once (their Leases renewed
/// together) would cost the square of the fleet's size unbounded; a Host's reconcile is a
/// few small reads and writes, so a handful at a time keeps up.
const HOST_CONCURRENCY: u16 = 16;

/// What the operator is built from.
pub struct Parts {
    /// The API client.
    pub client: Client,
    /// The clock.
    pub clock: Clock,
    /// The firmware images.
    pub repository: Arc<dyn ImageRepository>,
    /// Drivers for Devices.
    pub connections: Arc<dyn Connections>,
    /// Tunables.
    pub settings: Settings,
    /// The name events are reported under (e.g. the pod name).
    pub instance: String,
    /// The namespace to watch; `None` for every namespace.
    pub namespace: Option<String>,
    /// Where to count metrics.
    pub metrics: Arc<Metrics>,
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A cache of `K` kept by a watcher, and the future that keeps it.
fn cache<K>(api: Api<Watched<K>>) -> (Store<Watched<K>>, impl Future<Output = ()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    cache_with(api, watcher::Config::default())
}

/// A cache of the `K` that `config` selects, and the future that keeps it.
fn cache_with<K>(
    api: Api<Watched<K>>,
    config: watcher::Config,
) -> (Store<Watched<K>>, impl Future<Output = ()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let feed = reflector::reflector(writer, watcher(api, config).default_backoff())
        .for_each(|_| futures::future::ready(()));
    (store, feed)
}

/// The one watch of UpgradeTasks: it keeps the UpgradeTask controller's cache (the returned
/// store) and `index`, and names each task it sees added or changed on the returned stream (the
/// controller's trigger); the future keeps it. A second watch for the index would send and
/// decode every task change twice. The names wait on the stream until the controller runs.
fn task_watch(
    client: &Client,
    ns: Option<&str>,
    index: TaskIndex,
) -> (
    Store<Watched<UpgradeTask>>,
    impl Stream<Item = reflector::ObjectRef<Watched<UpgradeTask>>> + Send + use<>,
    impl Future<Output = ()> + use<>,
) {
    let (store, writer) = reflector::store();
    let (refs, triggers) = futures::channel::mpsc::unbounded();
    let events = watcher(
        api::<Watched<UpgradeTask>>(client, ns),
        watcher::Config::default(),
    )
    .default_backoff();
    let feed = reflector::reflector(writer, events).for_each(move |event| {
        match event {
            Ok(event) => {
                index.apply(&event);
                if let watcher::Event::Apply(task) | watcher::Event::InitApply(task) = &event {
                    // The controller is gone only when the operator stops.
                    let _ = refs.unbounded_send(reflector::ObjectRef::from_obj(task));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the UpgradeTask watch failed; it restarts with backoff")
            }
        }
        futures::future::ready(())
    });
    (store, triggers, feed)
}

/// The objects of `store` in a namespace, for a watch that maps a change there (a window, a
/// Host) onto every parent of that namespace.
fn of_namespace<K>(
    store: Store<Watched<K>>,
) -> impl Fn(Option<String>) -> Vec<reflector::ObjectRef<Watched<K>>> + Clone
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    move |namespace| {
        store
            .state()
            .into_iter()
            .filter(|o| o.0.as_ref().is_ok_and(|o| o.meta().namespace == namespace))
            .map(|o| reflector::ObjectRef::from_obj(o.as_ref()))
            .collect()
    }
}

/// The watch of the UpgradeTasks a parent kind owns: only its own (labelled with the kind by
/// `kit::tasks::create_task`), so that a change to another kind's task is neither sent to nor
/// decoded by this kind's controller (at fleet scale, every task write would otherwise reach
/// all three parent controllers).
fn own_tasks(kind: &str) -> watcher::Config {
    watcher::Config::default().labels(&format!("{LABEL_PARENT_KIND}={kind}"))
}

/// The loop of a rollout parent kind (FirmwareUpgrade, DevicePatch): it owns its tasks and looks
/// again at every parent of a namespace whose MaintenanceWindows change. Built in a function of
/// its own and boxed, so that the operator's future stays small.
fn rollout_loop<K, R, F, E>(
    client: &Client,
    ns: Option<&str>,
    ctx: Arc<Context>,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
    reconcile: R,
) -> BoxFuture<'static, ()>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    R: FnMut(Arc<Watched<K>>, Arc<Context>) -> F + Send + 'static,
    F: Future<Output = Result<Action, E>> + Send + 'static,
    E: std::error::Error + Send + 'static,
{
    let cfg = watcher::Config::default;
    let controller = Controller::new(api::<Watched<K>>(client, ns), cfg());
    let of_window_namespace = of_namespace(controller.store());
    controller
        // Only the owner reference matters here: read tasks' metadata, not their status.
        .owns(
            api::<PartialObjectMeta<UpgradeTask>>(client, ns),
            own_tasks(&K::kind(&())),
        )
        .watches(
            api::<Watched<MaintenanceWindow>>(client, ns),
            cfg(),
            move |w| of_window_namespace(w.meta().namespace.clone()),
        )
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .boxed()
}

/// Runs `loops` until every one has ended, polling each only when it was woken. (`join!`
/// polls every loop whenever any one is woken: at fleet scale each poll of the UpgradeTask
/// controller looks at every reconcile in flight, hundreds of them, for each event of any other
/// loop.) The order is the order of the wakes, so a simulation still runs the same every time.
async fn join_woken(loops: Vec<BoxFuture<'_, ()>>) {
    let mut loops: FuturesUnordered<_> = loops.into_iter().collect();
    while loops.next().await.is_some() {}
}

fn error_policy<K, E: std::fmt::Display>(_: Arc<K>, error: &E, ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "reconcile failed; retrying");
    Action::requeue(ctx.settings.retry)
}

/// Runs the operator until `shutdown` is cancelled.
pub async fn run(parts: Parts, shutdown: CancellationToken) {
    let Parts {
        client,
        clock,
        repository,
        connections,
        settings,
        instance,
        namespace,
        metrics,
    } = parts;
    let ns = namespace.as_deref();
    let (upgrades, upgrades_feed) = cache::<FirmwareUpgrade>(api(&client, ns));
    // The Device controller's cache serves the other controllers too: one copy of each Device.
    let device_controller = Controller::new(
        api::<Watched<Device>>(&client, ns),
        watcher::Config::default(),
    )
    .with_config(controller::Config::default().concurrency(settings.device_concurrency.max(1)));
    let devices = device_controller.store();
    let (windows, windows_feed) = cache::<MaintenanceWindow>(api(&client, ns));
    let (patch_jobs, patch_jobs_feed) = cache::<PatchJob>(api(&client, ns));
    let (device_patches, device_patches_feed) = cache::<DevicePatch>(api(&client, ns));
    let (hosts, hosts_feed) = cache::<Host>(api(&client, ns));
    // Only the agents' Leases (labelled with their Host), not every Lease of the cluster.
    let (leases, leases_feed) = cache_with::<Lease>(
        api(&client, ns),
        watcher::Config::default().labels(LEASE_LABEL),
    );
    let tasks = TaskIndex::default();
    let (task_store, task_refs, tasks_feed) = task_watch(&client, ns, tasks.clone());
    metrics.count_tasks_of(tasks.clone());
    metrics.count_hosts_of(hosts.clone());
    let ctx = Arc::new(Context {
        client: client.clone(),
        clock,
        repository,
        connections,
        hooks: JobHooks::new(client.clone()),
        events: Events::new(client.clone(), clock, instance),
        metrics,
        stores: Stores {
            upgrades: upgrades.clone(),
            devices: devices.clone(),
            windows: windows.clone(),
            device_patches: device_patches.clone(),
            patch_jobs: patch_jobs.clone(),
            hosts: hosts.clone(),
            leases: leases.clone(),
            tasks: tasks.clone(),
        },
        expectations: Default::default(),
        device_patch_expectations: Default::default(),
        patch_expectations: Default::default(),
        patch_job_rounds: Default::default(),
        recent: Default::default(),
        announced: Default::default(),
        settings,
    });

    let controllers = {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let stop = move || shutdown.clone().cancelled_owned();
        // Device reconciles read no cache: they start at once, and fill the Device cache.
        let device_loop = device_controller
            .graceful_shutdown_on(stop())
            .run(device::reconcile, error_policy, ctx.clone())
            .for_each(|_| futures::future::ready(()));
        let others = async move {
            // The other reconciles read the caches: start once they hold a full listing.
            let _ = tokio::join!(
                upgrades.wait_until_ready(),
                devices.wait_until_ready(),
                windows.wait_until_ready(),
                tasks.wait_until_ready()
            );
            let _ = tokio::join!(
                patch_jobs.wait_until_ready(),
                device_patches.wait_until_ready(),
                hosts.wait_until_ready(),
                leases.wait_until_ready()
            );
            let cfg = watcher::Config::default;
            let upgrade_loop = rollout_loop(
                &client,
                ns,
                ctx.clone(),
                stop(),
                firmware_upgrade::reconcile,
            );
            let dpatch_loop =
                rollout_loop(&client, ns, ctx.clone(), stop(), device_patch::reconcile);
            let task_loop = Controller::for_stream(futures::stream::empty(), task_store)
                .reconcile_on(task_refs)
                .owns(api::<k8s_openapi::api::batch::v1::Job>(&client, ns), cfg())
                .graceful_shutdown_on(stop())
                .run(upgrade_task::reconcile, error_policy, ctx.clone())
                .for_each(|_| futures::future::ready(()));
            let job_controller = Controller::new(api::<Watched<PatchJob>>(&client, ns), cfg());
            let jobs_of_namespace = of_namespace(job_controller.store());
            let jobs_of_window = jobs_of_namespace.clone();
            let job_loop = job_controller
                .owns(
                    api::<PartialObjectMeta<UpgradeTask>>(&client, ns),
                    own_tasks(ParentKind::PatchJob.as_str()),
                )
                .watches(
                    api::<Watched<MaintenanceWindow>>(&client, ns),
                    cfg(),
                    move |w| jobs_of_window(w.meta().namespace.clone()),
                )
                // A Host's lock released or its agent back: the jobs of its namespace may go on.
                // Only a change of what a job reads of a Host (not the agent's facts) counts.
                .watches_stream(
                    changed(
                        watcher(api::<Watched<Host>>(&client, ns), cfg()).default_backoff(),
                        patch_job::host_fingerprint,
                    ),
                    move |h| jobs_of_namespace(h.meta().namespace.clone()),
                )
                .graceful_shutdown_on(stop())
                .run(patch_job::reconcile, error_policy, ctx.clone())
                .for_each(|_| futures::future::ready(()));
            let host_loop = Controller::new(api::<Watched<Host>>(&client, ns), cfg())
                .with_config(controller::Config::default().concurrency(HOST_CONCURRENCY))
                .graceful_shutdown_on(stop())
                .run(host::reconcile, error_policy, ctx.clone())
                .for_each(|_| futures::future::ready(()));
            let window_loop =
                Controller::new(api::<Watched<MaintenanceWindow>>(&client, ns), cfg())
                    .graceful_shutdown_on(stop())
                    .run(maintenance_window::reconcile, error_policy, ctx.clone())
                    .for_each(|_| futures::future::ready(()));
            // Boxed: each loop is a deep future, and polling them all inline needs a large stack.
            join_woken(vec![
                upgrade_loop,
                dpatch_loop,
                task_loop.boxed(),
                window_loop.boxed(),
                job_loop.boxed(),
                host_loop.boxed(),
            ])
            .await;
        };
        join_woken(vec![device_loop.boxed(), others.boxed()])
    };
    let feeds = join_woken(vec![
        upgrades_feed.boxed(),
        windows_feed.boxed(),
        tasks_feed.boxed(),
        patch_jobs_feed.boxed(),
        device_patches_feed.boxed(),
        hosts_feed.boxed(),
        leases_feed.boxed(),
    ]);
    // Biased: in a fixed order, so that a simulation runs the same every time (the UpgradeTask
    // controller's triggers come from the task watch among the feeds; an unbiased select polls
    // the two in a random order, and the writes they make interleave differently).
    tokio::select! {
        biased;
        () = Box::pin(controllers) => {}
        () = Box::pin(feeds) => {}
        () = shutdown.cancelled() => {}
    }
}
