//! The `command` installer through a PatchJob: a Host product with `installer: command` whose
//! vendor tool is a shell script that behaves like one (reads its response file, writes what it
//! was given, exits 0, 1 or another code), driven by the real operator and the real agent loop.
//! Exit 0 ends the task `2036 Completed` with the package `success`; exit 1 `2046 Job Failed`
//! with `partialSuccess`; another code `2046` with `failure`; each with the tool's output in the
//! update log (its last line the result) and the event in the Host's history. An agent stopped
//! before the tool started runs it once after its restart; one stopped while the tool ran never
//! runs it a second time (the package ends `failure`, naming the tool's log).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use upkeep::agent::driver::{Checkpoint, Hook};
use upkeep::api::Host;
use upkeep::engine::patch::agent::Op;

use crate::agent_loop::{FP, ProductHost, package_job, run_package_job, task_of, world};
use crate::common::on_virtual_clock;
use crate::packages::fixtures as pak_fixtures;

/// A vendor update tool: `update.sh -install PACKAGE -options RESPONSE`; exits with the code
/// in `<location>/exit-code`, after copying what it was given into the location.
const TOOL: &str = r#"#!/bin/sh
set -e
loc=$(dirname "$0")
echo "update.sh called with: $*"
echo "$*" > "$loc/tool-args"
cp "$4" "$loc/tool-response"
echo "applying $2"
exit "$(cat "$loc/exit-code")"
"#;

async fn create_command_host(world: &upkeep::sim::runner::World, location: &Path) {
    let tool = location.join("update.sh");
    pak_fixtures::write(&tool, TOOL.as_bytes(), 0o755);
    let host: Host = serde_json::from_value(json!({
        "apiVersion": "upkeep.dev/v1alpha1", "kind": "Host",
        "metadata": {"name": "web-1", "namespace": "default"},
        "spec": {"products": [{
            "id": "was",
            "location": location.display().to_string(),
            "installer": "command",
            "command": {
                "install": "{location}/update.sh -install {package} -options {responseFile}",
                "uninstall": "{location}/update.sh -uninstall {id} -options {responseFile}",
                "responseFile": "-W maintenance.package=\"{package}\"\n-W product.location=\"{location}\"\n",
                "timeout": "5m"
            }
        }]}
    }))
    .unwrap();
    Api::<Host>::namespaced(world.server.client(), "default")
        .create(&PostParams::default(), &host)
        .await
        .unwrap();
}

/// Installs the fix pack through the vendor tool exiting `exit`; the task and the Host status.
fn install_with_exit(exit: u8) -> (Vec<u64>, Value, Value, ProductHost) {
    let (tx, rx) = std::sync::mpsc::channel();
    on_virtual_clock(move || async move {
        let host = ProductHost::new();
        std::fs::write(host.location.join("exit-code"), exit.to_string()).unwrap();
        let world = world().await;
        create_command_host(&world, &host.location).await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        let (codes, _) = run_package_job(
            &world,
            &host,
            "install",
            package_job("Install", true),
            None,
            // The tool does not rewrite the product's version (a vendor tool keeps its own).
            "9.0.5.22",
        )
        .await;
        let task = task_of(&world, "install").unwrap()["status"].clone();
        let status = world
            .server
            .snapshot("Host")
            .into_iter()
            .next()
            .map(|h| h["status"].clone())
            .unwrap_or(Value::Null);
        stop.cancel();
        let _ = operator.await;
        tx.send((codes, task, status, host)).unwrap();
    });
    rx.recv().unwrap()
}

