//! A case per code and per reason of a started host task: each drives a task through both
//! halves of the engine to the code, and checks the path and the reason. The codes a task ends
//! with before it starts (2039, 2060, 2038, 2057, 2037 NotStartedInTime and AnotherJobRunning)
//! are the plan's, in `plan/tests.rs`.

use jiff::SignedDuration;
use proptest::prelude::*;

use super::world::{Fault, World, at};
use crate::api::codes::PatchCode::{self, *};
use crate::api::codes::PatchReason;
use crate::api::host::RebootRequired;
use crate::api::patch_job::{MaintenancePackage, Operation, PackageType, RebootPolicy};
use crate::api::upgrade_task::PackageOutcome;
use crate::engine::patch::agent::{self, Action, Observation, Op, OpStatus};

fn path(world: &World) -> Vec<PatchCode> {
    world.codes()
}

#[test]
fn completed_without_a_reboot() {
    let mut w = World::new(None);
    w.run();
    assert_eq!(
        path(&w),
        [
            Pending,
            JobReceived,
            JobStarted,
            Downloaded,
            Patching,
            Completed
        ]
    );
    assert_eq!(w.stored.message, "1 update(s) installed");
    assert_eq!(w.host.installs, 1);
    assert!(!w.node.as_ref().unwrap().unschedulable, "never cordoned");
}

#[test]
fn completed_after_a_drain_and_a_reboot() {
    let mut w = World::new(None).with_actions(&["stop-app"], &["start-app"]);
    w.host.signal = RebootRequired::Yes;
    w.run();
    assert_eq!(
        path(&w),
        [
            Pending,
            JobReceived,
            JobStarted,
            Downloaded,
            Patching,
            PendingReboot,
            Rebooted,
            JobResumed,
            Completed
        ]
    );
    assert_eq!(w.host.reboots, 1);
    assert_eq!(w.host.installs, 1);
    let node = w.node.as_ref().unwrap();
    assert!(
        !node.unschedulable && !node.cordoned_by_us,
        "uncordoned after the job"
    );
}

#[test]
fn a_node_cordoned_before_the_job_stays_cordoned() {
    let mut w = World::new(None);
    w.host.signal = RebootRequired::Yes;
    w.node.as_mut().unwrap().unschedulable = true;
    w.run();
    assert_eq!(w.stored.code, Completed);
    let node = w.node.as_ref().unwrap();
    assert!(node.unschedulable, "someone else's cordon is left alone");
    assert!(!node.cordoned_by_us);
}

#[test]
fn a_reboot_with_policy_always_even_when_not_required() {
    let mut w = World::new(None);
    w.spec.reboot.policy = RebootPolicy::Always;
    w.run();
    assert_eq!(w.stored.code, Completed);
    assert_eq!(w.host.reboots, 1);
}

#[test]
fn unknown_reboot_signal_never_reboots() {
    let mut w = World::new(None);
    w.host.signal = RebootRequired::Unknown;
    w.run();
    assert_eq!(w.stored.code, Completed);
    assert_eq!(w.host.reboots, 0);
}

#[test]
fn policy_never_leaves_the_host_pending_until_it_boots_by_other_means() {
    let mut w = World::new(None).with_actions(&[], &["check"]);
    w.spec.reboot.policy = RebootPolicy::Never;
    w.host.signal = RebootRequired::Yes;
    w.run();
    assert_eq!(w.stored.code, PendingReboot);
    assert!(w.stored.progress.released);
    assert_eq!(w.host.reboots, 0);
    // Someone reboots the host.
    w.host.boot_id = "boot-by-hand".into();
    w.run();
    assert_eq!(
        &path(&w)[5..],
        [PendingReboot, Rebooted, JobResumed, Completed]
    );
}

#[test]
fn no_patch_available() {
    let mut w = World::new(None);
    w.host.offered.retain(|o| !o.security);
    w.run();
    assert_eq!(
        path(&w),
        [Pending, JobReceived, JobStarted, NoPatchAvailable]
    );
    assert_eq!(w.host.installs, 0);
}

#[test]
fn nothing_to_install_but_actions_run_and_complete() {
    let mut w = World::new(None).with_actions(&["a"], &["b"]);
    w.host.offered.clear();
    w.run();
    assert_eq!(path(&w), [Pending, JobReceived, JobStarted, Completed]);
    assert!(w.host.ops.keys().any(|k| k.ends_with("post-0")));
}

