//! Storage: objects as JSON per resource, keyed by namespace and name; the global
//! resourceVersion; a bounded event log per resource that watches read from; indexes by uid and
//! by owner uid (for garbage collection), by label value and by `spec.nodeName` (for lists);
//! write counters.
//!
//! Objects are immutable once stored (`Arc<Stored>`): a write stores a new version, and the
//! store, the event log and any response share it. Each version is serialized once, when it is
//! stored, and kept only as its JSON compressed with LZ4 (a read decompresses it: a few
//! microseconds for an object of a few KiB), against a dictionary of its resource: the JSON of
//! an earlier object of the same kind ([`Dictionary`]), which shares most of its keys and many
//! of its values. A version keeps the dictionary it was compressed with, so a dictionary that
//! is replaced later still decompresses every version made with it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::sync::{Notify, watch};

use super::resources::ResourceId;
use super::{ObjectKey, WriteCounts};

/// One stored version of an object: its JSON, LZ4-compressed, which is all the server keeps of
/// it (a parsed `Value` tree takes several times the memory of the JSON, and a fleet of ten
/// thousand devices keeps tens of thousands of objects; compressed against its resource's
/// dictionary, an UpgradeTask's JSON takes a tenth), plus the few metadata fields the server
/// looks up often.
#[derive(Debug)]
pub(crate) struct Stored {
    /// The JSON, compressed against `dictionary`, its length first
    /// (`lz4_flex::block::compress_prepend_size_with_dict`).
    compressed: Box<[u8]>,
    /// The dictionary it was compressed with (empty for none), shared with its resource's store.
    dictionary: Arc<[u8]>,
    /// Its resourceVersion.
    pub rv: u64,
    api_version: Box<str>,
    name: Box<str>,
    namespace: Box<str>,
    uid: Box<str>,
    /// The uids of its owners, sorted and without repeats (a set's tree node would take
    /// hundreds of bytes for the one owner most objects have).
    owners: Box<[Box<str>]>,
    /// `metadata.labels`, sorted by key: what watches and lists with a label selector test
    /// on every version, without parsing its JSON.
    labels: Box<[(Box<str>, Box<str>)]>,
    /// `spec.nodeName` (a Pod's; empty when absent): what a drain and a kubelet select pods by,
    /// kept apart so such a list does not parse every pod of the cluster.
    node_name: Box<str>,
}

impl Stored {
    /// A version (not yet in any store), compressed without a dictionary: for the versions a
    /// response builds and no store keeps (dry runs, other API versions).
    pub fn new(value: Value, rv: u64) -> Self {
        let json = serde_json::to_vec(&value).unwrap_or_default();
        Self::compressed(&value, &json, rv, Arc::from([]))
    }

    /// A version of `value`, whose JSON is `json`, compressed against `dictionary`.
    fn compressed(value: &Value, json: &[u8], rv: u64, dictionary: Arc<[u8]>) -> Self {
        // Indexed key by key: `Value::pointer` unescapes (allocates) each token, on every write.
        let text = |v: Option<&Value>| -> Box<str> {
            v.and_then(Value::as_str).unwrap_or_default().into()
        };
        let meta = |key: &str| text(value.get("metadata").and_then(|m| m.get(key)));
        Self {
            api_version: text(value.get("apiVersion")),
            name: meta("name"),
            namespace: meta("namespace"),
            uid: meta("uid"),
            owners: owner_uids(value),
            labels: sorted_labels(value),
            node_name: text(value.get("spec").and_then(|m| m.get("nodeName"))),
            // In a buffer of exactly its size: the worst case would leave most of it unused.
            compressed: lz4_flex::block::compress_prepend_size_with_dict(json, &dictionary)
                .into_boxed_slice(),
            dictionary,
            rv,
        }
    }

    /// The object, parsed from its JSON.
    pub fn value(&self) -> Value {
        // The bytes were serialized from a `Value`, so they parse back to the same one.
        serde_json::from_slice(&self.json()).unwrap_or_default()
    }

