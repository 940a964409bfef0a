//! An in-memory Kubernetes API server, faithful enough that kube's `Api`, `watcher`,
//! `reflector` and `Controller` run on it unchanged.
//!
//! There is no cluster and no kube-apiserver binary here, and kube-fake-client neither builds
//! with kube 5 nor watches, so tests, `upkeep simulate` and benchmarks use this server. It
//! serves the CRDs it is given (upkeep passes `upkeep_core::api::crds()`) and these built-in
//! kinds: core `v1` Namespace, Node, Pod (with the `eviction` subresource), Secret, ConfigMap,
//! Event; `events.k8s.io/v1` Event; `coordination.k8s.io/v1` Lease; `batch/v1` Job;
//! `policy/v1` PodDisruptionBudget; `apps/v1` Deployment, ReplicaSet, StatefulSet, DaemonSet.
//! It knows nothing of upkeep's kinds: they come in through the builder.
//!
//! What it does, as the real API server does:
//! - get, list (label and field selectors), create (`generateName`), replace, patch (merge,
//!   JSON, strategic merge for built-in kinds — 415 for custom resources, as on a real server —
//!   and server-side apply with field ownership, see `fields` and `apply`), delete and
//!   deletecollection, on the main resource and on the `status` subresource;
//! - a global resourceVersion, uids (from a counter), creationTimestamp; `generation` on custom
//!   resources, Jobs, PodDisruptionBudgets and the apps kinds, bumped when anything but metadata
//!   and status changes and when deletionTimestamp is set; 409 on stale versions (replace,
//!   patch, apply, delete preconditions); `managedFields`; no new version and no event for a
//!   write that changes nothing; a Secret's `stringData` folded into `data`, and its `type`
//!   defaulted to `Opaque`; a new Pod's status `phase: Pending`;
//! - a main-resource write keeps `.status` and a `/status` write keeps everything but `.status`
//!   (for resources with the status subresource); a create drops `.status` (but Nodes);
//! - field selectors with the labels the real server's conversion functions accept, on lists,
//!   watches and deletecollection (`metadata.name`; `metadata.namespace` but on Nodes and
//!   Namespaces; core Events' `involvedObject.*`, `reason`, `reportingComponent`, `source`,
//!   `type`; events.k8s.io's `regarding.*`, `reason`, `reportingController`, `type`; Pods'
//!   `spec.nodeName` (and `spec.host`), `spec.restartPolicy`, `spec.schedulerName`,
//!   `spec.serviceAccountName`, `spec.hostNetwork`, `status.phase`, `status.podIP`,
//!   `status.nominatedNodeName`; Nodes' `spec.unschedulable`; Namespaces' `status.phase`;
//!   Secrets' `type`; Jobs' `status.successful`; ReplicaSets' `status.replicas`; a CRD's
//!   `selectableFields`), comparing an absent field as the value the real server's defaulting
//!   would have stored (`spec.hostNetwork=false`, `spec.restartPolicy=Always`), and answering
//!   any other label with 400 `field label not supported: LABEL`;
//! - core `v1` Events are the `events.k8s.io/v1` Events (one store, as on a real server), with
//!   the real conversion (`regarding` ↔ `involvedObject`, `note` ↔ `message`, …; see `convert`),
//!   so `kubectl describe` finds what kube's `Recorder` wrote;
//! - watch with resume from a version, label/field/namespace selection (an object leaving the
//!   selection is `DELETED`, entering it `ADDED`), bookmarks, `sendInitialEvents`, and 410
//!   `Expired` as a watch event once the bounded event log no longer reaches back;
//! - Events expire an hour after their creation (kube-apiserver's `--event-ttl`; see
//!   [`ApiServerBuilder::event_ttl`]): the next create after that deletes them;
//! - finalizers and deletionTimestamp; owner-reference garbage collection (background,
//!   foreground and orphan propagation, dependents with another live owner only lose the
//!   reference, objects whose owners are all gone are deleted); deleting a Namespace deletes
//!   its contents;
//! - PodDisruptionBudget `.status` kept current as the disruption controller keeps it
//!   (`currentHealthy`, `desiredHealthy`, `expectedPods`, `disruptionsAllowed`,
//!   `observedGeneration`, the `DisruptionAllowed` condition; see `disruption`), and the Pod
//!   `eviction` subresource with kube-apiserver's rules: 429 `TooManyRequests` ("Cannot evict
//!   pod as it would violate the pod's disruption budget.") while a matching PDB allows no
//!   disruption, otherwise the pod deleted (with the Eviction's `deleteOptions`) and a `Success`
//!   Status;
//! - custom resources checked against their CRD on every write (on by default, see
//!   [`ApiServerBuilder::schema_validation`]): unknown fields pruned, schema defaults filled in
//!   (on write; not on read), the structural schema and the CEL rules (transition rules
//!   included) enforced with validation ratcheting;
//! - `Status` errors with the real codes and reasons (a body that is not JSON is 400
//!   `BadRequest`, a body with bad metadata 422 `Invalid`); discovery; `Table` output with a
//!   CRD's printer columns and, for the built-in kinds, the columns and cells of the real
//!   server's printers (`kubectl get events`: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE; see
//!   `printers`); `PartialObjectMetadata` output;
//! - OpenAPI v3 (`/openapi/v3` and a document per group-version, see `openapi`): every kind's
//!   schema as a component with `x-kubernetes-group-version-kind` (a CRD's `openAPIV3Schema`
//!   with `metadata` as `ObjectMeta`; the built-ins' from k8s-openapi), and the paths' operations
//!   with their kind and the `fieldValidation` parameter.
//!
//! A CRD's served versions share one store (conversion strategy `None`: only `apiVersion`
//! changes).
//!
//! `kubectl --server http://ADDR` works against [`ApiServer::serve`]: `get` (with the columns of
//! a real server), `get -w`, `describe` (with Events), `explain` (every field of every kind),
//! `apply` (client-side and `--server-side`), `patch`, `label`, `delete`, `drain` (evictions
//! honour PodDisruptionBudgets), `cordon`. The server speaks JSON and YAML only, so kubectl's
//! typed generators that send protobuf (`kubectl create secret|namespace|…`) get 415; `kubectl
//! apply -f` of the same objects works. (`kubectl get a,b -w` is refused by kubectl itself: it
//! watches one resource type at a time.)
//!
//! Simplifications: objects may be created in a namespace that does not exist (namespaces
//! `default`, `kube-system`, `kube-public` and `kube-node-lease` exist from the start), and a
//! deleted Namespace goes at once after its contents (no `Terminating` phase);
//! `limit`/`continue` are ignored (lists are whole); a list or get always reads the latest state
//! (`resourceVersion` on reads is ignored); built-in kinds are not validated beyond
//! apiVersion/kind, names, namespaces and the shape of metadata, nor defaulted beyond the
//! Secret type and the new Pod's phase (field selectors and Table cells read absent fields as
//! their defaults instead); no controllers run (no scheduler, kubelet, ReplicaSet or Job
//! controller: pods and statuses are what clients write), but for the PodDisruptionBudget
//! status, which is recomputed synchronously after every write that can change it, so an
//! approved eviction is not recorded in `disruptedPods`; a controller's scale for
//! PodDisruptionBudgets is the `spec.replicas` of a ReplicaSet (or its Deployment) or
//! StatefulSet stored here, with no `/scale` subresource; a pod is deleted at once (no
//! `gracePeriodSeconds`); a core Event's `managedFields` name the `events.k8s.io` fields;
//! garbage collection runs synchronously right after the write that causes it; no admission
//! (no service-account defaulting), authentication or `fieldValidation` (unknown fields are
//! always pruned silently).
//!
//! Time comes only from the clock the server is built with (creationTimestamp,
//! deletionTimestamp, managedFields times, `Table` ages), and watch timeouts and bookmarks run on
//! tokio's clock, so the server runs on a current-thread runtime with paused time and the same
//! requests give the same objects.
//!
//! ```no_run
//! # async fn example() {
//! use upkeep_apiserver::ApiServer;
//!
//! let origin: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
//! let started = tokio::time::Instant::now();
//! let now = move || origin + jiff::SignedDuration::try_from(started.elapsed()).unwrap();
//! let server = ApiServer::new(now, upkeep_core::api::crds());
//! let client = server.client();
//! let tasks: kube::Api<upkeep_core::api::UpgradeTask> = kube::Api::default_namespaced(client);
//! # let _ = tasks;
//! # }
//! ```

