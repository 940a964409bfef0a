//! dnf and rpm, shelled out.
//!
//! - Refresh: `dnf makecache --refresh`.
//! - Scan: `dnf repoquery --upgrades --latest-limit=1` (name, epoch:version-release, arch,
//!   repository), the installed versions from `dnf repoquery --installed`, and security by
//!   advisories: a package is a security update when `dnf updateinfo list --security` lists an
//!   advisory for it (that list only holds advisories for newer versions of installed packages).
//! - Download and install: `dnf install --downloadonly name-[epoch:]version-release…`, then
//!   `dnf install …` of the same exact versions (`install_weak_deps=False`: no new weak
//!   dependencies).
//! - Reboot: `dnf needs-restarting -r` (the dnf-plugins-core plugin): see
//!   [`crate::engine::updates::reboot_signal`]; a missing plugin is `Unknown`.
//! - Lock: dnf waits forever for a lock by default; it runs with `exit_on_lock=True`, and
//!   `… already locked by N` is [`PackageError::Locked`].
//!
//! With a root: `--installroot=DIR` (dnf keeps its cache, logs and history in the root),
//! `--releasever` the major version of the root's `VERSION_ID`, the root's repositories
//! (`reposdir=DIR/etc/yum.repos.d`), its `dnf.conf` (an empty one when it has none, never the
//! machine's) and its plugin configuration; every dnf plugin is disabled (plugins are the
//! machine's code, and some write to the machine: the `local` plugin copies each installed
//! package into the machine's `/var/lib/dnf/plugins/local`), except `needs-restarting` for the
//! reboot query. rpm finds the root's database through a private `~/.rpmmacros`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::process::Command;

use super::tool::{self, Output, Tools};
use super::{PackageError, PackageGlobs, PackageManager, Pin, RebootSignal, Update};
use crate::api::host::PackageManagerKind;
use crate::engine::updates::{RebootProbe, reboot_signal};

/// The Debian (and RPM) package that has dnf.
const PROVIDER: &str = "dnf";

/// The dnf backend.
pub struct Dnf {
    root: Option<Root>,
}

struct Root {
    dir: PathBuf,
    releasever: Option<String>,
    config: PathBuf,
    /// The private home with `.rpmmacros`, and the empty `dnf.conf` when the root has none.
    home: tempfile::TempDir,
}

/// Which plugins a dnf run may load.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plugins {
    None,
    NeedsRestarting,
}

impl Dnf {
    /// dnf on `root` (its `VERSION_ID` is `version_id`), or on the running system.
    pub fn new(root: Option<&Path>, version_id: &str) -> Result<Self, PackageError> {
        let root = root
            .map(|r| -> Result<Root, PackageError> {
                let dir = tool::check_root(r)?;
                let home = tool::rpm_home(&dir)?;
                let own = dir.join("etc/dnf/dnf.conf");
                let config = if own.is_file() {
                    own
                } else {
                    let empty = home.path().join("dnf.conf");
                    std::fs::write(&empty, "[main]\n").map_err(|e| {
                        PackageError::Unavailable(format!("writing an empty dnf.conf: {e}"))
                    })?;
                    empty
                };
                let major = version_id.split('.').next().unwrap_or_default();
                Ok(Root {
                    dir,
                    releasever: (!major.is_empty()).then(|| major.to_string()),
                    config,
                    home,
                })
            })
            .transpose()?;
        Ok(Self { root })
    }

    fn dnf(&self, plugins: Plugins) -> Command {
        let mut cmd = tool::command("dnf");
        cmd.args(["--assumeyes", "--setopt=exit_on_lock=True"]);
        if let Some(root) = &self.root {
            let dir = root.dir.display();
            cmd.env("HOME", root.home.path())
                .arg(format!("--installroot={dir}"))
                .arg(format!("--setopt=reposdir={dir}/etc/yum.repos.d"))
                .arg(format!("--config={}", root.config.display()))
                .arg(format!("--setopt=pluginconfpath={dir}/etc/dnf/plugins"))
                .arg("--disableplugin=*");
            if let Some(releasever) = &root.releasever {
                cmd.arg(format!("--releasever={releasever}"));
            }
            if plugins == Plugins::NeedsRestarting {
                cmd.arg("--enableplugin=needs-restarting");
            }
        }
        cmd
    }