    /// Its `metadata` as JSON, cut from the object's JSON unparsed (metadata watches and
    /// metadata reads see every version of their kind, and most of an object is its status
    /// and its managed fields); `{}` when it has none.
    pub fn metadata_json(&self) -> Bytes {
        #[derive(serde::Deserialize)]
        struct Metadata<'a> {
            #[serde(borrow)]
            metadata: Option<&'a serde_json::value::RawValue>,
        }
        let json = self.json();
        match serde_json::from_slice::<Metadata<'_>>(&json) {
            Ok(Metadata {
                metadata: Some(raw),
            }) => json.slice_ref(raw.get().as_bytes()),
            _ => Bytes::from_static(b"{}"),
        }
    }

    /// The object as JSON.
    pub fn json(&self) -> Bytes {
        // The bytes were compressed here, so they decompress (an empty object otherwise, as
        // `value` would give for JSON that does not parse).
        lz4_flex::block::decompress_size_prepended_with_dict(&self.compressed, &self.dictionary)
            .map_or_else(|_| Bytes::from_static(b"{}"), Bytes::from)
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `metadata.namespace` (empty for cluster-scoped objects).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The uids of its owners (`metadata.ownerReferences`), sorted.
    pub fn owners(&self) -> &[Box<str>] {
        &self.owners
    }

    /// `spec.nodeName` (empty when absent).
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The value of its label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.labels[i].1)
    }
}

/// The object's `metadata.labels`, sorted by key (whatever order a JSON map keeps).
fn sorted_labels(value: &Value) -> Box<[(Box<str>, Box<str>)]> {
    let mut labels: Vec<(Box<str>, Box<str>)> = value
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
        .collect();
    labels.sort_unstable();
    labels.into_boxed_slice()
}

/// How many versions a resource's store compresses against one dictionary before it takes a
/// newer object as its dictionary: often enough to follow what its objects look like over a
/// rollout (created without a status, then with one), rarely enough that few dictionaries stay
/// alive (each is one object's JSON, a few KiB, kept while a version made with it is).
const DICTIONARY_USES: u32 = 1024;

/// A resource's compression dictionary: the JSON of one of its objects. Against it, an
/// UpgradeTask of 3 KiB compresses to about 260 bytes rather than 1.3 KiB, a Device to about
/// 50 rather than 950. It starts empty; the first version stored becomes it, and after
/// [`DICTIONARY_USES`] versions the next one does (the choice depends only on the order of
/// the writes, so a simulation compresses the same every time).
#[derive(Debug, Default)]
struct Dictionary {
    bytes: Option<Arc<[u8]>>,
    uses: u32,
}

impl Dictionary {
    /// `value` as a stored version, compressed against this dictionary, which it may replace.
    fn store(&mut self, value: &Value, rv: u64) -> Stored {
        let json = serde_json::to_vec(value).unwrap_or_default();
        let dictionary = self.bytes.clone().unwrap_or_else(|| Arc::from([]));
        let stored = Stored::compressed(value, &json, rv, dictionary);
        self.uses += 1;
        if self.bytes.is_none() || self.uses >= DICTIONARY_USES {
            self.bytes = Some(Arc::from(json));
            self.uses = 0;
        }
        stored
    }
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// As a watch event spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One entry of a resource's event log.
#[derive(Clone, Debug)]
pub(crate) struct LogEntry {
    pub rv: u64,
    /// When it was logged (the server's clock).
    pub at: Timestamp,
    pub kind: EventType,
    /// The object after the write (for a delete: as last seen, with the delete's version).
    pub object: Arc<Stored>,
    /// The object before the write, so watches with selectors can tell an object entering or
    /// leaving their selection.
    pub prev: Option<Arc<Stored>>,
}

/// Namespace (empty for cluster-scoped) and name. Shared strings: the objects' map, the label
/// index and the owner index each hold a copy of the key of every object they list, and a copy
/// shares the strings instead of allocating them again.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjKey {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl ObjKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// An object anywhere in the server.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjRef {
    pub res: ResourceId,
    pub key: ObjKey,
}

