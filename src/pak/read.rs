//! Opening a `.pak`: the zip directory is read and judged by the engine's archive rules, then
//! `package.yaml` (read through a 1 MiB limit) by the manifest rules, then the entries against
//! the manifest. Only then can its files be streamed out.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use zip::ZipArchive;
use zip::result::ZipError;

use crate::engine::lint::Finding;
use crate::engine::packages::archive::{
    self, ArchiveEntry, ArchiveProblem, EntryKind, FILES_DIR, Limits, MANIFEST, MAX_MANIFEST_BYTES,
};
use crate::engine::packages::manifest::PackageManifest;

/// Why a package cannot be used; every message starts with the package's path.
#[derive(Debug, thiserror::Error)]
pub enum PakError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The package file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// Not a readable zip archive.
    #[error("{path}: not a readable zip archive: {source}")]
    Zip {
        /// The package file.
        path: String,
        /// The error.
        source: ZipError,
    },
    /// An entry breaks a rule of the format.
    #[error("{path}: {problem}")]
    Archive {
        /// The package file.
        path: String,
        /// The rule it breaks.
        problem: ArchiveProblem,
    },
    /// An entry that cannot be read as a package holds it.
    #[error("{path}: entry {entry:?} {why}")]
    Entry {
        /// The package file.
        path: String,
        /// The entry.
        entry: String,
        /// What is wrong.
        why: String,
    },
    /// `package.yaml` is not YAML of the schema.
    #[error("{path}: package.yaml: {message}")]
    Yaml {
        /// The package file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// `package.yaml` breaks rules of the format.
    #[error("{path}: package.yaml: {}", findings.iter().map(|f| if f.fix.is_empty() { format!("{}: {}", f.field, f.message) } else { format!("{}: {}; fix: {}", f.field, f.message, f.fix) }).collect::<Vec<_>>().join("; "))]
    Manifest {
        /// The package file.
        path: String,
        /// Every rule broken.
        findings: Vec<Finding>,
    },
    /// The entries do not match the manifest's components.
    #[error("{path}: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Contents {
        /// The package file.
        path: String,
        /// Every mismatch.
        problems: Vec<ArchiveProblem>,
    },
}

/// A package that passed every rule of the format.
pub struct Package {
    path: PathBuf,
    archive: ZipArchive<BufReader<File>>,
    manifest: PackageManifest,
    expanded: u64,
}

impl std::fmt::Debug for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Package")
            .field("path", &self.path)
            .field("id", &self.manifest.id)
            .finish_non_exhaustive()
    }
}

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// The entries of an archive as the engine's rules see them. Entry names that are not UTF-8,
/// encrypted entries and compression methods other than deflate and none are refused here,
/// naming the entry.
pub fn entries<R: Read + io::Seek>(
    archive: &ZipArchive<R>,
    path: &str,
) -> Result<Vec<ArchiveEntry>, PakError> {
    if archive.has_duplicate_names() {
        return Err(PakError::Archive {
            path: path.to_string(),
            problem: ArchiveProblem::Duplicate("(an entry of the central directory)".into()),
        });
    }
    (0..archive.len())
        .map(|i| {
            let zip_err = |source| PakError::Zip {
                path: path.to_string(),
                source,
            };
            let entry = archive.by_index_data(i).map_err(zip_err)?;
            let name = std::str::from_utf8(entry.name_raw())
                .map_err(|_| PakError::Entry {
                    path: path.to_string(),
                    entry: String::from_utf8_lossy(entry.name_raw()).into_owned(),
                    why: "has a name that is not UTF-8".into(),
                })?
                .to_string();
            let refuse = |why: String| PakError::Entry {
                path: path.to_string(),
                entry: name.clone(),
                why,
            };
            if entry.encrypted() {
                return Err(refuse("is encrypted; packages are not".into()));
            }
            let method = entry.compression();
            if !matches!(
                method,
                zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated
            ) {
                return Err(refuse(format!(
                    "is compressed with {method:?}; packages use deflate or no compression"
                )));
            }
            let mode = entry.unix_mode().map(|m| m & S_IFMT);
            let kind = if entry.is_symlink() || mode == Some(S_IFLNK) {
                EntryKind::Symlink
            } else if name.ends_with('/') || mode == Some(S_IFDIR) {
                EntryKind::Directory
            } else if matches!(mode, None | Some(0) | Some(S_IFREG)) {
                EntryKind::File
            } else {
                EntryKind::Special
            };
            Ok(ArchiveEntry {
                name,
                kind,
                size: entry.size(),
                compressed_size: entry.compressed_size(),
            })
        })
        .collect()
}