#[test]
fn not_applicable_without_a_package_manager_or_the_named_packages() {
    let mut w = World::new(None);
    w.host.package_manager = false;
    w.run();
    assert_eq!(w.stored.code, NotApplicable);
    assert_eq!(w.reason(), Some(PatchReason::NotApplicable));

    let mut w = World::new(None);
    w.spec.patch.as_mut().unwrap().packages = vec!["nginx*".into()];
    w.host.installed.clear();
    w.run();
    assert_eq!(w.stored.code, NotApplicable);
    assert!(w.stored.message.contains("nginx*"), "{}", w.stored.message);
}

#[test]
fn downloading_failed() {
    let mut w = World::new(None).fault("download", Fault::Fail("E: 404 Not Found".into()));
    w.run();
    assert_eq!(w.stored.code, DownloadingFailed);
    assert_eq!(w.reason(), Some(PatchReason::DownloadFailed));
    assert!(w.stored.message.contains("404"), "{}", w.stored.message);
    let mut w = World::new(None);
    w.host.scan_error = Some("E: the repository is not signed".into());
    w.run();
    assert_eq!(w.stored.code, DownloadingFailed);
}

#[test]
fn job_failed_install_failed_with_the_package_managers_line() {
    let line = "E: Sub-process /usr/bin/dpkg returned an error code (1)";
    let mut w = World::new(None).fault("install", Fault::Fail(line.into()));
    w.run();
    assert_eq!(w.stored.code, JobFailed);
    assert_eq!(w.reason(), Some(PatchReason::InstallFailed));
    assert!(w.stored.message.contains(line), "{}", w.stored.message);
}

#[test]
fn job_failed_action_failed_names_the_action() {
    let mut w = World::new(None)
        .with_actions(&["stop-app"], &[])
        .fault("pre-0", Fault::Fail("exit code 3".into()));
    w.run();
    assert_eq!(w.stored.code, JobFailed);
    assert_eq!(w.reason(), Some(PatchReason::ActionFailed));
    assert!(w.stored.message.contains("pre-0"), "{}", w.stored.message);
    assert_eq!(
        w.host.installs, 0,
        "nothing installed after a failed pre action"
    );

    let mut w = World::new(None)
        .with_actions(&[], &["smoke"])
        .fault("post-0", Fault::Fail("exit code 1".into()));
    w.run();
    assert_eq!(w.stored.code, JobFailed);
    assert_eq!(w.reason(), Some(PatchReason::ActionFailed));
}

#[test]
fn execution_blocked_by_the_package_managers_lock_then_completed() {
    let mut w = World::new(None).fault("install", Fault::Locked(2));
    w.run();
    let codes = path(&w);
    assert!(codes.contains(&ExecutionBlocked), "{codes:?}");
    assert_eq!(w.stored.code, Completed);
    assert_eq!(w.host.installs, 1, "each locked try installed nothing");
}

#[test]
fn a_held_lock_stays_execution_blocked_without_a_write_until_it_frees() {
    let mut once = World::new(None).fault("install", Fault::Locked(1));
    once.run();
    let mut often = World::new(None).fault("install", Fault::Locked(6));
    often.run();
    assert_eq!(often.stored.code, Completed);
    let blocked = |w: &World| {
        w.stored
            .history
            .iter()
            .filter(|(c, _)| *c == ExecutionBlocked)
            .count()
    };
    assert_eq!(blocked(&often), 1, "{:?}", path(&often));
    assert_eq!(
        often.agent_writes, once.agent_writes,
        "five more tries of a held lock write nothing"
    );
    // Each try waits its minute.
    assert_eq!(
        often
            .stored
            .finished_at
            .unwrap()
            .duration_since(once.stored.finished_at.unwrap()),
        agent::LOCK_RETRY * 5
    );
    // 2057 then 2033 once the lock is free, never back and forth.
    let codes = path(&often);
    let at = codes.iter().position(|c| *c == ExecutionBlocked).unwrap();
    assert_eq!(codes[at + 1], Patching, "{codes:?}");
    assert_eq!(
        codes.iter().filter(|c| **c == Patching).count(),
        2,
        "{codes:?}"
    );
}