/// The objects and the event log of one resource.
#[derive(Debug)]
pub(crate) struct ResourceStore {
    pub objects: BTreeMap<ObjKey, Arc<Stored>>,
    pub log: VecDeque<LogEntry>,
    /// Events up to this version may have left the log; a watch from an older version is
    /// expired.
    pub floor: u64,
    /// The watches waiting for the next event.
    pub waiters: Waiters,
    /// The keys of the objects with each label value, by label and value: a list selecting
    /// one value (an agent's list of its own tasks) reads those objects only.
    labelled: HashMap<Box<str>, HashMap<Box<str>, BTreeSet<ObjKey>>>,
    /// The keys of the objects with each `spec.nodeName` (pods bound to a node; a Host names
    /// its node there too): a drain's list of one node's pods reads those pods only, not
    /// every pod of the cluster.
    on_node: HashMap<Box<str>, BTreeSet<ObjKey>>,
    /// What its versions are compressed against.
    dictionary: Dictionary,
}

/// The watches of one resource that wait for its next event. A watch whose selectors require
/// a name or a label value (an agent's watch of its own Host and its own tasks) waits under
/// that key and is woken only by a write of an object that has it, before or after the write;
/// any other watch is woken by every write. With one such watch per host, waking every watch on
/// every write would cost the fleet's size on each write.
#[derive(Debug)]
pub(crate) struct Waiters {
    /// Carries the version of the latest event; the watches without a key wait on it.
    pub all: watch::Sender<u64>,
    by_name: HashMap<String, Vec<Arc<Waiter>>>,
    by_label: HashMap<String, HashMap<String, Vec<Arc<Waiter>>>>,
}

/// One keyed watch's wait: woken by the events of the objects with its key, it knows which
/// events those were since it last read, so it reads only them (not every write of the
/// resource in between) and can tell whether the log lost one of them.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    /// The versions of the events for it since it last read, ascending. Written under the
    /// state's lock.
    pending: Mutex<Vec<u64>>,
    /// Wakes the watch.
    pub wake: Notify,
}

impl Waiter {
    /// Takes the versions of the unread events for it.
    pub fn take_pending(&self) -> Vec<u64> {
        std::mem::take(&mut *self.pending())
    }

    /// Whether an event for it came since it last read.
    pub fn has_pending(&self) -> bool {
        !self.pending().is_empty()
    }

    fn woken(&self, rv: u64) {
        let mut pending = self.pending();
        // A write that keeps the key wakes it twice (before and after): one event.
        if pending.last() != Some(&rv) {
            pending.push(rv);
        }
        drop(pending);
        self.wake.notify_one();
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        // Only plain pushes and takes run under it: a poisoned list is still whole.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The key a watch waits under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    /// `metadata.name` is this.
    Name(String),
    /// Label `.0` is `.1`.
    Label(String, String),
}

impl Waiters {
    fn new() -> Self {
        Self {
            all: watch::Sender::new(0),
            by_name: HashMap::new(),
            by_label: HashMap::new(),
        }
    }

    /// A wait for the events of the objects with `interest`.
    pub fn keyed(&mut self, interest: Interest) -> Arc<Waiter> {
        let waiter = Arc::new(Waiter::default());
        let list = match interest {
            Interest::Name(name) => self.by_name.entry(name).or_default(),
            Interest::Label(key, value) => self
                .by_label
                .entry(key)
                .or_default()
                .entry(value)
                .or_default(),
        };
        // Watches that ended hold no reference any more.
        list.retain(|w| Arc::strong_count(w) > 1);
        list.push(waiter.clone());
        waiter
    }

