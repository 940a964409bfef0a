//! apt and dpkg, shelled out (`apt-get`, `apt-cache`, `dpkg-query`; never a library binding).
//!
//! - Refresh: `apt-get update -o APT::Update::Error-Mode=any` (an index that fails to download
//!   is an error, not a warning: a scan must not silently use stale lists).
//! - Scan: `apt-get -s dist-upgrade`, whose `Inst pkg [old] (new Label:Version/Suite [arch])`
//!   lines give each update and its origins; `apt-cache policy` gives each origin's codename.
//!   An update is security when one of its origins is ([`is_security_origin`]).
//! - Download and install: `apt-get install -y --no-remove --no-install-recommends pkg=version…`
//!   (`--download-only` to fetch), with `APT::Status-Fd=2` so that dpkg's own error
//!   (`pmerror:` lines) is the reported failure; conffiles keep the local version
//!   (`--force-confdef --force-confold`).
//! - Reboot: `<root>/var/run/reboot-required` or `<root>/run/reboot-required`, with the
//!   `reboot-required.pkgs` beside it naming the packages.
//! - Lock: `Could not get lock … It is held by process N (name)` is [`PackageError::Locked`].
//!
//! With a root, apt reads an `APT_CONFIG` file written for the root (read before any other
//! configuration, so the machine's `/etc/apt/apt.conf.d` is never read): `Dir` is the root,
//! `Dir::State::status` its dpkg database, `Dir::Etc::sourceparts` its own `sources.list.d` (an
//! empty directory when it has none, so the machine's sources are never read), and dpkg runs with
//! `--root`, `--admindir` and `--force-script-chrootless` (maintainer scripts see `$DPKG_ROOT`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::process::Command;
use tokio::sync::OnceCell;

use super::tool::{self, Output, Tools};
use super::{PackageError, PackageGlobs, PackageManager, Pin, RebootSignal, Update};
use crate::api::host::PackageManagerKind;
use crate::engine::updates::{AptOrigin, RebootProbe, is_security_origin, reboot_signal};

/// The Debian package that has apt-get and apt-cache.
const PROVIDER: &str = "apt";

/// The apt backend.
pub struct Apt {
    root: Option<PathBuf>,
    /// The APT_CONFIG file for the root, and the directory that holds it.
    config: Option<(tempfile::TempDir, PathBuf)>,
    native_arch: OnceCell<String>,
}

impl Apt {
    /// apt on `root` (an absolute or relative path to a root file system), or on the running
    /// system.
    pub fn new(root: Option<&Path>) -> Result<Self, PackageError> {
        let root = root.map(tool::check_root).transpose()?;
        let config = root.as_deref().map(write_config).transpose()?;
        Ok(Self {
            root,
            config,
            native_arch: OnceCell::new(),
        })
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("DEBIAN_FRONTEND", "noninteractive")
            .env("APT_LISTCHANGES_FRONTEND", "none")
            .env("NEEDRESTART_SUSPEND", "1");
        if let Some((_, file)) = &self.config {
            cmd.env("APT_CONFIG", file);
        }
    }

    fn apt_get(&self) -> Command {
        let mut cmd = tool::command("apt-get");
        self.env(&mut cmd);
        cmd
    }

