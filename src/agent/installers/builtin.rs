//! The builtin installer: `.pak` packages on a real product directory, crash-safe through the
//! journal (`journal.rs`), with a backup of every file it replaces or removes written before the
//! product is touched, an update log whose last line is the result, a history event per
//! install or uninstall, and `product.yaml` rewritten for fix and refresh packs.
//!
//! Invariants: every refusal (invalid package, not applicable, processes running, backup
//! missing, a newer package in the way, a file in the way) happens before anything in the
//! location changes; one operation runs per location at a time (an exclusive `flock` on
//! `properties/version/update/lock`); package files are streamed, never held in memory.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::journal::{Faults, Journal, Op, OpKind, Stage, State, pending};
use super::processes::processes_under;
use super::{InstallOutcome, Installer, ProductTarget};
use crate::agent::products::{
    self, BACKUP_DIR, HISTORY_DIR, INSTALLED_DIR, InstalledRecord, LOG_DIR, PRODUCT_FILE,
    ProductError, ProductFile, backup_path, record_path,
};
use crate::api::codes::PackageResult;
use crate::api::host::{HistoryAction, UpdateType};
use crate::api::patch_job::PackageType;
use crate::engine::packages::archive::Limits;
use crate::engine::packages::plan::{
    self, ComponentInfo, PackageInfo, PackageRun, Reason, Refusal,
};
use crate::pak::Package;

/// Where the builtin installer reads the time.
pub type Now = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The builtin installer.
pub struct BuiltinInstaller {
    now: Now,
    faults: Faults,
}

impl std::fmt::Debug for BuiltinInstaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinInstaller")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Default for BuiltinInstaller {
    fn default() -> Self {
        Self::new(Arc::new(Timestamp::now))
    }
}

/// A refusal or failure, before or while an operation runs.
struct Ended {
    result: Option<PackageResult>,
    reason: Reason,
    message: String,
}

impl Ended {
    fn failure(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            result: Some(PackageResult::Failure),
            reason,
            message: message.into(),
        }
    }

    fn from_refusal(r: Refusal) -> Self {
        Self {
            result: (r.reason != Reason::NotApplicable).then_some(PackageResult::Failure),
            reason: r.reason,
            message: r.message,
        }
    }

    fn outcome(self, id: &str) -> InstallOutcome {
        InstallOutcome {
            run: PackageRun {
                id: id.to_string(),
                result: self.result,
                reason: Some(self.reason),
                message: self.message,
            },
            events: Vec::new(),
            log: None,
        }
    }
}

fn failed(reason: Reason) -> impl Fn(io::Error) -> Ended {
    move |e| Ended::failure(reason, e.to_string())
}

fn product_error(e: ProductError) -> Ended {
    Ended::failure(Reason::InstallFailed, e.to_string())
}

/// The held lock of a location; released when dropped (the file descriptor closes).
struct Lock {
    _file: File,
}

fn lock(root: &Path) -> Result<Lock, Ended> {
    let dir = root.join("properties/version/update");
    fs::create_dir_all(&dir).map_err(failed(Reason::InstallFailed))?;
    let path = dir.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(failed(Reason::InstallFailed))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |_| {
            Ended::failure(
                Reason::InstallFailed,
                format!(
                    "another installer is working on {} (it holds {})",
                    root.display(),
                    path.display()
                ),
            )
        },
    )?;
    Ok(Lock { _file: file })
}

/// The name `<YYYYMMDD_HHMMSS>_<id>_<action>.<ext>` in `dir`, a second later while taken.
pub(super) fn stamped_name(
    root: &Path,
    dir: &str,
    start: Timestamp,
    id: &str,
    action: &str,
    ext: &str,
) -> String {
    let mut at = start;
    loop {
        let name = format!("{dir}/{}_{id}_{action}.{ext}", at.strftime("%Y%m%d_%H%M%S"));
        if fs::symlink_metadata(root.join(&name)).is_err() {
            return name;
        }
        at = at
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap_or(at);
    }
}

