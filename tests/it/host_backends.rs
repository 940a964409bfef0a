//! The agent's package-manager backends against the real apt/dpkg, dnf/rpm and zypper/rpm of
//! this machine, each in a sandboxed root with repositories built at test time and served on
//! loopback (see `host_sandbox`): scan and classify (security or not), select a PatchJob's
//! updates, download, install the exact pins offline from the cache, a rerun that changes
//! nothing, the reboot signal, a held lock that is `Locked` and changes nothing, the package
//! manager's own error line; and the machine's own package databases byte-identical throughout.
//! Also `upkeep host facts --root` on the apt sandbox.

use std::path::Path;
use std::time::{Duration, Instant};

use upkeep::agent::backends::{self, PackageError, PackageGlobs, PackageManager, Pin, Update};
use upkeep::agent::facts;
use upkeep::api::host::{PackageManagerKind, RebootRequired};
use upkeep::api::patch_job::{Classification, PatchSelection};
use upkeep::engine::updates::select;

use crate::host_sandbox::apt::{self as apt_sandbox, AptSandbox};
use crate::host_sandbox::http::Repo;
use crate::host_sandbox::rpm::{self as rpm_sandbox, Flavour, RpmSandbox};
use crate::host_sandbox::{FcntlLock, assert_unchanged, require, snapshot};

/// The machine's own package state: none of it may change.
const MACHINE_PACKAGE_STATE: &[&str] = &[
    "/var/lib/dpkg/status",
    "/etc/apt/sources.list",
    "/var/lib/rpm",
    "/root/.rpmdb",
    "/var/lib/dnf",
    "/var/cache/dnf",
    "/etc/dnf",
    "/etc/zypp",
    "/var/lib/zypp",
    "/var/cache/zypp",
    "/var/log/zypper.log",
];

fn pins(list: &[(&str, &str)]) -> Vec<Pin> {
    list.iter()
        .map(|(name, version)| Pin {
            name: name.to_string(),
            version: version.to_string(),
        })
        .collect()
}

fn update(name: &str, from: &str, to: &str, security: bool) -> Update {
    Update {
        name: name.into(),
        from: Some(from.into()),
        to: to.into(),
        security,
    }
}

fn backend(root: &Path, kind: PackageManagerKind) -> Box<dyn PackageManager> {
    let os = facts::os_status(Some(root)).unwrap();
    assert_eq!(os.package_manager, Some(kind));
    let pm = backends::for_os(&os, Some(root)).unwrap().unwrap();
    assert_eq!(pm.kind(), kind);
    pm
}

fn security() -> PatchSelection {
    PatchSelection {
        classification: Classification::Security,
        ..Default::default()
    }
}

/// What a backend's scenario expects.
struct Scenario<'a> {
    /// The versions installed first.
    base: Vec<Pin>,
    /// The updates offered then, sorted by name.
    offered: Vec<Update>,
    /// The security pins a `Security` job selects from them.
    security_pins: Vec<Pin>,
    /// What the package manager records of its transactions in the root: unchanged by a rerun.
    transactions: &'a dyn Fn() -> String,
    /// The reboot signal before anything is installed, after the base, after the patch.
    reboot: [RebootRequired; 3],
    /// The packages that the reboot signal names after the patch.
    reboot_by: Vec<String>,
}