mod apply;
mod convert;
mod discovery;
mod disruption;
mod fields;
mod http;
mod openapi;
mod patch;
mod printers;
mod render;
mod resources;
mod routes;
mod selector;
mod service;
mod status;
mod store;
mod validation;
mod verbs;
mod watch;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use self::http::{HttpServer, ThreadedHttpServer};
pub use self::routes::ResponseBody;
pub use self::service::ApiService;

use self::resources::Registry;
use self::store::{ObjKey, State};
use self::validation::Validations;

/// The default number of events each resource's log keeps for watches to resume from.
pub const DEFAULT_EVENT_LOG_CAPACITY: usize = 100_000;

/// How long each resource's log keeps an event by default for watches to resume from: five
/// minutes, as kube-apiserver compacts etcd's history every five minutes. A watch from a version
/// older than that gets 410 `Expired` and lists again, as with a real cluster.
pub const DEFAULT_EVENT_LOG_HISTORY: SignedDuration = SignedDuration::from_mins(5);

/// How long Events live by default, as with kube-apiserver's `--event-ttl`.
pub const DEFAULT_EVENT_TTL: SignedDuration = SignedDuration::from_hours(1);

/// The default interval of watch bookmarks (virtual time).
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// The namespaces that exist from the start, as in a fresh cluster.
pub const INITIAL_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

