//! The builtin installer's intent journal: how an install or uninstall changes a product
//! location so that a kill at any instant leaves it as before or as after, never half.
//!
//! Design (docs/packages.md, "Crash safety"):
//! 1. Staging: everything new is written inside the staging folder `S` =
//!    `properties/version/update/journal/<id>.<action>/`: `new/<path>` for each file the
//!    operation puts in place (package files, restored files, the backup, `product.yaml`, the
//!    installed record). Nothing outside `S` changes. A kill here leaves `S` without
//!    `journal.yaml`; recovery deletes `S`: the product is as before.
//! 2. Commit: the file system is synced, then `S/journal.yaml` (state `applying`, the list of
//!    operations) is written to a temporary name, synced and renamed into place. From here on
//!    the operation finishes.
//! 3. Apply: each operation, in order, first moves the file at its path (if it had one) to
//!    `S/aside/<path>`, then moves `S/new/<path>` to the path. Both moves are renames within
//!    one file system, and which of them happened is visible on disk, so each operation can be
//!    finished (roll forward) or undone (roll back) from any point.
//! 4. An error while applying (not a kill) sets the state `rollingBack` (journal rewritten)
//!    and undoes the operations in reverse: whatever sits in `S/aside/<path>` goes back to
//!    `<path>`, files that had no original are deleted, and folders the operation created are
//!    removed again when empty.
//! 5. Finish: the log (its last line the result) and the history event are renamed into place,
//!    the file system is synced, and `S` is deleted. Each finishing step is skipped when its
//!    result is already there, so finishing twice is finishing once.
//!
//! Recovery (before every install, uninstall, and on the agent's start) reads `S`: no journal →
//! delete `S`; `applying` → roll forward (and roll back if that fails); `rollingBack` → roll
//! back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::codes::PackageResult;
use crate::api::host::{HistoryAction, HistoryEvent};
use crate::engine::packages::plan::{ComponentInfo, EventNames, EventSubject, history_events};

use super::super::products::{HistoryFile, JOURNAL_DIR};

/// Points where a test may kill the installer or make it fail: each file system change counts
/// one step. Production runs have neither set.
#[derive(Debug, Default)]
pub struct Faults {
    kill_at: Option<u64>,
    fail_at: Option<u64>,
    count: AtomicU64,
}

impl Faults {
    /// Kill the process (SIGKILL) at step `kill_at`, and/or fail with an I/O error at step
    /// `fail_at` (steps count from 1).
    pub fn new(kill_at: Option<u64>, fail_at: Option<u64>) -> Self {
        Self {
            kill_at,
            fail_at,
            count: AtomicU64::new(0),
        }
    }

    /// The steps counted so far.
    pub fn steps(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// One step: before every change on disk.
    pub(crate) fn point(&self, what: &str) -> io::Result<()> {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if self.kill_at == Some(n) {
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
            std::process::abort();
        }
        if self.fail_at == Some(n) {
            return Err(io::Error::other(format!(
                "injected failure at step {n} ({what})"
            )));
        }
        Ok(())
    }
}

/// Whether the journal's operations are going forward or back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// Being applied: recovery rolls forward.
    Applying,
    /// Being undone: recovery rolls back.
    RollingBack,
}

/// What an operation does at its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OpKind {
    /// Puts `S/new/<path>` there.
    Put,
    /// Removes the file there.
    Delete,
}

/// One change at one path of the location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Op {
    /// The path, relative to the location.
    pub path: String,
    /// Put or delete.
    pub kind: OpKind,
    /// Whether a file was at the path when the operation was staged.
    pub original: bool,
}

/// `S/journal.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// Install or uninstall.
    pub action: HistoryAction,
    /// The package id.
    pub id: String,
    /// The product id.
    pub product: String,
    /// Forward or back.
    pub state: State,
    /// When the operation began.
    pub started: Timestamp,
    /// The changes, in order.
    pub ops: Vec<Op>,
    /// Folders created for new files (parents first): removed when empty on roll back.
    #[serde(default)]
    pub created_dirs: Vec<String>,
    /// Folders to remove when empty after applying (an uninstall's, parents first).
    #[serde(default)]
    pub remove_dirs: Vec<String>,
    /// The log's path, relative to the location.
    pub log: String,
    /// The history file's path, relative to the location.
    pub history: String,
    /// The package's components, for the history events.
    pub components: Vec<ComponentInfo>,
    /// The package file's name, for the history events.
    pub primary_content: String,
    /// The backup's path, relative to the location.
    pub backup: String,
}

