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
//! journal says it ended. A volatile directory ([`StateDir::open_volatile`], for simulations,
//! whose crashes drop the agent and never the machine's page cache) writes the same way without
//! the fsyncs.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

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
    /// Whether writes are fsynced.
    durable: bool,
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

/// Writes `bytes` to `path` atomically, and durably when `durable`.
fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(error(dir))?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(error(&tmp))?;
    file.write_all(bytes).map_err(error(&tmp))?;
    if durable {
        file.sync_all().map_err(error(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(error(path))?;
    if !durable {
        return Ok(());
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(error(dir))
}

impl StateDir {
    /// The state directory at `root`, created when missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StateError> {
        Self::open_with(root.into(), true)
    }

    /// [`StateDir::open`] without fsyncs: for a simulated machine, whose "crash" drops the
    /// agent and never loses what the file system was given.
    pub fn open_volatile(root: impl Into<PathBuf>) -> Result<Self, StateError> {
        Self::open_with(root.into(), false)
    }

    fn open_with(root: PathBuf, durable: bool) -> Result<Self, StateError> {
        let tasks = root.join("tasks");
        std::fs::create_dir_all(&tasks).map_err(error(&tasks))?;
        Ok(Self { root, durable })
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
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError {
                path: path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Journal::default()),
            Err(e) => Err(error(&path)(e)),
        }
    }

    /// Writes the journal of `task`.
    pub fn save_journal(&self, task: &str, journal: &Journal) -> Result<(), StateError> {
        let path = self.task_dir(task).join("journal.json");
        let bytes = serde_json::to_vec_pretty(journal).map_err(|e| StateError {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomic(&path, &bytes, self.durable)
    }

    /// Records that the operation `key` of `task` begins.
    pub fn mark_started(&self, task: &str, key: &str) -> Result<(), StateError> {
        write_atomic(
            &self.op_path(task, key, "started"),
            key.as_bytes(),
            self.durable,
        )
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
        write_atomic(&path, &bytes, self.durable)
    }

    /// Where the operation `key` of `task` stands.
    pub fn op(&self, task: &str, key: &str) -> Result<OpRecord, StateError> {
        let result = self.op_path(task, key, "result");
        match std::fs::read(&result) {
            Ok(bytes) => {
                return serde_json::from_slice(&bytes)
                    .map(OpRecord::Ended)
                    .map_err(|e| StateError {
                        path: result.clone(),
                        source: io::Error::new(io::ErrorKind::InvalidData, e),
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(error(&result)(e)),
        }
        Ok(if self.op_path(task, key, "started").exists() {
            OpRecord::Started
        } else {
            OpRecord::NotStarted
        })
    }

    /// Removes everything kept for `task` (it ended and its status says so).
    pub fn forget(&self, task: &str) -> Result<(), StateError> {
        let dir = self.task_dir(task);
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
        let state = StateDir::open(dir.path()).unwrap();
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
        let again = StateDir::open(dir.path()).unwrap();
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
        assert!(!dir.path().join("tasks").join(file_name(task)).exists());
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
