//! What the agent reports about its host: the OS (from `<root>/etc/os-release`, the running
//! kernel, the architecture), the package manager upkeep drives there, the updates it offers and
//! whether the host needs a reboot. `upkeep host facts` prints these; the agent writes them into
//! its Host's status.
//!
//! Invariant: reading facts changes nothing on the host except the package manager's metadata
//! cache (the scan refreshes it, as `apt-get update` does).

use std::path::{Path, PathBuf};

use crate::agent::backends::{self, PackageError, RebootSignal, Update};
use crate::api::host::{OsStatus, PackageManagerKind, UpdatesStatus};
use crate::engine::updates::package_manager_for;

/// Why the facts could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// Neither `etc/os-release` nor `usr/lib/os-release` could be read.
    #[error(
        "cannot read {path}: {source}; a root file system needs etc/os-release (or usr/lib/os-release)"
    )]
    OsRelease {
        /// The file tried first.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The package manager failed.
    #[error("{0}")]
    Package(#[from] PackageError),
}

/// The fields of os-release that upkeep uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// `ID_LIKE`, split on spaces, e.g. `["rhel", "centos", "fedora"]`.
    pub id_like: Vec<String>,
    /// `VERSION_ID`, e.g. `12`.
    pub version_id: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
}

/// Parses os-release(5): `KEY=value` lines, values optionally quoted (`"…"` with `\"`, `\\`,
/// `` \` ``, `\$` escapes, or `'…'`); comments and blank lines ignored; later keys win.
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut release = OsRelease::default();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(raw.trim());
        match key.trim() {
            "ID" => release.id = value,
            "ID_LIKE" => release.id_like = value.split_whitespace().map(str::to_string).collect(),
            "VERSION_ID" => release.version_id = value,
            "PRETTY_NAME" => release.pretty_name = value,
            _ => {}
        }
    }
    release
}

fn unquote(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.to_string();
    }
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return raw.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(next @ ('"' | '\\' | '`' | '$'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// The machine architecture as the package manager names it: Debian's names for apt
/// (`amd64`, `arm64`, …), rpm's for dnf and zypper and when there is none (`x86_64`, `aarch64`).
pub fn arch_name(machine: &str, manager: Option<PackageManagerKind>) -> String {
    let debian = match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" | "i686" | "i586" | "i386" => "i386",
        "arm" => "armhf",
        "powerpc64" | "ppc64le" => "ppc64el",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    };
    let rpm = match machine {
        "powerpc64" => "ppc64le",
        "x86" => "i686",
        other => other,
    };
    match manager {
        Some(PackageManagerKind::Apt) => debian,
        _ => rpm,
    }
    .to_string()
}

/// The OS of the running system, or of `root`: os-release from the root, the package manager
/// upkeep drives there, the running kernel's release and the machine architecture.
pub fn os_status(root: Option<&Path>) -> Result<OsStatus, FactsError> {
    let base = root.unwrap_or_else(|| Path::new("/"));
    let first = base.join("etc/os-release");
    let text = std::fs::read_to_string(&first)
        .or_else(|_| std::fs::read_to_string(base.join("usr/lib/os-release")))
        .map_err(|source| FactsError::OsRelease {
            path: first.clone(),
            source,
        })?;
    let release = parse_os_release(&text);
    let package_manager = package_manager_for(&release.id, &release.id_like);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    Ok(OsStatus {
        id: release.id,
        version_id: release.version_id,
        pretty_name: release.pretty_name,
        kernel,
        arch: arch_name(std::env::consts::ARCH, package_manager),
        package_manager,
    })
}

/// Everything the agent reports about the host's OS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// The OS.
    pub os: OsStatus,
    /// Whether it needs a reboot (`Unknown` without a package manager).
    pub reboot: RebootSignal,
    /// The updates on offer, sorted by name (none without a package manager).
    pub updates: Vec<Update>,
}