/// The tool ran once with the fetched package and a response file filled in; the update log
/// says how it exited and ends with `result`; the Host's history holds the install event with that result.
fn assert_ran(host: &ProductHost, status: &Value, exit: u8, result: &str) {
    let args = std::fs::read_to_string(host.location.join("tool-args")).unwrap();
    assert!(
        args.starts_with("-install ") && args.contains(&format!("{FP}.pak")),
        "{args}"
    );
    let response = std::fs::read_to_string(host.location.join("tool-response")).unwrap();
    assert!(
        response.contains(&format!(
            "-W product.location=\"{}\"",
            host.location.display()
        )) && response.contains(&format!("{FP}.pak\"")),
        "{response}"
    );
    let logs: Vec<_> = std::fs::read_dir(host.location.join("logs/update"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(&format!("_{FP}_install.log")))
        .collect();
    assert_eq!(logs.len(), 1, "the tool ran once: {logs:?}");
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(log.contains("applying "), "{log}");
    assert!(
        log.contains(&format!("the tool exited with {exit}")),
        "{log}"
    );
    assert_eq!(
        log.lines().last(),
        Some(format!("result: {result}").as_str())
    );
    let events = status["history"].as_array().cloned().unwrap_or_default();
    assert!(
        events.iter().any(|e| e["id"] == json!(FP)
            && e["action"] == json!("install")
            && e["result"] == json!(result)),
        "{status:#}"
    );
}

#[test]
fn a_vendor_tool_exiting_0_completes_the_task() {
    let (codes, task, status, host) = install_with_exit(0);
    assert_eq!(codes, [2032, 2055, 2044, 2031, 2033, 2036], "{task:#}");
    assert_eq!(
        task["packages"],
        json!([{"id": FP, "result": "success"}]),
        "{task:#}"
    );
    assert_ran(&host, &status, 0, "success");
}

#[test]
fn a_vendor_tool_exiting_1_is_a_partial_success_and_fails_the_task() {
    let (codes, task, status, host) = install_with_exit(1);
    assert_eq!(codes, [2032, 2055, 2044, 2031, 2033, 2046], "{task:#}");
    assert_eq!(
        task["packages"][0]["result"],
        json!("partialSuccess"),
        "{task:#}"
    );
    assert_eq!(
        task["packages"][0]["reason"],
        json!("InstallFailed"),
        "{task:#}"
    );
    assert_eq!(task["reason"], json!("InstallFailed"), "{task:#}");
    assert_eq!(
        task["message"],
        json!(format!("package {FP} ended partialSuccess")),
        "{task:#}"
    );
    assert_ran(&host, &status, 1, "partialSuccess");
}

#[test]
fn a_vendor_tool_exiting_with_another_code_fails_the_package_and_the_task() {
    let (codes, task, status, host) = install_with_exit(7);
    assert_eq!(codes, [2032, 2055, 2044, 2031, 2033, 2046], "{task:#}");
    assert_eq!(task["packages"][0]["result"], json!("failure"), "{task:#}");
    assert_eq!(task["result"], json!("Failed"), "{task:#}");
    assert_eq!(
        task["message"],
        json!(format!("package {FP} ended failure")),
        "{task:#}"
    );
    assert_ran(&host, &status, 7, "failure");
}

/// Runs the fix pack's install through the vendor tool (exit 0) with the agent stopped once at
/// the package's `started` record, after `at_kill` (given the state directory and the product
/// location) did what the stopped agent had done by then.
fn install_killed_at_package_start(
    at_kill: impl Fn(&Path, &Path) + Send + Sync + 'static,
) -> (Vec<u64>, Value, ProductHost, usize) {
    let (tx, rx) = std::sync::mpsc::channel();
    on_virtual_clock(move || async move {
        let host = ProductHost::new();
        std::fs::write(host.location.join("exit-code"), "0").unwrap();
        let world = world().await;
        create_command_host(&world, &host.location).await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        let fired = Arc::new(AtomicBool::new(false));
        let (state, location) = (
            host.location.parent().unwrap().join("state"),
            host.location.clone(),
        );
        let hook: Hook = Arc::new(move |c: &Checkpoint| {
            if *c != Checkpoint::OpStarted(Op::Package(0)) || fired.swap(true, Ordering::SeqCst) {
                return false;
            }
            at_kill(&state, &location);
            true
        });
        let (codes, starts) = run_package_job(
            &world,
            &host,
            "install",
            package_job("Install", true),
            Some(hook),
            "9.0.5.22",
        )
        .await;
        let task = task_of(&world, "install").unwrap()["status"].clone();
        stop.cancel();
        let _ = operator.await;
        tx.send((codes, task, host, starts)).unwrap();
    });
    rx.recv().unwrap()
}

/// The fetched package under the agent's state directory.
fn fetched_package(state: &Path) -> std::path::PathBuf {
    let mut stack = vec![state.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name() == Some(std::ffi::OsStr::new(&format!("{FP}.pak"))) {
                return path;
            }
        }
    }
    panic!("no fetched package under {}", state.display())
}

#[test]
fn an_agent_stopped_before_the_vendor_tool_started_runs_it_once_after_the_restart() {
    let (codes, task, host, starts) = install_killed_at_package_start(|_, _| {});
    assert_eq!(starts, 2);
    assert_eq!(codes, [2032, 2055, 2044, 2031, 2033, 2036], "{task:#}");
    let args = std::fs::read_to_string(host.location.join("tool-args")).unwrap();
    assert_eq!(args.lines().count(), 1, "the tool ran once: {args}");
}

#[test]
fn a_vendor_tool_run_cut_off_by_an_agent_restart_is_never_run_again() {
    // The stopped agent had written its marker and started the tool, which had begun its log
    // when the agent died (and with it the tool's process group).
    let (codes, task, host, starts) = install_killed_at_package_start(|state, location| {
        let marker = fetched_package(state).with_extension("install.started");
        std::fs::write(marker, b"").unwrap();
        let log = location.join(format!("logs/update/20261123_090000_{FP}_install.log"));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "upkeep command installer: install …\napplying …\n").unwrap();
    });
    assert_eq!(starts, 2);
    assert_eq!(codes, [2032, 2055, 2044, 2031, 2033, 2046], "{task:#}");
    assert_eq!(task["packages"][0]["result"], json!("failure"), "{task:#}");
    assert!(
        !host.location.join("tool-args").exists(),
        "the restarted agent did not run the tool again"
    );
}