    /// Wakes the watches event `rv` (of `object`, before it `prev`) may concern.
    fn wake(&mut self, rv: u64, object: &Stored, prev: Option<&Stored>) {
        self.all.send_replace(rv);
        let versions = std::iter::once(object).chain(prev);
        for version in versions {
            if let Some(list) = self.by_name.get(version.name()) {
                list.iter().for_each(|w| w.woken(rv));
            }
            for (key, value) in version.labels.iter() {
                if let Some(list) = self.by_label.get(&**key).and_then(|v| v.get(&**value)) {
                    list.iter().for_each(|w| w.woken(rv));
                }
            }
        }
    }
}

impl ResourceStore {
    fn new() -> Self {
        Self {
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            floor: 0,
            waiters: Waiters::new(),
            labelled: HashMap::new(),
            on_node: HashMap::new(),
            dictionary: Dictionary::default(),
        }
    }

    /// The objects of `namespace` (all namespaces for `None`), in key order.
    pub fn in_namespace<'a>(
        &'a self,
        namespace: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = &'a Arc<Stored>> + 'a> {
        match namespace {
            None => Box::new(self.objects.values()),
            Some(ns) => Box::new(
                self.objects
                    .range(ObjKey::new(ns, "")..)
                    .take_while(move |(k, _)| &*k.namespace == ns)
                    .map(|(_, v)| v),
            ),
        }
    }

    /// The objects with label `key` set to `value`, in key order.
    pub fn with_label<'a>(
        &'a self,
        key: &str,
        value: &str,
    ) -> impl Iterator<Item = &'a Arc<Stored>> + 'a {
        self.labelled
            .get(key)
            .and_then(|values| values.get(value))
            .into_iter()
            .flatten()
            .filter_map(|k| self.objects.get(k))
    }

    /// The objects whose `spec.nodeName` is `node`, in key order.
    pub fn on_node<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Arc<Stored>> + 'a {
        self.on_node
            .get(node)
            .into_iter()
            .flatten()
            .filter_map(|k| self.objects.get(k))
    }

    /// Keeps the label and node indexes up to date for `key` going from `old` to `new`.
    fn relabel(&mut self, key: &ObjKey, old: Option<&Stored>, new: Option<&Stored>) {
        fn node(s: Option<&Stored>) -> Option<&str> {
            s.map(Stored::node_name).filter(|n| !n.is_empty())
        }
        let (old_node, new_node) = (node(old), node(new));
        if old_node != new_node {
            if let Some(n) = old_node
                && let Some(keys) = self.on_node.get_mut(n)
            {
                keys.remove(key);
                if keys.is_empty() {
                    self.on_node.remove(n);
                }
            }
            if let Some(n) = new_node {
                self.on_node
                    .entry(n.into())
                    .or_default()
                    .insert(key.clone());
            }
        }
        let none: &[(Box<str>, Box<str>)] = &[];
        let old = old.map_or(none, |s| &s.labels[..]);
        let new = new.map_or(none, |s| &s.labels[..]);
        if old == new {
            return;
        }
        for (k, v) in old.iter().filter(|l| !new.contains(l)) {
            if let Some(values) = self.labelled.get_mut(k) {
                if let Some(keys) = values.get_mut(v) {
                    keys.remove(key);
                    if keys.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    self.labelled.remove(k);
                }
            }
        }
        for (k, v) in new.iter().filter(|l| !old.contains(l)) {
            self.labelled
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .insert(key.clone());
        }
    }

    /// The log entries after version `cursor`, or `Err(oldest)` if some may be gone.
    pub fn entries_after(&self, cursor: u64) -> Result<Vec<LogEntry>, u64> {
        if cursor < self.floor {
            let oldest = self.log.front().map_or(self.floor + 1, |e| e.rv);
            return Err(oldest);
        }
        let start = self.log.partition_point(|e| e.rv <= cursor);
        Ok(self.log.range(start..).cloned().collect())
    }

    /// The log entries of `versions` (ascending), or `Err(oldest)` if some may be gone.
    pub fn entries_at(&self, versions: &[u64]) -> Result<Vec<LogEntry>, u64> {
        if versions.first().is_some_and(|&rv| rv <= self.floor) {
            return Err(self.log.front().map_or(self.floor + 1, |e| e.rv));
        }
        Ok(versions
            .iter()
            .filter_map(|&rv| {
                let i = self.log.partition_point(|e| e.rv < rv);
                self.log.get(i).filter(|e| e.rv == rv).cloned()
            })
            .collect())
    }
}

