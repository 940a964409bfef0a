//! The rules a `.pak` archive follows, decided on its list of entries (names, kinds, sizes) so
//! that a package is refused before a single byte of it is extracted.
//!
//! Invariants: an accepted archive has `package.yaml` at its root (at most
//! [`MAX_MANIFEST_BYTES`]) and otherwise only entries under `files/`; every entry name is a
//! relative path that stays inside; no entry is a symlink, device or other special file; the
//! whole archive expands to at most [`Limits::max_expanded`] bytes and at most
//! [`MAX_RATIO`] times its compressed size; and (with the manifest) every file a component
//! adds, replaces or patches is carried, no `remove` file is, and nothing else is.

use std::collections::BTreeSet;

use super::manifest::{PackageManifest, PathProblem, check_relative_path};

/// The name of the manifest at the archive's root.
pub const MANIFEST: &str = "package.yaml";

/// The folder of the archive that holds the new files, at their paths in the product.
pub const FILES_DIR: &str = "files/";

/// The largest `package.yaml` accepted: 1 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The largest compression ratio accepted (expanded size over compressed size, over the whole
/// archive): beyond it the archive is taken for a zip bomb.
pub const MAX_RATIO: u64 = 1000;

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A device, FIFO, socket or other special file.
    Special,
}

/// One entry of an archive, as its directory describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The entry's name, e.g. `files/lib/runtime.jar` (directories end with `/`).
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its size when expanded, as the archive states it.
    pub size: u64,
    /// Its size in the archive.
    pub compressed_size: u64,
}

/// How far an archive may expand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes all entries together may expand to (the free space of the product
    /// location when installing).
    pub max_expanded: u64,
}

/// Why an archive is refused; every variant names the entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveProblem {
    /// An entry's name is not a safe relative path.
    #[error("entry {entry:?}: {problem}")]
    UnsafePath {
        /// The entry.
        entry: String,
        /// What is wrong with its name.
        problem: PathProblem,
    },
    /// A symlink or special file.
    #[error("entry {entry:?} is a {kind}; a package holds regular files and directories only")]
    NotARegularFile {
        /// The entry.
        entry: String,
        /// `symlink` or `special file`.
        kind: &'static str,
    },
    /// Outside `package.yaml` and `files/`.
    #[error("entry {0:?} is neither package.yaml nor under files/")]
    Stray(String),
    /// Two entries with one name.
    #[error("entry {0:?} appears twice")]
    Duplicate(String),
    /// No manifest.
    #[error("the archive has no package.yaml at its root")]
    NoManifest,
    /// The manifest is too large.
    #[error("entry \"package.yaml\" is {size} bytes, more than the {MAX_MANIFEST_BYTES} allowed")]
    ManifestTooLarge {
        /// Its stated size.
        size: u64,
    },
    /// A zip bomb by ratio.
    #[error(
        "the archive expands {expanded} bytes from {compressed} ({ratio}:1), more than {MAX_RATIO}:1; largest entry {largest:?}"
    )]
    Ratio {
        /// Bytes expanded.
        expanded: u64,
        /// Bytes compressed.
        compressed: u64,
        /// The ratio, rounded down.
        ratio: u64,
        /// The entry that expands most.
        largest: String,
    },
    /// Expands past the space there is.
    #[error(
        "the archive expands to {expanded} bytes, more than the {limit} bytes free; largest entry {largest:?}"
    )]
    TooLarge {
        /// Bytes expanded.
        expanded: u64,
        /// The limit.
        limit: u64,
        /// The entry that expands most.
        largest: String,
    },
    /// A file a component needs is not carried.
    #[error("entry \"files/{0}\" is missing: a component adds, replaces or patches {0:?}")]
    Missing(String),
    /// A `remove` file is carried.
    #[error("entry \"files/{0}\" is carried, but its component removes {0:?}")]
    CarriedRemoval(String),
    /// A carried file no component names.
    #[error("entry {0:?} is named by no component")]
    Unlisted(String),
    /// A carried file is a directory.
    #[error("entry \"files/{0}\" is a directory, but a component names it as a file")]
    DirectoryForFile(String),
}

