//! zypper and rpm, shelled out; listings read from zypper's `--xmlout`.
//!
//! - Refresh: `zypper refresh`.
//! - Scan: `zypper list-updates` (`<update kind="package" name edition edition-old>`), and
//!   security by patches: the packages that applying the needed patches of category security
//!   would upgrade or install, from `zypper patch --dry-run --category security`'s
//!   `<install-summary>` (`zypper list-patches --category security` lists the same patches but
//!   not their packages).
//! - Download and install: `zypper --no-refresh install --no-recommends [--download-only]
//!   name=edition…` (the metadata is the scan's, so an install after a download needs no network).
//! - Reboot: `zypper needs-rebooting` (exit 102: needed; 0: not).
//! - Lock: `System management is locked by the application with pid N (name)` (exit 7) is
//!   [`PackageError::Locked`].
//!
//! With a root: `--root DIR` (zypper reads the root's repositories and keeps its cache there),
//! its log at `DIR/var/log/zypper.log` (`ZYPP_LOGFILE`; zypper would write the machine's
//! `/var/log/zypper.log` otherwise), and rpm pointed at the root's database through a private
//! `~/.rpmmacros`. zypper still writes its download cookie jar to the machine's
//! `/var/lib/YaST2/cookies`.
//!
//! Tested against Debian 12's real zypper 1.14 in a sandboxed root (`tests/it/host_backends.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::process::Command;

use super::tool::{self, Output, Tools};
use super::xml::{self, Element};
use super::{PackageError, PackageGlobs, PackageManager, Pin, RebootSignal, Update};
use crate::api::host::PackageManagerKind;
use crate::engine::updates::{RebootProbe, reboot_signal};

/// The Debian (and RPM) package that has zypper.
const PROVIDER: &str = "zypper";

/// Exit codes of a zypper run that did what was asked: 0, and the informational 100–103
/// (updates or patches needed, a reboot or a restart of the package manager needed).
const SUCCESS: &[i32] = &[0, 100, 101, 102, 103];

/// zypper's exit code for "no matching items" (`ZYPPER_EXIT_INF_CAP_NOT_FOUND`): an empty search,
/// or an install of a capability that no repository provides.
const NOTHING_FOUND: i32 = 104;

/// The zypper backend.
pub struct Zypper {
    root: Option<(PathBuf, tempfile::TempDir)>,
}

impl Zypper {
    /// zypper on `root`, or on the running system.
    pub fn new(root: Option<&Path>) -> Result<Self, PackageError> {
        let root = root
            .map(|r| -> Result<_, PackageError> {
                let dir = tool::check_root(r)?;
                let home = tool::rpm_home(&dir)?;
                std::fs::create_dir_all(dir.join("var/log")).map_err(|e| {
                    PackageError::Unavailable(format!("{}/var/log: {e}", dir.display()))
                })?;
                Ok((dir, home))
            })
            .transpose()?;
        Ok(Self { root })
    }

    fn zypper(&self) -> Command {
        let mut cmd = tool::command("zypper");
        cmd.arg("--non-interactive");
        if let Some((dir, home)) = &self.root {
            cmd.env("HOME", home.path())
                .env("ZYPP_LOGFILE", dir.join("var/log/zypper.log"))
                .arg("--root")
                .arg(dir);
        }
        cmd
    }

    /// Runs a listing with `--xmlout --no-refresh` and returns its elements.
    async fn listing(&self, args: &[&str]) -> Result<Vec<Element>, PackageError> {
        let mut cmd = self.zypper();
        cmd.args(["--xmlout", "--no-refresh"]).args(args);
        let out = tool::run(cmd, PROVIDER).await?;
        // A search that finds nothing exits ZYPPER_EXIT_INF_CAP_NOT_FOUND.
        let out = if args.first() == Some(&"search") && out.code == Some(NOTHING_FOUND) {
            out
        } else {
            check(out)?
        };
        xml::elements(&out.stdout).map_err(|e| PackageError::Failed {
            line: format!("zypper {}: unreadable XML output: {e}", args.join(" ")),
        })
    }