type NowFn = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// State shared by every handle, service and watch of one server.
struct Shared {
    registry: Registry,
    validations: Validations,
    state: Mutex<State>,
    now: NowFn,
    /// The time the clock last gave, for requests served where the clock cannot be read (a
    /// [`ThreadedHttpServer`] runs on another runtime than the simulation's paused clock).
    last_now: Mutex<Timestamp>,
    bookmark_interval: Duration,
    /// The stores PodDisruptionBudget statuses are computed from, if both are served.
    disruption: Option<disruption::Stores>,
}

/// The locked state. Releasing it first brings the status of every PodDisruptionBudget whose
/// pods changed up to date (see `disruption`), so no one ever reads a stale one.
struct Locked<'a> {
    guard: MutexGuard<'a, State>,
    shared: &'a Shared,
}

impl Deref for Locked<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.guard
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if !self.guard.has_dirty() {
            return;
        }
        match &self.shared.disruption {
            Some(stores) => disruption::settle(&mut self.guard, stores, self.shared.now(false)),
            None => {
                self.guard.take_dirty();
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> Locked<'_> {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // The time the writes under this lock happen at, for the log's history.
        guard.clock = self.now(false);
        Locked {
            guard,
            shared: self,
        }
    }

    /// The current time: from the clock when `live`, else the time it last gave.
    fn now(&self, live: bool) -> Timestamp {
        let mut last = self.last_now.lock().unwrap_or_else(PoisonError::into_inner);
        if live {
            *last = (self.now)();
        }
        *last
    }
}

/// Counts of successful write requests. `status_writes` are writes to the `status` subresource
/// (replace, patch or apply); the other fields count writes to the main resource. `conflicts`
/// counts write requests refused with 409 (stale resourceVersion, apply conflict, already
/// exists) and is not part of [`WriteCounts::total`]. Server-side changes (garbage collection,
/// finishing a foreground deletion) are not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Creates (POST, and applies that created the object).
    pub creates: u64,
    /// Replaces (PUT).
    pub replaces: u64,
    /// Merge, JSON and strategic merge patches.
    pub patches: u64,
    /// Server-side applies to an existing object.
    pub applies: u64,
    /// Deletes (including those that only set deletionTimestamp).
    pub deletes: u64,
    /// Writes to the status subresource.
    pub status_writes: u64,
    /// Write requests refused with 409.
    pub conflicts: u64,
}

