//! Watch: a stream of newline-delimited JSON events read from a resource's event log.
//!
//! A watch keeps a cursor (the version it has delivered up to) and reads the log after it, so
//! no per-watch queue exists and fan-out costs one log read per woken watch. It subscribes to
//! the resource's waiters under the same lock that reads the log, so no event falls in a gap.
//! A watch whose selectors require a name or a label value waits under that key
//! ([`super::store::Waiters`]) and is woken only by the writes of objects that have it; its
//! cursor then lags behind writes it would skip, it reads only the log entries of the writes
//! it was woken for (not every write since its last read), and the log losing the others is no
//! reason to expire it (only losing one of its own is).
//! A watch whose cursor is older than the log retains gets an `ERROR` event with a 410
//! `Expired` `Status` (HTTP stays 200), as kube's watcher expects, and ends. Bookmarks go out
//! every bookmark interval of (virtual) time when asked for; the stream ends after
//! `timeoutSeconds` of (virtual) time, or when the client drops it. Waiting costs nothing: the
//! stream sleeps on the notifier and two timers, so paused-time runtimes advance freely. Each
//! chunk of events is exactly its size and followed by an empty chunk, so a reader that keeps
//! its last chunk does not keep the events it has read.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::Stream;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::Shared;
use super::render::{Format, Renderer};
use super::resources::ResourceId;
use super::selector::{FieldSelector, LabelSelector, interest, selects};
use super::status::ApiError;
use super::store::{EventType, LogEntry, Stored, Waiter};

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// `resourceVersion` unset or `0`: synthetic `ADDED` events for the current objects, then
    /// changes.
    Current,
    /// Changes after this version.
    After(u64),
}

/// A watch request.
pub(crate) struct WatchRequest {
    /// The store the events are read from.
    pub res: ResourceId,
    /// The resource of the URL, whose form the objects are rendered in.
    pub view: ResourceId,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub start: Start,
    /// `sendInitialEvents=true`: the current objects first, then a bookmark marked
    /// `k8s.io/initial-events-end`.
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
    pub api_version: String,
    pub format: Format,
    /// Whether the server's clock may be read where the stream runs.
    pub live_clock: bool,
}

impl WatchRequest {
    fn matches(&self, object: &Stored) -> bool {
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != object.namespace())
        {
            return false;
        }
        selects(&self.labels, &self.fields, object)
    }

    /// The event a selecting watch sees for a log entry: an object entering the selection is
    /// `ADDED`, one leaving it `DELETED`.
    fn event_for<'e>(&self, entry: &'e LogEntry) -> Option<(EventType, &'e Stored)> {
        let now = self.matches(&entry.object);
        let before = entry
            .prev
            .as_ref()
            .map(|p| self.matches(p))
            .unwrap_or(false);
        let kind = match entry.kind {
            EventType::Added => now.then_some(EventType::Added)?,
            EventType::Deleted => now.then_some(EventType::Deleted)?,
            EventType::Modified => match (before, now) {
                (true, true) => EventType::Modified,
                (false, true) => EventType::Added,
                (true, false) => EventType::Deleted,
                (false, false) => return None,
            },
        };
        Some((kind, &entry.object))
    }
}

/// Why a waiting watch woke up.
enum Wake {
    Changed,
    Bookmark,
    Closed,
}

enum Phase {
    Start,
    Live,
    Done,
}

/// How a subscribed watch waits for the next event.
enum Wait {
    /// Woken by every write of the resource.
    All(watch::Receiver<u64>),
    /// Woken by the writes of objects with its key.
    Keyed(Arc<Waiter>),
}

impl Wait {
    /// Waits for the next event; `false` when no more can come.
    async fn changed(&mut self) -> bool {
        match self {
            Self::All(rx) => rx.changed().await.is_ok(),
            Self::Keyed(waiter) => {
                waiter.wake.notified().await;
                true
            }
        }
    }
}

struct Watch {
    shared: Arc<Shared>,
    req: WatchRequest,
    cursor: u64,
    /// The version when it subscribed: a keyed watch knows of the events for it after this.
    subscribed_at: u64,
    wait: Option<Wait>,
    /// Fires at the end of the watch's timeout.
    deadline: Pin<Box<Sleep>>,
    /// Fires when the next bookmark is due.
    bookmark: Pin<Box<Sleep>>,
    phase: Phase,
}