    async fn scan(&self) -> Result<Vec<Update>, PackageError> {
        let mut refresh = self.zypper();
        refresh.arg("refresh");
        check(tool::run(refresh, PROVIDER).await?)?;
        let offered = self.listing(&["list-updates"]).await?;
        let security = self
            .listing(&["patch", "--dry-run", "--category", "security"])
            .await?;
        Ok(updates(&offered, &security_packages(&security)))
    }

    async fn needs_rebooting(&self) -> RebootSignal {
        let mut cmd = self.zypper();
        cmd.arg("needs-rebooting");
        let exit = match tool::run(cmd, PROVIDER).await {
            Ok(out) => out.code,
            Err(e) => {
                tracing::warn!(error = %e, "zypper needs-rebooting could not be run");
                None
            }
        };
        reboot_signal(RebootProbe::ZypperNeedsRebooting { exit })
    }
}

impl Tools for Zypper {
    const TOOL: &'static str = "zypper";

    async fn installed_versions(&self) -> Result<BTreeMap<String, String>, PackageError> {
        let listing = self
            .listing(&[
                "search",
                "--installed-only",
                "--details",
                "--type",
                "package",
            ])
            .await?;
        Ok(installed_versions(&listing))
    }

    async fn fetch(&self, pins: &[Pin], download_only: bool) -> Result<(), PackageError> {
        let mut cmd = self.zypper();
        // The scan refreshed the metadata; the pins come from it.
        cmd.args(["--no-refresh", "install", "--no-recommends"]);
        if download_only {
            cmd.arg("--download-only");
        }
        cmd.args(pins.iter().map(Pin::to_string));
        check(tool::run(cmd, PROVIDER).await?).map(|_| ())
    }
}

impl PackageManager for Zypper {
    fn kind(&self) -> PackageManagerKind {
        PackageManagerKind::Zypper
    }

    fn refresh_and_scan(&self) -> BoxFuture<'_, Result<Vec<Update>, PackageError>> {
        self.scan().boxed()
    }

    fn installed<'a>(
        &'a self,
        globs: &'a PackageGlobs,
    ) -> BoxFuture<'a, Result<Vec<String>, PackageError>> {
        tool::installed(self, globs).boxed()
    }

    fn download<'a>(&'a self, pins: &'a [Pin]) -> BoxFuture<'a, Result<(), PackageError>> {
        tool::download(self, pins).boxed()
    }

    fn install<'a>(&'a self, pins: &'a [Pin]) -> BoxFuture<'a, Result<(), PackageError>> {
        tool::install(self, pins).boxed()
    }

    fn reboot_required(&self) -> BoxFuture<'_, RebootSignal> {
        self.needs_rebooting().boxed()
    }
}

/// `out` when zypper did what was asked, else the error it reported.
fn check(out: Output) -> Result<Output, PackageError> {
    if out.code.is_some_and(|c| SUCCESS.contains(&c)) {
        Ok(out)
    } else {
        Err(failure(&out))
    }
}

/// What a failed zypper run means: `System management is locked by the application with pid N
/// (name).` is a held lock; otherwise its first error line (an XML `<message type="error">`, the
/// first line of standard error, else the last line of standard output), with the `Error
/// message:` line of a download error after it.
fn failure(out: &Output) -> PackageError {
    let xml_errors: Vec<String> = xml::elements(&out.stdout)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.name == "message" && e.attr("type") == "error")
        .map(|e| e.text)
        .collect();
    let mut lines: Vec<&str> = xml_errors
        .iter()
        .flat_map(|t| t.lines())
        .chain(out.stderr.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        // Some refusals are only on standard output; its last line says what went wrong.
        lines.extend(out.stdout.lines().map(str::trim).rfind(|l| !l.is_empty()));
    }
    if let Some(holder) = lines.iter().find_map(|l| {
        l.strip_prefix("System management is locked by the application with pid ")
            .map(|rest| format!("process {}", rest.trim_end_matches('.')))
    }) {
        return PackageError::Locked { holder };
    }
    let first = lines.first().map(|first| {
        match lines.iter().find_map(|l| l.strip_prefix("Error message: ")) {
            Some(detail) => format!("{first} {detail}"),
            None => first.to_string(),
        }
    });
    tool::failed(first.as_deref(), "zypper", out)
}