/// The staging folder of one operation on one location.
pub struct Stage<'a> {
    /// The product location.
    pub root: PathBuf,
    /// `S`.
    pub dir: PathBuf,
    /// Kill and failure points.
    pub faults: &'a Faults,
}

fn io_context(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Renames `from` to `to`, creating `to`'s parent folders.
fn rename(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|e| io_context(parent, e))?;
    }
    fs::rename(from, to).map_err(|e| io_context(from, e))
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Syncs the file system that holds `path` (one call instead of a sync per file).
pub fn sync(path: &Path) -> io::Result<()> {
    let dir = File::open(path).map_err(|e| io_context(path, e))?;
    rustix::fs::syncfs(&dir).map_err(|e| io_context(path, e.into()))
}

impl<'a> Stage<'a> {
    /// The staging folder for `id` and `action` in `root`.
    pub fn new(root: &Path, id: &str, action: HistoryAction, faults: &'a Faults) -> Self {
        let action = match action {
            HistoryAction::Install => "install",
            HistoryAction::Uninstall => "uninstall",
        };
        Self {
            root: root.to_path_buf(),
            dir: root.join(JOURNAL_DIR).join(format!("{id}.{action}")),
            faults,
        }
    }

    /// Where the new file for `path` is staged.
    pub fn new_path(&self, path: &str) -> PathBuf {
        self.dir.join("new").join(path)
    }

    fn aside(&self, path: &str) -> PathBuf {
        self.dir.join("aside").join(path)
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.yaml")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// Creates the staging folder (empty).
    pub fn create(&self) -> io::Result<()> {
        self.faults.point("create the staging folder")?;
        if exists(&self.dir) {
            fs::remove_dir_all(&self.dir).map_err(|e| io_context(&self.dir, e))?;
        }
        fs::create_dir_all(self.dir.join("new")).map_err(|e| io_context(&self.dir, e))
    }

    /// Appends a line to the staged log.
    pub fn log(&self, line: &str) -> io::Result<()> {
        let path = self.log_path();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_context(&path, e))?;
        writeln!(file, "{line}").map_err(|e| io_context(&path, e))
    }

    /// Writes the journal atomically (temporary file, sync, rename, sync of the folder).
    pub fn write_journal(&self, journal: &Journal) -> io::Result<()> {
        let text = serde_saphyr::to_string(journal).map_err(io::Error::other)?;
        let tmp = self.dir.join("journal.yaml.tmp");
        self.faults.point("write the journal")?;
        let mut file = File::create(&tmp).map_err(|e| io_context(&tmp, e))?;
        file.write_all(text.as_bytes())
            .map_err(|e| io_context(&tmp, e))?;
        file.sync_all().map_err(|e| io_context(&tmp, e))?;
        self.faults.point("commit the journal")?;
        fs::rename(&tmp, self.journal_path()).map_err(|e| io_context(&tmp, e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_context(&self.dir, e))
    }

    /// Reads the journal, if the operation was committed.
    pub fn read_journal(&self) -> io::Result<Option<Journal>> {
        let path = self.journal_path();
        match fs::read_to_string(&path) {
            Ok(text) => serde_saphyr::from_str(&text)
                .map(Some)
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_context(&path, e)),
        }
    }

    /// Commits: syncs what was staged, then writes the journal in state `applying`.
    pub fn commit(&self, journal: &Journal) -> io::Result<()> {
        self.faults.point("sync the staged files")?;
        sync(&self.dir)?;
        self.write_journal(journal)
    }