/// The whole mutable state, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    /// The latest resourceVersion handed out.
    pub rv: u64,
    uid_seq: u64,
    name_seq: u64,
    pub stores: Vec<ResourceStore>,
    uids: HashMap<String, ObjRef>,
    children: HashMap<String, BTreeSet<ObjRef>>,
    capacity: usize,
    /// How long a log keeps an event.
    history: SignedDuration,
    /// The time of the writes being made: the server's clock when the state was locked.
    pub clock: Timestamp,
    /// How long an Event lives after it was created.
    event_ttl: SignedDuration,
    /// Events in the order they expire: when, where, and the uid (a newer Event of the same
    /// name is not the one that expires).
    expiring: VecDeque<(Timestamp, ObjRef, String)>,
    pub totals: WriteCounts,
    pub per_object: BTreeMap<ObjectKey, WriteCounts>,
    /// The stores whose changes may change a PodDisruptionBudget's status (see `disruption`).
    disruption_inputs: Vec<ResourceId>,
    /// The namespaces in which one of those stores changed since they were last taken.
    dirty: BTreeSet<String>,
}

impl State {
    /// Empty stores for `resources` resources, each log keeping `capacity` events; Events
    /// live for `event_ttl`.
    pub fn new(resources: usize, capacity: usize, event_ttl: SignedDuration) -> Self {
        Self {
            rv: 0,
            uid_seq: 0,
            name_seq: 0,
            stores: (0..resources).map(|_| ResourceStore::new()).collect(),
            uids: HashMap::new(),
            children: HashMap::new(),
            capacity: capacity.max(1),
            history: SignedDuration::MAX,
            clock: Timestamp::UNIX_EPOCH,
            event_ttl,
            expiring: VecDeque::new(),
            totals: WriteCounts::default(),
            per_object: BTreeMap::new(),
            disruption_inputs: Vec::new(),
            dirty: BTreeSet::new(),
        }
    }

    /// Keeps each event in its log for `history` (within the capacity).
    pub fn keep_history(&mut self, history: SignedDuration) {
        self.history = history;
    }

    /// Marks the namespace of every later change to one of `stores` (see [`State::take_dirty`]).
    pub fn track_disruption_inputs(&mut self, stores: Vec<ResourceId>) {
        self.disruption_inputs = stores;
    }