impl WriteCounts {
    /// Every successful write.
    pub fn total(&self) -> u64 {
        self.creates
            + self.replaces
            + self.patches
            + self.applies
            + self.deletes
            + self.status_writes
    }
}

/// An object, as write counts are kept per object: kind, namespace (empty for cluster-scoped
/// kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The kind, e.g. `UpgradeTask`.
    pub kind: String,
    /// The namespace; empty for cluster-scoped kinds.
    pub namespace: String,
    /// The name.
    pub name: String,
}

/// Why [`ApiServer::insert_raw`] refused an object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InsertRawError {
    /// The object has no string `apiVersion` and `kind`, or the server does not serve them.
    #[error("the server does not serve apiVersion {api_version:?} kind {kind:?}")]
    UnknownKind {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
    /// The object has no `metadata.name`.
    #[error("the object has no metadata.name")]
    MissingName,
}

/// Builds an [`ApiServer`].
pub struct ApiServerBuilder {
    now: NowFn,
    crds: Vec<CustomResourceDefinition>,
    capacity: usize,
    history: SignedDuration,
    event_ttl: SignedDuration,
    bookmark_interval: Duration,
    namespaces: Vec<String>,
    validate: bool,
}

impl std::fmt::Debug for ApiServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServerBuilder")
            .field("crds", &self.crds.len())
            .field("capacity", &self.capacity)
            .field("history", &self.history)
            .field("event_ttl", &self.event_ttl)
            .field("bookmark_interval", &self.bookmark_interval)
            .field("namespaces", &self.namespaces)
            .field("validate", &self.validate)
            .finish_non_exhaustive()
    }
}

impl ApiServerBuilder {
    /// Serves these CRDs (besides the built-in kinds).
    pub fn crds(mut self, crds: Vec<CustomResourceDefinition>) -> Self {
        self.crds = crds;
        self
    }

    /// Serves one more CRD.
    pub fn crd(mut self, crd: CustomResourceDefinition) -> Self {
        self.crds.push(crd);
        self
    }

    /// How many events each resource's log keeps (default
    /// [`DEFAULT_EVENT_LOG_CAPACITY`]); a watch from a version older than the log reaches gets
    /// 410 `Expired`.
    pub fn event_log_capacity(mut self, events: usize) -> Self {
        self.capacity = events;
        self
    }

    /// How long each resource's log keeps an event (default [`DEFAULT_EVENT_LOG_HISTORY`], on
    /// the server's clock), within its capacity.
    pub fn event_log_history(mut self, history: SignedDuration) -> Self {
        self.history = history;
        self
    }

    /// How long an Event lives after its creation before the server deletes it (default
    /// [`DEFAULT_EVENT_TTL`]); without expiry a long simulation keeps every Event it made.
    pub fn event_ttl(mut self, ttl: SignedDuration) -> Self {
        self.event_ttl = ttl;
        self
    }

    /// How often open watches that asked for bookmarks get one (default
    /// [`DEFAULT_BOOKMARK_INTERVAL`], tokio time).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The namespaces that exist from the start (default [`INITIAL_NAMESPACES`]).
    pub fn namespaces<S: Into<String>>(mut self, namespaces: impl IntoIterator<Item = S>) -> Self {
        self.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Whether writes of custom resources are checked against their CRD (default on): unknown
    /// fields pruned, the structural schema and the CEL rules enforced (422 `Invalid`).
    pub fn schema_validation(mut self, enabled: bool) -> Self {
        self.validate = enabled;
        self
    }

    /// The server.
    pub fn build(self) -> ApiServer {
        let registry = Registry::new(&self.crds);
        let validations = Validations::new(registry.all(), self.validate);
        let mut state = State::new(registry.all().len(), self.capacity, self.event_ttl);
        state.keep_history(self.history);
        let disruption = disruption::Stores::of(&registry);
        if let Some(stores) = &disruption {
            state.track_disruption_inputs(stores.inputs());
        }
        if let Some(res) = registry.lookup("", "v1", "namespaces") {
            let created = verbs::timestamp((self.now)());
            for ns in &self.namespaces {
                let uid = state.next_uid();
                let object = json!({
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": ns,
                        "uid": uid,
                        "creationTimestamp": created,
                        "labels": {"kubernetes.io/metadata.name": ns},
                    },
                    "spec": {},
                    "status": {"phase": "Active"},
                });
                state.put(res, ObjKey::new("", ns), object);
            }
        }
        let last_now = Mutex::new((self.now)());
        ApiServer {
            shared: Arc::new(Shared {
                registry,
                validations,
                state: Mutex::new(state),
                now: self.now,
                last_now,
                bookmark_interval: self.bookmark_interval,
                disruption,
            }),
        }
    }
}