/// Refuses a path whose existing ancestors inside `root` are not plain folders (a symlink there
/// would lead the write outside the location), or which is itself not a regular file.
fn check_target(root: &Path, relative: &str) -> Result<bool, Ended> {
    let mut current = root.to_path_buf();
    let parts: Vec<&str> = relative.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        current.push(part);
        let Ok(meta) = fs::symlink_metadata(&current) else {
            return Ok(false);
        };
        let last = i + 1 == parts.len();
        let ok = if last { meta.is_file() } else { meta.is_dir() };
        if !ok {
            let what = if meta.file_type().is_symlink() {
                "a symlink"
            } else if last {
                "not a regular file"
            } else {
                "not a folder"
            };
            return Err(Ended::failure(
                Reason::InstallFailed,
                format!(
                    "{} is {what} in the product; the builtin installer changes regular files in plain folders only",
                    current.display()
                ),
            ));
        }
    }
    Ok(true)
}

/// The folders under `root` that `relative`'s parent needs and do not exist, parents first.
fn missing_dirs(root: &Path, relative: &str, out: &mut Vec<String>) {
    let parts: Vec<&str> = relative.split('/').collect();
    for end in 1..parts.len() {
        let dir = parts[..end].join("/");
        if fs::symlink_metadata(root.join(&dir)).is_err() && !out.contains(&dir) {
            out.push(dir);
        }
    }
}

fn free_space(root: &Path) -> u64 {
    rustix::fs::statvfs(root)
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
        .unwrap_or(u64::MAX)
}