#[test]
fn timed_out_another_job_running_when_the_lock_outlasts_the_window() {
    let mut w = World::new(Some(at(600))).fault("install", Fault::Locked(1_000));
    w.run();
    assert_eq!(w.stored.code, TimedOut);
    assert_eq!(w.reason(), Some(PatchReason::AnotherJobRunning));
}

#[test]
fn timed_out_at_each_step_boundary_after_the_window() {
    // The download would start after the window.
    let mut w = World::new(Some(at(0)));
    w.run();
    assert_eq!(w.stored.code, TimedOut);
    assert_eq!(w.reason(), Some(PatchReason::DownloadOutsideWindow));
    // A pre action takes the whole window.
    let mut w = World::new(Some(at(20))).with_actions(&["slow", "second"], &[]);
    w.run();
    assert_eq!(w.reason(), Some(PatchReason::ActionOutsideWindow));
    assert!(w.stored.message.contains("second"), "{}", w.stored.message);
    // The download takes the window: the install cannot start.
    let mut w = World::new(Some(at(20)));
    w.run();
    assert_eq!(w.reason(), Some(PatchReason::PatchingOutsideWindow));
    assert_eq!(w.host.installs, 0);
    // A running install is never interrupted; the reboot after it is.
    let mut w = World::new(Some(at(50)));
    w.host.signal = RebootRequired::Yes;
    w.run();
    assert_eq!(w.stored.code, TimedOut);
    assert_eq!(w.reason(), Some(PatchReason::RebootOutsideWindow));
    assert!(path(&w).contains(&PendingReboot), "2034 first");
    assert_eq!(w.host.installs, 1);
    assert_eq!(w.host.reboots, 0);
}

#[test]
fn reboot_deferred_by_the_hosts_annotation_then_granted() {
    let mut w = World::new(None);
    w.host.signal = RebootRequired::Yes;
    w.defer_rounds = 2;
    w.run();
    assert_eq!(w.stored.code, Completed);
    let deferred = path(&w).iter().filter(|c| **c == RebootDeferred).count();
    assert_eq!(deferred, 2);
    assert_eq!(w.stored.deferrals.used, 2);
    // An hour between the deferrals.
    let times: Vec<_> = w
        .stored
        .history
        .iter()
        .filter(|(c, _)| *c == RebootDeferred)
        .map(|(_, t)| *t)
        .collect();
    assert!(times[1].duration_since(times[0]) >= SignedDuration::from_hours(1));
}

#[test]
fn the_annotation_is_not_honoured_past_max_deferrals() {
    let mut w = World::new(None);
    w.host.signal = RebootRequired::Yes;
    w.defer_rounds = 10;
    w.run();
    assert_eq!(w.stored.code, Completed);
    assert_eq!(w.stored.deferrals.used, 3);
    assert!(w.stored.message.contains("update(s) installed"));
}

#[test]
fn a_pod_disruption_budget_defers_and_then_fails_the_job_naming_it() {
    let mut w = World::new(None);
    w.host.signal = RebootRequired::Yes;
    w.node.as_mut().unwrap().blocked_until = Some(at(2 * 3600));
    w.run();
    assert_eq!(
        w.stored.code, Completed,
        "the budget allowed the drain in time"
    );
    assert!(w.stored.deferrals.used >= 1);

    let mut w = World::new(None);
    w.host.signal = RebootRequired::Yes;
    w.node.as_mut().unwrap().blocked_until = Some(at(86_400));
    w.run();
    assert_eq!(w.stored.code, JobFailed);
    assert_eq!(w.reason(), Some(PatchReason::DrainBlocked));
    assert!(w.stored.message.contains("web-pdb"), "{}", w.stored.message);
    assert_eq!(w.host.reboots, 0);
    let node = w.node.as_ref().unwrap();
    assert!(!node.unschedulable, "uncordoned after the failure");
}

#[test]
fn a_drain_that_times_out_is_a_deferral() {
    let mut w = World::new(None);
    w.host.signal = RebootRequired::Yes;
    w.node.as_mut().unwrap().stuck = true;
    w.run();
    assert_eq!(w.stored.code, JobFailed);
    assert_eq!(w.reason(), Some(PatchReason::DrainBlocked));
    assert_eq!(w.stored.deferrals.used, 3);
    assert!(
        w.stored.message.contains("drain.timeout"),
        "{}",
        w.stored.message
    );
}