/// An in-memory API server. Cheap to clone; clones are the same server.
#[derive(Clone)]
pub struct ApiServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("resource_version", &self.resource_version())
            .finish_non_exhaustive()
    }
}

impl ApiServer {
    /// A server of the built-in kinds and `crds`, reading time from `now`.
    pub fn new(
        now: impl Fn() -> Timestamp + Send + Sync + 'static,
        crds: Vec<CustomResourceDefinition>,
    ) -> Self {
        Self::builder(now).crds(crds).build()
    }

    /// A builder reading time from `now` (the server's only source of time), serving the
    /// built-in kinds and no CRD until [`ApiServerBuilder::crds`] gives some.
    pub fn builder(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> ApiServerBuilder {
        ApiServerBuilder {
            now: Arc::new(now),
            crds: Vec::new(),
            capacity: DEFAULT_EVENT_LOG_CAPACITY,
            history: DEFAULT_EVENT_LOG_HISTORY,
            event_ttl: DEFAULT_EVENT_TTL,
            bookmark_interval: DEFAULT_BOOKMARK_INTERVAL,
            namespaces: INITIAL_NAMESPACES.iter().map(|s| s.to_string()).collect(),
            validate: true,
        }
    }

    /// The in-process service.
    pub fn service(&self) -> ApiService {
        ApiService {
            shared: self.shared.clone(),
            live_clock: true,
        }
    }

    /// A kube client on the in-process service, default namespace `default`. Must be called
    /// inside a tokio runtime (the client spawns its request buffer).
    pub fn client(&self) -> kube::Client {
        self.client_in("default")
    }

    /// A kube client on the in-process service with the given default namespace.
    pub fn client_in(&self, namespace: &str) -> kube::Client {
        kube::Client::new(self.service(), namespace)
    }

    /// An axum router serving the API (every path), to mount or serve as the caller likes.
    pub fn router(&self) -> axum::Router {
        http::router(self.service())
    }

    /// Serves the API over plain HTTP on `addr` (e.g. `127.0.0.1:0`) until the returned server
    /// is dropped.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<HttpServer> {
        HttpServer::start(self.service(), addr).await
    }

    /// Serves the API over plain HTTP on `addr` from a thread of its own with a real-time
    /// runtime, until the returned server is dropped. Use this to look at a simulation that
    /// runs on paused time (`upkeep simulate --serve`): HTTP watches time out and bookmark on
    /// real time, while objects written and `Table` ages computed over HTTP use the time the
    /// server's clock last gave in-process (the simulation's virtual time). Needs no runtime.
    pub fn serve_on_thread(&self, addr: SocketAddr) -> std::io::Result<ThreadedHttpServer> {
        let service = ApiService {
            shared: self.shared.clone(),
            live_clock: false,
        };
        ThreadedHttpServer::start(service, addr)
    }

    /// The latest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Write counts over all objects.
    pub fn write_counts(&self) -> WriteCounts {
        self.shared.lock().totals
    }