    async fn query(&self, args: &[&str]) -> Result<Output, PackageError> {
        let mut cmd = self.dnf(Plugins::None);
        cmd.arg("-q").args(args);
        check(tool::run(cmd, PROVIDER).await?)
    }

    async fn scan(&self) -> Result<Vec<Update>, PackageError> {
        let mut refresh = self.dnf(Plugins::None);
        refresh.args(["-q", "makecache", "--refresh"]);
        check(tool::run(refresh, PROVIDER).await?)?;
        let installed = self.installed_versions().await?;
        let upgrades = self
            .query(&[
                "repoquery",
                "--upgrades",
                "--latest-limit=1",
                "--qf",
                "%{name} %{evr} %{arch} %{reponame}",
            ])
            .await?;
        let advisories = self.query(&["updateinfo", "list", "--security"]).await?;
        Ok(updates(
            &parse_queried(&upgrades.stdout),
            &installed,
            &security_packages(&advisories.stdout),
        ))
    }

    async fn needs_restarting(&self) -> RebootSignal {
        let mut cmd = self.dnf(Plugins::NeedsRestarting);
        cmd.args(["-q", "needs-restarting", "-r"]);
        match tool::run(cmd, PROVIDER).await {
            Ok(out) => {
                let output = format!("{}{}", out.stdout, out.stderr);
                reboot_signal(RebootProbe::NeedsRestarting {
                    exit: out.code,
                    output: &output,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "needs-restarting could not be run");
                reboot_signal(RebootProbe::NeedsRestarting {
                    exit: None,
                    output: "",
                })
            }
        }
    }
}

impl Tools for Dnf {
    const TOOL: &'static str = "dnf";

    async fn installed_versions(&self) -> Result<BTreeMap<String, String>, PackageError> {
        let out = self
            .query(&["repoquery", "--installed", "--qf", "%{name} %{evr} %{arch}"])
            .await?;
        Ok(parse_queried(&out.stdout)
            .into_iter()
            .map(|q| (q.name, q.evr))
            .collect())
    }

    async fn fetch(&self, pins: &[Pin], download_only: bool) -> Result<(), PackageError> {
        let mut cmd = self.dnf(Plugins::None);
        cmd.args(["--setopt=install_weak_deps=False", "install"]);
        if download_only {
            cmd.arg("--downloadonly");
        }
        cmd.args(pins.iter().map(|p| format!("{}-{}", p.name, p.version)));
        check(tool::run(cmd, PROVIDER).await?).map(|_| ())
    }
}

impl PackageManager for Dnf {
    fn kind(&self) -> PackageManagerKind {
        PackageManagerKind::Dnf
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
        self.needs_restarting().boxed()
    }
}

/// `out` when dnf succeeded, else the error it reported.
fn check(out: Output) -> Result<Output, PackageError> {
    if out.success() {
        Ok(out)
    } else {
        Err(failure(&out))
    }
}

/// What a failed dnf run means: `… already locked by N` (with `The application with PID N is:
/// name` after it) is a held lock; otherwise the first `Error:` line (with the line after it when
/// it ends in a colon), else the first line of standard error.
fn failure(out: &Output) -> PackageError {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .chain(out.stdout.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(pid) = lines.iter().find_map(|l| {
        let (_, pid) = l.split_once(" already locked by ")?;
        Some(pid.trim().to_string())
    }) {
        let name = lines.iter().find_map(|l| {
            l.strip_prefix(&format!("The application with PID {pid} is: "))
                .map(str::trim)
        });
        let holder = match name {
            Some(name) => format!("process {pid} ({name})"),
            None => format!("process {pid}"),
        };
        return PackageError::Locked { holder };
    }
    let line = lines
        .iter()
        .position(|l| l.starts_with("Error:"))
        .map(|i| {
            let first = lines[i];
            match lines.get(i + 1) {
                Some(next) if first.ends_with(':') => format!("{first} {next}"),
                _ => first.to_string(),
            }
        })
        .or_else(|| lines.first().map(|l| l.to_string()));
    tool::failed(line.as_deref(), "dnf", out)
}

/// One line of `repoquery --qf '%{name} %{evr} %{arch} …'`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Queried {
    name: String,
    evr: String,
    arch: String,
}

fn parse_queried(text: &str) -> Vec<Queried> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some(Queried {
                name: fields.next()?.to_string(),
                evr: fields.next()?.to_string(),
                arch: fields.next()?.to_string(),
            })
        })
        .collect()
}