#[test]
fn a_host_outside_the_cluster_reboots_without_a_drain() {
    let mut w = World::new(None);
    w.host.signal = RebootRequired::Yes;
    w.node = None;
    w.run();
    assert_eq!(w.stored.code, Completed);
    assert_eq!(w.host.reboots, 1);
}

#[test]
fn job_failed_reboot_failed() {
    let mut w = World::new(None);
    w.host.signal = RebootRequired::Yes;
    w.host.reboot_fails = true;
    w.run();
    assert_eq!(w.stored.code, JobFailed);
    assert_eq!(w.reason(), Some(PatchReason::RebootFailed));

    let mut w = World::new(None);
    w.host.signal = RebootRequired::Yes;
    w.host.reboot_ignored = true;
    w.run();
    assert_eq!(w.stored.code, JobFailed);
    assert_eq!(w.reason(), Some(PatchReason::RebootFailed));
    assert!(
        w.stored.message.contains("still runs boot"),
        "{}",
        w.stored.message
    );
}

#[test]
fn job_failed_agent_offline_mid_task() {
    let mut w = World::new(None).fault("install", Fault::Hang);
    w.run();
    assert_eq!(
        w.stored.code, Patching,
        "an install that never ends is waited for"
    );
    w.host.agent_online = false;
    w.run();
    assert_eq!(w.stored.code, JobFailed);
    assert_eq!(w.reason(), Some(PatchReason::AgentOffline));
}

/// What the agent does next when it finds `op` cut off (started, and gone without a result).
fn cut_off(w: &World, op: Op) -> Option<Action> {
    let spec = w.spec.clone();
    let ctx = agent::Context {
        task: "default/job-web-1/uid",
        spec: &spec,
        boot_id: "boot-1",
    };
    let (mut task, mut journal) = (w.stored.clone(), w.journal.clone());
    agent::step(
        &ctx,
        &mut task,
        &mut journal,
        Some(Observation::Op(op, OpStatus::Unknown)),
        w.now,
    )
    .action
}

#[test]
fn an_interrupted_install_is_asked_for_again_with_the_same_pins() {
    let mut w = World::new(None).fault("install", Fault::Hang);
    w.run();
    let pins = w.journal.pins.clone().unwrap();
    // The host restarts mid-install: the operation left no result.
    w.host.ops.retain(|k, _| !k.ends_with("/install"));
    w.host.faults.clear();
    assert_eq!(
        cut_off(&w, Op::Install),
        Some(Action::Rerun {
            op: Op::Install,
            key: "default/job-web-1/uid/install".into(),
            pins,
        })
    );
    w.run();
    assert_eq!(w.stored.code, Completed);
}

#[test]
fn an_interrupted_action_fails_the_task_and_is_not_run_again() {
    let mut w = World::new(None)
        .with_actions(&["drain-app"], &[])
        .fault("pre-0", Fault::Hang);
    w.run();
    w.host.ops.retain(|k, _| !k.ends_with("/pre-0"));
    w.run();
    assert_eq!(w.stored.code, JobFailed);
    assert_eq!(w.reason(), Some(PatchReason::ActionFailed));
    assert!(
        w.stored.message.contains("interrupted"),
        "{}",
        w.stored.message
    );
}

#[test]
fn an_interrupted_action_declared_safe_to_rerun_runs_again_and_the_task_goes_on() {
    let mut w = World::new(None)
        .with_actions(&[], &["health"])
        .fault("post-0", Fault::Hang);
    if let Some(actions) = w.spec.actions.as_mut() {
        actions.post[0].rerun_if_interrupted = true;
    }
    w.run();
    // The agent stops mid-action: the action left no result.
    w.host.ops.retain(|k, _| !k.ends_with("/post-0"));
    w.host.faults.clear();
    assert_eq!(
        cut_off(&w, Op::PostAction(0)),
        Some(Action::Rerun {
            op: Op::PostAction(0),
            key: "default/job-web-1/uid/post-0".into(),
            pins: Vec::new(),
        })
    );
    w.run();
    assert_eq!(w.stored.code, Completed, "{}", w.stored.message);
}

fn package(id: &str) -> MaintenancePackage {
    MaintenancePackage {
        id: id.into(),
        type_: PackageType::InterimFix,
        product: "was".into(),
        source: Some(format!("fixes/{id}.pak")),
        sha256: None,
    }
}