    /// Whether a tracked store changed since the namespaces were last taken.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The namespaces in which a tracked store changed since the last call.
    pub fn take_dirty(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.dirty)
    }

    fn mark(&mut self, res: ResourceId, key: &ObjKey) {
        if !key.namespace.is_empty() && self.disruption_inputs.contains(&res) {
            self.dirty.insert(key.namespace.to_string());
        }
    }

    /// Marks a just-created Event to expire after the TTL, counted from `now`.
    pub fn expire_later(&mut self, at: ObjRef, stored: &Stored, now: Timestamp) {
        let when = now.saturating_add(self.event_ttl).unwrap_or(now);
        self.expiring
            .push_back((when, at, stored.uid().to_string()));
    }

    /// Deletes the Events whose TTL ran out by `now` (watches see `DELETED`), as the real API
    /// server's storage does.
    pub fn expire(&mut self, now: Timestamp) {
        while self.expiring.front().is_some_and(|(when, ..)| *when <= now) {
            let Some((_, at, uid)) = self.expiring.pop_front() else {
                break;
            };
            let Some(current) = self.get(at.res, &at.key).filter(|s| s.uid() == uid) else {
                continue;
            };
            let last = current.value();
            self.remove(at.res, &at.key, last);
        }
    }

    /// The stored object, if any.
    pub fn get(&self, res: ResourceId, key: &ObjKey) -> Option<&Arc<Stored>> {
        self.stores[res].objects.get(key)
    }

    /// A new uid, deterministic: derived from a counter.
    pub fn next_uid(&mut self) -> String {
        self.uid_seq += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.uid_seq)
    }

    /// A name for `generateName`: the prefix and five characters from a counter.
    pub fn generate_name(&mut self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.name_seq += 1;
        // splitmix64, so consecutive names do not look alike.
        let mut z = self.name_seq.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let mut suffix = String::with_capacity(5);
        for _ in 0..5 {
            suffix.push(ALPHABET[(z % ALPHABET.len() as u64) as usize] as char);
            z /= ALPHABET.len() as u64;
        }
        format!("{prefix}{suffix}")
    }

    /// The object with this uid.
    pub fn by_uid(&self, uid: &str) -> Option<&ObjRef> {
        self.uids.get(uid)
    }

    /// Whether any object names `uid` as an owner.
    pub fn has_children(&self, uid: &str) -> bool {
        self.children.get(uid).is_some_and(|set| !set.is_empty())
    }

    /// The objects that name `uid` as an owner.
    pub fn children_of(&self, uid: &str) -> Vec<ObjRef> {
        self.children
            .get(uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Takes the objects that name `uid` as an owner out of the owner index.
    pub fn take_children(&mut self, uid: &str) -> BTreeSet<ObjRef> {
        self.children.remove(uid).unwrap_or_default()
    }

    /// Stores `value` under `key` with the next resourceVersion and logs ADDED or MODIFIED.
    pub fn put(&mut self, res: ResourceId, key: ObjKey, mut value: Value) -> Arc<Stored> {
        self.rv += 1;
        let rv = self.rv;
        set_resource_version(&mut value, rv);
        let stored = Arc::new(self.stores[res].dictionary.store(&value, rv));
        let prev = self.stores[res].objects.insert(key.clone(), stored.clone());
        self.stores[res].relabel(&key, prev.as_deref(), Some(&stored));
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.mark(res, &key);
        self.reindex(&ObjRef { res, key }, prev.as_deref(), Some(&stored));
        self.log(res, kind, stored.clone(), prev);
        stored
    }

    /// Removes the object under `key`, logging DELETED with `last` (the object as last seen)
    /// at the next resourceVersion. None if there was no such object.
    pub fn remove(
        &mut self,
        res: ResourceId,
        key: &ObjKey,
        mut last: Value,
    ) -> Option<Arc<Stored>> {
        let prev = self.stores[res].objects.remove(key)?;
        self.stores[res].relabel(key, Some(&prev), None);
        self.mark(res, key);
        self.rv += 1;
        let rv = self.rv;
        set_resource_version(&mut last, rv);
        let stored = Arc::new(self.stores[res].dictionary.store(&last, rv));
        self.reindex(
            &ObjRef {
                res,
                key: key.clone(),
            },
            Some(&prev),
            None,
        );
        self.log(res, EventType::Deleted, stored.clone(), Some(prev));
        Some(stored)
    }

    fn log(
        &mut self,
        res: ResourceId,
        kind: EventType,
        object: Arc<Stored>,
        prev: Option<Arc<Stored>>,
    ) {
        let rv = object.rv;
        let store = &mut self.stores[res];
        let at = self.clock;
        store.log.push_back(LogEntry {
            rv,
            kind,
            object,
            prev,
            at,
        });
        // Compaction: the events past the capacity, and the ones older than the history.
        let oldest_kept = at.saturating_sub(self.history).unwrap_or(Timestamp::MIN);
        while store.log.len() > self.capacity
            || store.log.front().is_some_and(|e| e.at < oldest_kept)
        {
            if let Some(evicted) = store.log.pop_front() {
                store.floor = evicted.rv;
            }
        }
        if let Some(entry) = store.log.back() {
            store.waiters.wake(rv, &entry.object, entry.prev.as_deref());
        }
    }

    fn reindex(&mut self, at: &ObjRef, old: Option<&Stored>, new: Option<&Stored>) {
        let (old_uid, new_uid) = (old.map(Stored::uid), new.map(Stored::uid));
        if old_uid != new_uid
            && let Some(u) = old_uid
            && self.uids.get(u) == Some(at)
        {
            self.uids.remove(u);
        }
        if let Some(u) = new_uid.filter(|u| !u.is_empty()) {
            self.uids.insert(u.to_string(), at.clone());
        }
        let old_owners = old.map_or(&[][..], Stored::owners);
        let new_owners = new.map_or(&[][..], Stored::owners);
        for gone in old_owners.iter().filter(|o| !new_owners.contains(o)) {
            if let Some(set) = self.children.get_mut(&**gone) {
                set.remove(at);
                if set.is_empty() {
                    self.children.remove(&**gone);
                }
            }
        }
        for added in new_owners.iter().filter(|o| !old_owners.contains(o)) {
            self.children
                .entry(added.to_string())
                .or_default()
                .insert(at.clone());
        }
    }

    /// Counts a successful write in the totals and, when given, for its object.
    pub fn count(&mut self, object_key: Option<ObjectKey>, bump: impl Fn(&mut WriteCounts)) {
        bump(&mut self.totals);
        if let Some(key) = object_key {
            bump(self.per_object.entry(key).or_default());
        }
    }
}

/// The uids in an object's `metadata.ownerReferences`, sorted and without repeats.
fn owner_uids(value: &Value) -> Box<[Box<str>]> {
    let mut uids: Vec<Box<str>> = value
        .get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str).map(Box::from))
        .collect();
    uids.sort_unstable();
    uids.dedup();
    uids.into_boxed_slice()
}

