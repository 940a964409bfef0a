//! Installing and uninstalling real packages into a real product directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use upkeep::agent::installers::{BuiltinInstaller, Installer, ProductTarget};
use upkeep::agent::products::{self, read_history, read_product};
use upkeep::api::codes::PackageResult;
use upkeep::api::host::{EventType, HistoryAction};
use upkeep::engine::packages::Reason;

use super::fixtures::*;

fn last_line(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

#[test]
fn a_fix_pack_installs_and_uninstalls_every_byte_back() {
    let tmp = tempdir();
    let root = product(tmp.path());
    let before = snapshot(&root);
    let product_yaml = fs::read(root.join("properties/version/product.yaml")).unwrap();
    let fp = fix_pack(tmp.path());

    let out = host("install", &root, &[fp.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let said = stdout(&out);
    assert!(said.contains("9.0.5-WS-WAS-FP023: success"), "{said}");
    assert!(said.contains("was 9.0.5.22 -> 9.0.5.23"), "{said}");
    assert!(said.contains("host task: 2036 Completed"), "{said}");

    let read = |p: &str| fs::read(root.join(p)).unwrap();
    assert_eq!(read("lib/runtime.jar"), [0xCA, 0xFE, 0xBA, 0xBE, 9, 9, 9]);
    assert_eq!(read("lib/web.jar"), b"web 23\n");
    assert_eq!(read("lib/ext/new/extra.jar"), b"extra\n");
    assert!(!root.join("lib/old.jar").exists());
    let mode = |p: &str| fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("bin/tool.sh"), 0o755);
    assert_eq!(mode("bin/start.sh"), 0o755);

    let status = read_product("was", &root).unwrap();
    assert_eq!(status.version, "9.0.5.23");
    assert_eq!(status.name, "WebSphere Application Server");
    assert_eq!(status.packages.len(), 1);
    let installed = &status.packages[0];
    assert!(installed.backup);
    assert_eq!(installed.fixes, ["PH10001", "PH10002"]);
    assert_eq!(installed.previous_version.as_deref(), Some("9.0.5.22"));
    assert_eq!(installed.installed_at.as_ref().unwrap().0.to_string(), AT);
    let product_file = fs::read_to_string(root.join("properties/version/product.yaml")).unwrap();
    assert!(
        product_file.contains("buildLevel: cf052231.01"),
        "{product_file}"
    );

    // The backup holds every replaced, patched and removed file, and the old product file.
    let backup = root.join("properties/version/update/backup/9.0.5-WS-WAS-FP023.zip");
    let mut zip = zip::ZipArchive::new(fs::File::open(&backup).unwrap()).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "backup.yaml",
            "files/lib/old.jar",
            "files/lib/runtime.jar",
            "files/lib/web.jar",
            "product.yaml"
        ]
    );
    let mut old = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("product.yaml").unwrap(), &mut old).unwrap();
    assert_eq!(old, product_yaml);

    let log = root.join("logs/update/20261205_220000_9.0.5-WS-WAS-FP023_install.log");
    assert_eq!(last_line(&log), "result: success");
    let history = read_history(&root).unwrap();
    assert_eq!(history.len(), 1);
    let events = &history[0].events;
    assert_eq!(events.len(), 5, "the package and its four components");
    assert_eq!(events[0].event_type, EventType::Ptf);
    assert_eq!(events[0].primary_content, "9.0.5-WS-WAS-FP023.pak");
    assert_eq!(events[0].log_name, log.display().to_string());
    assert_eq!(events[0].backup_name, backup.display().to_string());
    assert!(
        events
            .iter()
            .all(|e| e.result == "success" && e.product == "was")
    );

    let out = host("uninstall", &root, &["9.0.5-WS-WAS-FP023"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("was 9.0.5.23 -> 9.0.5.22"),
        "{}",
        text(&out)
    );
    assert_same(
        &snapshot(&root),
        &before,
        "every byte, mode and folder restored",
    );
    assert_eq!(
        fs::read(root.join("properties/version/product.yaml")).unwrap(),
        product_yaml
    );
    assert!(!backup.exists());
    let history = read_history(&root).unwrap();
    let actions: Vec<HistoryAction> = history.iter().map(|h| h.events[0].action).collect();
    assert_eq!(actions, [HistoryAction::Install, HistoryAction::Uninstall]);
    assert_eq!(
        last_line(&root.join("logs/update/20261205_220000_9.0.5-WS-WAS-FP023_uninstall.log")),
        "result: success"
    );
    assert!(journal_is_empty(&root));
}

