//! Sandboxes with real package managers for the host backend tests: repositories built at test
//! time (`dpkg-deb` + `apt-ftparchive`, `rpmbuild` + `createrepo_c` + `modifyrepo_c`), served
//! over loopback HTTP by [`http::Repo`] (so downloads really land in the package manager's cache
//! and an install can be shown to work offline from it), and root file systems for apt, dnf and
//! zypper to work on. Also: the tool check (a missing tool fails under `CI=true`, naming the
//! Debian package, and skips with a printed reason elsewhere) and a snapshot of the machine's
//! own package databases, to show they are never touched.

#![allow(dead_code)]

pub mod apt;
pub mod http;
pub mod rpm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether every `(program, debian package)` is on `PATH`. Under `CI=true` a missing one fails
/// the test; elsewhere the test is skipped with the reason printed.
pub fn require(test: &str, tools: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = tools
        .iter()
        .filter(|(program, _)| which(program).is_none())
        .map(|(program, package)| format!("{program} (Debian package {package})"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "missing {}; install with apt-get install {}",
        missing.join(", "),
        tools
            .iter()
            .filter(|(p, _)| which(p).is_none())
            .map(|(_, pkg)| *pkg)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {reason} (.ci/run installs them); CI must run the package-manager tests");
    }
    eprintln!("SKIPPED {test}: {reason}");
    false
}

/// The path of `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Runs a setup command, failing the test with its output when it fails.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `text` to `path`, creating its directory.
pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The contents of every file under `paths` (a missing path is recorded as missing), to compare
/// before and after a test.
pub fn snapshot(paths: &[&str]) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(path: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        match std::fs::symlink_metadata(path) {
            Err(_) => {
                out.insert(path.to_path_buf(), None);
            }
            Ok(meta) if meta.is_dir() => {
                out.insert(path.to_path_buf(), Some(b"<dir>".to_vec()));
                let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                    .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                    .unwrap_or_default();
                entries.sort();
                for entry in entries {
                    walk(&entry, out);
                }
            }
            Ok(meta) if meta.is_file() => {
                out.insert(path.to_path_buf(), std::fs::read(path).ok());
            }
            Ok(_) => {
                out.insert(path.to_path_buf(), Some(b"<other>".to_vec()));
            }
        }
    }
    let mut out = BTreeMap::new();
    for path in paths {
        walk(Path::new(path), &mut out);
    }
    out
}

/// Fails naming the paths whose contents differ between two snapshots.
pub fn assert_unchanged(
    before: &BTreeMap<PathBuf, Option<Vec<u8>>>,
    after: &BTreeMap<PathBuf, Option<Vec<u8>>>,
) {
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(
        changed.is_empty(),
        "the machine's own package state changed: {changed:?}"
    );
}

/// A process-associated (fcntl) write lock on `path`, as apt and dpkg take theirs; released when
/// dropped. apt reports this test process as the holder.
pub struct FcntlLock(std::fs::File);

impl FcntlLock {
    /// Takes the lock, creating the file.
    pub fn take(path: &Path) -> Self {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap();
        rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .unwrap();
        Self(file)
    }
}
