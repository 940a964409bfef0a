//! An apt sandbox: small .debs built with `dpkg-deb --root-owner-group --build`, a repository
//! made with `apt-ftparchive` (one suite per origin, each Release with its Label, Suite and
//! Codename), served over loopback HTTP, and a root file system with an empty dpkg database whose
//! sources point at it (the base and updates suites in `etc/apt/sources.list`, the security
//! suites in a deb822 file in `etc/apt/sources.list.d`, as a Debian 12 image has them).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::http::Repo;
use super::{sh, write};

/// The tools the sandbox needs, with their Debian packages.
pub const TOOLS: &[(&str, &str)] = &[
    ("apt-get", "apt"),
    ("apt-ftparchive", "apt-utils"),
    ("dpkg-deb", "dpkg"),
];

/// A package of the sandbox's repository.
pub struct Deb {
    /// Its name.
    pub name: &'static str,
    /// Its version.
    pub version: &'static str,
    /// A postinst script body, if any (`$DPKG_ROOT` is the root dpkg installs into).
    pub postinst: Option<&'static str>,
}

/// One suite of the repository: its own Release with these fields.
pub struct Suite {
    /// The dist name (`bookworm-security`), also its Suite and Codename.
    pub dist: &'static str,
    /// The Release Label.
    pub label: &'static str,
    /// Its packages.
    pub debs: Vec<Deb>,
}

/// The postinst of a package that needs a reboot, as Debian's kernel packages flag it.
pub const FLAGS_REBOOT: &str = "mkdir -p \"$DPKG_ROOT/var/run\"\necho '*** System restart required ***' > \"$DPKG_ROOT/var/run/reboot-required\"\necho kernel-x >> \"$DPKG_ROOT/var/run/reboot-required.pkgs\"";

/// The suites of the standard scenario: kernel-x, libfoo and libbar (with an epoch) have
/// security updates (Debian's label and suite, Ubuntu's suite), tool a plain one.
pub fn standard_suites() -> Vec<Suite> {
    let deb = |name, version| Deb {
        name,
        version,
        postinst: None,
    };
    vec![
        Suite {
            dist: "bookworm",
            label: "Debian",
            debs: vec![
                deb("kernel-x", "1.0"),
                deb("libfoo", "1.0"),
                deb("libbar", "2:1.0"),
                deb("tool", "1.0"),
            ],
        },
        Suite {
            dist: "bookworm-updates",
            label: "Debian",
            debs: vec![deb("tool", "2.0")],
        },
        Suite {
            dist: "bookworm-security",
            label: "Debian-Security",
            debs: vec![
                Deb {
                    name: "kernel-x",
                    version: "1.1",
                    postinst: Some(FLAGS_REBOOT),
                },
                deb("libfoo", "1.1"),
            ],
        },
        // Ubuntu's security suite is labelled just "Ubuntu".
        Suite {
            dist: "jammy-security",
            label: "Ubuntu",
            debs: vec![deb("libbar", "2:1.5")],
        },
    ]
}

/// A repository and a root that uses it.
pub struct AptSandbox {
    /// Holds everything.
    pub dir: tempfile::TempDir,
    /// The root file system.
    pub root: PathBuf,
    /// The served repository.
    pub repo: Repo,
}

fn native_arch() -> String {
    sh(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string()
}

fn build_deb(work: &Path, deb: &Deb, out: &Path) {
    let tree = work.join(format!("{}_{}", deb.name, deb.version.replace(':', "_")));
    write(
        &tree.join(format!("usr/share/{}/version", deb.name)),
        &format!("{} {}\n", deb.name, deb.version),
    );
    write(
        &tree.join("DEBIAN/control"),
        &format!(
            "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: upkeep tests <tests@upkeep.invalid>\nDescription: upkeep test package {}\n",
            deb.name, deb.version, deb.name
        ),
    );
    if let Some(body) = deb.postinst {
        let script = tree.join("DEBIAN/postinst");
        write(&script, &format!("#!/bin/sh\nset -e\n{body}\n"));
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::create_dir_all(out).unwrap();
    sh(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        // Debian's file names leave the epoch out.
        .arg(out.join(format!(
            "{}_{}_all.deb",
            deb.name,
            deb.version.split_once(':').map_or(deb.version, |(_, v)| v)
        ))));
}

/// Builds the repository of `suites` under `repo`.
pub fn build_repo(work: &Path, repo: &Path, suites: &[Suite]) {
    let arch = native_arch();
    for suite in suites {
        let pool = format!("pool/{}", suite.dist);
        for deb in &suite.debs {
            build_deb(work, deb, &repo.join(&pool));
        }
        let packages = sh(Command::new("apt-ftparchive")
            .current_dir(repo)
            .args(["packages", &pool]));
        for binary in ["binary-all", &format!("binary-{arch}")] {
            write(
                &repo.join(format!("dists/{}/main/{binary}/Packages", suite.dist)),
                &packages,
            );
        }
        let release = sh(Command::new("apt-ftparchive")
            .current_dir(repo)
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Label={}", suite.label))
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Suite={}", suite.dist))
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Codename={}", suite.dist))
            .arg("-o")
            .arg(format!(
                "APT::FTPArchive::Release::Architectures={arch} all"
            ))
            .arg("-o")
            .arg("APT::FTPArchive::Release::Components=main")
            .arg("release")
            .arg(format!("dists/{}", suite.dist)));
        write(
            &repo.join(format!("dists/{}/Release", suite.dist)),
            &release,
        );
    }
}

/// A Debian 12 root with an empty dpkg database, as a minimal image has it.
pub fn make_root(root: &Path) {
    write(
        &root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
    );
    for dir in [
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "etc/apt/trusted.gpg.d",
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/log/apt",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    write(&root.join("var/lib/dpkg/status"), "");
    write(
        &root.join("var/lib/dpkg/arch"),
        &format!("{}\n", native_arch()),
    );
}

impl AptSandbox {
    /// Builds the repository of `suites`, serves it and makes a root using it.
    pub async fn new(suites: &[Suite]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo_dir = dir.path().join("repo");
        build_repo(&dir.path().join("build"), &repo_dir, suites);
        let repo = Repo::serve(&repo_dir).await;
        let root = dir.path().join("root");
        make_root(&root);
        let line = |dist: &str| format!("deb [trusted=yes] {} {dist} main\n", repo.url);
        let (security, plain): (Vec<&Suite>, Vec<&Suite>) =
            suites.iter().partition(|s| s.dist.ends_with("-security"));
        write(
            &root.join("etc/apt/sources.list"),
            &plain.iter().map(|s| line(s.dist)).collect::<String>(),
        );
        if !security.is_empty() {
            write(
                &root.join("etc/apt/sources.list.d/security.sources"),
                &format!(
                    "Types: deb\nURIs: {}\nSuites: {}\nComponents: main\nTrusted: yes\n",
                    repo.url,
                    security
                        .iter()
                        .map(|s| s.dist)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
        }
        Self { dir, root, repo }
    }

    /// The root's dpkg database.
    pub fn status(&self) -> Vec<u8> {
        std::fs::read(self.root.join("var/lib/dpkg/status")).unwrap()
    }

    /// The .deb files in the root's apt cache.
    pub fn cached(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join("var/cache/apt/archives"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".deb"))
            .collect();
        names.sort();
        names
    }
}