#[test]
fn packages_of_one_run_go_in_order_and_uninstall_in_reverse() {
    let tmp = tempdir();
    let root = product(tmp.path());
    let before = snapshot(&root);
    let (fp, fix) = (fix_pack(tmp.path()), interim_fix(tmp.path()));
    // The interim fix (for 9.0.5.23) is named first; the fix pack runs first.
    let out = host(
        "install",
        &root,
        &[fix.to_str().unwrap(), fp.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = stdout(&out);
    let fp_at = said.find("9.0.5-WS-WAS-FP023: success").unwrap();
    let fix_at = said.find("9.0.5.23-WS-WAS-IFPH12345: success").unwrap();
    assert!(fp_at < fix_at, "{said}");
    assert_eq!(
        fs::read(root.join("lib/web.jar")).unwrap(),
        b"web 23 + PH12345\n"
    );
    let status = read_product("was", &root).unwrap();
    assert_eq!(upkeep::engine::packages::level(&status), "9.0.5.23+PH12345");

    // The fix pack alone cannot go: the interim fix changed its file after it.
    let out = host("uninstall", &root, &["9.0.5-WS-WAS-FP023"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("failure: NewerPackageInstalled"),
        "{}",
        text(&out)
    );
    assert!(stdout(&out).contains("2046 Job Failed (NewerPackageInstalled)"));

    let out = host(
        "uninstall",
        &root,
        &["9.0.5-WS-WAS-FP023", "9.0.5.23-WS-WAS-IFPH12345"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = stdout(&out);
    assert!(
        said.find("IFPH12345: success").unwrap() < said.find("FP023: success").unwrap(),
        "{said}"
    );
    assert_same(&snapshot(&root), &before, "untouched");
}

#[test]
fn an_installed_package_is_not_applicable_again() {
    let tmp = tempdir();
    let root = product(tmp.path());
    let fix = adding_fix(tmp.path());
    assert!(
        host("install", &root, &[fix.to_str().unwrap()])
            .status
            .success()
    );
    let out = host("install", &root, &[fix.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let said = stdout(&out);
    assert!(
        said.contains(
            "not applicable: NotApplicable: 9.0.5.22-WS-WAS-IFPH777 is already installed"
        ),
        "{said}"
    );
    assert!(said.contains("2053 Not Applicable"), "{said}");
    // A second install in the same second gets the next second's log name.
    assert!(
        host("uninstall", &root, &["9.0.5.22-WS-WAS-IFPH777"])
            .status
            .success()
    );
    assert!(
        host("install", &root, &[fix.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        root.join("logs/update/20261205_220001_9.0.5.22-WS-WAS-IFPH777_install.log")
            .exists()
    );
}

#[test]
fn uninstall_without_the_backup_is_refused() {
    let tmp = tempdir();
    let root = product(tmp.path());
    let fix = adding_fix(tmp.path());
    assert!(
        host("install", &root, &[fix.to_str().unwrap()])
            .status
            .success()
    );
    fs::remove_file(root.join("properties/version/update/backup/9.0.5.22-WS-WAS-IFPH777.zip"))
        .unwrap();
    let status = read_product("was", &root).unwrap();
    assert!(!status.packages[0].backup);
    let before = snapshot(&root);
    let out = host("uninstall", &root, &["9.0.5.22-WS-WAS-IFPH777"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = stdout(&out);
    assert!(
        said.contains("9.0.5.22-WS-WAS-IFPH777: failure: BackupMissing"),
        "{said}"
    );
    assert!(said.contains("2046 Job Failed (BackupMissing)"), "{said}");
    assert_same(&snapshot(&root), &before, "nothing changed");

    // Through the library: the same outcome, with no history event.
    let installer = BuiltinInstaller::default();
    let target = ProductTarget {
        id: "was".into(),
        location: root.clone(),
    };
    let outcome = installer.uninstall(&target, "9.0.5.22-WS-WAS-IFPH777");
    assert_eq!(outcome.run.result, Some(PackageResult::Failure));
    assert_eq!(outcome.run.reason, Some(Reason::BackupMissing));
    assert!(outcome.events.is_empty());
}

#[test]
fn running_product_processes_refuse_the_install_naming_them() {
    let tmp = tempdir();
    let root = product(tmp.path());
    let fix = adding_fix(tmp.path());
    let sleeper = root.join("bin/java");
    fs::copy("/bin/sleep", &sleeper).unwrap();
    let mut child = Command::new(&sleeper)
        .arg("60")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let before = snapshot(&root);
    let out = host("install", &root, &[fix.to_str().unwrap()]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = stdout(&out);
    assert!(said.contains("failure: ProcessesRunning"), "{said}");
    assert!(
        said.contains(&format!("pid {} (java", child.id())),
        "{said}"
    );
    assert!(
        said.contains("2046 Job Failed (ProcessesRunning)"),
        "{said}"
    );
    assert_same(&snapshot(&root), &before, "untouched");
    assert!(
        host("install", &root, &[fix.to_str().unwrap()])
            .status
            .success()
    );
}

#[test]
fn a_process_whose_working_directory_is_in_the_location_counts_too() {
    let tmp = tempdir();
    let root = product(tmp.path());
    let mut child = Command::new("/bin/sleep")
        .arg("60")
        .current_dir(root.join("lib"))
        .spawn()
        .unwrap();
    let found = upkeep::agent::installers::processes::processes_under(&root).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        found
            .iter()
            .any(|p| p.pid == child.id() && p.name == "sleep"),
        "{found:?}"
    );
}

#[test]
fn a_package_for_another_product_or_version_does_not_apply() {
    let tmp = tempdir();
    let root = product(tmp.path());
    let fix = interim_fix(tmp.path()); // for 9.0.5.23; the product is at 9.0.5.22
    let out = host("install", &root, &[fix.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("applies to was =9.0.5.23; the host has 9.0.5.22"),
        "{}",
        text(&out)
    );
    let installer = BuiltinInstaller::default();
    let other = ProductTarget {
        id: "ihs".into(),
        location: root.clone(),
    };
    let outcome = installer.install(&other, &fix, None);
    assert_eq!(outcome.run.result, None);
    assert_eq!(outcome.run.reason, Some(Reason::NotApplicable));
    assert!(
        outcome.run.message.contains("is for product \"was\""),
        "{}",
        outcome.run.message
    );
    assert!(products::installed_records(&root).unwrap().is_empty());
}