    fn admindir(&self) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join("var/lib/dpkg"))
    }

    async fn native_arch(&self) -> Result<&str, PackageError> {
        self.native_arch
            .get_or_try_init(|| async {
                let mut cmd = tool::command("dpkg");
                cmd.arg("--print-architecture");
                let out = tool::run(cmd, "dpkg").await?;
                match out.stdout.trim() {
                    arch if out.success() && !arch.is_empty() => Ok(arch.to_string()),
                    _ => Err(tool::failed(out.stderr.lines().next(), "dpkg", &out)),
                }
            })
            .await
            .map(String::as_str)
    }

    async fn scan(&self) -> Result<Vec<Update>, PackageError> {
        let mut update = self.apt_get();
        update.args(["-q", "update", "-o", "APT::Update::Error-Mode=any"]);
        check(tool::run(update, PROVIDER).await?)?;
        let mut simulate = self.apt_get();
        simulate.args(["-q", "-s", "dist-upgrade"]);
        let planned = parse_simulation(&check(tool::run(simulate, PROVIDER).await?)?.stdout);
        let mut policy = tool::command("apt-cache");
        self.env(&mut policy);
        policy.arg("policy");
        let releases = parse_policy(&check(tool::run(policy, PROVIDER).await?)?.stdout);
        let mut updates: Vec<Update> = planned.iter().map(|p| p.classify(&releases)).collect();
        updates.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(updates)
    }

    async fn flag(&self) -> RebootSignal {
        let root = self.root.clone().unwrap_or_else(|| PathBuf::from("/"));
        let mut present = Some(false);
        for dir in ["var/run", "run"] {
            let flag = root.join(dir).join("reboot-required");
            match tokio::fs::metadata(&flag).await {
                Ok(_) => {
                    let pkgs =
                        tokio::fs::read_to_string(root.join(dir).join("reboot-required.pkgs"))
                            .await
                            .ok();
                    return reboot_signal(RebootProbe::AptFlag {
                        present: Some(true),
                        packages: pkgs.as_deref(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %flag.display(), error = %e, "cannot tell whether the reboot flag exists");
                    present = None;
                }
            }
        }
        reboot_signal(RebootProbe::AptFlag {
            present,
            packages: None,
        })
    }
}

impl Tools for Apt {
    const TOOL: &'static str = "apt-get";

    async fn installed_versions(&self) -> Result<BTreeMap<String, String>, PackageError> {
        let native = self.native_arch().await?.to_string();
        let mut cmd = tool::command("dpkg-query");
        if let Some(admindir) = self.admindir() {
            cmd.arg(format!("--admindir={}", admindir.display()));
        }
        cmd.args([
            "-W",
            "-f=${Package}\\t${Architecture}\\t${Version}\\t${db:Status-Status}\\n",
        ]);
        let out = tool::run(cmd, "dpkg").await?;
        if !out.success() {
            return Err(tool::failed(
                out.stderr.lines().find(|l| !l.trim().is_empty()),
                "dpkg-query",
                &out,
            ));
        }
        Ok(parse_dpkg_query(&out.stdout, &native))
    }

    async fn fetch(&self, pins: &[Pin], download_only: bool) -> Result<(), PackageError> {
        let mut cmd = self.apt_get();
        cmd.args([
            "-y",
            "-q",
            "--no-remove",
            "--no-install-recommends",
            "-o",
            "APT::Status-Fd=2",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
            "-o",
            "DPkg::Use-Pty=0",
            "install",
        ]);
        if download_only {
            cmd.arg("--download-only");
        }
        cmd.args(pins.iter().map(Pin::to_string));
        check(tool::run(cmd, PROVIDER).await?).map(|_| ())
    }
}

impl PackageManager for Apt {
    fn kind(&self) -> PackageManagerKind {
        PackageManagerKind::Apt
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
        self.flag().boxed()
    }
}

/// Writes the APT_CONFIG file for `root` into a private directory.
fn write_config(root: &Path) -> Result<(tempfile::TempDir, PathBuf), PackageError> {
    let unusable = |e: std::io::Error| PackageError::Unavailable(format!("apt configuration: {e}"));
    let dir = tempfile::Builder::new()
        .prefix("upkeep-apt-")
        .tempdir()
        .map_err(unusable)?;
    let own_parts = root.join("etc/apt/sources.list.d");
    let parts = if own_parts.is_dir() {
        own_parts
    } else {
        let empty = dir.path().join("sources.list.d");
        std::fs::create_dir(&empty).map_err(unusable)?;
        empty
    };
    let r = root.display();
    let text = format!(
        "Dir \"{r}/\";\n\
         Dir::State::status \"{r}/var/lib/dpkg/status\";\n\
         Dir::Etc::sourceparts \"{parts}\";\n\
         DPkg::Options {{ \"--root={r}\"; \"--admindir={r}/var/lib/dpkg\"; \"--force-script-chrootless\"; }};\n",
        parts = parts.display()
    );
    let file = dir.path().join("apt.conf");
    std::fs::write(&file, text).map_err(unusable)?;
    Ok((dir, file))
}

/// `out` when apt succeeded, else the error it reported.
fn check(out: Output) -> Result<Output, PackageError> {
    if out.success() {
        Ok(out)
    } else {
        Err(failure(&out))
    }
}

/// What a failed apt run means: a held lock, dpkg's own error (`pmerror:`), or apt's first
/// `E:` line.
fn failure(out: &Output) -> PackageError {
    let lines = || out.stderr.lines().chain(out.stdout.lines()).map(str::trim);
    if let Some(lock) = lines().find(|l| l.contains("Could not get lock")) {
        let holder = lock
            .split_once("held by ")
            .map(|(_, h)| h.trim_end_matches('.').trim().to_string())
            .unwrap_or_else(|| "another process".to_string());
        return PackageError::Locked { holder };
    }
    // pmerror:<package>:<percent>:<message>
    let dpkg_error = lines().find_map(|l| {
        let rest = l.strip_prefix("pmerror:")?;
        let mut fields = rest.splitn(3, ':');
        let package = fields.next()?;
        let _percent = fields.next()?;
        Some(format!("{package}: {}", fields.next()?.trim()))
    });
    if dpkg_error.is_some() {
        return tool::failed(dpkg_error.as_deref(), "apt-get", out);
    }
    let apt_error = lines().find_map(|l| l.strip_prefix("E: "));
    tool::failed(apt_error, "apt-get", out)
}

/// One origin of a version as the simulation prints it: `Label:Version/Archive`, each part
/// optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Origin {
    label: Option<String>,
    version: Option<String>,
    archive: Option<String>,
}