/// The package names that `updateinfo list --security` lines name: `ID Severity/Sec. NEVRA`.
fn security_packages(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_id, kind, nevra) = (fields.next()?, fields.next()?, fields.next()?);
            kind.ends_with("Sec.").then(|| nevra_name(nevra)).flatten()
        })
        .collect()
}

/// The name of `name-[epoch:]version-release.arch`.
fn nevra_name(nevra: &str) -> Option<String> {
    let (nevr, _arch) = nevra.rsplit_once('.')?;
    let (nev, _release) = nevr.rsplit_once('-')?;
    let (name, _version) = nev.rsplit_once('-')?;
    (!name.is_empty()).then(|| name.to_string())
}

/// The offered upgrades as updates: from the installed version, security when an advisory
/// names the package; sorted by name.
fn updates(
    upgrades: &[Queried],
    installed: &BTreeMap<String, String>,
    security: &BTreeSet<String>,
) -> Vec<Update> {
    let mut out: Vec<Update> = upgrades
        .iter()
        .map(|q| Update {
            name: q.name.clone(),
            from: installed.get(&q.name).cloned(),
            to: q.evr.clone(),
            security: security.contains(&q.name),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.to.cmp(&b.to)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::host::RebootRequired;

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/host/dnf")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn installed(name: &str) -> BTreeMap<String, String> {
        parse_queried(&fixture(name))
            .into_iter()
            .map(|q| (q.name, q.evr))
            .collect()
    }

    #[test]
    fn upgrades_are_classified_by_security_advisories() {
        let got = updates(
            &parse_queried(&fixture("repoquery-upgrades.txt")),
            &installed("repoquery-installed.txt"),
            &security_packages(&fixture("updateinfo-list-security.txt")),
        );
        let want = |name: &str, from: &str, to: &str, security| Update {
            name: name.into(),
            from: Some(from.into()),
            to: to.into(),
            security,
        };
        assert_eq!(
            got,
            vec![
                want("kernel-x", "1.0-1", "1.1-1", true),
                want("libfoo", "1.0-1", "1.1-1", true),
                want("tool", "1.0-1", "2.0-1", false),
            ]
        );
    }

    #[test]
    fn epochs_are_kept_in_versions_and_advisory_names() {
        let got = updates(
            &parse_queried(&fixture("repoquery-upgrades-epoch.txt")),
            &installed("repoquery-installed-epoch.txt"),
            &security_packages(&fixture("updateinfo-list-security-epoch.txt")),
        );
        let libbar = got.iter().find(|u| u.name == "libbar").unwrap();
        assert_eq!(libbar.from.as_deref(), Some("2:1.0-3.el9"));
        assert_eq!(libbar.to, "2:1.5-3.el9");
        assert!(libbar.security);
        assert!(!got.iter().find(|u| u.name == "tool").unwrap().security);
        assert_eq!(
            nevra_name("libbar-2:1.5-3.el9.noarch").as_deref(),
            Some("libbar")
        );
        assert_eq!(
            nevra_name("python3-libs-3.9.18-3.el9_4.x86_64").as_deref(),
            Some("python3-libs")
        );
        assert_eq!(nevra_name("garbage"), None);
    }

    #[test]
    fn needs_restarting_outputs_give_the_three_values() {
        let signal = |exit, name: &str| {
            reboot_signal(RebootProbe::NeedsRestarting {
                exit,
                output: &fixture(name),
            })
        };
        let yes = signal(Some(1), "needs-restarting-yes.txt");
        assert_eq!(yes.required, RebootRequired::Yes);
        assert_eq!(yes.by, ["kernel-x"]);
        assert_eq!(
            signal(Some(0), "needs-restarting-no.txt").required,
            RebootRequired::No
        );
        // Without dnf-plugins-core dnf exits 1 too, saying so: Unknown, not Yes.
        assert_eq!(
            signal(Some(1), "needs-restarting-missing.txt"),
            RebootSignal::unknown()
        );
    }

    fn output(code: i32, stderr: &str) -> Output {
        Output {
            code: Some(code),
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }

    #[test]
    fn a_held_lock_is_locked_naming_the_process() {
        for name in ["install-locked.stderr.txt", "makecache-locked.stderr.txt"] {
            let err = failure(&output(200, &fixture(name)));
            let PackageError::Locked { holder } = &err else {
                panic!("{name}: {err:?}")
            };
            assert!(
                holder.starts_with("process ") && holder.ends_with(" (sleep)"),
                "{holder}"
            );
        }
    }

    #[test]
    fn dnfs_error_line_is_the_failure() {
        assert_eq!(
            failure(&output(1, &fixture("install-no-match.stderr.txt"))),
            PackageError::Failed {
                line: "Error: Unable to find a match: nosuch-1.0".into()
            }
        );
        assert_eq!(
            failure(&output(
                1,
                "Error: Transaction test error:\n  file /usr/share/kernel/version from install of kernel-1.1-1.noarch conflicts with file from package kernel-1.0-1.noarch\n"
            )),
            PackageError::Failed {
                line: "Error: Transaction test error: file /usr/share/kernel/version from install of kernel-1.1-1.noarch conflicts with file from package kernel-1.0-1.noarch".into()
            }
        );
        assert_eq!(
            failure(&output(1, "")),
            PackageError::Failed {
                line: "dnf exited with status 1".into()
            }
        );
    }

    #[test]
    fn a_root_gets_its_own_configuration_and_no_machine_plugins() {
        let root = tempfile::tempdir().unwrap();
        let dnf = Dnf::new(Some(root.path()), "9.4").unwrap();
        let args: Vec<String> = dnf
            .dnf(Plugins::None)
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let r = root.path().display().to_string();
        for want in [
            format!("--installroot={r}"),
            format!("--setopt=reposdir={r}/etc/yum.repos.d"),
            format!("--setopt=pluginconfpath={r}/etc/dnf/plugins"),
            "--disableplugin=*".to_string(),
            "--releasever=9".to_string(),
            "--setopt=exit_on_lock=True".to_string(),
        ] {
            assert!(args.contains(&want), "{want} not in {args:?}");
        }
        // No dnf.conf in the root: an empty one of our own, never the machine's.
        let config = args
            .iter()
            .find_map(|a| a.strip_prefix("--config="))
            .unwrap();
        assert!(!config.starts_with("/etc/"), "{config}");
        assert_eq!(std::fs::read_to_string(config).unwrap(), "[main]\n");
        let rpmmacros = dnf.root.as_ref().unwrap().home.path().join(".rpmmacros");
        assert_eq!(
            std::fs::read_to_string(rpmmacros).unwrap(),
            "%_dbpath /var/lib/rpm\n"
        );
        let nr: Vec<String> = dnf
            .dnf(Plugins::NeedsRestarting)
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(nr.contains(&"--enableplugin=needs-restarting".to_string()));
    }
}