/// The patch cycle every backend goes through; returns (scan, download, install) times.
async fn patch_cycle(
    pm: &dyn PackageManager,
    repo: &Repo,
    cached: impl Fn() -> Vec<String>,
    s: Scenario<'_>,
) -> [Duration; 3] {
    assert_eq!(
        pm.reboot_required().await.required,
        s.reboot[0],
        "reboot before anything"
    );
    assert_eq!(
        pm.refresh_and_scan().await.unwrap(),
        vec![],
        "nothing installed, nothing offered"
    );
    pm.install(&s.base).await.unwrap();
    assert_eq!(
        pm.reboot_required().await.required,
        s.reboot[1],
        "reboot after the base"
    );

    let started = Instant::now();
    let offered = pm.refresh_and_scan().await.unwrap();
    let scan = started.elapsed();
    assert_eq!(offered, s.offered);
    let chosen = select(&security(), &offered).unwrap();
    assert_eq!(chosen, s.security_pins);

    let cached_before = cached();
    let started = Instant::now();
    pm.download(&chosen).await.unwrap();
    let download = started.elapsed();
    let fetched: Vec<String> = cached()
        .into_iter()
        .filter(|f| !cached_before.contains(f))
        .collect();
    assert_eq!(
        fetched.len(),
        chosen.len(),
        "exactly the pins are fetched: {fetched:?}"
    );
    for pin in &chosen {
        assert!(
            fetched
                .iter()
                .any(|f| f.starts_with(&format!("{}_", pin.name))
                    || f.starts_with(&format!("{}-", pin.name))),
            "{} not downloaded: {fetched:?}",
            pin.name
        );
    }

    // The install needs nothing but the cache.
    repo.set_offline(true);
    let served = repo.requests();
    let started = Instant::now();
    pm.install(&chosen).await.unwrap();
    let install = started.elapsed();
    assert_eq!(repo.requests(), served, "the install fetched nothing");
    repo.set_offline(false);

    // Only the plain update is left.
    let left = pm.refresh_and_scan().await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].name, "tool");
    assert!(!left[0].security);

    // A rerun after the success changes nothing.
    let before = (s.transactions)();
    assert!(!before.is_empty());
    pm.install(&chosen).await.unwrap();
    pm.download(&chosen).await.unwrap();
    assert_eq!((s.transactions)(), before, "a rerun changed the root");

    let reboot = pm.reboot_required().await;
    assert_eq!(reboot.required, s.reboot[2], "reboot after the patch");
    assert_eq!(reboot.by, s.reboot_by);

    let globs = |g: &[&str]| {
        PackageGlobs::new(
            "patch.packages",
            &g.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    };
    assert_eq!(
        pm.installed(&globs(&["lib*"])).await.unwrap(),
        ["libbar", "libfoo"]
    );
    assert!(
        pm.installed(&globs(&["nothing-like-it*"]))
            .await
            .unwrap()
            .is_empty()
    );

    // A version the repositories do not have: the package manager's own words.
    let err = pm.install(&pins(&[("libfoo", "9.9-1")])).await.unwrap_err();
    let PackageError::Failed { line } = &err else {
        panic!("{err:?}")
    };
    assert!(line.contains("9.9"), "{line}");
    [scan, download, install]
}

fn report(name: &str, [scan, download, install]: [Duration; 3]) {
    eprintln!(
        "{name}: refresh+scan {:.2}s, download {:.2}s, install {:.2}s",
        scan.as_secs_f64(),
        download.as_secs_f64(),
        install.as_secs_f64()
    );
}

#[tokio::test]
async fn apt_scans_classifies_downloads_and_installs_exact_pins_in_a_sandbox() {
    if !require("apt backend", apt_sandbox::TOOLS) {
        return;
    }
    let machine = snapshot(MACHINE_PACKAGE_STATE);
    let sandbox = AptSandbox::new(&apt_sandbox::standard_suites()).await;
    let pm = backend(&sandbox.root, PackageManagerKind::Apt);
    let status = || String::from_utf8_lossy(&sandbox.status()).into_owned();
    let times = patch_cycle(
        pm.as_ref(),
        &sandbox.repo,
        || sandbox.cached(),
        Scenario {
            base: pins(&[
                ("kernel-x", "1.0"),
                ("libbar", "2:1.0"),
                ("libfoo", "1.0"),
                ("tool", "1.0"),
            ]),
            offered: vec![
                // bookworm-security, labelled Debian-Security
                update("kernel-x", "1.0", "1.1", true),
                // jammy-security, labelled Ubuntu: the suite decides
                update("libbar", "2:1.0", "2:1.5", true),
                update("libfoo", "1.0", "1.1", true),
                // bookworm-updates, labelled Debian: not security
                update("tool", "1.0", "2.0", false),
            ],
            security_pins: pins(&[("kernel-x", "1.1"), ("libbar", "2:1.5"), ("libfoo", "1.1")]),
            transactions: &status,
            reboot: [RebootRequired::No, RebootRequired::No, RebootRequired::Yes],
            reboot_by: vec!["kernel-x".into()],
        },
    )
    .await;
    report("apt", times);
    // kernel-x's postinst wrote the flag into the root, not the machine.
    assert!(sandbox.root.join("var/run/reboot-required").is_file());
    assert_unchanged(&machine, &snapshot(MACHINE_PACKAGE_STATE));
}