/// One `Inst` line of `apt-get -s dist-upgrade`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Planned {
    name: String,
    from: Option<String>,
    to: String,
    origins: Vec<Origin>,
}

/// One `release` line of `apt-cache policy`: `v=12,o=Debian,a=oldstable-security,
/// n=bookworm-security,l=Debian-Security,c=main,b=amd64`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Release {
    version: Option<String>,
    archive: Option<String>,
    codename: Option<String>,
    label: Option<String>,
}

impl Planned {
    /// The update, security when any origin is a security origin (the codename taken from the
    /// policy's release with the same label, version and archive).
    fn classify(&self, releases: &[Release]) -> Update {
        let security = self.origins.iter().any(|o| {
            let codename = releases
                .iter()
                .find(|r| r.label == o.label && r.archive == o.archive && r.version == o.version)
                .and_then(|r| r.codename.as_deref());
            is_security_origin(&AptOrigin {
                label: o.label.as_deref(),
                suite: o.archive.as_deref(),
                codename,
            })
        });
        Update {
            name: self.name.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            security,
        }
    }
}

/// The `Inst` lines of a simulation: `Inst NAME [OLD] (NEW ORIGIN, ORIGIN [ARCH]) [...]`; the old
/// version is absent for a package newly installed. Lines that do not parse are skipped.
fn parse_simulation(text: &str) -> Vec<Planned> {
    text.lines().filter_map(parse_inst).collect()
}

fn parse_inst(line: &str) -> Option<Planned> {
    let rest = line.strip_prefix("Inst ")?;
    let (name, rest) = rest.split_once(' ')?;
    let rest = rest.trim_start();
    let (from, rest) = match rest.strip_prefix('[') {
        Some(old) => {
            let (old, rest) = old.split_once(']')?;
            (Some(old.to_string()), rest.trim_start())
        }
        None => (None, rest),
    };
    let inner = rest.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    let (to, origins) = inner.split_once(' ').unwrap_or((inner, ""));
    // Drop the trailing " [arch]".
    let origins = match origins.rfind(" [") {
        Some(i) if origins.ends_with(']') => &origins[..i],
        _ if origins.starts_with('[') && origins.ends_with(']') => "",
        _ => origins,
    };
    Some(Planned {
        name: name.to_string(),
        from,
        to: to.to_string(),
        origins: origins
            .split(", ")
            .filter(|o| !o.trim().is_empty())
            .map(parse_origin)
            .collect(),
    })
}

fn parse_origin(text: &str) -> Origin {
    let text = text.trim();
    let (label, rest) = match text.split_once(':') {
        Some((label, rest)) => (Some(label.to_string()), rest),
        None => (None, text),
    };
    let (version, archive) = match rest.split_once('/') {
        Some((version, archive)) => (Some(version.to_string()), archive),
        None => (None, rest),
    };
    Origin {
        label,
        version,
        archive: (!archive.is_empty()).then(|| archive.to_string()),
    }
}

/// The `release` lines of `apt-cache policy`.
fn parse_policy(text: &str) -> Vec<Release> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("release "))
        .map(|fields| {
            let mut release = Release::default();
            for field in fields.split(',') {
                let Some((key, value)) = field.split_once('=') else {
                    continue;
                };
                let value = Some(value.to_string());
                match key {
                    "v" => release.version = value,
                    "a" => release.archive = value,
                    "n" => release.codename = value,
                    "l" => release.label = value,
                    _ => {}
                }
            }
            release
        })
        .collect()
}