impl HostFacts {
    /// The counts for the Host's `status.updates` (without `checkedAt`, which the caller stamps).
    pub fn updates_status(&self) -> UpdatesStatus {
        UpdatesStatus {
            available: u32::try_from(self.updates.len()).unwrap_or(u32::MAX),
            security: u32::try_from(self.updates.iter().filter(|u| u.security).count())
                .unwrap_or(u32::MAX),
            checked_at: None,
        }
    }
}

/// Reads the host's facts: the OS, then (when upkeep has a backend for it) a metadata refresh
/// and scan, and the reboot signal.
#[tracing::instrument(skip_all, fields(root = ?root))]
pub async fn gather(root: Option<&Path>) -> Result<HostFacts, FactsError> {
    let os = os_status(root)?;
    let Some(manager) = backends::for_os(&os, root)? else {
        tracing::info!(id = %os.id, "no package manager upkeep drives on this OS");
        return Ok(HostFacts {
            os,
            reboot: RebootSignal::unknown(),
            updates: vec![],
        });
    };
    let updates = manager.refresh_and_scan().await?;
    let reboot = manager.reboot_required().await;
    Ok(HostFacts {
        os,
        reboot,
        updates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_files_of_the_supported_families() {
        let debian = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
        );
        assert_eq!(
            debian,
            OsRelease {
                id: "debian".into(),
                id_like: vec![],
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            }
        );
        let rocky = parse_os_release(
            "# comment\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID='9.4'\nPRETTY_NAME=\"Rocky \\\"Blue\\\" Onyx \\$x\"\n\nBROKEN LINE\n",
        );
        assert_eq!(rocky.id_like, ["rhel", "centos", "fedora"]);
        assert_eq!(rocky.version_id, "9.4");
        assert_eq!(rocky.pretty_name, "Rocky \"Blue\" Onyx $x");
        assert_eq!(
            package_manager_for(&rocky.id, &rocky.id_like),
            Some(PackageManagerKind::Dnf)
        );
    }

    #[test]
    fn architectures_are_named_as_the_package_manager_names_them() {
        assert_eq!(arch_name("x86_64", Some(PackageManagerKind::Apt)), "amd64");
        assert_eq!(arch_name("aarch64", Some(PackageManagerKind::Apt)), "arm64");
        assert_eq!(arch_name("x86_64", Some(PackageManagerKind::Dnf)), "x86_64");
        assert_eq!(
            arch_name("aarch64", Some(PackageManagerKind::Zypper)),
            "aarch64"
        );
        assert_eq!(arch_name("riscv64", None), "riscv64");
    }

    #[test]
    fn the_os_comes_from_the_root() {
        let root = tempfile::tempdir().unwrap();
        assert!(matches!(
            os_status(Some(root.path())),
            Err(FactsError::OsRelease { .. })
        ));
        std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        std::fs::write(
            root.path().join("usr/lib/os-release"),
            "ID=sles\nID_LIKE=\"suse\"\nVERSION_ID=\"15.6\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP6\"\n",
        )
        .unwrap();
        let os = os_status(Some(root.path())).unwrap();
        assert_eq!(os.id, "sles");
        assert_eq!(os.package_manager, Some(PackageManagerKind::Zypper));
        assert_eq!(os.pretty_name, "SUSE Linux Enterprise Server 15 SP6");
        assert!(!os.kernel.is_empty());
        assert_eq!(
            os.arch,
            arch_name(std::env::consts::ARCH, os.package_manager)
        );
    }

    #[tokio::test]
    async fn an_os_without_a_package_manager_has_no_updates_and_an_unknown_reboot() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/os-release"),
            "ID=alpine\nVERSION_ID=3.20.0\n",
        )
        .unwrap();
        let facts = gather(Some(root.path())).await.unwrap();
        assert_eq!(facts.os.package_manager, None);
        assert_eq!(facts.reboot, RebootSignal::unknown());
        assert!(facts.updates.is_empty());
        assert_eq!(facts.updates_status().available, 0);
    }
}
