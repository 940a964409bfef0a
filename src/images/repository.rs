//! The image repository: where firmware images live, what size they are, and (for images whose
//! names carry no version, such as Redfish images) the versions a `catalog.yaml` gives them.
//!
//! A directory repository looks like this:
//!
//! ```text
//! images/
//!   idg7519.oradco.scrypt4
//!   bios-2.4.bin
//!   catalog.yaml        # optional
//! ```
//!
//! ```yaml
//! images:
//!   - { name: bios-2.4.bin, version: "2.4", component: BIOS, sha256: 9f86d0… }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::ImageRef;
use crate::engine::firmware::observe::ImageEntry;

/// The file in a repository directory that describes its images.
pub const CATALOG_FILE: &str = "catalog.yaml";

/// Where images come from.
pub trait ImageRepository: Send + Sync {
    /// The image with this file name, if the repository has it.
    fn lookup(&self, name: &str) -> Result<Option<ImageRef>, RepositoryError>;
}

/// The repository could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The catalog is not valid YAML of the expected shape.
    #[error("{path} is not a valid catalog: {reason}")]
    Catalog {
        /// The catalog file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One entry of `catalog.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogEntry {
    /// The image's file name.
    pub name: String,
    /// The firmware version it installs.
    #[serde(default)]
    pub version: Option<String>,
    /// The component it is for (`BIOS`, `BMC`, a FirmwareInventory id).
    #[serde(default)]
    pub component: Option<String>,
    /// The SHA-256 of the file (hex); computed from the file when absent.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// The shape of `catalog.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The described images.
    #[serde(default)]
    pub images: Vec<CatalogEntry>,
}

/// A directory of image files, with an optional `catalog.yaml`.
#[derive(Debug)]
pub struct DirRepository {
    root: PathBuf,
    /// Checksums computed so far, by file name, with the size and modification time they were
    /// computed for.
    checksums: Mutex<HashMap<String, Checksum>>,
}

/// A file's SHA-256, with the size and modification time it was computed for.
type Checksum = (u64, Option<SystemTime>, String);

impl DirRepository {
    /// A repository over `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            checksums: Mutex::new(HashMap::new()),
        }
    }

    /// The repository's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn catalog(&self) -> Result<Catalog, RepositoryError> {
        let path = self.root.join(CATALOG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_saphyr::from_str(&text).map_err(|e| RepositoryError::Catalog {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog::default()),
            Err(source) => Err(RepositoryError::Io { path, source }),
        }
    }

    fn checksum(
        &self,
        name: &str,
        path: &Path,
        size: u64,
        modified: Option<SystemTime>,
    ) -> Result<String, RepositoryError> {
        if let Ok(cache) = self.checksums.lock()
            && let Some((s, m, sum)) = cache.get(name)
            && *s == size
            && *m == modified
        {
            return Ok(sum.clone());
        }
        let io = |source| RepositoryError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buffer).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        let sum = hex(&hasher.finalize());
        if let Ok(mut cache) = self.checksums.lock() {
            cache.insert(name.to_string(), (size, modified, sum.clone()));
        }
        Ok(sum)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ImageRepository for DirRepository {
    fn lookup(&self, name: &str) -> Result<Option<ImageRef>, RepositoryError> {
        let plain = !name.is_empty()
            && !name.contains(['/', '\\'])
            && name != "."
            && name != ".."
            && name != CATALOG_FILE;
        if !plain {
            return Ok(None);
        }
        let path = self.root.join(name);
        let metadata = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(RepositoryError::Io { path, source }),
        };
        let described = self.catalog()?.images.into_iter().find(|e| e.name == name);
        let size = metadata.len();
        let sha256 = match described.as_ref().and_then(|d| d.sha256.clone()) {
            Some(sum) => sum,
            None => self.checksum(name, &path, size, metadata.modified().ok())?,
        };
        Ok(Some(ImageRef {
            entry: ImageEntry {
                name: name.to_string(),
                size,
                catalog_version: described.and_then(|d| d.version),
            },
            sha256: Some(sha256),
            path: Some(path),
        }))
    }
}

/// A fixed set of images, e.g. the `images:` of a fleet file.
#[derive(Clone, Debug, Default)]
pub struct StaticRepository(BTreeMap<String, ImageRef>);

impl StaticRepository {
    /// A repository holding `images`.
    pub fn new(images: impl IntoIterator<Item = ImageRef>) -> Self {
        Self(
            images
                .into_iter()
                .map(|i| (i.entry.name.clone(), i))
                .collect(),
        )
    }
}

impl ImageRepository for StaticRepository {
    fn lookup(&self, name: &str) -> Result<Option<ImageRef>, RepositoryError> {
        Ok(self.0.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_repository_reads_sizes_checksums_and_the_catalog() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("idg7519.oradco.scrypt4"), b"firmware").unwrap();
        std::fs::write(dir.path().join("bios-2.4.bin"), b"bios").unwrap();
        std::fs::write(
            dir.path().join(CATALOG_FILE),
            "images:\n  - { name: bios-2.4.bin, version: \"2.4\", component: BIOS }\n",
        )
        .unwrap();
        let repo = DirRepository::new(dir.path());

        let appliance = repo.lookup("idg7519.oradco.scrypt4").unwrap().unwrap();
        assert_eq!(appliance.entry.size, 8);
        assert_eq!(appliance.entry.catalog_version, None);
        // sha256("firmware")
        assert_eq!(
            appliance.sha256.as_deref(),
            Some("c3bf47ea1f4a4a605470313cacb3a44f4a461f68c6faeab07e737610cb5ac835")
        );

        let bios = repo.lookup("bios-2.4.bin").unwrap().unwrap();
        assert_eq!(bios.entry.catalog_version.as_deref(), Some("2.4"));

        for absent in ["nope.bin", "../etc/passwd", CATALOG_FILE, ""] {
            assert_eq!(repo.lookup(absent).unwrap(), None, "{absent}");
        }
    }

    #[test]
    fn a_broken_catalog_is_an_error_not_an_absent_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bios.bin"), b"x").unwrap();
        std::fs::write(
            dir.path().join(CATALOG_FILE),
            "images: [ {name: bios.bin, colour: red} ]",
        )
        .unwrap();
        let err = DirRepository::new(dir.path())
            .lookup("bios.bin")
            .unwrap_err();
        assert!(err.to_string().contains("catalog"), "{err}");
    }
}