/// The event stream of a watch request, as chunks of whole lines.
pub(crate) fn stream(shared: Arc<Shared>, req: WatchRequest) -> impl Stream<Item = Bytes> + Send {
    let now = Instant::now();
    // A century is forever for a watch, and keeps `Instant` arithmetic from overflowing.
    let forever = Duration::from_secs(100 * 365 * 24 * 3600);
    let interval = shared.bookmark_interval;
    let watch = Watch {
        deadline: Box::pin(tokio::time::sleep_until(now + req.timeout.min(forever))),
        bookmark: Box::pin(tokio::time::sleep_until(now + interval.min(forever))),
        shared,
        req,
        cursor: 0,
        subscribed_at: 0,
        wait: None,
        phase: Phase::Start,
    };
    // Each chunk is followed by an empty one. A reader that keeps its last chunk until the next
    // arrives (tokio-util's `StreamReader`, under kube's watch, does) then drops the events it
    // has read as soon as it asks for more, instead of keeping them (whole objects) alive for
    // as long as the watch is quiet: at fleet scale, one object per simulated agent.
    futures::stream::unfold((watch, false), |(mut w, sent)| async move {
        if sent {
            return Some((Bytes::new(), (w, false)));
        }
        let chunk = w.next_chunk().await?;
        Some((chunk, (w, true)))
    })
}

/// What one read of the store gave.
enum Read {
    Events(Vec<LogEntry>),
    Initial(Vec<Arc<Stored>>),
    Expired(String),
}