/// The installed packages of `search --installed-only --details`: `<solvable status="installed"
/// name edition kind="package">`.
fn installed_versions(listing: &[Element]) -> BTreeMap<String, String> {
    listing
        .iter()
        .filter(|e| {
            e.name == "solvable" && e.attr("status") == "installed" && e.attr("kind") == "package"
        })
        .filter(|e| !e.attr("name").is_empty())
        .map(|e| (e.attr("name").to_string(), e.attr("edition").to_string()))
        .collect()
}

/// The packages that the security patches of a `patch --dry-run` would upgrade or install.
fn security_packages(summary: &[Element]) -> BTreeSet<String> {
    summary
        .iter()
        .filter(|e| {
            e.name == "solvable"
                && e.attr("type") == "package"
                && (e.within("to-upgrade") || e.within("to-install"))
        })
        .map(|e| e.attr("name").to_string())
        .collect()
}

/// The package updates of `list-updates`, security when a security patch brings the package;
/// sorted by name.
fn updates(listing: &[Element], security: &BTreeSet<String>) -> Vec<Update> {
    let mut out: Vec<Update> = listing
        .iter()
        .filter(|e| e.name == "update" && e.attr("kind") == "package")
        .filter(|e| !e.attr("name").is_empty() && !e.attr("edition").is_empty())
        .map(|e| Update {
            name: e.attr("name").to_string(),
            from: Some(e.attr("edition-old"))
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            to: e.attr("edition").to_string(),
            security: security.contains(e.attr("name")),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/host/zypper")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn parsed(name: &str) -> Vec<Element> {
        xml::elements(&fixture(name)).unwrap()
    }

    #[test]
    fn list_updates_are_classified_by_the_security_patches() {
        let security = security_packages(&parsed("patch-dry-run-security.xml"));
        assert_eq!(
            security.iter().map(String::as_str).collect::<Vec<_>>(),
            ["kernel-x", "libbar", "libfoo"]
        );
        let got = updates(&parsed("list-updates.xml"), &security);
        let row = |u: &Update| (u.name.clone(), u.from.clone(), u.to.clone(), u.security);
        assert_eq!(
            got.iter().map(row).collect::<Vec<_>>(),
            [
                (
                    "kernel-x".into(),
                    Some("1.0-1".into()),
                    "1.1-1".into(),
                    true
                ),
                (
                    "libbar".into(),
                    Some("2:1.0-3.el9".into()),
                    "2:1.5-3.el9".into(),
                    true
                ),
                ("libfoo".into(), Some("1.0-1".into()), "1.1-1".into(), true),
                ("tool".into(), Some("1.0-1".into()), "2.0-1".into(), false),
            ]
        );
    }

    #[test]
    fn installed_packages_with_their_editions() {
        let got = installed_versions(&parsed("search-installed-details.xml"));
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [
                ("kernel-x".to_string(), "1.1-1".to_string()),
                ("libbar".to_string(), "2:1.0-3.el9".to_string()),
                ("libfoo".to_string(), "1.1-1".to_string()),
                ("tool".to_string(), "1.0-1".to_string()),
            ]
        );
    }

    fn output(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            code: Some(code),
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        }
    }

    #[test]
    fn a_held_lock_is_locked_from_text_or_xml() {
        let text = failure(&output(7, "", &fixture("install-locked.stderr.txt")));
        assert_eq!(
            text,
            PackageError::Locked {
                holder: "process 29023 (sleep)".into()
            }
        );
        let xml = failure(&output(7, &fixture("list-updates-locked.xml"), ""));
        assert_eq!(
            xml,
            PackageError::Locked {
                holder: "process 16708 (sleep)".into()
            }
        );
    }

    #[test]
    fn zyppers_error_lines_are_the_failure() {
        assert_eq!(
            failure(&output(104, "", &fixture("install-no-provider.stderr.txt"))),
            PackageError::Failed {
                line: "No provider of 'nosuch=1.0' found.".into()
            }
        );
        assert_eq!(
            failure(&output(4, "", &fixture("refresh-unreachable.stderr.txt"))),
            PackageError::Failed {
                line: "Problem retrieving files from 'base'. Failed to connect to 127.0.0.1 port 18778 after 0 ms: Couldn't connect to server".into()
            }
        );
        assert!(check(output(102, "", "")).is_ok());
        assert!(check(output(107, "", "")).is_err());
    }
}
