//! The `command` installer with a shell script that behaves like a vendor's update tool: it
//! reads the response file, reports what it was given, and exits with the code the test set.

use std::fs;
use std::sync::Arc;

use upkeep::agent::installers::{CommandRunner, Installer, ProductTarget, for_product};
use upkeep::api::codes::PackageResult;
use upkeep::api::common::GoDuration;
use upkeep::api::host::{CommandInstaller, HistoryAction, HostProduct, InstallerKind};
use upkeep::engine::packages::Reason;

use super::fixtures::*;

const TOOL: &str = r#"#!/bin/sh
# A vendor update tool: update.sh -install|-uninstall PACKAGE -response FILE
echo "tool called with: $*"
echo "response file:"
cat "$4"
if [ -f "$LOC/sleep" ]; then sleep 5; fi
exit "$(cat "$LOC/exit-code")"
"#;

fn runner(dir: &std::path::Path, timeout: GoDuration) -> CommandRunner {
    let tool = dir.join("update.sh");
    write(&tool, TOOL.as_bytes(), 0o755);
    let at: jiff::Timestamp = AT.parse().unwrap();
    CommandRunner::new(
        CommandInstaller {
            install: format!("LOC={{location}} {} -install {{package}} -response {{responseFile}}", tool.display()),
            uninstall: format!("LOC={{location}} {} -uninstall {{id}} -response {{responseFile}}", tool.display()),
            response_file: Some(
                "-W maintenance.package=\"{package}\"\n-W product.location=\"{location}\"\n-W update.id=\"{id}\"\n".into(),
            ),
            timeout,
        },
        Arc::new(move || at),
    )
}

#[test]
fn exit_codes_map_to_package_results_and_the_response_file_is_filled_in() {
    let tmp = tempdir();
    let loc = tmp.path().join("product dir");
    fs::create_dir_all(&loc).unwrap();
    let runner = runner(tmp.path(), GoDuration::from_mins(1));
    let target = ProductTarget {
        id: "mq".into(),
        location: loc.clone(),
    };
    let package = tmp.path().join("9.3.0-MQ-IF1.pak");
    fs::write(&package, b"vendor bytes").unwrap();
    for (code, result) in [
        ("0", PackageResult::Success),
        ("1", PackageResult::PartialSuccess),
        ("7", PackageResult::Failure),
    ] {
        fs::write(loc.join("exit-code"), code).unwrap();
        let outcome = runner.install(&target, &package, Some("9.3.0-MQ-IF1"));
        assert_eq!(outcome.run.result, Some(result), "exit {code}: {outcome:?}");
        if result != PackageResult::Success {
            assert_eq!(outcome.run.reason, Some(Reason::InstallFailed));
        }
        assert!(outcome.run.message.contains(&format!("exited with {code}")));
        let log = fs::read_to_string(outcome.log.as_ref().unwrap()).unwrap();
        assert!(
            log.contains(&format!("-W maintenance.package=\"{}\"", package.display())),
            "{log}"
        );
        assert!(
            log.contains(&format!("-W product.location=\"{}\"", loc.display())),
            "{log}"
        );
        assert!(log.contains("-W update.id=\"9.3.0-MQ-IF1\""), "{log}");
        assert!(
            log.contains(&format!("tool called with: -install {}", package.display())),
            "{log}"
        );
        assert_eq!(log.lines().last().unwrap(), format!("result: {result}"));
        assert_eq!(outcome.events.len(), 1);
        assert_eq!(outcome.events[0].result, result.name());
        assert_eq!(outcome.events[0].primary_content, "9.3.0-MQ-IF1.pak");
        assert_eq!(outcome.events[0].product, "mq");
    }
    // The response file is gone after each run.
    let leftovers: Vec<_> = fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("upkeep-9.3.0-MQ-IF1-install")
        })
        .collect();
    assert!(leftovers.is_empty());

    fs::write(loc.join("exit-code"), "0").unwrap();
    let outcome = runner.uninstall(&target, "9.3.0-MQ-IF1");
    assert_eq!(outcome.run.result, Some(PackageResult::Success));
    assert_eq!(outcome.events[0].action, HistoryAction::Uninstall);
    let log = fs::read_to_string(outcome.log.unwrap()).unwrap();
    assert!(
        log.contains("tool called with: -uninstall 9.3.0-MQ-IF1"),
        "{log}"
    );
}

#[test]
fn a_tool_running_past_its_timeout_is_killed_and_fails() {
    let tmp = tempdir();
    let loc = tmp.path().join("loc");
    fs::create_dir_all(&loc).unwrap();
    fs::write(loc.join("exit-code"), "0").unwrap();
    fs::write(loc.join("sleep"), "").unwrap();
    let runner = runner(
        tmp.path(),
        GoDuration(std::time::Duration::from_millis(300)),
    );
    let target = ProductTarget {
        id: "mq".into(),
        location: loc,
    };
    let started = std::time::Instant::now();
    let outcome = runner.install(&target, &tmp.path().join("x.pak"), Some("x"));
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(outcome.run.result, Some(PackageResult::Failure));
    assert!(
        outcome.run.message.contains("killed"),
        "{}",
        outcome.run.message
    );
}

#[test]
fn the_host_product_entry_picks_the_installer() {
    let tmp = tempdir();
    let loc = tmp.path().join("loc");
    fs::create_dir_all(&loc).unwrap();
    fs::write(loc.join("exit-code"), "1").unwrap();
    write(&tmp.path().join("update.sh"), TOOL.as_bytes(), 0o755);
    let command = CommandInstaller {
        install: format!(
            "LOC={{location}} {}/update.sh -install {{package}} -response {{responseFile}}",
            tmp.path().display()
        ),
        uninstall: "true {id}".into(),
        response_file: Some("x".into()),
        timeout: GoDuration::from_mins(1),
    };
    let entry = HostProduct {
        id: "mq".into(),
        location: loc.display().to_string(),
        installer: InstallerKind::Command,
        command: Some(command),
    };
    let installer = for_product(&entry, Arc::new(jiff::Timestamp::now));
    let target = ProductTarget {
        id: "mq".into(),
        location: loc,
    };
    let outcome = installer.install(&target, &tmp.path().join("p.pak"), Some("p"));
    assert_eq!(outcome.run.result, Some(PackageResult::PartialSuccess));
    assert_eq!(installer.recover(&target), Ok(None));
}
