//! What a product location holds, read from disk: its `properties/version/product.yaml` (id,
//! name, version), the records of its installed maintenance packages and whether their backups
//! are there, and its history of installs and uninstalls. Also the layout of those files, which
//! the builtin installer writes.
//!
//! Layout, relative to the location (docs/packages.md):
//! - `properties/version/product.yaml` — `id`, `name`, `version` (other keys are kept).
//! - `properties/version/installed/<id>.yaml` — one [`InstalledRecord`] per installed package.
//! - `properties/version/update/backup/<id>.zip` — the backup an uninstall restores from.
//! - `properties/version/history/<YYYYMMDD_HHMMSS>_<id>_<action>.yaml` — one [`HistoryFile`]
//!   per install or uninstall, its package's event first, then one per component.
//! - `logs/update/<YYYYMMDD_HHMMSS>_<id>_<action>.log` — the update logs.
//! - `properties/version/update/journal/` — the installer's work in progress (see
//!   `installers::builtin`).
//!
//! Invariant: reading never writes; a file that cannot be parsed is an error naming it, never
//! skipped silently.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use crate::api::host::{HistoryEvent, InstalledPackage, ProductStatus};
use crate::api::patch_job::PackageType;
use crate::engine::packages::manifest::Component;

/// The product file, relative to the location.
pub const PRODUCT_FILE: &str = "properties/version/product.yaml";
/// The folder of installed-package records.
pub const INSTALLED_DIR: &str = "properties/version/installed";
/// The folder of backups.
pub const BACKUP_DIR: &str = "properties/version/update/backup";
/// The folder of history files.
pub const HISTORY_DIR: &str = "properties/version/history";
/// The folder of update logs.
pub const LOG_DIR: &str = "logs/update";
/// The installer's journal folder.
pub const JOURNAL_DIR: &str = "properties/version/update/journal";

/// The record of an installed package's backup, relative to the location.
pub fn backup_path(id: &str) -> String {
    format!("{BACKUP_DIR}/{id}.zip")
}

/// The record of an installed package, relative to the location.
pub fn record_path(id: &str) -> String {
    format!("{INSTALLED_DIR}/{id}.yaml")
}

/// Why a location could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// A file is not what it should be.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The product file names another product.
    #[error(
        "{path}: the product here is {found:?}, not {expected:?}; check the product id and its location"
    )]
    IdMismatch {
        /// The product file.
        path: String,
        /// The id asked for.
        expected: String,
        /// The id the file has.
        found: String,
    },
}

/// `properties/version/product.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductFile {
    /// The product's id, e.g. `was`.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its version, e.g. `9.0.5.22`.
    pub version: String,
    /// Anything else the file holds, kept when the installer rewrites it.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// What the builtin installer records of an installed package, and keeps a copy of in its
/// backup (`backup.yaml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstalledRecord {
    /// The package id.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub type_: PackageType,
    /// The product id.
    pub product: String,
    /// The defects it fixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When the install began.
    pub installed_at: Timestamp,
    /// Fix and refresh packs: the version before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// Fix and refresh packs: the version after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The package file's name.
    pub package_file: String,
    /// The components as the package gave them.
    pub components: Vec<Component>,
    /// Files the install created (absent before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// Files it replaced or patched (their old bytes are in the backup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<String>,
    /// Files it removed (their bytes are in the backup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Folders it created for added files, parents first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created_dirs: Vec<String>,
    /// Whether the backup holds the old `product.yaml`.
    #[serde(default)]
    pub product_file_backed_up: bool,
    /// The backup's path, relative to the location.
    pub backup_name: String,
    /// The install log's path, relative to the location.
    pub log_name: String,
}

impl InstalledRecord {
    /// Every product file the install touched.
    pub fn touched(&self) -> std::collections::BTreeSet<String> {
        self.added
            .iter()
            .chain(&self.replaced)
            .chain(&self.removed)
            .cloned()
            .collect()
    }
}

/// One history file: the package's event first, then its components' events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryFile {
    /// The events.
    pub events: Vec<HistoryEvent>,
}

/// One install or uninstall in a product's history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    /// The package id.
    pub package: String,
    /// Its events: the package's first, then its components'.
    pub events: Vec<HistoryEvent>,
}

