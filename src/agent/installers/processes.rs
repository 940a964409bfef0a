//! Processes that run from a product location: a process counts when its executable or its
//! working directory lies under the location (read from `/proc/<pid>/exe` and `cwd`). The
//! installer refuses to change a product while any does.
//!
//! Invariant: processes that vanish while being read, or whose links cannot be read (another
//! user's, without privileges), are not counted; the installer's own process never is.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A process running from a location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningProcess {
    /// Its pid.
    pub pid: u32,
    /// Its command name (`/proc/<pid>/comm`).
    pub name: String,
    /// Why it counts: its executable or working directory.
    pub path: PathBuf,
}

impl fmt::Display for RunningProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} ({}, {})",
            self.pid,
            self.name,
            self.path.display()
        )
    }
}

/// Every process (but this one) whose executable or working directory is under `location`.
pub fn processes_under(location: &Path) -> io::Result<Vec<RunningProcess>> {
    let root = fs::canonicalize(location)?;
    let own = std::process::id();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let dir = entry.path();
        let hit = ["exe", "cwd"].into_iter().find_map(|link| {
            let target = fs::read_link(dir.join(link)).ok()?;
            // A deleted executable reads as "<path> (deleted)".
            let text = target.to_string_lossy();
            let target = PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text));
            target.starts_with(&root).then_some(target)
        });
        if let Some(path) = hit {
            let name = fs::read_to_string(dir.join("comm"))
                .map(|n| n.trim().to_string())
                .unwrap_or_default();
            found.push(RunningProcess { pid, name, path });
        }
    }
    found.sort_by_key(|p| p.pid);
    Ok(found)
}
