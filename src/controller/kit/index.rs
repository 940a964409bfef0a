//! An index of UpgradeTasks by parent, fed by a watcher, so a parent's reconcile reads its own
//! tasks without scanning every task in the cluster. It keeps a compact view of each task (what
//! the rollout, the summary and the metrics read), not the whole object: at fleet scale a second
//! copy of every task's status and history would cost more memory than everything else. Tasks
//! that cannot be read (written by hand or by another version) are left out rather than stopping
//! the watch. It reads the events of the task watch the UpgradeTask controller's cache is kept
//! by (see `controller::operator`), so each task change is sent and decoded once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use jiff::Timestamp;
use kube::ResourceExt as _;
use kube::runtime::watcher;
use tokio::sync::watch;

use super::watched::Watched;
use crate::api::UpgradeTask;
use crate::api::upgrade_task::{ParentKind, TaskResult};

type ParentKey = (String, ParentKind, String);

/// What the index keeps of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskView {
    /// The task's name.
    pub name: String,
    /// Its target's name.
    pub target: String,
    /// The kind of its parent.
    pub parent_kind: ParentKind,
    /// Its current code, as stored (`None` before its first status).
    pub code: Option<String>,
    /// How it counts.
    pub result: TaskResult,
    /// When it was created (its status's `createdAt`, else the object's creation time).
    pub created_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// Its message.
    pub message: String,
    /// Whether it was granted its start (`startedAt` is set).
    pub started: bool,
    /// PatchJob tasks: the host is released (pending a reboot upkeep will not do).
    pub released: bool,
}

impl TaskView {
    fn of(task: &UpgradeTask) -> Self {
        let status = task.status.as_ref();
        Self {
            name: task.name_any(),
            target: task.spec.target.clone(),
            parent_kind: task.spec.parent_kind,
            code: status.and_then(|s| s.code.clone()),
            result: status.map(|s| s.result).unwrap_or_default(),
            created_at: status
                .and_then(|s| s.created_at.as_ref())
                .or(task.metadata.creation_timestamp.as_ref())
                .map(|t| t.0),
            finished_at: status.and_then(|s| s.finished_at.as_ref()).map(|t| t.0),
            message: status.map(|s| s.message.clone()).unwrap_or_default(),
            started: status.is_some_and(|s| s.started_at.is_some()),
            released: status
                .and_then(|s| s.patch.as_ref())
                .is_some_and(|p| p.released),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    by_parent: HashMap<ParentKey, BTreeMap<String, Arc<TaskView>>>,
    buffer: Option<Vec<(ParentKey, Arc<TaskView>)>>,
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
    pub fn of_parent(&self, namespace: &str, kind: ParentKind, parent: &str) -> Vec<Arc<TaskView>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .by_parent
            .get(&(namespace.to_string(), kind, parent.to_string()))
            .map(|tasks| tasks.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every task (for metrics).
    pub fn all(&self) -> Vec<Arc<TaskView>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .by_parent
            .values()
            .flat_map(|tasks| tasks.values().cloned())
            .collect()
    }

    /// For each parent kind with tasks: how many of its parents have a task that has not ended
    /// (for metrics: the rollouts in progress).
    pub fn unfinished_parents(&self) -> BTreeMap<ParentKind, i64> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut counts = BTreeMap::new();
        for ((_, kind, _), tasks) in &inner.by_parent {
            let unfinished = tasks.values().any(|t| t.result == TaskResult::InProgress);
            *counts.entry(*kind).or_default() += i64::from(unfinished);
        }
        counts
    }

    /// Waits until the first full listing is in.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.clone();
        // The sender lives as long as the index; an error means it is gone, and waiting is over.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// Takes in one event of the task watch.
    pub fn apply(&self, event: &watcher::Event<Watched<UpgradeTask>>) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Apply(Watched(Ok(task))) => {
                let view = Arc::new(TaskView::of(task));
                inner
                    .by_parent
                    .entry(key(task))
                    .or_default()
                    .insert(view.name.clone(), view);
            }
            watcher::Event::Delete(Watched(Ok(task))) => {
                if let Some(tasks) = inner.by_parent.get_mut(&key(task)) {
                    tasks.remove(&task.name_any());
                }
            }
            watcher::Event::Apply(Watched(Err(invalid)))
            | watcher::Event::InitApply(Watched(Err(invalid))) => {
                let name = invalid.metadata.name.as_deref().unwrap_or_default();
                tracing::warn!(task = %name, error = %invalid.error, "an UpgradeTask cannot be read; it is left out");
            }
            watcher::Event::Delete(Watched(Err(_))) => {}
            watcher::Event::Init => inner.buffer = Some(Vec::new()),
            watcher::Event::InitApply(Watched(Ok(task))) => {
                let entry = (key(task), Arc::new(TaskView::of(task)));
                inner.buffer.get_or_insert_with(Vec::new).push(entry);
            }
            watcher::Event::InitDone => {
                let mut fresh: HashMap<ParentKey, BTreeMap<String, Arc<TaskView>>> = HashMap::new();
                for (key, view) in inner.buffer.take().unwrap_or_default() {
                    fresh
                        .entry(key)
                        .or_default()
                        .insert(view.name.clone(), view);
                }
                inner.by_parent = fresh;
                drop(inner);
                self.ready_tx.send_replace(true);
            }
        }
    }
}