#[tokio::test]
async fn apt_with_a_held_lock_is_locked_and_changes_nothing() {
    if !require("apt lock", apt_sandbox::TOOLS) {
        return;
    }
    let machine = snapshot(MACHINE_PACKAGE_STATE);
    let sandbox = AptSandbox::new(&apt_sandbox::standard_suites()).await;
    let pm = backend(&sandbox.root, PackageManagerKind::Apt);
    pm.refresh_and_scan().await.unwrap();
    let base = pins(&[("libfoo", "1.0")]);
    let me = format!("process {} (", std::process::id());
    {
        let _lock = FcntlLock::take(&sandbox.root.join("var/lib/dpkg/lock-frontend"));
        let before = sandbox.status();
        for result in [pm.install(&base).await, pm.download(&base).await] {
            match result {
                Err(PackageError::Locked { holder }) => {
                    assert!(holder.starts_with(&me), "{holder}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(sandbox.status(), before, "dpkg's database is untouched");
    }
    {
        let _lock = FcntlLock::take(&sandbox.root.join("var/lib/apt/lists/lock"));
        assert!(matches!(
            pm.refresh_and_scan().await,
            Err(PackageError::Locked { .. })
        ));
    }
    // Released: the same install goes through, and dpkg's database is sound.
    pm.install(&base).await.unwrap();
    assert_eq!(
        pm.installed(&PackageGlobs::new("p", &["libfoo".into()]).unwrap())
            .await
            .unwrap(),
        ["libfoo"]
    );
    let audit = tokio::process::Command::new("dpkg")
        .arg(format!(
            "--admindir={}",
            sandbox.root.join("var/lib/dpkg").display()
        ))
        .arg("--audit")
        .output()
        .await
        .unwrap();
    assert!(
        audit.status.success() && audit.stdout.is_empty(),
        "{audit:?}"
    );
    assert_unchanged(&machine, &snapshot(MACHINE_PACKAGE_STATE));
}

#[tokio::test]
async fn host_facts_reports_a_root_as_json_and_text() {
    if !require("upkeep host facts", apt_sandbox::TOOLS) {
        return;
    }
    let sandbox = AptSandbox::new(&apt_sandbox::standard_suites()).await;
    let pm = backend(&sandbox.root, PackageManagerKind::Apt);
    pm.refresh_and_scan().await.unwrap();
    pm.install(&pins(&[
        ("kernel-x", "1.0"),
        ("libfoo", "1.0"),
        ("tool", "1.0"),
    ]))
    .await
    .unwrap();
    // The binary runs while this runtime keeps serving the repository.
    let run = |format: &'static str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(["host", "facts", "--root"])
            .arg(&sandbox.root)
            .args(["-o", format])
            .output()
    };
    let out = run("json").await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["os"]["id"], "debian");
    assert_eq!(json["os"]["versionId"], "12");
    assert_eq!(json["os"]["packageManager"], "apt");
    assert_eq!(json["os"]["prettyName"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(json["rebootRequired"], "No");
    assert_eq!(json["products"], serde_json::json!([]));
    assert_eq!(
        json["updates"],
        serde_json::json!([
            {"name": "kernel-x", "from": "1.0", "to": "1.1", "security": true},
            {"name": "libfoo", "from": "1.0", "to": "1.1", "security": true},
            {"name": "tool", "from": "1.0", "to": "2.0", "security": false},
        ])
    );
    let text = run("text").await.unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Package manager apt"), "{text}");
    assert!(text.contains("Updates         3 (2 security)"), "{text}");
    assert!(text.contains("kernel-x  1.0 -> 1.1  security"), "{text}");

    // A root that is not one: exit 1 naming the file.
    let empty = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["host", "facts", "--root"])
        .arg(empty.path())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("etc/os-release"));
}

/// Whether dnf's needs-restarting plugin (dnf-plugins-core) is installed. Debian's
/// dnf-plugins-core and zypper conflict, and CI installs zypper: there the plugin is missing and
/// the signal must be Unknown. The probe runs with a home of its own: Debian's rpm keeps its
/// database in `~/.rpmdb`, and dnf opening the machine's would rewrite its SQLite `-shm` and
/// `-wal` files between the tests' snapshots of the machine's package state.
async fn needs_restarting_available() -> bool {
    let home = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new("dnf")
        .args(["-q", "needs-restarting", "--help"])
        .env("LC_ALL", "C")
        .env("HOME", home.path())
        .output()
        .await;
    out.is_ok_and(|o| o.status.success())
}

fn rpm_offered() -> Vec<Update> {
    vec![
        update("kernel-x", "1.0-1", "1.1-1", true),
        update("libbar", "2:1.0-3.el9", "2:1.5-3.el9", true),
        update("libfoo", "1.0-1", "1.1-1", true),
        update("tool", "1.0-1", "2.0-1", false),
    ]
}

fn rpm_security_pins() -> Vec<Pin> {
    pins(&[
        ("kernel-x", "1.1-1"),
        ("libbar", "2:1.5-3.el9"),
        ("libfoo", "1.1-1"),
    ])
}

fn rpm_base() -> Vec<Pin> {
    rpm_sandbox::base_pins()
        .into_iter()
        .map(|(name, version)| Pin { name, version })
        .collect()
}

const RPM_TOOLS: &[(&str, &str)] = &[
    ("rpmbuild", "rpm"),
    ("createrepo_c", "createrepo-c"),
    ("modifyrepo_c", "createrepo-c"),
    ("dnf", "dnf"),
];

#[tokio::test]
async fn dnf_scans_classifies_by_advisories_and_installs_exact_pins_in_an_installroot() {
    if !require("dnf backend", RPM_TOOLS) {
        return;
    }
    let machine = snapshot(MACHINE_PACKAGE_STATE);
    let sandbox = RpmSandbox::new(Flavour::Dnf).await;
    let pm = backend(&sandbox.root, PackageManagerKind::Dnf);
    let plugin = needs_restarting_available().await;
    // dnf.rpm.log records each package of a transaction on a SUBDEBUG line.
    let log = || {
        std::fs::read_to_string(sandbox.root.join("var/log/dnf.rpm.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" SUBDEBUG "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let times = patch_cycle(
        pm.as_ref(),
        &sandbox.repo,
        || sandbox.cached(),
        Scenario {
            base: rpm_base(),
            offered: rpm_offered(),
            security_pins: rpm_security_pins(),
            transactions: &log,
            // needs-restarting: a listed package installed since boot (kernel-x, by the root's
            // needs-restarting.d) needs a reboot; without the plugin there is no signal.
            reboot: if plugin {
                [RebootRequired::No, RebootRequired::Yes, RebootRequired::Yes]
            } else {
                [RebootRequired::Unknown; 3]
            },
            reboot_by: if plugin {
                vec!["kernel-x".into()]
            } else {
                vec![]
            },
        },
    )
    .await;
    report("dnf", times);
    if !plugin {
        eprintln!(
            "dnf needs-restarting plugin absent (dnf-plugins-core conflicts with zypper): reboot signal Unknown, as designed"
        );
    }
    assert_unchanged(&machine, &snapshot(MACHINE_PACKAGE_STATE));
}

#[tokio::test]
async fn dnf_with_a_held_lock_is_locked_and_changes_nothing() {
    if !require("dnf lock", RPM_TOOLS) {
        return;
    }
    let sandbox = RpmSandbox::new(Flavour::Dnf).await;
    let pm = backend(&sandbox.root, PackageManagerKind::Dnf);
    pm.refresh_and_scan().await.unwrap();
    let me = std::process::id().to_string();
    let base = rpm_base();
    // dnf's locks are files holding the pid of a live process.
    let rpmdb_lock = sandbox.root.join("var/lib/dnf/rpmdb_lock.pid");
    std::fs::create_dir_all(rpmdb_lock.parent().unwrap()).unwrap();
    std::fs::write(&rpmdb_lock, &me).unwrap();
    match pm.install(&base).await {
        Err(PackageError::Locked { holder }) => {
            assert!(holder.starts_with(&format!("process {me}")), "{holder}")
        }
        other => panic!("{other:?}"),
    }
    let transactions =
        std::fs::read_to_string(sandbox.root.join("var/log/dnf.rpm.log")).unwrap_or_default();
    assert!(
        !transactions.contains(" SUBDEBUG "),
        "nothing was installed: {transactions}"
    );
    std::fs::remove_file(&rpmdb_lock).unwrap();
    let metadata_lock = sandbox.root.join("var/cache/dnf/metadata_lock.pid");
    std::fs::write(&metadata_lock, &me).unwrap();
    assert!(matches!(
        pm.refresh_and_scan().await,
        Err(PackageError::Locked { .. })
    ));
    std::fs::remove_file(&metadata_lock).unwrap();
    pm.install(&base).await.unwrap();
    assert_eq!(pm.refresh_and_scan().await.unwrap(), rpm_offered());
}

const ZYPPER_TOOLS: &[(&str, &str)] = &[
    ("rpmbuild", "rpm"),
    ("createrepo_c", "createrepo-c"),
    ("modifyrepo_c", "createrepo-c"),
    ("zypper", "zypper"),
];

#[tokio::test]
async fn zypper_scans_classifies_by_security_patches_and_installs_exact_pins_in_a_root() {
    if !require("zypper backend", ZYPPER_TOOLS) {
        return;
    }
    let machine = snapshot(MACHINE_PACKAGE_STATE);
    let sandbox = RpmSandbox::new(Flavour::Zypper).await;
    let pm = backend(&sandbox.root, PackageManagerKind::Zypper);
    let history =
        || std::fs::read_to_string(sandbox.root.join("var/log/zypp/history")).unwrap_or_default();
    let times = patch_cycle(
        pm.as_ref(),
        &sandbox.repo,
        || sandbox.cached(),
        Scenario {
            base: rpm_base(),
            offered: rpm_offered(),
            security_pins: rpm_security_pins(),
            transactions: &history,
            // kernel-x 1.1 carries installhint(reboot-needed): zypper flags <root>/run/reboot-needed.
            reboot: [RebootRequired::No, RebootRequired::No, RebootRequired::Yes],
            reboot_by: vec![],
        },
    )
    .await;
    report("zypper", times);
    assert!(sandbox.root.join("run/reboot-needed").exists());
    assert!(
        sandbox.root.join("var/log/zypper.log").is_file(),
        "zypper logs into the root"
    );
    assert_unchanged(&machine, &snapshot(MACHINE_PACKAGE_STATE));
}

#[tokio::test]
async fn zypper_with_a_held_lock_is_locked_and_changes_nothing() {
    if !require("zypper lock", ZYPPER_TOOLS) {
        return;
    }
    let sandbox = RpmSandbox::new(Flavour::Zypper).await;
    let pm = backend(&sandbox.root, PackageManagerKind::Zypper);
    pm.refresh_and_scan().await.unwrap();
    let me = std::process::id().to_string();
    // zypper's lock is <root>/run/zypp.pid holding the pid of a live process.
    let lock = sandbox.root.join("run/zypp.pid");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, format!("{me}\n")).unwrap();
    let history = sandbox.root.join("var/log/zypp/history");
    let before = std::fs::read(&history).ok();
    for result in [
        pm.install(&rpm_base()).await,
        pm.refresh_and_scan().await.map(|_| ()),
    ] {
        match result {
            Err(PackageError::Locked { holder }) => {
                assert!(holder.starts_with(&format!("process {me} (")), "{holder}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(std::fs::read(&history).ok(), before);
    std::fs::write(&lock, "").unwrap();
    pm.install(&rpm_base()).await.unwrap();
    assert_eq!(pm.refresh_and_scan().await.unwrap(), rpm_offered());
}
