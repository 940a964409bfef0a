//! The agent's state directory (`--state-dir`, default `/var/lib/upkeep`): per task, the engine's
//! [`Journal`] and a record of each host-changing operation, so that a crash, a kill or the
//! reboot resumes every task without running an install, an action or a reboot twice.
//!
//! Layout: `tasks/<task key>/journal.json`, and for each operation key
//! `tasks/<task key>/ops/<operation key>.started` (written before the operation begins) and
//! `….result` (written when it ended). Names are the keys with every character outside
//! `[A-Za-z0-9._-]` replaced by `_`.
//!
//! Invariants: every write is atomic and durable (a temporary file, fsync, rename, fsync of the
//! directory), so a reader finds either the old or the new content, never a torn one; an
//! operation's `started` record is durable before the operation runs, and its `result` before the
//! journal says it ended. A simulated machine's state ([`StateDir::in_memory`]) keeps the same
//! files in a [`MemoryFiles`] the simulation holds across the agent's crashes and reboots
//! (they drop the agent, never the machine's state); fetched maintenance packages are files on
//! disk in both.

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::api::upgrade_task::PackageOutcome;
use crate::engine::patch::agent::{Journal, OpStatus};

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "the agent's state directory {path}: {source}; check that it exists and the agent may write it (--state-dir)"
)]
pub struct StateError {
    /// The file or directory.
    pub path: PathBuf,
    /// The underlying error.
    pub source: io::Error,
}

/// How an operation ended, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Recorded {
    /// It succeeded.
    Done,
    /// It failed with this message.
    Failed(String),
    /// The package manager was locked by this holder; nothing changed.
    Locked(String),
    /// A maintenance package ended so.
    Package(PackageOutcome),
}

impl Recorded {
    /// The engine's view of it.
    pub fn status(&self) -> OpStatus {
        match self {
            Self::Done => OpStatus::Done,
            Self::Failed(e) => OpStatus::Failed(e.clone()),
            Self::Locked(h) => OpStatus::Locked(h.clone()),
            Self::Package(p) => OpStatus::Package(p.clone()),
        }
    }

    /// The record of an engine status (`None` for `Running` and `Unknown`).
    pub fn of(status: &OpStatus) -> Option<Self> {
        match status {
            OpStatus::Done => Some(Self::Done),
            OpStatus::Failed(e) => Some(Self::Failed(e.clone())),
            OpStatus::Locked(h) => Some(Self::Locked(h.clone())),
            OpStatus::Package(p) => Some(Self::Package(p.clone())),
            OpStatus::Running | OpStatus::Unknown => None,
        }
    }
}

/// Where an operation stands according to its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpRecord {
    /// Never begun.
    NotStarted,
    /// Begun and never ended (it was interrupted, or it is a reboot waiting for the new boot).
    Started,
    /// Ended so.
    Ended(Recorded),
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
    files: Files,
}

/// Where a state directory's journals and records are.
#[derive(Clone, Debug)]
enum Files {
    /// On disk, written atomically and durably.
    Disk,
    /// In memory.
    Memory(MemoryFiles),
}

/// The journals and operation records of a simulated machine's state directory, by path: kept
/// by the simulation across the agent's runs on that machine.
#[derive(Clone, Debug, Default)]
pub struct MemoryFiles(Arc<Mutex<BTreeMap<PathBuf, Vec<u8>>>>);

impl MemoryFiles {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<PathBuf, Vec<u8>>) -> T) -> io::Result<T> {
        let mut files = self
            .0
            .lock()
            .map_err(|_| io::Error::other("the simulated state directory's lock is poisoned"))?;
        Ok(f(&mut files))
    }
}