/// The installed packages of `dpkg-query -W -f='${Package}\t${Architecture}\t${Version}\t
/// ${db:Status-Status}\n'`, named as apt names them (`name:arch` for a foreign architecture).
fn parse_dpkg_query(text: &str, native_arch: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (name, arch, version, status) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            if status != "installed" || name.is_empty() {
                return None;
            }
            let name = if arch == native_arch || arch == "all" || arch.is_empty() {
                name.to_string()
            } else {
                format!("{name}:{arch}")
            };
            Some((name, version.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/host/apt")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn scan(simulation: &str, policy: &str) -> Vec<Update> {
        let releases = parse_policy(&fixture(policy));
        parse_simulation(&fixture(simulation))
            .iter()
            .map(|p| p.classify(&releases))
            .collect()
    }

    #[test]
    fn the_sandbox_simulation_classifies_by_label_and_suite() {
        let updates = scan("sandbox-dist-upgrade-simulate.txt", "sandbox-policy.txt");
        assert_eq!(
            updates,
            vec![
                Update {
                    name: "kernel-x".into(),
                    from: Some("1.0".into()),
                    to: "1.1".into(),
                    security: true
                },
                Update {
                    name: "tool".into(),
                    from: Some("1.0".into()),
                    to: "2.0".into(),
                    security: false
                },
            ]
        );
    }

    #[test]
    fn this_machines_debian_simulation_finds_the_security_archive() {
        let updates = scan("host-dist-upgrade-simulate.txt", "host-policy.txt");
        let inst_lines = fixture("host-dist-upgrade-simulate.txt")
            .lines()
            .filter(|l| l.starts_with("Inst "))
            .count();
        assert_eq!(updates.len(), inst_lines, "every Inst line parses");
        let by_name = |n: &str| updates.iter().find(|u| u.name == n).unwrap();
        // `Debian-Security:12/oldstable-security`: the security archive.
        let perl = by_name("libperl5.36");
        assert!(perl.security);
        assert_eq!(perl.from.as_deref(), Some("5.36.0-7+deb12u2"));
        assert_eq!(perl.to, "5.36.0-7+deb12u4");
        // `Debian:12.15/oldstable`: a point release, not security.
        let base = by_name("base-files");
        assert!(!base.security);
        assert_eq!(base.to, "12.4+deb12u15");
        // Epochs stay in the versions.
        assert_eq!(
            by_name("login").from.as_deref(),
            Some("1:4.13+dfsg1-1+deb12u1")
        );
        assert!(updates.iter().any(|u| u.security) && updates.iter().any(|u| !u.security));
    }

    #[test]
    fn inst_lines_with_several_origins_new_packages_and_trailing_brackets() {
        let planned = parse_simulation(
            "Inst libssl3 [3.0.14-1~deb12u2] (3.0.15-1~deb12u1 Debian:12.8/stable, Debian-Security:12/stable-security [amd64])\n\
             Inst linux-image-6.1.0-28-amd64 (6.1.119-1 Debian-Security:12/stable-security [amd64])\n\
             Inst libperl5.36 [5.36.0-7+deb12u2] (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64]) [perl:amd64 ]\n\
             Inst local [1] (2 localhost [all])\n\
             Inst jammy-pkg [1.0] (1.1 Ubuntu:22.04/jammy-security [amd64])\n\
             Conf libssl3 (3.0.15-1~deb12u1 Debian:12.8/stable [amd64])\n\
             Remv old [1]\n\
             Inst broken-line-without-parens\n",
        );
        assert_eq!(planned.len(), 5);
        assert_eq!(planned[0].origins.len(), 2);
        assert_eq!(
            planned[0].origins[1],
            Origin {
                label: Some("Debian-Security".into()),
                version: Some("12".into()),
                archive: Some("stable-security".into())
            }
        );
        assert_eq!(planned[1].from, None);
        assert_eq!(planned[2].to, "5.36.0-7+deb12u4");
        assert_eq!(
            planned[3].origins,
            [Origin {
                label: None,
                version: None,
                archive: Some("localhost".into())
            }]
        );
        let updates: Vec<Update> = planned.iter().map(|p| p.classify(&[])).collect();
        let security: Vec<bool> = updates.iter().map(|u| u.security).collect();
        assert_eq!(security, [true, true, true, false, true]);
    }

    #[test]
    fn a_codename_from_the_policy_makes_a_plain_suite_security() {
        let planned = parse_simulation("Inst libfoo [1.0] (1.1 Mirror:stable [all])\n").remove(0);
        let policy = parse_policy(
            " 500 http://mirror.invalid/debian stable/main all Packages\n     release a=stable,n=bookworm-security,l=Mirror,c=main,b=all\n",
        );
        assert!(planned.classify(&policy).security);
        assert!(!planned.classify(&[]).security);
    }

    #[test]
    fn dpkg_query_keeps_installed_packages_named_as_apt_names_them() {
        let host = parse_dpkg_query(&fixture("host-dpkg-query.txt"), "amd64");
        let lines = fixture("host-dpkg-query.txt").lines().count();
        assert_eq!(host.len(), lines);
        assert_eq!(host.get("adduser").map(String::as_str), Some("3.134"));
        assert!(host.keys().all(|k| !k.contains(':')));
        let sandbox = parse_dpkg_query(&fixture("sandbox-dpkg-query.txt"), "amd64");
        assert_eq!(
            sandbox.into_iter().collect::<Vec<_>>(),
            [
                ("kernel-x".to_string(), "1.0".to_string()),
                ("libfoo".to_string(), "1.1".to_string()),
                ("tool".to_string(), "1.0".to_string()),
            ]
        );
        let mixed = parse_dpkg_query(
            "libc6\tamd64\t2.36-9\tinstalled\nlibc6\ti386\t2.36-9\tinstalled\ngone\tamd64\t1\tconfig-files\nhalf\tamd64\t1\thalf-configured\n",
            "amd64",
        );
        assert_eq!(mixed.keys().collect::<Vec<_>>(), ["libc6", "libc6:i386"]);
    }

    fn output(code: i32, stderr: &str) -> Output {
        Output {
            code: Some(code),
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }

    #[test]
    fn a_held_lock_is_locked_naming_the_holder() {
        for name in ["install-locked.stderr.txt", "update-locked.stderr.txt"] {
            let err = failure(&output(100, &fixture(name)));
            assert_eq!(
                err,
                PackageError::Locked {
                    holder: "process 17091 (python3)".into()
                },
                "{name}"
            );
        }
        assert_eq!(
            failure(&output(
                100,
                "E: Could not get lock /var/lib/dpkg/lock-frontend - open (11: Resource temporarily unavailable)\n"
            )),
            PackageError::Locked {
                holder: "another process".into()
            }
        );
    }

    #[test]
    fn dpkgs_own_error_is_the_failure_line() {
        let err = failure(&output(100, &fixture("install-postinst-fails.stderr.txt")));
        assert_eq!(err, PackageError::Failed {
            line: "broken: installed broken package post-installation script subprocess returned error exit status 1".into()
        });
    }

    #[test]
    fn apts_first_error_line_otherwise_redacted() {
        assert_eq!(
            failure(&output(
                100,
                &fixture("install-version-not-found.stderr.txt")
            )),
            PackageError::Failed {
                line: "Version '9.9' for 'libfoo' was not found".into()
            }
        );
        let err = failure(&output(100, &fixture("update-unreachable.stderr.txt")));
        let PackageError::Failed { line } = &err else {
            panic!("{err:?}")
        };
        assert!(
            line.starts_with("Failed to fetch http://127.0.0.1:9/repo/dists/bookworm/InRelease"),
            "{line}"
        );
        let secret = failure(&output(
            100,
            "E: Failed to fetch https://user:hunter2@mirror.invalid/debian/dists/bookworm/InRelease  401  Unauthorized\n",
        ));
        assert!(!secret.to_string().contains("hunter2"), "{secret}");
        assert_eq!(
            failure(&output(100, "")),
            PackageError::Failed {
                line: "apt-get exited with status 100".into()
            }
        );
    }

    #[test]
    fn the_config_points_at_the_root_and_never_at_the_machine() {
        let root = tempfile::tempdir().unwrap();
        let (dir, file) = write_config(root.path()).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let r = root.path().display().to_string();
        assert!(text.contains(&format!("Dir \"{r}/\";")));
        assert!(text.contains(&format!("Dir::State::status \"{r}/var/lib/dpkg/status\";")));
        assert!(text.contains(&format!(
            "\"--root={r}\"; \"--admindir={r}/var/lib/dpkg\"; \"--force-script-chrootless\";"
        )));
        // No sources.list.d in the root: an empty directory of our own.
        let empty = dir.path().join("sources.list.d");
        assert!(text.contains(&format!("Dir::Etc::sourceparts \"{}\";", empty.display())));
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
        // With one: the root's own.
        std::fs::create_dir_all(root.path().join("etc/apt/sources.list.d")).unwrap();
        let (_dir, file) = write_config(root.path()).unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains(&format!(
            "Dir::Etc::sourceparts \"{r}/etc/apt/sources.list.d\";"
        )));
    }
}
