//! A product location, packages for it, and snapshots of a location's tree.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The time every test run of the installer records.
pub const AT: &str = "2026-12-05T22:00:00Z";

/// A product location: `was` 9.0.5.22 with a few files, one of them executable.
pub fn product(root: &Path) -> PathBuf {
    let dir = root.join("was");
    let files: &[(&str, &[u8], u32)] = &[
        (
            "properties/version/product.yaml",
            b"# The product file.\nid: was\nname: WebSphere Application Server\nversion: 9.0.5.22\nbuildLevel: cf052231.01\n",
            0o644,
        ),
        ("properties/version/WAS.component", b"component: was\n", 0o644),
        ("lib/runtime.jar", &[0xCA, 0xFE, 0xBA, 0xBE, 1, 2, 3, 0, 255], 0o644),
        ("lib/web.jar", b"web 22\n", 0o640),
        ("lib/old.jar", b"old stuff\n", 0o600),
        ("bin/start.sh", b"#!/bin/sh\necho start\n", 0o755),
    ];
    for (path, bytes, mode) in files {
        write(&dir.join(path), bytes, *mode);
    }
    dir
}

/// Writes a file with its parents and mode.
pub fn write(path: &Path, bytes: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds a package from a manifest and its files with `upkeep package build`.
pub fn pak(dir: &Path, name: &str, manifest: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let src = dir.join(format!("{name}.src"));
    write(&src.join("package.yaml"), manifest.as_bytes(), 0o644);
    for (path, bytes) in files {
        let mode = if path.ends_with(".sh") { 0o755 } else { 0o644 };
        write(&src.join("files").join(path), bytes, mode);
    }
    let out = dir.join(format!("{name}.pak"));
    let built = upkeep(&[
        "package",
        "build",
        src.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(built.status.success(), "{}", text(&built));
    out
}

/// Fix pack 23: replaces the runtime, patches the web module, adds two files (one in a new
/// folder), removes the old jar, and moves the product to 9.0.5.23.
pub fn fix_pack(dir: &Path) -> PathBuf {
    pak(
        dir,
        "9.0.5-WS-WAS-FP023",
        r#"id: 9.0.5-WS-WAS-FP023
type: FixPack
product: was
appliesTo: ">=9.0.5.0 <9.0.6.0"
version: 9.0.5.23
description: Fix pack 23
fixes: [PH10001, PH10002]
components:
  - { name: runtime, updateType: replace, files: [lib/runtime.jar] }
  - { name: web, updateType: patch, files: [lib/web.jar] }
  - { name: tools, updateType: add, files: [bin/tool.sh, lib/ext/new/extra.jar] }
  - { name: legacy, updateType: remove, files: [lib/old.jar] }
"#,
        &[
            ("lib/runtime.jar", &[0xCA, 0xFE, 0xBA, 0xBE, 9, 9, 9]),
            ("lib/web.jar", b"web 23\n"),
            ("bin/tool.sh", b"#!/bin/sh\necho tool\n"),
            ("lib/ext/new/extra.jar", b"extra\n"),
        ],
    )
}

/// An interim fix for 9.0.5.23 that replaces the web module again.
pub fn interim_fix(dir: &Path) -> PathBuf {
    pak(
        dir,
        "9.0.5.23-WS-WAS-IFPH12345",
        r#"id: 9.0.5.23-WS-WAS-IFPH12345
type: InterimFix
product: was
appliesTo: "=9.0.5.23"
fixes: [PH12345]
components:
  - { name: web, updateType: replace, files: [lib/web.jar] }
"#,
        &[("lib/web.jar", b"web 23 + PH12345\n")],
    )
}

/// An interim fix for 9.0.5.22 that only adds a file.
pub fn adding_fix(dir: &Path) -> PathBuf {
    pak(
        dir,
        "9.0.5.22-WS-WAS-IFPH777",
        r#"id: 9.0.5.22-WS-WAS-IFPH777
type: InterimFix
product: was
appliesTo: ">=9.0.5.22 <9.0.6.0"
fixes: [PH777]
components:
  - { name: diag, updateType: add, files: [lib/diag.jar] }
"#,
        &[("lib/diag.jar", b"diag\n")],
    )
}

/// The installer's own paths: compared separately, not as the product's files.
const OWN: &[&str] = &[
    "logs/update",
    "properties/version/history",
    "properties/version/update/journal",
    "properties/version/update/lock",
];

const OWN_DIRS: &[&str] = &[
    "logs",
    "logs/update",
    "properties/version/history",
    "properties/version/installed",
    "properties/version/update",
    "properties/version/update/backup",
    "properties/version/update/journal",
];

/// A location's files (bytes and mode) and folders, without the logs, the history and the
/// installer's work in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    /// Files by relative path.
    pub files: BTreeMap<String, (Vec<u8>, u32)>,
    /// Folders by relative path.
    pub dirs: BTreeSet<String>,
}

impl Tree {
    /// The first difference from `other`, if any (trees are too large to print whole).
    pub fn diff(&self, other: &Tree) -> Option<String> {
        let paths: BTreeSet<&String> = self.files.keys().chain(other.files.keys()).collect();
        for path in paths {
            match (self.files.get(path), other.files.get(path)) {
                (Some(a), Some(b)) if a.1 != b.1 => {
                    return Some(format!("{path}: mode {:o} vs {:o}", a.1, b.1));
                }
                (Some(a), Some(b)) if a.0 != b.0 => {
                    return Some(format!(
                        "{path}: {:?} vs {:?}",
                        String::from_utf8_lossy(&a.0),
                        String::from_utf8_lossy(&b.0)
                    ));
                }
                (Some(_), None) => return Some(format!("{path} only in the first")),
                (None, Some(_)) => return Some(format!("{path} only in the second")),
                _ => {}
            }
        }
        (self.dirs != other.dirs).then(|| format!("folders {:?} vs {:?}", self.dirs, other.dirs))
    }
}

/// Asserts two trees are equal, naming the first difference.
#[track_caller]
pub fn assert_same(a: &Tree, b: &Tree, what: &str) {
    if let Some(diff) = a.diff(b) {
        panic!("{what}: {diff}");
    }
}

pub fn snapshot(root: &Path) -> Tree {
    fn walk(root: &Path, dir: &Path, tree: &mut Tree) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if OWN
                .iter()
                .any(|o| rel == *o || rel.starts_with(&format!("{o}/")))
            {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                if !OWN_DIRS.contains(&rel.as_str()) {
                    tree.dirs.insert(rel);
                }
                walk(root, &path, tree);
            } else {
                assert!(meta.is_file(), "{rel} is not a regular file");
                let mode = meta.permissions().mode() & 0o7777;
                tree.files.insert(rel, (fs::read(&path).unwrap(), mode));
            }
        }
    }
    let mut tree = Tree {
        files: BTreeMap::new(),
        dirs: BTreeSet::new(),
    };
    walk(root, root, &mut tree);
    tree
}

/// Copies a folder (files, modes, folders).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

/// Whether the installer left work in progress in the location.
pub fn journal_is_empty(root: &Path) -> bool {
    let dir = root.join("properties/version/update/journal");
    !dir.exists() || fs::read_dir(dir).unwrap().next().is_none()
}

pub fn upkeep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .output()
        .unwrap()
}

/// `upkeep host install|uninstall --product was=ROOT --at AT ARGS…`.
pub fn host(action: &str, root: &Path, args: &[&str]) -> Output {
    let product = format!("was={}", root.display());
    let mut all = vec!["host", action, "--product", &product, "--at", AT];
    all.extend_from_slice(args);
    upkeep(&all)
}

pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn tempdir() -> TempDir {
    tempfile::tempdir().unwrap()
}
