//! RPM sandboxes for dnf and zypper: noarch packages built with `rpmbuild`, two repositories made
//! with `createrepo_c` (base, and updates with an updateinfo of security and bugfix advisories
//! added by `modifyrepo_c --mdtype=updateinfo`), served over loopback HTTP, and a root file system
//! (Rocky Linux 9 for dnf, SLES 15 for zypper) whose repository configuration points at them.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::http::Repo;
use super::{sh, write};

/// What building the repositories needs, with the Debian packages.
pub const BUILD_TOOLS: &[(&str, &str)] = &[
    ("rpmbuild", "rpm"),
    ("createrepo_c", "createrepo-c"),
    ("modifyrepo_c", "createrepo-c"),
];

/// A package: name, epoch, version, release, extra spec preamble.
struct Rpm {
    name: &'static str,
    epoch: Option<u32>,
    version: &'static str,
    release: &'static str,
    preamble: &'static str,
}

/// An advisory of the updates repository.
struct Advisory {
    id: &'static str,
    kind: &'static str,
    severity: Option<&'static str>,
    package: &'static Rpm,
}

const KERNEL_OLD: Rpm = Rpm {
    name: "kernel-x",
    epoch: None,
    version: "1.0",
    release: "1",
    preamble: "",
};
// zypper writes <root>/run/reboot-needed after installing a package with this hint.
const KERNEL_NEW: Rpm = Rpm {
    name: "kernel-x",
    epoch: None,
    version: "1.1",
    release: "1",
    preamble: "Provides: installhint(reboot-needed)",
};
const LIBFOO_OLD: Rpm = Rpm {
    name: "libfoo",
    epoch: None,
    version: "1.0",
    release: "1",
    preamble: "",
};
const LIBFOO_NEW: Rpm = Rpm {
    name: "libfoo",
    epoch: None,
    version: "1.1",
    release: "1",
    preamble: "",
};
const LIBBAR_OLD: Rpm = Rpm {
    name: "libbar",
    epoch: Some(2),
    version: "1.0",
    release: "3.el9",
    preamble: "",
};
const LIBBAR_NEW: Rpm = Rpm {
    name: "libbar",
    epoch: Some(2),
    version: "1.5",
    release: "3.el9",
    preamble: "",
};
const TOOL_OLD: Rpm = Rpm {
    name: "tool",
    epoch: None,
    version: "1.0",
    release: "1",
    preamble: "",
};
const TOOL_NEW: Rpm = Rpm {
    name: "tool",
    epoch: None,
    version: "2.0",
    release: "1",
    preamble: "",
};

const ADVISORIES: &[Advisory] = &[
    Advisory {
        id: "UPKEEP-2026-0001",
        kind: "security",
        severity: Some("Important"),
        package: &LIBFOO_NEW,
    },
    Advisory {
        id: "UPKEEP-2026-0002",
        kind: "bugfix",
        severity: None,
        package: &TOOL_NEW,
    },
    Advisory {
        id: "UPKEEP-2026-0003",
        kind: "security",
        severity: None,
        package: &KERNEL_NEW,
    },
    Advisory {
        id: "UPKEEP-2026-0004",
        kind: "security",
        severity: Some("Critical"),
        package: &LIBBAR_NEW,
    },
];