fn set_resource_version(value: &mut Value, rv: u64) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn task(i: u64) -> Value {
        json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
            "metadata": {"name": format!("fleet-dp-{i:05}"), "namespace": "default",
                         "labels": {"upkeep.dev/parent": "fleet", "upkeep.dev/target": format!("dp-{i:05}")}},
            "spec": {"parent": "fleet", "parentKind": "FirmwareUpgrade", "target": format!("dp-{i:05}")},
            "status": {"code": if i.is_multiple_of(2) { "SUCCESS" } else { "UPGRADING" }, "message": format!("step {i}")},
        })
    }

    #[test]
    fn every_version_reads_back_across_dictionary_replacements() {
        let mut dictionary = Dictionary::default();
        let count = u64::from(DICTIONARY_USES) * 3 + 7;
        let stored: Vec<Stored> = (0..count).map(|i| dictionary.store(&task(i), i)).collect();
        for (i, version) in (0..count).zip(&stored) {
            assert_eq!(version.value(), task(i), "version {i}");
        }
        let dictionaries: BTreeSet<*const u8> =
            stored.iter().map(|s| s.dictionary.as_ptr()).collect();
        // The first version has none; then one per DICTIONARY_USES versions.
        assert_eq!(dictionaries.len(), 5);
        assert!(stored[0].dictionary.is_empty());
    }

    #[test]
    fn the_metadata_cut_from_the_json_is_the_objects_metadata() {
        let mut dictionary = Dictionary::default();
        dictionary.store(&task(0), 1);
        let stored = dictionary.store(&task(3), 2);
        let cut: Value = serde_json::from_slice(&stored.metadata_json()).unwrap();
        assert_eq!(cut, task(3)["metadata"]);
        let bare = Stored::new(json!({"apiVersion": "v1", "kind": "Thing"}), 3);
        assert_eq!(&bare.metadata_json()[..], b"{}");
    }

    #[test]
    fn a_dictionary_of_the_same_kind_compresses_several_times_better() {
        let mut dictionary = Dictionary::default();
        dictionary.store(&task(0), 1);
        let against = dictionary.store(&task(1), 2);
        let alone = Stored::new(task(1), 2);
        assert_eq!(against.value(), alone.value());
        assert!(
            against.compressed.len() * 3 < alone.compressed.len(),
            "{} bytes against the dictionary, {} alone",
            against.compressed.len(),
            alone.compressed.len()
        );
    }
}