fn mode_of(path: &Path) -> Option<u32> {
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

impl BuiltinInstaller {
    /// An installer reading the time from `now`.
    pub fn new(now: Now) -> Self {
        Self {
            now,
            faults: Faults::default(),
        }
    }

    /// The same installer with kill and failure points (tests).
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The kill and failure points.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    fn recover_locked(&self, root: &Path) -> Result<Option<InstallOutcome>, Ended> {
        let mut last = None;
        for (id, action) in pending(root).map_err(failed(Reason::InstallFailed))? {
            let stage = Stage::new(root, &id, action, &self.faults);
            let Some(mut journal) = stage
                .read_journal()
                .map_err(failed(Reason::InstallFailed))?
            else {
                // Never committed: nothing outside the staging folder changed.
                stage.discard().map_err(failed(Reason::InstallFailed))?;
                continue;
            };
            let note = "an earlier run was interrupted; this run";
            let outcome = match journal.state {
                State::Applying => match stage.roll_forward(&journal) {
                    Ok(()) => self.finish(&stage, &journal, Ok(&format!("{note} finished it"))),
                    Err(e) => self.undo(&stage, &mut journal, &e.to_string()),
                },
                State::RollingBack => {
                    self.undo(&stage, &mut journal, &format!("{note} rolled it back"))
                }
            };
            last = Some(outcome?);
        }
        Ok(last)
    }

    /// Rolls back after `why`, and finishes with `failure`.
    fn undo(
        &self,
        stage: &Stage<'_>,
        journal: &mut Journal,
        why: &str,
    ) -> Result<InstallOutcome, Ended> {
        if journal.state != State::RollingBack {
            journal.state = State::RollingBack;
            stage
                .write_journal(journal)
                .map_err(|e| rollback_failed(stage, why, &e))?;
            let _ = stage.log(&format!("error: {why}; rolling back"));
        }
        stage
            .roll_back(journal)
            .map_err(|e| rollback_failed(stage, why, &e))?;
        self.finish(stage, journal, Err(why))
    }

    fn finish(
        &self,
        stage: &Stage<'_>,
        journal: &Journal,
        outcome: Result<&str, &str>,
    ) -> Result<InstallOutcome, Ended> {
        let (result, reason, message) = match outcome {
            Ok(note) => (PackageResult::Success, None, note.to_string()),
            Err(why) => (
                PackageResult::Failure,
                Some(Reason::InstallFailed),
                format!("{why}; the product was rolled back"),
            ),
        };
        let events = stage
            .finish(journal, result, &message, (self.now)())
            .map_err(failed(Reason::InstallFailed))?;
        let action = match journal.action {
            HistoryAction::Install => "installed",
            HistoryAction::Uninstall => "uninstalled",
        };
        let message = match (result, message.is_empty()) {
            (PackageResult::Success, true) => action.to_string(),
            (PackageResult::Success, false) => format!("{action} ({message})"),
            _ => message,
        };
        Ok(InstallOutcome {
            run: PackageRun {
                id: journal.id.clone(),
                result: Some(result),
                reason,
                message,
            },
            events,
            log: Some(stage.root.join(&journal.log)),
        })
    }

    /// Applies a committed journal, rolling back on an error.
    fn apply(&self, stage: &Stage<'_>, mut journal: Journal) -> Result<InstallOutcome, Ended> {
        if let Err(e) = stage.commit(&journal) {
            // Not committed: nothing outside the staging folder changed.
            let _ = stage.discard();
            return Err(Ended::failure(Reason::InstallFailed, e.to_string()));
        }
        match stage.roll_forward(&journal) {
            Ok(()) => self.finish(stage, &journal, Ok("")),
            Err(e) => self.undo(stage, &mut journal, &e.to_string()),
        }
    }

    fn install_locked(
        &self,
        target: &ProductTarget,
        path: &Path,
        id: Option<&str>,
    ) -> Result<InstallOutcome, Ended> {
        let root = &target.location;
        let limits = Limits {
            max_expanded: free_space(root),
        };
        let mut package = Package::open(path, &limits)
            .map_err(|e| Ended::failure(Reason::InvalidPackage, e.to_string()))?;
        let manifest = package.manifest().clone();
        if let Some(id) = id
            && id != manifest.id
        {
            return Err(Ended::failure(
                Reason::InvalidPackage,
                format!(
                    "{}: the package is {:?}, not {id:?}",
                    path.display(),
                    manifest.id
                ),
            ));
        }
        if manifest.product != target.id {
            return Err(Ended::from_refusal(Refusal {
                reason: Reason::NotApplicable,
                message: format!(
                    "{} is for product {:?}, not {:?}",
                    manifest.id, manifest.product, target.id
                ),
            }));
        }
        let product = products::read_product(&target.id, root).map_err(product_error)?;
        let info = PackageInfo::from(&manifest);
        plan::install_applicability(Some(&product), &info).map_err(Ended::from_refusal)?;
        refuse_running(root)?;

        // Where each file goes, and what is in the way (refused before anything changes).
        let mut added = Vec::new();
        let mut replaced = Vec::new();
        let mut removed = Vec::new();
        let mut created_dirs = Vec::new();
        for (file, update_type) in manifest.files() {
            let present = check_target(root, file)?;
            let refuse = |why: &str| {
                Err(Ended::failure(
                    Reason::InstallFailed,
                    format!("{}: {file} {why}", manifest.id),
                ))
            };
            match (update_type, present) {
                (UpdateType::Add, true) => {
                    return refuse("already exists, and add needs it absent");
                }
                (UpdateType::Patch | UpdateType::Remove, false) => {
                    return refuse("does not exist, and patch and remove need it");
                }
                (UpdateType::Remove, true) => removed.push(file.to_string()),
                (_, true) => replaced.push(file.to_string()),
                (_, false) => {
                    missing_dirs(root, file, &mut created_dirs);
                    added.push(file.to_string());
                }
            }
        }

        let start = (self.now)();
        let log = stamped_name(root, LOG_DIR, start, &manifest.id, "install", "log");
        let history = stamped_name(root, HISTORY_DIR, start, &manifest.id, "install", "yaml");
        let backup = backup_path(&manifest.id);
        let pack = matches!(
            manifest.type_,
            PackageType::FixPack | PackageType::RefreshPack
        );
        let record = InstalledRecord {
            id: manifest.id.clone(),
            type_: manifest.type_,
            product: manifest.product.clone(),
            fixes: manifest.fixes.clone(),
            description: manifest.description.clone(),
            installed_at: start,
            previous_version: pack.then(|| product.version.clone()),
            version: manifest.version.clone(),
            package_file: package.file_name(),
            components: manifest.components.clone(),
            added: added.clone(),
            replaced: replaced.clone(),
            removed: removed.clone(),
            created_dirs: created_dirs.clone(),
            product_file_backed_up: pack,
            backup_name: backup.clone(),
            log_name: log.clone(),
        };
        let stage = Stage::new(root, &manifest.id, HistoryAction::Install, &self.faults);
        let staged = (|| -> io::Result<Vec<Op>> {
            for dir in [LOG_DIR, HISTORY_DIR, INSTALLED_DIR, BACKUP_DIR] {
                fs::create_dir_all(root.join(dir))?;
            }
            stage.create()?;
            stage.log(&format!(
                "upkeep builtin installer: install {} ({:?}) from {} into {} ({} {}), started {start}",
                manifest.id,
                manifest.type_,
                path.display(),
                root.display(),
                product.id,
                product.version
            ))?;
            let mut ops = vec![put(root, &backup)];
            self.stage_backup(&stage, &backup, &record, &replaced, &removed)?;
            stage.log(&format!(
                "backup: {} ({} files)",
                record.backup_name,
                replaced.len() + removed.len()
            ))?;
            for (file, update_type) in manifest.files() {
                let original = replaced.iter().chain(&removed).any(|f| f == file);
                if update_type == UpdateType::Remove {
                    ops.push(Op {
                        path: file.to_string(),
                        kind: OpKind::Delete,
                        original,
                    });
                    stage.log(&format!("remove {file}"))?;
                    continue;
                }
                let staged = stage.new_path(file);
                self.faults.point("stage a package file")?;
                if let Some(parent) = staged.parent() {
                    fs::create_dir_all(parent)?;
                }
                let mut out = BufWriter::new(File::create(&staged)?);
                package
                    .copy_file(file, &mut out)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                out.flush()?;
                drop(out);
                let mode = package
                    .mode(file)
                    .or_else(|| mode_of(&root.join(file)))
                    .unwrap_or(0o644);
                set_mode(&staged, mode)?;
                ops.push(Op {
                    path: file.to_string(),
                    kind: OpKind::Put,
                    original,
                });
                let verb = match (update_type, original) {
                    (_, false) => "add",
                    (UpdateType::Patch, true) => "patch",
                    _ => "replace",
                };
                stage.log(&format!("{verb} {file}"))?;
            }
            if let Some(version) = &manifest.version {
                let mut file = products::read_product_file(root)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                file.version = version.clone();
                self.stage_text(&stage, PRODUCT_FILE, &product_yaml(&file)?)?;
                ops.push(put(root, PRODUCT_FILE));
                stage.log(&format!("version {} -> {version}", product.version))?;
            }
            let text = serde_saphyr::to_string(&record).map_err(io::Error::other)?;
            self.stage_text(&stage, &record_path(&manifest.id), &text)?;
            ops.push(put(root, &record_path(&manifest.id)));
            Ok(ops)
        })();
        let ops = staged.map_err(|e| {
            let _ = stage.discard();
            Ended::failure(Reason::InstallFailed, e.to_string())
        })?;
        let journal = Journal {
            action: HistoryAction::Install,
            id: manifest.id.clone(),
            product: target.id.clone(),
            state: State::Applying,
            started: start,
            ops,
            created_dirs,
            remove_dirs: Vec::new(),
            log,
            history,
            components: PackageInfo::from(&manifest).components,
            primary_content: package.file_name(),
            backup,
        };
        self.apply(&stage, journal)
    }

    fn stage_text(&self, stage: &Stage<'_>, path: &str, text: &str) -> io::Result<()> {
        let staged = stage.new_path(path);
        self.faults.point("stage a file")?;
        if let Some(parent) = staged.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&staged, text)?;
        set_mode(&staged, 0o644)
    }

    /// Streams every file the install replaces or removes, the old `product.yaml` of a pack,
    /// and the record into the staged backup.
    fn stage_backup(
        &self,
        stage: &Stage<'_>,
        backup: &str,
        record: &InstalledRecord,
        replaced: &[String],
        removed: &[String],
    ) -> io::Result<()> {
        let staged = stage.new_path(backup);
        self.faults.point("stage the backup")?;
        if let Some(parent) = staged.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut zip = ZipWriter::new(BufWriter::new(File::create(&staged)?));
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(1))
            .last_modified_time(DateTime::default());
        let mut add = |name: String, source: &Path| -> io::Result<()> {
            let mut input = File::open(source)?;
            let meta = input.metadata()?;
            zip.start_file(
                name,
                options
                    .unix_permissions(meta.permissions().mode() & 0o7777)
                    .large_file(meta.len() >= u64::from(u32::MAX)),
            )
            .map_err(io::Error::other)?;
            io::copy(&mut input, &mut zip)?;
            Ok(())
        };
        for file in replaced.iter().chain(removed) {
            add(format!("files/{file}"), &stage.root.join(file))?;
        }
        if record.product_file_backed_up {
            add("product.yaml".into(), &stage.root.join(PRODUCT_FILE))?;
        }
        zip.start_file("backup.yaml", options.unix_permissions(0o644))
            .map_err(io::Error::other)?;
        zip.write_all(
            serde_saphyr::to_string(record)
                .map_err(io::Error::other)?
                .as_bytes(),
        )?;
        zip.finish().map_err(io::Error::other)?.flush()?;
        set_mode(&staged, 0o644)
    }

    fn uninstall_locked(&self, target: &ProductTarget, id: &str) -> Result<InstallOutcome, Ended> {
        let root = &target.location;
        let product = products::read_product(&target.id, root).map_err(product_error)?;
        plan::uninstall_applicability(Some(&product), &target.id, id)
            .map_err(Ended::from_refusal)?;
        let records = products::installed_records(root).map_err(product_error)?;
        let Some(record) = records.iter().find(|r| r.id == id).cloned() else {
            return Err(Ended::from_refusal(Refusal {
                reason: Reason::NotApplicable,
                message: format!("{id} is not installed on {}", target.id),
            }));
        };
        let touched: Vec<(String, BTreeSet<String>)> = records
            .iter()
            .map(|r| (r.id.clone(), r.touched()))
            .collect();
        let view: Vec<(&str, &BTreeSet<String>)> =
            touched.iter().map(|(i, t)| (i.as_str(), t)).collect();
        if let Some(newer) = plan::blocking_package(id, &view) {
            return Err(Ended::failure(
                Reason::NewerPackageInstalled,
                format!(
                    "{id} cannot be uninstalled while {newer}, installed after it, changes the same files: uninstall {newer} first"
                ),
            ));
        }
        refuse_running(root)?;
        let backup = backup_path(id);
        let backup_missing = |why: String| {
            Ended::failure(
                Reason::BackupMissing,
                format!(
                    "{id} cannot be uninstalled: its backup {}: {why}",
                    root.join(&backup).display()
                ),
            )
        };
        let file = File::open(root.join(&backup)).map_err(|e| backup_missing(e.to_string()))?;
        let mut archive =
            ZipArchive::new(BufReader::new(file)).map_err(|e| backup_missing(e.to_string()))?;
        let restore: Vec<&String> = record.replaced.iter().chain(&record.removed).collect();
        for file in &restore {
            if archive.index_for_name(&format!("files/{file}")).is_none() {
                return Err(backup_missing(format!("lacks {file}")));
            }
            check_target(root, file)?;
        }
        if record.product_file_backed_up && archive.index_for_name("product.yaml").is_none() {
            return Err(backup_missing("lacks product.yaml".into()));
        }

        let start = (self.now)();
        let log = stamped_name(root, LOG_DIR, start, id, "uninstall", "log");
        let history = stamped_name(root, HISTORY_DIR, start, id, "uninstall", "yaml");
        let stage = Stage::new(root, id, HistoryAction::Uninstall, &self.faults);
        let staged = (|| -> io::Result<Vec<Op>> {
            for dir in [LOG_DIR, HISTORY_DIR] {
                fs::create_dir_all(root.join(dir))?;
            }
            stage.create()?;
            stage.log(&format!(
                "upkeep builtin installer: uninstall {id} from {} ({} {}) using {}, started {start}",
                root.display(),
                product.id,
                product.version,
                root.join(&backup).display()
            ))?;
            let mut ops = Vec::new();
            let mut extract = |name: &str, path: &str| -> io::Result<()> {
                let staged = stage.new_path(path);
                self.faults.point("stage a restored file")?;
                if let Some(parent) = staged.parent() {
                    fs::create_dir_all(parent)?;
                }
                let mut entry = archive.by_name(name).map_err(io::Error::other)?;
                let mode = entry.unix_mode().map(|m| m & 0o7777).filter(|m| *m != 0);
                let mut out = BufWriter::new(File::create(&staged)?);
                io::copy(&mut entry, &mut out)?;
                out.flush()?;
                drop(out);
                set_mode(&staged, mode.unwrap_or(0o644))
            };
            for file in &restore {
                extract(&format!("files/{file}"), file)?;
                ops.push(put(root, file));
                stage.log(&format!("restore {file}"))?;
            }
            for file in &record.added {
                if fs::symlink_metadata(root.join(file)).is_ok() {
                    ops.push(Op {
                        path: file.clone(),
                        kind: OpKind::Delete,
                        original: true,
                    });
                    stage.log(&format!("delete {file}"))?;
                }
            }
            if record.product_file_backed_up {
                extract("product.yaml", PRODUCT_FILE)?;
                ops.push(put(root, PRODUCT_FILE));
                stage.log("restore properties/version/product.yaml")?;
            }
            for path in [record_path(id), backup.clone()] {
                ops.push(Op {
                    path,
                    kind: OpKind::Delete,
                    original: true,
                });
            }
            Ok(ops)
        })();
        let ops = staged.map_err(|e| {
            let _ = stage.discard();
            Ended::failure(Reason::InstallFailed, e.to_string())
        })?;
        let journal = Journal {
            action: HistoryAction::Uninstall,
            id: id.to_string(),
            product: target.id.clone(),
            state: State::Applying,
            started: start,
            ops,
            created_dirs: Vec::new(),
            remove_dirs: record.created_dirs.clone(),
            log,
            history,
            components: record
                .components
                .iter()
                .map(|c| ComponentInfo {
                    name: c.name.clone(),
                    update_type: c.update_type,
                })
                .collect(),
            primary_content: record.package_file.clone(),
            backup,
        };
        self.apply(&stage, journal)
    }

    /// Runs `work` under the location's lock after recovering any interrupted operation.
    /// `same` tells whether a recovered operation is the one asked for now: if it finished,
    /// its outcome is this call's.
    fn locked(
        &self,
        target: &ProductTarget,
        id: &str,
        action: HistoryAction,
        work: impl FnOnce() -> Result<InstallOutcome, Ended>,
    ) -> InstallOutcome {
        let result = (|| {
            let _lock = lock(&target.location)?;
            if let Some(recovered) = self.recover_locked(&target.location)?
                && recovered.run.id == id
                && recovered.run.result == Some(PackageResult::Success)
                && recovered.events.first().is_some_and(|e| e.action == action)
            {
                return Ok(recovered);
            }
            work()
        })();
        result.unwrap_or_else(|ended| ended.outcome(id))
    }
}