/// Checks the entries of an archive before its manifest is read: names, kinds, the manifest's
/// size, the compression ratio and the expanded size. The first problem found is returned.
pub fn check_entries(entries: &[ArchiveEntry], limits: &Limits) -> Result<(), ArchiveProblem> {
    let mut names = BTreeSet::new();
    let mut manifest = None;
    for entry in entries {
        let name = entry.name.strip_suffix('/').unwrap_or(&entry.name);
        check_relative_path(name).map_err(|problem| ArchiveProblem::UnsafePath {
            entry: entry.name.clone(),
            problem,
        })?;
        match entry.kind {
            EntryKind::Symlink => {
                return Err(ArchiveProblem::NotARegularFile {
                    entry: entry.name.clone(),
                    kind: "symlink",
                });
            }
            EntryKind::Special => {
                return Err(ArchiveProblem::NotARegularFile {
                    entry: entry.name.clone(),
                    kind: "special file",
                });
            }
            EntryKind::File | EntryKind::Directory => {}
        }
        if !names.insert(name) {
            return Err(ArchiveProblem::Duplicate(entry.name.clone()));
        }
        if name == MANIFEST && entry.kind == EntryKind::File {
            manifest = Some(entry);
        } else if name != FILES_DIR.trim_end_matches('/') && !entry.name.starts_with(FILES_DIR) {
            return Err(ArchiveProblem::Stray(entry.name.clone()));
        }
    }
    let manifest = manifest.ok_or(ArchiveProblem::NoManifest)?;
    if manifest.size > MAX_MANIFEST_BYTES {
        return Err(ArchiveProblem::ManifestTooLarge {
            size: manifest.size,
        });
    }
    let expanded = entries
        .iter()
        .map(|e| e.size)
        .fold(0u64, u64::saturating_add);
    let compressed = entries
        .iter()
        .map(|e| e.compressed_size)
        .fold(0u64, u64::saturating_add);
    let largest = || {
        entries
            .iter()
            .max_by_key(|e| e.size)
            .map(|e| e.name.clone())
            .unwrap_or_default()
    };
    if expanded > compressed.max(1).saturating_mul(MAX_RATIO) {
        return Err(ArchiveProblem::Ratio {
            expanded,
            compressed,
            ratio: expanded / compressed.max(1),
            largest: largest(),
        });
    }
    if expanded > limits.max_expanded {
        return Err(ArchiveProblem::TooLarge {
            expanded,
            limit: limits.max_expanded,
            largest: largest(),
        });
    }
    Ok(())
}

/// Checks the entries against a (valid) manifest: every file a component adds, replaces or
/// patches is carried as a regular file under `files/`, no removed file is, and nothing else
/// is. Directory entries are allowed and ignored.
pub fn check_contents(manifest: &PackageManifest, entries: &[ArchiveEntry]) -> Vec<ArchiveProblem> {
    let carried: BTreeSet<&str> = manifest.carried_files().collect();
    let removed: BTreeSet<&str> = manifest
        .files()
        .filter(|(_, t)| !carried_type(*t))
        .map(|(f, _)| f)
        .collect();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in entries {
        let Some(path) = entry.name.strip_prefix(FILES_DIR) else {
            continue;
        };
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            continue;
        }
        match entry.kind {
            EntryKind::Directory if carried.contains(path) => {
                problems.push(ArchiveProblem::DirectoryForFile(path.to_string()));
            }
            EntryKind::Directory => {}
            _ if removed.contains(path) => {
                problems.push(ArchiveProblem::CarriedRemoval(path.to_string()));
            }
            _ if carried.contains(path) => {
                seen.insert(path);
            }
            _ => problems.push(ArchiveProblem::Unlisted(entry.name.clone())),
        }
    }
    problems.extend(
        manifest
            .carried_files()
            .filter(|f| !seen.contains(f))
            .filter(|f| {
                !problems
                    .iter()
                    .any(|p| matches!(p, ArchiveProblem::DirectoryForFile(d) if d == f))
            })
            .map(|f| ArchiveProblem::Missing(f.to_string()))
            .collect::<Vec<_>>(),
    );
    problems
}

