//! An index of UpgradeTasks by parent, fed by a watcher, so a parent's reconcile reads its own
//! tasks without scanning every task in the cluster. Tasks that cannot be read (written by hand
//! or by another version) are left out rather than stopping the watch.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt as _};
use kube::ResourceExt as _;
use kube::core::DeserializeGuard;
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::api::UpgradeTask;
use crate::api::upgrade_task::ParentKind;

type ParentKey = (String, ParentKind, String);

#[derive(Debug, Default)]
struct Inner {
    by_parent: HashMap<ParentKey, BTreeMap<String, Arc<UpgradeTask>>>,
    buffer: Option<Vec<Arc<UpgradeTask>>>,
}

/// Tasks by (namespace, parent kind, parent name).
#[derive(Clone, Debug)]
pub struct TaskIndex {
    inner: Arc<RwLock<Inner>>,
    ready: watch::Receiver<bool>,
    ready_tx: Arc<watch::Sender<bool>>,
}

impl Default for TaskIndex {
    fn default() -> Self {
        let (ready_tx, ready) = watch::channel(false);
        Self {
            inner: Arc::default(),
            ready,
            ready_tx: Arc::new(ready_tx),
        }
    }
}

fn key(task: &UpgradeTask) -> ParentKey {
    (
        task.namespace().unwrap_or_default(),
        task.spec.parent_kind,
        task.spec.parent.clone(),
    )
}

impl TaskIndex {
    /// The tasks of one parent, ordered by name.
    pub fn of_parent(
        &self,
        namespace: &str,
        kind: ParentKind,
        parent: &str,
    ) -> Vec<Arc<UpgradeTask>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .by_parent
            .get(&(namespace.to_string(), kind, parent.to_string()))
            .map(|tasks| tasks.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every task (for metrics).
    pub fn all(&self) -> Vec<Arc<UpgradeTask>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .by_parent
            .values()
            .flat_map(|tasks| tasks.values().cloned())
            .collect()
    }

    /// Waits until the first full listing is in.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.clone();
        // The sender lives as long as the index; an error means it is gone, and waiting is over.
        let _ = ready.wait_for(|r| *r).await;
    }

    fn apply(&self, event: watcher::Event<DeserializeGuard<UpgradeTask>>) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Apply(DeserializeGuard(Ok(task))) => {
                insert(&mut inner.by_parent, Arc::new(task))
            }
            watcher::Event::Delete(DeserializeGuard(Ok(task))) => {
                if let Some(tasks) = inner.by_parent.get_mut(&key(&task)) {
                    tasks.remove(&task.name_any());
                }
            }
            watcher::Event::Apply(DeserializeGuard(Err(invalid)))
            | watcher::Event::InitApply(DeserializeGuard(Err(invalid))) => {
                let name = invalid.metadata.name.unwrap_or_default();
                tracing::warn!(task = %name, error = %invalid.error, "an UpgradeTask cannot be read; it is left out");
            }
            watcher::Event::Delete(DeserializeGuard(Err(_))) => {}
            watcher::Event::Init => inner.buffer = Some(Vec::new()),
            watcher::Event::InitApply(DeserializeGuard(Ok(task))) => inner
                .buffer
                .get_or_insert_with(Vec::new)
                .push(Arc::new(task)),
            watcher::Event::InitDone => {
                let mut fresh = HashMap::new();
                for task in inner.buffer.take().unwrap_or_default() {
                    insert(&mut fresh, task);
                }
                inner.by_parent = fresh;
                drop(inner);
                self.ready_tx.send_replace(true);
            }
        }
    }

    /// Keeps the index up to date from a task watcher; runs until the stream ends.
    pub async fn run(
        self,
        events: impl Stream<
            Item = Result<watcher::Event<DeserializeGuard<UpgradeTask>>, watcher::Error>,
        >,
    ) {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => self.apply(event),
                Err(error) => {
                    tracing::warn!(%error, "the UpgradeTask watch failed; it restarts with backoff")
                }
            }
        }
    }
}

fn insert(
    map: &mut HashMap<ParentKey, BTreeMap<String, Arc<UpgradeTask>>>,
    task: Arc<UpgradeTask>,
) {
    map.entry(key(&task))
        .or_default()
        .insert(task.name_any(), task);
}