    /// Finishes every operation of the journal, from wherever a previous run stopped.
    pub fn roll_forward(&self, journal: &Journal) -> io::Result<()> {
        for op in &journal.ops {
            let target = self.root.join(&op.path);
            let aside = self.aside(&op.path);
            let new = self.new_path(&op.path);
            let moved_aside = exists(&aside);
            let placed = op.kind == OpKind::Put && !exists(&new);
            if op.original && !moved_aside && !placed {
                self.faults.point("set the old file aside")?;
                rename(&target, &aside)?;
            }
            if op.kind == OpKind::Put && exists(&new) {
                self.faults.point("put the new file in place")?;
                rename(&new, &target)?;
            }
        }
        for dir in journal.remove_dirs.iter().rev() {
            self.faults.point("remove an emptied folder")?;
            remove_empty_dir(&self.root.join(dir))?;
        }
        Ok(())
    }

    /// Undoes every operation of the journal, from wherever a previous run stopped.
    pub fn roll_back(&self, journal: &Journal) -> io::Result<()> {
        for op in journal.ops.iter().rev() {
            let target = self.root.join(&op.path);
            let aside = self.aside(&op.path);
            if exists(&aside) {
                self.faults.point("put the old file back")?;
                rename(&aside, &target)?;
            } else if !op.original && op.kind == OpKind::Put && !exists(&self.new_path(&op.path)) {
                // Placed, with nothing before it: the file goes.
                self.faults.point("remove an added file")?;
                match fs::remove_file(&target) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(io_context(&target, e));
                    }
                    _ => {}
                }
            }
        }
        for dir in journal.created_dirs.iter().rev() {
            self.faults.point("remove a created folder")?;
            remove_empty_dir(&self.root.join(dir))?;
        }
        Ok(())
    }

    /// Writes the log (result on its last line) and the history event, then deletes the
    /// staging folder. Returns the events.
    pub fn finish(
        &self,
        journal: &Journal,
        result: PackageResult,
        message: &str,
        end: Timestamp,
    ) -> io::Result<Vec<HistoryEvent>> {
        let names = EventNames {
            primary_content: journal.primary_content.clone(),
            log_name: self.root.join(&journal.log).display().to_string(),
            backup_name: self.root.join(&journal.backup).display().to_string(),
        };
        let subject = EventSubject {
            product: &journal.product,
            id: &journal.id,
            components: &journal.components,
        };
        let events = history_events(
            subject,
            journal.action,
            result,
            &names,
            journal.started,
            end,
        );
        let log = self.root.join(&journal.log);
        if exists(&self.log_path()) {
            self.faults.point("write the log's result")?;
            if !message.is_empty() {
                self.log(message)?;
            }
            self.log(&format!("result: {result}"))?;
            self.faults.point("put the log in place")?;
            rename(&self.log_path(), &log)?;
        }
        let history = self.root.join(&journal.history);
        if !exists(&history) {
            let text = serde_saphyr::to_string(&HistoryFile {
                events: events.clone(),
            })
            .map_err(io::Error::other)?;
            let tmp = self.dir.join("history.yaml");
            self.faults.point("write the history event")?;
            fs::write(&tmp, text).map_err(|e| io_context(&tmp, e))?;
            self.faults.point("put the history event in place")?;
            rename(&tmp, &history)?;
        }
        self.faults.point("sync the location")?;
        sync(&self.root)?;
        self.discard()?;
        Ok(events)
    }

    /// Deletes the staging folder.
    pub fn discard(&self) -> io::Result<()> {
        self.faults.point("delete the staging folder")?;
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_context(&self.dir, e)),
            _ => Ok(()),
        }
    }
}

fn remove_empty_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(io_context(dir, e)),
    }
}

/// The staging folders present in `root` (at most one, unless an older run left more).
pub fn pending(root: &Path) -> io::Result<Vec<(String, HistoryAction)>> {
    let dir = root.join(JOURNAL_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_context(&dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let name = entry.map_err(|e| io_context(&dir, e))?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(".install") {
            found.push((id.to_string(), HistoryAction::Install));
        } else if let Some(id) = name.strip_suffix(".uninstall") {
            found.push((id.to_string(), HistoryAction::Uninstall));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}