fn read_text(path: &Path) -> Result<Option<String>, ProductError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ProductError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ProductError> {
    serde_saphyr::from_str(text).map_err(|e| ProductError::Parse {
        path: path.display().to_string(),
        message: e
            .without_snippet()
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// The `.yaml` files of a folder, in name order; none when the folder does not exist.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ProductError> {
    let io_err = |source| ProductError::Io {
        path: dir.display().to_string(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err)?.path();
        if path.extension().is_some_and(|e| e == "yaml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the product file of `location`.
pub fn read_product_file(location: &Path) -> Result<ProductFile, ProductError> {
    let path = location.join(PRODUCT_FILE);
    let text = read_text(&path)?.ok_or_else(|| ProductError::Parse {
        path: path.display().to_string(),
        message:
            "is missing: a product location has properties/version/product.yaml (id, name, version)"
                .into(),
    })?;
    parse(&path, &text)
}

/// The records of the installed packages of `location`, oldest install first.
pub fn installed_records(location: &Path) -> Result<Vec<InstalledRecord>, ProductError> {
    let mut records = Vec::new();
    for path in yaml_files(&location.join(INSTALLED_DIR))? {
        let text = read_text(&path)?.unwrap_or_default();
        records.push(parse::<InstalledRecord>(&path, &text)?);
    }
    records.sort_by(|a, b| a.installed_at.cmp(&b.installed_at).then(a.id.cmp(&b.id)));
    Ok(records)
}

/// The record of one installed package, if it is installed.
pub fn installed_record(
    location: &Path,
    id: &str,
) -> Result<Option<InstalledRecord>, ProductError> {
    let path = location.join(record_path(id));
    read_text(&path)?.map(|t| parse(&path, &t)).transpose()
}

/// The product at `location` as the agent reports it. `id` is the product's id on the host; the
/// product file must name the same product.
pub fn read_product(id: &str, location: &Path) -> Result<ProductStatus, ProductError> {
    let file = read_product_file(location)?;
    if file.id != id {
        return Err(ProductError::IdMismatch {
            path: location.join(PRODUCT_FILE).display().to_string(),
            expected: id.to_string(),
            found: file.id,
        });
    }
    let packages = installed_records(location)?
        .into_iter()
        .map(|r| InstalledPackage {
            backup: location.join(backup_path(&r.id)).is_file(),
            id: r.id,
            type_: r.type_,
            installed_at: Some(Time(r.installed_at)),
            fixes: r.fixes,
            previous_version: r.previous_version,
        })
        .collect();
    Ok(ProductStatus {
        id: id.to_string(),
        name: file.name,
        version: file.version,
        location: location.display().to_string(),
        packages,
    })
}

/// The history of `location`, oldest first: one entry per install or uninstall.
pub fn read_history(location: &Path) -> Result<Vec<HistoryEntry>, ProductError> {
    let mut entries = Vec::new();
    for path in yaml_files(&location.join(HISTORY_DIR))? {
        let text = read_text(&path)?.unwrap_or_default();
        let file: HistoryFile = parse(&path, &text)?;
        let package =
            file.events
                .first()
                .map(|e| e.id.clone())
                .ok_or_else(|| ProductError::Parse {
                    path: path.display().to_string(),
                    message: "has no events".into(),
                })?;
        entries.push(HistoryEntry {
            package,
            events: file.events,
        });
    }
    entries.sort_by(|a, b| {
        let start = |e: &HistoryEntry| e.events.first().and_then(|e| e.start_time.clone());
        start(a).cmp(&start(b))
    });
    Ok(entries)
}

/// The newest `limit` events of `location`'s history, oldest of them first, as a Host's status
/// keeps them (`HISTORY_LIMIT`).
pub fn recent_events(location: &Path, limit: usize) -> Result<Vec<HistoryEvent>, ProductError> {
    let events: Vec<HistoryEvent> = read_history(location)?
        .into_iter()
        .flat_map(|e| e.events)
        .collect();
    let skip = events.len().saturating_sub(limit);
    Ok(events.into_iter().skip(skip).collect())
}