    /// Write counts of one object (zero if never written). Events are counted only in the
    /// totals ([`ApiServer::write_counts`]), not per object.
    pub fn object_write_counts(&self, kind: &str, namespace: &str, name: &str) -> WriteCounts {
        let key = ObjectKey {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        self.shared
            .lock()
            .per_object
            .get(&key)
            .copied()
            .unwrap_or_default()
    }

    /// Write counts of every object written so far (but Events, counted only in the totals).
    pub fn write_counts_by_object(&self) -> BTreeMap<ObjectKey, WriteCounts> {
        self.shared.lock().per_object.clone()
    }

    /// Sets every write count to zero.
    pub fn reset_write_counts(&self) {
        let mut state = self.shared.lock();
        state.totals = WriteCounts::default();
        state.per_object.clear();
    }

    /// Every object of `kind` (the first served resource with that kind), ordered by namespace
    /// and name, as stored.
    pub fn snapshot(&self, kind: &str) -> Vec<Value> {
        let mut objects = Vec::new();
        self.each(kind, |object| objects.push(object));
        objects
    }

    /// Calls `f` with every object of `kind` in turn, ordered by namespace and name, without
    /// holding them all at once (the server is locked meanwhile: `f` must not call it).
    pub fn each(&self, kind: &str, mut f: impl FnMut(Value)) {
        let Some(res) = self.shared.registry.by_kind(kind) else {
            return;
        };
        let state = self.shared.lock();
        for stored in state.stores[res].objects.values() {
            f(stored.value());
        }
    }

    /// Every object of `K`, ordered by namespace and name; an error if one does not
    /// deserialize (see [`ApiServer::snapshot`] for the raw objects).
    pub fn objects<K>(&self) -> Result<Vec<K>, serde_json::Error>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        let api_version = K::api_version(&());
        let kind = K::kind(&());
        let Some(res) = self
            .shared
            .registry
            .by_api_version_kind(&api_version, &kind)
        else {
            return Ok(Vec::new());
        };
        let info = self.shared.registry.get(res);
        let objects: Vec<Bytes> = {
            let state = self.shared.lock();
            state.stores[info.storage]
                .objects
                .values()
                .map(|s| s.json())
                .collect()
        };
        objects
            .iter()
            .map(|json| {
                if !info.conversion.is_some() {
                    return serde_json::from_slice(json);
                }
                let mut value: Value = serde_json::from_slice(json)?;
                info.conversion.to_view(&mut value, &api_version);
                serde_json::from_value(value)
            })
            .collect()
    }

    /// One object of `kind` by namespace (empty for cluster-scoped kinds) and name.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = self.shared.registry.by_kind(kind)?;
        let state = self.shared.lock();
        state
            .get(res, &ObjKey::new(namespace, name))
            .map(|s| s.value())
    }

    /// Stores an object as given, bypassing validation and the write verbs, as if an older
    /// version of the operator (or another client) had written it: only `apiVersion`/`kind`
    /// (to find the resource) and `metadata.name` are required. The namespace defaults to
    /// `default` for namespaced kinds; uid and creationTimestamp are filled in when missing; a
    /// new resourceVersion is assigned and watches see `ADDED` or `MODIFIED`. Not counted as a
    /// write. Returns the stored object.
    pub fn insert_raw(&self, mut object: Value) -> Result<Value, InsertRawError> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let res = self
            .shared
            .registry
            .by_api_version_kind(&api_version, &kind)
            .ok_or(InsertRawError::UnknownKind { api_version, kind })?;
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or(InsertRawError::MissingName)?
            .to_string();
        let info = self.shared.registry.get(res);
        let namespaced = info.namespaced;
        if info.conversion.is_some() {
            let store = self.shared.registry.get(info.storage);
            info.conversion
                .to_storage(&mut object, &store.api_version(&store.versions[0]));
        }
        let res = info.storage;
        let now = verbs::timestamp(self.shared.now(true));
        let mut state = self.shared.lock();
        let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return Err(InsertRawError::MissingName);
        };
        let namespace = if namespaced {
            let ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty())
                .unwrap_or("default")
                .to_string();
            meta.insert("namespace".into(), ns.clone().into());
            ns
        } else {
            meta.remove("namespace");
            String::new()
        };
        if !meta.get("uid").is_some_and(Value::is_string) {
            meta.insert("uid".into(), state.next_uid().into());
        }
        if !meta.contains_key("creationTimestamp") {
            meta.insert("creationTimestamp".into(), now.into());
        }
        let stored = state.put(res, ObjKey::new(&namespace, &name), object);
        Ok(stored.value())
    }
}