impl Rpm {
    fn evr(&self) -> String {
        match self.epoch {
            Some(e) => format!("{e}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }
}

/// The base versions, as exact `(name, epoch:version-release)` pins.
pub fn base_pins() -> Vec<(String, String)> {
    [KERNEL_OLD, LIBBAR_OLD, LIBFOO_OLD, TOOL_OLD]
        .iter()
        .map(|r| (r.name.to_string(), r.evr()))
        .collect()
}

fn build(work: &Path, rpm: &Rpm, out: &Path) {
    let spec = work.join(format!("{}-{}.spec", rpm.name, rpm.version));
    let epoch = rpm
        .epoch
        .map(|e| format!("Epoch: {e}\n"))
        .unwrap_or_default();
    write(
        &spec,
        &format!(
            "Name: {name}\n{epoch}Version: {version}\nRelease: {release}\nSummary: upkeep test package {name}\nLicense: Apache-2.0\nBuildArch: noarch\n{preamble}\n%description\nupkeep test package {name}\n%install\nmkdir -p %{{buildroot}}/usr/share/{name}\necho '{name} {version}' > %{{buildroot}}/usr/share/{name}/version\n%files\n/usr/share/{name}/version\n",
            name = rpm.name,
            version = rpm.version,
            release = rpm.release,
            preamble = rpm.preamble,
        ),
    );
    std::fs::create_dir_all(out).unwrap();
    // rpmbuild with a home of its own: Debian's rpm keeps its database in ~/.rpmdb.
    sh(Command::new("rpmbuild")
        .env("HOME", work)
        .arg("--quiet")
        .arg("--define")
        .arg(format!("_topdir {}", work.join("rpmbuild").display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", out.display()))
        .arg("--define")
        .arg("_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm")
        .arg("-bb")
        .arg(&spec));
}

fn updateinfo() -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<updates>\n");
    for a in ADVISORIES {
        let p = a.package;
        let severity = a
            .severity
            .map(|s| format!("<severity>{s}</severity>"))
            .unwrap_or_default();
        xml.push_str(&format!(
            "  <update from=\"tests@upkeep.invalid\" status=\"stable\" type=\"{kind}\" version=\"1\">\n    <id>{id}</id>\n    <title>{name} update</title>\n    {severity}\n    <issued date=\"2026-11-01 00:00:00\"/>\n    <description>Fixes {name}.</description>\n    <pkglist><collection short=\"upkeep\"><name>upkeep</name>\n      <package name=\"{name}\" version=\"{version}\" release=\"{release}\" epoch=\"{epoch}\" arch=\"noarch\"><filename>{name}-{version}-{release}.noarch.rpm</filename></package>\n    </collection></pkglist>\n  </update>\n",
            kind = a.kind,
            id = a.id,
            name = p.name,
            version = p.version,
            release = p.release,
            epoch = p.epoch.unwrap_or(0),
        ));
    }
    xml.push_str("</updates>\n");
    xml
}

/// Builds `base` and `updates` under `repo`.
fn build_repos(work: &Path, repo: &Path) {
    for rpm in [KERNEL_OLD, LIBFOO_OLD, LIBBAR_OLD, TOOL_OLD] {
        build(work, &rpm, &repo.join("base"));
    }
    for rpm in [KERNEL_NEW, LIBFOO_NEW, LIBBAR_NEW, TOOL_NEW] {
        build(work, &rpm, &repo.join("updates"));
    }
    for dir in ["base", "updates"] {
        sh(Command::new("createrepo_c").arg("-q").arg(repo.join(dir)));
    }
    let info = work.join("updateinfo.xml");
    write(&info, &updateinfo());
    sh(Command::new("modifyrepo_c")
        .arg("--mdtype=updateinfo")
        .arg(&info)
        .arg(repo.join("updates/repodata")));
}

/// Which package manager the root is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Rocky Linux 9 with `etc/yum.repos.d` and `etc/dnf/dnf.conf`.
    Dnf,
    /// SLES 15 with `etc/zypp/repos.d`.
    Zypper,
}

/// Repositories and a root that uses them.
pub struct RpmSandbox {
    /// Holds everything.
    pub dir: tempfile::TempDir,
    /// The root file system.
    pub root: PathBuf,
    /// The served repositories (`/base`, `/updates`).
    pub repo: Repo,
}

impl RpmSandbox {
    /// Builds and serves the repositories and makes a root of `flavour` using them.
    pub async fn new(flavour: Flavour) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo_dir = dir.path().join("repo");
        build_repos(&dir.path().join("build"), &repo_dir);
        let repo = Repo::serve(&repo_dir).await;
        let root = dir.path().join("root");
        let section = |name: &str| {
            format!(
                "[{name}]\nname={name}\nenabled=1\nautorefresh=1\nbaseurl={}/{name}\ntype=rpm-md\ngpgcheck=0\n\n",
                repo.url
            )
        };
        let repos = format!("{}{}", section("base"), section("updates"));
        match flavour {
            Flavour::Dnf => {
                write(
                    &root.join("etc/os-release"),
                    "NAME=\"Rocky Linux\"\nVERSION=\"9.4 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\n",
                );
                write(&root.join("etc/yum.repos.d/upkeep.repo"), &repos);
                write(&root.join("etc/dnf/dnf.conf"), "[main]\ngpgcheck=0\n");
                // needs-restarting counts kernel-x as a package that needs a reboot.
                write(
                    &root.join("etc/dnf/plugins/needs-restarting.d/upkeep.conf"),
                    "kernel-x\n",
                );
            }
            Flavour::Zypper => {
                write(
                    &root.join("etc/os-release"),
                    "NAME=\"SLES\"\nVERSION=\"15-SP6\"\nVERSION_ID=\"15.6\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP6\"\nID=\"sles\"\nID_LIKE=\"suse\"\n",
                );
                write(&root.join("etc/zypp/repos.d/upkeep.repo"), &repos);
            }
        }
        Self { dir, root, repo }
    }

    /// The .rpm files anywhere in the root's package caches.
    pub fn cached(&self) -> Vec<String> {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rpm") {
                    out.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root.join("var/cache"), &mut out);
        out.sort();
        out
    }
}