/// Reads and checks `package.yaml` of an archive whose entries passed [`archive::check_entries`].
pub fn manifest_of<R: Read + io::Seek>(
    archive: &mut ZipArchive<R>,
    path: &str,
) -> Result<PackageManifest, PakError> {
    let mut file = archive.by_name(MANIFEST).map_err(|source| PakError::Zip {
        path: path.to_string(),
        source,
    })?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| PakError::Io {
            path: path.to_string(),
            source,
        })?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(PakError::Archive {
            path: path.to_string(),
            problem: ArchiveProblem::ManifestTooLarge {
                size: bytes.len() as u64,
            },
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| PakError::Yaml {
        path: path.to_string(),
        message: "not UTF-8 text".into(),
    })?;
    parse_manifest(&text).map_err(|message| PakError::Yaml {
        path: path.to_string(),
        message,
    })
}

/// Parses `package.yaml` text into the manifest, with a one-line message on failure.
pub(crate) fn parse_manifest(text: &str) -> Result<PackageManifest, String> {
    serde_saphyr::from_str::<PackageManifest>(text).map_err(|e| {
        let bare = e.without_snippet().to_string();
        bare.split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

impl Package {
    /// Opens the package at `path`, refusing it (naming the entry) unless it follows every rule
    /// of the format and expands to at most `limits.max_expanded` bytes.
    pub fn open(path: &Path, limits: &Limits) -> Result<Self, PakError> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| PakError::Io {
            path: shown.clone(),
            source,
        })?;
        let mut archive =
            ZipArchive::new(BufReader::new(file)).map_err(|source| PakError::Zip {
                path: shown.clone(),
                source,
            })?;
        let list = entries(&archive, &shown)?;
        archive::check_entries(&list, limits).map_err(|problem| PakError::Archive {
            path: shown.clone(),
            problem,
        })?;
        let manifest = manifest_of(&mut archive, &shown)?;
        let findings = manifest.validate();
        if !findings.is_empty() {
            return Err(PakError::Manifest {
                path: shown,
                findings,
            });
        }
        let problems = archive::check_contents(&manifest, &list);
        if !problems.is_empty() {
            return Err(PakError::Contents {
                path: shown,
                problems,
            });
        }
        let expanded = list.iter().map(|e| e.size).sum();
        Ok(Self {
            path: path.to_path_buf(),
            archive,
            manifest,
            expanded,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &PackageManifest {
        &self.manifest
    }

    /// Where the package is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The package's file name, e.g. `9.0.5-WS-WAS-FP023.pak`.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The bytes every entry expands to, as the archive states them.
    pub fn expanded_size(&self) -> u64 {
        self.expanded
    }

    /// The permission bits the archive gives the file at `relative` (under `files/`), if any.
    pub fn mode(&self, relative: &str) -> Option<u32> {
        let index = self
            .archive
            .index_for_name(&format!("{FILES_DIR}{relative}"))?;
        self.archive
            .by_index_data(index)
            .ok()
            .and_then(|e| e.unix_mode())
            .map(|m| m & 0o7777)
            .filter(|m| *m != 0)
    }

    /// Streams the file at `relative` (under `files/`) into `out`; returns the bytes written.
    /// A file that expands past its stated size, or fails its checksum, is an error.
    pub fn copy_file(&mut self, relative: &str, out: &mut dyn Write) -> Result<u64, PakError> {
        let shown = self.path.display().to_string();
        let name = format!("{FILES_DIR}{relative}");
        let mut entry = self
            .archive
            .by_name(&name)
            .map_err(|source| PakError::Zip {
                path: shown.clone(),
                source,
            })?;
        let stated = entry.size();
        let written =
            io::copy(&mut (&mut entry).take(stated.saturating_add(1)), out).map_err(|source| {
                PakError::Entry {
                    path: shown.clone(),
                    entry: name.clone(),
                    why: format!("cannot be read: {source}"),
                }
            })?;
        if written != stated {
            return Err(PakError::Entry {
                path: shown,
                entry: name,
                why: format!("expands to {written} bytes, not the {stated} its header states"),
            });
        }
        Ok(written)
    }
}