fn carried_type(t: crate::api::host::UpdateType) -> bool {
    t != crate::api::host::UpdateType::Remove
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::host::UpdateType;
    use crate::engine::packages::manifest::Component;

    fn file(name: &str, size: u64) -> ArchiveEntry {
        ArchiveEntry {
            name: name.into(),
            kind: EntryKind::File,
            size,
            compressed_size: size / 2 + 1,
        }
    }

    const ROOMY: Limits = Limits {
        max_expanded: u64::MAX,
    };

    fn sound() -> Vec<ArchiveEntry> {
        vec![
            file("package.yaml", 300),
            ArchiveEntry {
                name: "files/".into(),
                kind: EntryKind::Directory,
                size: 0,
                compressed_size: 0,
            },
            file("files/lib/runtime.jar", 1000),
        ]
    }

    #[test]
    fn a_sound_archive_passes() {
        assert_eq!(check_entries(&sound(), &ROOMY), Ok(()));
    }

    #[test]
    fn unsafe_names_are_refused_naming_the_entry() {
        for name in ["files/../../etc/passwd", "/etc/passwd", "files/a:b/../c"] {
            let mut entries = sound();
            entries.push(file(name, 1));
            let err = check_entries(&entries, &ROOMY).unwrap_err();
            assert!(matches!(err, ArchiveProblem::UnsafePath { ref entry, .. } if entry == name));
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn symlinks_and_devices_are_refused() {
        for (kind, word) in [
            (EntryKind::Symlink, "symlink"),
            (EntryKind::Special, "special"),
        ] {
            let mut entries = sound();
            entries.push(ArchiveEntry {
                kind,
                ..file("files/lib/link", 10)
            });
            let err = check_entries(&entries, &ROOMY).unwrap_err().to_string();
            assert!(
                err.contains("files/lib/link") && err.contains(word),
                "{err}"
            );
        }
    }

    #[test]
    fn the_manifest_must_be_there_and_small() {
        let entries = vec![file("files/a", 1)];
        assert_eq!(
            check_entries(&entries, &ROOMY),
            Err(ArchiveProblem::NoManifest)
        );
        let mut entries = sound();
        entries[0].size = MAX_MANIFEST_BYTES + 1;
        entries[0].compressed_size = MAX_MANIFEST_BYTES;
        assert!(matches!(
            check_entries(&entries, &ROOMY),
            Err(ArchiveProblem::ManifestTooLarge { .. })
        ));
        entries[0].size = MAX_MANIFEST_BYTES;
        assert_eq!(check_entries(&entries, &ROOMY), Ok(()));
    }

    #[test]
    fn stray_and_duplicate_entries_are_refused() {
        let mut entries = sound();
        entries.push(file("README", 1));
        assert_eq!(
            check_entries(&entries, &ROOMY),
            Err(ArchiveProblem::Stray("README".into()))
        );
        let mut entries = sound();
        entries.push(file("files/lib/runtime.jar", 1));
        assert!(matches!(
            check_entries(&entries, &ROOMY),
            Err(ArchiveProblem::Duplicate(_))
        ));
    }

    #[test]
    fn zip_bombs_are_refused_by_ratio_and_by_space() {
        let mut entries = sound();
        entries.push(ArchiveEntry {
            name: "files/zeros".into(),
            kind: EntryKind::File,
            size: 10 << 30,
            compressed_size: 10 << 20,
        });
        let err = check_entries(&entries, &ROOMY).unwrap_err();
        assert!(
            matches!(err, ArchiveProblem::Ratio { ref largest, .. } if largest == "files/zeros"),
            "{err}"
        );
        let limits = Limits { max_expanded: 1000 };
        let err = check_entries(&sound(), &limits).unwrap_err();
        assert!(
            matches!(err, ArchiveProblem::TooLarge { limit: 1000, .. }),
            "{err}"
        );
    }

    #[test]
    fn contents_match_the_components() {
        let manifest = PackageManifest {
            components: vec![
                Component {
                    name: "runtime".into(),
                    update_type: UpdateType::Replace,
                    files: vec!["lib/runtime.jar".into(), "lib/new.jar".into()],
                },
                Component {
                    name: "old".into(),
                    update_type: UpdateType::Remove,
                    files: vec!["lib/old.jar".into()],
                },
            ],
            ..crate::engine::packages::manifest::tests::manifest()
        };
        let mut entries = sound();
        entries.push(file("files/lib/old.jar", 1));
        entries.push(file("files/extra", 1));
        assert_eq!(
            check_contents(&manifest, &entries),
            [
                ArchiveProblem::CarriedRemoval("lib/old.jar".into()),
                ArchiveProblem::Unlisted("files/extra".into()),
                ArchiveProblem::Missing("lib/new.jar".into()),
            ]
        );
    }
}