#[test]
fn packages_install_in_order_and_complete() {
    let mut w = World::new(None);
    w.spec.operation = Operation::Install;
    w.spec.patch = None;
    w.spec.packages = vec![package("IF1"), package("IF2")];
    w.run();
    assert_eq!(
        path(&w),
        [
            Pending,
            JobReceived,
            JobStarted,
            Downloaded,
            Patching,
            Completed
        ]
    );
    let ids: Vec<&str> = w.stored.packages.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["IF1", "IF2"]);
}

#[test]
fn a_package_failure_fails_the_job_with_its_reason() {
    for (reason, code) in [
        ("BackupMissing", PatchReason::BackupMissing),
        ("ProcessesRunning", PatchReason::ProcessesRunning),
    ] {
        let mut w = World::new(None).fault(
            "package-0",
            Fault::Package(PackageOutcome {
                id: "IF1".into(),
                result: Some("failure".into()),
                reason: Some(reason.into()),
            }),
        );
        w.spec.operation = Operation::Uninstall;
        w.spec.patch = None;
        w.spec.packages = vec![package("IF1")];
        w.run();
        assert_eq!(w.stored.code, JobFailed);
        assert_eq!(w.reason(), Some(code));
    }
}

#[test]
fn packages_not_applicable() {
    let mut w = World::new(None);
    w.spec.operation = Operation::Install;
    w.spec.packages = vec![package("IF1")];
    w.host.packages_not_applicable = Some("product was is not installed on the host".into());
    w.run();
    assert_eq!(w.stored.code, NotApplicable);
}

/// Every path above, crashed at every step: the same end, one install and one reboot at most.
fn crash_everywhere(base: World) -> Result<(), TestCaseError> {
    let mut clean = base.clone();
    clean.run();
    let steps = clean.steps;
    for crash_at in 1..=steps {
        let mut w = base.clone();
        w.crash_at = Some(crash_at);
        w.run();
        w.crash_at = None;
        w.run();
        prop_assert_eq!(
            w.stored.code,
            clean.stored.code,
            "crash at step {}",
            crash_at
        );
        prop_assert_eq!(w.reason(), clean.reason(), "crash at step {}", crash_at);
        prop_assert!(
            w.host.installs <= 1,
            "crash at step {}: {} installs",
            crash_at,
            w.host.installs
        );
        prop_assert!(
            w.host.reboots <= 1,
            "crash at step {}: {} reboots",
            crash_at,
            w.host.reboots
        );
        let node = w.node.as_ref();
        prop_assert!(
            !node.is_some_and(|n| n.cordoned_by_us),
            "crash at step {}: left cordoned",
            crash_at
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn a_crash_anywhere_changes_nothing(
        reboot in any::<bool>(),
        actions in any::<bool>(),
        defer in 0u32..3,
        blocked_hours in 0i64..3,
    ) {
        let mut w = if actions {
            World::new(None).with_actions(&["pre"], &["post"])
        } else {
            World::new(None)
        };
        if reboot {
            w.host.signal = RebootRequired::Yes;
        }
        w.defer_rounds = defer;
        if blocked_hours > 0 {
            w.node.as_mut().unwrap().blocked_until = Some(at(blocked_hours * 3600));
        }
        crash_everywhere(w)?;
    }
}

#[test]
fn the_agent_has_work_until_it_received_the_task_then_only_once_it_is_started_and_not_after_its_end()
 {
    use crate::engine::patch::state::HostTask;
    let mut task = HostTask::new(at(0), 0);
    assert!(agent::has_work(&task), "a new task is to be received");
    task.progress.received = true;
    assert!(
        !agent::has_work(&task),
        "received, waiting for the start grant"
    );
    task.started_at = Some(at(10));
    assert!(agent::has_work(&task), "started");
    task.end(Completed, None, String::from("done"), at(20));
    assert!(!agent::has_work(&task), "ended");

    // What has_work says is what step does: a task without work is left as it is.
    let mut waiting = HostTask::new(at(0), 0);
    waiting.progress.received = true;
    let before = waiting.clone();
    let w = World::new(None);
    let ctx = agent::Context {
        task: "t",
        spec: &w.spec,
        boot_id: "b",
    };
    let step = agent::step(&ctx, &mut waiting, &mut Default::default(), None, at(30));
    assert!(step.action.is_none() && step.wake_at.is_none());
    assert_eq!(waiting, before);
}
