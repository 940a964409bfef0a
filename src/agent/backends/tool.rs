//! What every backend shares: running a package-manager tool, checking a `--root`, the private
//! home that points rpm at a root's database, and the download / install / installed flows over
//! a backend's [`Tools`].
//!
//! A tool runs in the C locale (its messages parse the same on every host), with no standard
//! input, its output captured whole and logged only redacted. It is never given a timeout: a
//! package manager is not killed mid-operation.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use super::{PackageError, PackageGlobs, Pin};
use crate::agent::actions::redact;
use crate::engine::updates::pending;

/// What a finished tool run left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Output {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// "exited with status N" (or "was killed by a signal").
    pub fn status(&self) -> String {
        match self.code {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        }
    }
}

/// A tool's command line in the C locale, with no standard input and piped output.
pub(super) fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("LC_ALL", "C")
        .env("LANG", "C")
        .env_remove("LANGUAGE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    cmd
}

/// Runs `cmd` to its end. A tool that cannot be started is [`PackageError::Unavailable`], naming
/// `provider`, the package that has it.
pub(super) async fn run(mut cmd: Command, provider: &str) -> Result<Output, PackageError> {
    let line = display(&cmd);
    tracing::debug!(command = %line, "running");
    let output = cmd.output().await.map_err(|e| {
        let program = cmd.as_std().get_program().to_string_lossy().into_owned();
        PackageError::Unavailable(format!(
            "{program} could not be started ({e}): the agent needs {provider} installed where it runs"
        ))
    })?;
    let out = Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    tracing::debug!(
        command = %line,
        code = ?out.code,
        stderr = %redact(tail(&out.stderr, 2048)),
        "finished"
    );
    Ok(out)
}

fn display(cmd: &Command) -> String {
    let std = cmd.as_std();
    std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `max` bytes of `text` (at a character boundary).
pub(super) fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A failure whose line is `line`, redacted; a generic line naming the tool and its exit when
/// the tool said nothing usable.
pub(super) fn failed(line: Option<&str>, tool: &str, output: &Output) -> PackageError {
    let line = line
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map_or_else(|| format!("{tool} {}", output.status()), str::to_string);
    PackageError::Failed {
        line: redact(&line),
    }
}

/// `root` as an absolute path to an existing directory.
pub(super) fn check_root(root: &Path) -> Result<PathBuf, PackageError> {
    let absolute = std::path::absolute(root)
        .map_err(|e| PackageError::Unavailable(format!("--root {}: {e}", root.display())))?;
    if !absolute.is_dir() {
        return Err(PackageError::Unavailable(format!(
            "--root {} is not a directory: give the root file system the package manager should work on",
            root.display()
        )));
    }
    if absolute.to_str().is_none_or(|s| s.contains(['"', '\n'])) {
        return Err(PackageError::Unavailable(format!(
            "--root {} is not a usable path (it must be UTF-8 without quotes or line breaks)",
            root.display()
        )));
    }
    Ok(absolute)
}

/// A private home directory whose `.rpmmacros` points rpm (and dnf and zypper, which read it)
/// at `root`'s own rpm database: `/usr/lib/sysimage/rpm` when the root has it, else
/// `/var/lib/rpm`. Without it rpm would use the agent machine's macros (Debian's `~/.rpmdb`).
pub(super) fn rpm_home(root: &Path) -> Result<tempfile::TempDir, PackageError> {
    let dbpath = if root.join("usr/lib/sysimage/rpm").is_dir() {
        "/usr/lib/sysimage/rpm"
    } else {
        "/var/lib/rpm"
    };
    let home = tempfile::Builder::new()
        .prefix("upkeep-rpm-home-")
        .tempdir()
        .map_err(|e| PackageError::Unavailable(format!("creating a private home: {e}")))?;
    std::fs::write(
        home.path().join(".rpmmacros"),
        format!("%_dbpath {dbpath}\n"),
    )
    .map_err(|e| PackageError::Unavailable(format!("writing .rpmmacros: {e}")))?;
    Ok(home)
}

/// What a backend knows how to do with its tools; the flows below build the trait's download,
/// install and installed on it.
pub(super) trait Tools: Sync {
    /// The name of the tool, for messages (`apt-get`, `dnf`, `zypper`).
    const TOOL: &'static str;
    /// Every installed package and its version (only fully installed ones).
    fn installed_versions(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, PackageError>> + Send;
    /// Asks the package manager for `pins` (none already at its version): fetch only, or
    /// install.
    fn fetch(
        &self,
        pins: &[Pin],
        download_only: bool,
    ) -> impl Future<Output = Result<(), PackageError>> + Send;
}

/// The installed packages matching `globs`, sorted.
pub(super) async fn installed(
    tools: &impl Tools,
    globs: &PackageGlobs,
) -> Result<Vec<String>, PackageError> {
    Ok(tools
        .installed_versions()
        .await?
        .into_keys()
        .filter(|name| globs.matches(name))
        .collect())
}

/// Fetches what `pins` still need.
pub(super) async fn download(tools: &impl Tools, pins: &[Pin]) -> Result<(), PackageError> {
    let todo = pending(pins, &tools.installed_versions().await?);
    if todo.is_empty() {
        return Ok(());
    }
    tools.fetch(&todo, true).await
}

/// Installs what `pins` still need, then checks that every pin is installed at its version.
pub(super) async fn install<T: Tools>(tools: &T, pins: &[Pin]) -> Result<(), PackageError> {
    let todo = pending(pins, &tools.installed_versions().await?);
    if todo.is_empty() {
        tracing::info!(pins = pins.len(), "every pin is installed: nothing to do");
        return Ok(());
    }
    tools.fetch(&todo, false).await?;
    let after = tools.installed_versions().await?;
    match pending(&todo, &after).first() {
        None => Ok(()),
        Some(pin) => Err(PackageError::Failed {
            line: format!(
                "{} reported success, but {} is {} (wanted {})",
                T::TOOL,
                pin.name,
                after
                    .get(&pin.name)
                    .map_or_else(|| "not installed".to_string(), |v| format!("at {v}")),
                pin.version
            ),
        }),
    }
}
