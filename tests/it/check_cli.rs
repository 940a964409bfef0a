//! `upkeep check` as a pipeline runs it: exit codes and messages that name the field.

use std::path::Path;
use std::process::{Command, Output};

fn upkeep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the upkeep binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_examples_are_valid() {
    let out = upkeep(&["check", "examples/"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0 invalid"), "{}", text(&out));
}

/// Every file in tests/data/bad breaks one rule; its first line names the field (or position)
/// the error must mention.
#[test]
fn every_bad_manifest_fails_naming_its_field() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "the issue asks for at least 15 distinct bad manifests"
    );
    for file in files {
        let content = std::fs::read_to_string(&file).unwrap();
        let expect = content
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("# expect: ");
        let out = upkeep(&["check", file.to_str().unwrap()]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{}: {shown}", file.display());
        let named = shown
            .lines()
            .any(|l| l.contains(&format!(": {expect}: ")) || l.contains(&format!(" {expect}")));
        assert!(
            named,
            "{}: expected {expect:?} in:\n{shown}",
            file.display()
        );
        assert!(
            shown.contains(file.file_name().unwrap().to_str().unwrap()),
            "names the file: {shown}"
        );
    }
}

#[test]
fn several_files_and_stdin_are_read_and_any_error_fails_the_run() {
    let out = upkeep(&[
        "check",
        "examples/firmware-upgrade.yaml",
        "tests/data/bad/06-no-targets.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("checked 2 documents: 1 invalid"),
        "{}",
        text(&out)
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["check", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    let manifest = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/maintenance-windows.yaml"),
    )
    .unwrap();
    child.stdin.take().unwrap().write_all(&manifest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let missing = upkeep(&["check", "does/not/exist.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("does/not/exist.yaml"),
        "{}",
        text(&missing)
    );
    let empty = tempdir();
    let none = upkeep(&["check", empty.to_str().unwrap()]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    assert_eq!(upkeep(&["check"]).status.code(), Some(2));
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("upkeep-check-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A window whose cron never fires fails the check; a reference to a window that no given file
/// defines is a warning only.
#[test]
fn a_window_that_never_opens_fails_and_an_undefined_one_warns() {
    let dir = tempfile::tempdir().unwrap();
    let never = dir.path().join("never.yaml");
    std::fs::write(
        &never,
        "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: { name: feb-31 }\nspec: { schedule: \"0 0 31 2 *\", duration: 2h }\n",
    )
    .unwrap();
    let upgrade = dir.path().join("fw.yaml");
    std::fs::write(
        &upgrade,
        "apiVersion: upkeep.dev/v1alpha1\nkind: FirmwareUpgrade\nmetadata: { name: fw }\nspec:\n  image: idg7519.oradco.scrypt4\n  targets: { pattern: \"dp-*\" }\n  maintenanceWindows: [feb-31, in-the-cluster]\n",
    )
    .unwrap();

    let out = upkeep(&["check", never.to_str().unwrap(), upgrade.to_str().unwrap()]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("MaintenanceWindow/feb-31 (document 1): spec.schedule: \"0 0 31 2 *\" does not open in the 400 days"),
        "{shown}"
    );
    assert!(
        shown.contains("warning: ") && shown.contains("spec.maintenanceWindows[1]: no file given defines the MaintenanceWindow \"in-the-cluster\""),
        "{shown}"
    );
    assert!(
        shown.contains("1 invalid, 0 skipped, 1 warning: invalid"),
        "{shown}"
    );

    // The upgrade alone: both windows undefined, two warnings, and still valid.
    let out = upkeep(&["check", upgrade.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("0 invalid, 0 skipped, 2 warnings: all valid"),
        "{}",
        text(&out)
    );
}