fn file_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn error(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically and durably.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(error(dir))?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(error(&tmp))?;
    file.write_all(bytes).map_err(error(&tmp))?;
    file.sync_all().map_err(error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(error(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(error(dir))
}

impl StateDir {
    /// The state directory at `root`, created when missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StateError> {
        let root = root.into();
        let tasks = root.join("tasks");
        std::fs::create_dir_all(&tasks).map_err(error(&tasks))?;
        Ok(Self {
            root,
            files: Files::Disk,
        })
    }

    /// A simulated machine's state directory at `root`: its journals and records in `files`
    /// (nothing of them on disk), its fetched packages under `root`.
    pub fn in_memory(root: impl Into<PathBuf>, files: MemoryFiles) -> Self {
        Self {
            root: root.into(),
            files: Files::Memory(files),
        }
    }

    /// The content of `path`; `None` when there is no such file.
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, StateError> {
        let read = match &self.files {
            Files::Disk => match std::fs::read(path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Files::Memory(files) => files.with(|f| f.get(path).cloned()),
        };
        read.map_err(error(path))
    }

    fn write(&self, path: &Path, bytes: Vec<u8>) -> Result<(), StateError> {
        match &self.files {
            Files::Disk => write_atomic(path, &bytes),
            Files::Memory(files) => files
                .with(|f| f.insert(path.to_path_buf(), bytes))
                .map(drop)
                .map_err(error(path)),
        }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn task_dir(&self, task: &str) -> PathBuf {
        self.root.join("tasks").join(file_name(task))
    }

    fn op_path(&self, task: &str, key: &str, ext: &str) -> PathBuf {
        self.task_dir(task)
            .join("ops")
            .join(format!("{}.{ext}", file_name(key)))
    }

    /// Where the maintenance package `id` of `task` is kept once fetched.
    pub fn package_path(&self, task: &str, id: &str) -> PathBuf {
        self.task_dir(task)
            .join("packages")
            .join(format!("{}.pak", file_name(id)))
    }

    /// The journal of `task` (empty when none was written).
    pub fn journal(&self, task: &str) -> Result<Journal, StateError> {
        let path = self.task_dir(task).join("journal.json");
        match self.read(&path)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError {
                path: path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            }),
            None => Ok(Journal::default()),
        }
    }

    /// Writes the journal of `task`.
    pub fn save_journal(&self, task: &str, journal: &Journal) -> Result<(), StateError> {
        let path = self.task_dir(task).join("journal.json");
        let bytes = serde_json::to_vec_pretty(journal).map_err(|e| StateError {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        self.write(&path, bytes)
    }

    /// Records that the operation `key` of `task` begins.
    pub fn mark_started(&self, task: &str, key: &str) -> Result<(), StateError> {
        self.write(&self.op_path(task, key, "started"), key.as_bytes().to_vec())
    }

    /// Records how the operation `key` of `task` ended.
    pub fn record_result(
        &self,
        task: &str,
        key: &str,
        result: &Recorded,
    ) -> Result<(), StateError> {
        let path = self.op_path(task, key, "result");
        let bytes = serde_json::to_vec(result).map_err(|e| StateError {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        self.write(&path, bytes)
    }

    /// Where the operation `key` of `task` stands.
    pub fn op(&self, task: &str, key: &str) -> Result<OpRecord, StateError> {
        let result = self.op_path(task, key, "result");
        if let Some(bytes) = self.read(&result)? {
            return serde_json::from_slice(&bytes)
                .map(OpRecord::Ended)
                .map_err(|e| StateError {
                    path: result.clone(),
                    source: io::Error::new(io::ErrorKind::InvalidData, e),
                });
        }
        let started = self.op_path(task, key, "started");
        Ok(match &self.files {
            Files::Disk if started.exists() => OpRecord::Started,
            Files::Memory(files)
                if files
                    .with(|f| f.contains_key(&started))
                    .map_err(error(&started))? =>
            {
                OpRecord::Started
            }
            _ => OpRecord::NotStarted,
        })
    }

    /// Removes everything kept for `task` (it ended and its status says so).
    pub fn forget(&self, task: &str) -> Result<(), StateError> {
        let dir = self.task_dir(task);
        if let Files::Memory(files) = &self.files {
            files
                .with(|f| f.retain(|path, _| !path.starts_with(&dir)))
                .map_err(error(&dir))?;
        }
        // Fetched packages are on disk either way.
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(error(&dir)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::patch::agent::Op;

    #[test]
    fn journals_and_operation_records_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        survive_a_reopen(dir.path(), || StateDir::open(dir.path()).unwrap());
    }

    #[test]
    fn a_simulated_machine_keeps_them_in_memory_across_the_agents_runs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        let files = MemoryFiles::default();
        survive_a_reopen(&root, || StateDir::in_memory(&root, files.clone()));
        // Written and forgotten without a file on disk.
        assert!(!root.exists());
        let state = StateDir::in_memory(&root, files.clone());
        state.save_journal("t", &Journal::default()).unwrap();
        assert_eq!(files.with(|f| f.len()).unwrap(), 1);
        let other = StateDir::in_memory(&root, MemoryFiles::default());
        assert_eq!(other.op("t", "k").unwrap(), OpRecord::NotStarted);
    }

    /// Drives a task's records through `open()`, as an agent and the next run of it would.
    fn survive_a_reopen(root: &Path, open: impl Fn() -> StateDir) {
        let state = open();
        let task = "default/web-1-patch/uid-1";
        assert_eq!(state.journal(task).unwrap(), Journal::default());
        let journal = Journal {
            running: Some((Op::Install, format!("{task}/install"))),
            ..Default::default()
        };
        state.save_journal(task, &journal).unwrap();
        let key = format!("{task}/install");
        assert_eq!(state.op(task, &key).unwrap(), OpRecord::NotStarted);
        state.mark_started(task, &key).unwrap();
        let again = open();
        assert_eq!(again.journal(task).unwrap(), journal);
        assert_eq!(again.op(task, &key).unwrap(), OpRecord::Started);
        again
            .record_result(task, &key, &Recorded::Failed("E: broken".into()))
            .unwrap();
        assert_eq!(
            again.op(task, &key).unwrap(),
            OpRecord::Ended(Recorded::Failed("E: broken".into()))
        );
        again.forget(task).unwrap();
        assert_eq!(again.journal(task).unwrap(), Journal::default());
        assert_eq!(again.op(task, &key).unwrap(), OpRecord::NotStarted);
        assert!(!root.join("tasks").join(file_name(task)).exists());
    }

    #[test]
    fn a_torn_journal_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let path = dir.path().join("tasks/t/journal.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{").unwrap();
        let error = state.journal("t").unwrap_err().to_string();
        assert!(error.contains("journal.json"), "{error}");
    }
}