fn put(root: &Path, path: &str) -> Op {
    Op {
        path: path.to_string(),
        kind: OpKind::Put,
        original: fs::symlink_metadata(root.join(path)).is_ok(),
    }
}

fn product_yaml(file: &ProductFile) -> io::Result<String> {
    serde_saphyr::to_string(file).map_err(io::Error::other)
}

fn refuse_running(root: &Path) -> Result<(), Ended> {
    let running = processes_under(root).map_err(failed(Reason::InstallFailed))?;
    if running.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = running.iter().map(ToString::to_string).collect();
    Err(Ended::failure(
        Reason::ProcessesRunning,
        format!(
            "processes run from {}: {}; stop them (or add a pre action that does) and try again",
            root.display(),
            names.join(", ")
        ),
    ))
}

fn rollback_failed(stage: &Stage<'_>, why: &str, e: &io::Error) -> Ended {
    Ended::failure(
        Reason::InstallFailed,
        format!(
            "{why}; rolling back failed too ({e}): the journal in {} stays, and the next run of the installer on this location finishes the roll back",
            stage.dir.display()
        ),
    )
}

impl Installer for BuiltinInstaller {
    fn install(&self, target: &ProductTarget, package: &Path, id: Option<&str>) -> InstallOutcome {
        let shown_id = id.map(str::to_string).unwrap_or_else(|| {
            Package::open(
                package,
                &Limits {
                    max_expanded: u64::MAX,
                },
            )
            .map(|p| p.manifest().id.clone())
            .unwrap_or_else(|_| package.display().to_string())
        });
        self.locked(target, &shown_id, HistoryAction::Install, || {
            self.install_locked(target, package, id)
        })
    }

    fn uninstall(&self, target: &ProductTarget, id: &str) -> InstallOutcome {
        self.locked(target, id, HistoryAction::Uninstall, || {
            self.uninstall_locked(target, id)
        })
    }

    fn recover(&self, target: &ProductTarget) -> Result<Option<InstallOutcome>, String> {
        let _lock = lock(&target.location).map_err(|e| e.message)?;
        self.recover_locked(&target.location).map_err(|e| e.message)
    }
}