impl Watch {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Start => {
                    self.phase = Phase::Live;
                    match self.start() {
                        Read::Expired(message) => {
                            self.phase = Phase::Done;
                            return Some(error_line(&ApiError::expired(message)));
                        }
                        Read::Initial(objects) => {
                            let mut out = BytesMut::new();
                            let renderer = self.renderer();
                            for object in &objects {
                                push_event(
                                    &mut out,
                                    EventType::Added.as_str(),
                                    &renderer.object(object),
                                );
                            }
                            if self.req.send_initial_events {
                                out.put_slice(&self.bookmark_line(true));
                            }
                            if !out.is_empty() {
                                return Some(out.freeze());
                            }
                        }
                        Read::Events(_) => {}
                    }
                }
                Phase::Live => {
                    if let Some(Wait::All(rx)) = self.wait.as_mut() {
                        rx.borrow_and_update();
                    }
                    match self.read() {
                        Read::Expired(message) => {
                            self.phase = Phase::Done;
                            return Some(error_line(&ApiError::expired(message)));
                        }
                        Read::Events(entries) => {
                            if let Some(chunk) = self.render(&entries) {
                                return Some(chunk);
                            }
                        }
                        Read::Initial(_) => {}
                    }
                    let Some(wait) = self.wait.as_mut() else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    let bookmarks = self.req.bookmarks;
                    let wake = tokio::select! {
                        open = wait.changed() => if open { Wake::Changed } else { Wake::Closed },
                        () = self.bookmark.as_mut(), if bookmarks => Wake::Bookmark,
                        () = self.deadline.as_mut() => Wake::Closed,
                    };
                    match wake {
                        Wake::Changed => {}
                        Wake::Closed => self.phase = Phase::Done,
                        Wake::Bookmark => {
                            let next = self.bookmark.deadline() + self.shared.bookmark_interval;
                            self.bookmark.as_mut().reset(next);
                            self.catch_up();
                            return Some(self.bookmark_line(false));
                        }
                    }
                }
            }
        }
    }

    /// Subscribes and reads the starting point, under one lock.
    fn start(&mut self) -> Read {
        let mut state = self.shared.lock();
        let store = &mut state.stores[self.req.res];
        self.wait = Some(match interest(&self.req.labels, &self.req.fields) {
            Some(key) => Wait::Keyed(store.waiters.keyed(key)),
            None => Wait::All(store.waiters.all.subscribe()),
        });
        self.subscribed_at = state.rv;
        let store = &state.stores[self.req.res];
        let initial = self.req.send_initial_events || self.req.start == Start::Current;
        if initial {
            self.cursor = state.rv;
            let namespace = self.req.namespace.as_deref();
            let objects = store
                .in_namespace(namespace)
                .filter(|s| self.req.matches(s))
                .cloned()
                .collect();
            return Read::Initial(objects);
        }
        let Start::After(rv) = self.req.start else {
            return Read::Events(Vec::new());
        };
        if rv < store.floor {
            let oldest = store.log.front().map_or(store.floor + 1, |e| e.rv);
            return Read::Expired(format!("too old resource version: {rv} ({})", oldest - 1));
        }
        self.cursor = rv;
        Read::Events(Vec::new())
    }

    /// Reads the log after the cursor and moves the cursor to the present.
    fn read(&mut self) -> Read {
        let state = self.shared.lock();
        let store = &state.stores[self.req.res];
        let entries = match &self.wait {
            // Since it subscribed, a keyed watch knows the events for it after its cursor: it
            // reads only those (a watch woken for one object of a fleet reads that object's
            // events, not every write since its last read). Only an event for it that left the
            // log expires it. Before, it reads the whole log from its cursor, which holds them.
            Some(Wait::Keyed(waiter)) => {
                let mut pending = waiter.take_pending();
                if self.cursor >= self.subscribed_at {
                    pending.retain(|&rv| rv > self.cursor);
                    store.entries_at(&pending)
                } else {
                    store.entries_after(self.cursor)
                }
            }
            None | Some(Wait::All(_)) => store.entries_after(self.cursor),
        };
        match entries {
            Ok(entries) => {
                self.cursor = self.cursor.max(state.rv);
                Read::Events(entries)
            }
            Err(oldest) => Read::Expired(format!(
                "too old resource version: {} ({})",
                self.cursor,
                oldest - 1
            )),
        }
    }

    /// Moves a keyed watch's cursor to the present when no event for it is unread, so its
    /// bookmark says how far it is current.
    fn catch_up(&mut self) {
        if let Some(Wait::Keyed(waiter)) = &self.wait {
            let state = self.shared.lock();
            if self.cursor >= self.subscribed_at && !waiter.has_pending() {
                self.cursor = self.cursor.max(state.rv);
            }
        }
    }

    fn renderer(&self) -> Renderer<'_> {
        Renderer {
            info: self.shared.registry.get(self.req.view),
            api_version: self.req.api_version.clone(),
            format: self.req.format,
            now: self.shared.now(self.req.live_clock),
        }
    }

    fn render(&self, entries: &[LogEntry]) -> Option<Bytes> {
        let renderer = self.renderer();
        let events: Vec<(EventType, Bytes)> = entries
            .iter()
            .filter_map(|entry| self.req.event_for(entry))
            .map(|(kind, object)| (kind, renderer.object(object)))
            .collect();
        if events.is_empty() {
            return None;
        }
        // Sized exactly: the reader may keep the chunk a while (see `stream`).
        let size = events
            .iter()
            .map(|(kind, object)| event_size(kind.as_str(), object))
            .sum();
        let mut out = BytesMut::with_capacity(size);
        for (kind, object) in &events {
            push_event(&mut out, kind.as_str(), object);
        }
        Some(out.freeze())
    }

    fn bookmark_line(&self, initial_end: bool) -> Bytes {
        let info = self.shared.registry.get(self.req.view);
        let mut metadata = json!({"resourceVersion": self.cursor.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (api_version, kind) = match self.req.format {
            Format::Full => (self.req.api_version.clone(), info.kind.clone()),
            Format::Metadata => ("meta.k8s.io/v1".into(), "PartialObjectMetadata".into()),
            Format::Table { .. } => ("meta.k8s.io/v1".into(), "Table".into()),
        };
        let object = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
        let mut out = BytesMut::new();
        push_event(
            &mut out,
            "BOOKMARK",
            &serde_json::to_vec(&object).unwrap_or_default(),
        );
        out.freeze()
    }
}

/// The length of the line `push_event` writes.
fn event_size(kind: &str, object: &[u8]) -> usize {
    EVENT_FRAMING.len() + kind.len() + object.len()
}

/// The bytes of an event's line around its type and object.
const EVENT_FRAMING: &str = "{\"type\":\"\",\"object\":}\n";

fn push_event(out: &mut BytesMut, kind: &str, object: &[u8]) {
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
}

fn error_line(error: &ApiError) -> Bytes {
    let mut out = BytesMut::new();
    push_event(
        &mut out,
        "ERROR",
        &serde_json::to_vec(&error.to_status()).unwrap_or_default(),
    );
    out.freeze()
}
