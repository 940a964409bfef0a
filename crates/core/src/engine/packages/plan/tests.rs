//! One test per rule of `plan`.

use super::*;

fn at() -> Timestamp {
    "2026-12-05T22:00:00Z".parse().unwrap()
}

fn was(version: &str) -> ProductStatus {
    ProductStatus {
        id: "was".into(),
        name: "WebSphere Application Server".into(),
        version: version.into(),
        location: "/opt/was".into(),
        packages: vec![],
    }
}

fn pkg(id: &str, type_: PackageType, applies_to: &str, version: Option<&str>) -> PackageInfo {
    PackageInfo {
        id: id.into(),
        type_,
        product: "was".into(),
        applies_to: applies_to.into(),
        version: version.map(str::to_string),
        fixes: vec![],
        components: vec![ComponentInfo {
            name: "runtime".into(),
            update_type: UpdateType::Replace,
        }],
    }
}

fn fix_pack() -> PackageInfo {
    pkg(
        "9.0.5-WS-WAS-FP023",
        PackageType::FixPack,
        ">=9.0.5.0 <9.0.6.0",
        Some("9.0.5.23"),
    )
}

fn interim_fix() -> PackageInfo {
    pkg(
        "9.0.5.23-WS-WAS-IFPH12345",
        PackageType::InterimFix,
        "=9.0.5.23",
        None,
    )
}

fn reason(r: Result<(), Refusal>) -> Option<Reason> {
    r.err().map(|r| r.reason)
}

#[test]
fn install_needs_the_product_on_the_host() {
    let refusal = install_applicability(None, &fix_pack()).unwrap_err();
    assert_eq!(refusal.reason, Reason::NotApplicable);
    assert!(
        refusal.message.contains("\"was\" is not on the host"),
        "{}",
        refusal.message
    );
}

#[test]
fn install_needs_the_version_in_applies_to() {
    let product = was("9.0.4.9");
    let refusal = install_applicability(Some(&product), &fix_pack()).unwrap_err();
    assert_eq!(refusal.reason, Reason::NotApplicable);
    assert!(
        refusal.message.contains(">=9.0.5.0 <9.0.6.0"),
        "{}",
        refusal.message
    );
    assert_eq!(
        install_applicability(Some(&was("9.0.5.22")), &fix_pack()),
        Ok(())
    );
    assert_eq!(
        reason(install_applicability(Some(&was("unknown")), &fix_pack())),
        Some(Reason::NotApplicable)
    );
}

#[test]
fn install_of_an_installed_package_does_not_apply() {
    let product = after_install(&was("9.0.5.23"), &interim_fix(), at());
    let refusal = install_applicability(Some(&product), &interim_fix()).unwrap_err();
    assert_eq!(refusal.reason, Reason::NotApplicable);
    assert!(refusal.message.contains("already installed"));
}

#[test]
fn a_pack_must_lead_above_the_current_version() {
    let refusal = install_applicability(Some(&was("9.0.5.23")), &fix_pack()).unwrap_err();
    assert_eq!(refusal.reason, Reason::NotApplicable);
    assert!(refusal.message.contains("already at 9.0.5.23"));
}

#[test]
fn a_broken_range_is_an_invalid_package() {
    let bad = pkg("x", PackageType::InterimFix, "~9", None);
    assert_eq!(
        reason(install_applicability(Some(&was("9.0.5.22")), &bad)),
        Some(Reason::InvalidPackage)
    );
}

#[test]
fn uninstall_needs_the_package_and_its_backup() {
    let mut product = after_install(&was("9.0.5.23"), &interim_fix(), at());
    let id = "9.0.5.23-WS-WAS-IFPH12345";
    assert!(uninstall_applicability(Some(&product), "was", id).is_ok());
    let missing = uninstall_applicability(Some(&product), "was", "other").unwrap_err();
    assert_eq!(missing.reason, Reason::NotApplicable);
    product.packages[0].backup = false;
    let no_backup = uninstall_applicability(Some(&product), "was", id).unwrap_err();
    assert_eq!(no_backup.reason, Reason::BackupMissing);
    assert_eq!(
        uninstall_applicability(None, "was", id).unwrap_err().reason,
        Reason::NotApplicable
    );
}

#[test]
fn installs_run_packs_before_interim_fixes_and_uninstalls_the_reverse() {
    use PackageType::*;
    let types = [InterimFix, FixPack, InterimFix, RefreshPack];
    assert_eq!(install_order(&types), [3, 1, 0, 2]);
    assert_eq!(uninstall_order(&types), [2, 0, 1, 3]);
}

#[test]
fn each_step_sees_the_product_as_the_steps_before_leave_it() {
    // The interim fix for 9.0.5.23 is listed first; it runs after the fix pack that brings
    // 9.0.5.23, and applies then.
    let steps = plan_install(&[was("9.0.5.22")], &[interim_fix(), fix_pack()], at());
    let summary: Vec<(&str, &Decision, Option<&str>, Option<&str>)> = steps
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                &s.decision,
                s.version_before.as_deref(),
                s.version_after.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "9.0.5-WS-WAS-FP023",
                &Decision::Run,
                Some("9.0.5.22"),
                Some("9.0.5.23")
            ),
            (
                "9.0.5.23-WS-WAS-IFPH12345",
                &Decision::Run,
                Some("9.0.5.23"),
                Some("9.0.5.23")
            ),
        ]
    );
    assert_eq!((steps[0].index, steps[1].index), (1, 0));
}

#[test]
fn a_package_that_does_not_apply_is_skipped_in_the_plan() {
    let steps = plan_install(&[was("9.0.4.1")], &[fix_pack()], at());
    assert!(matches!(&steps[0].decision, Decision::Skip(r) if r.reason == Reason::NotApplicable));
    assert_eq!(steps[0].version_after, None);
}

#[test]
fn uninstall_restores_the_previous_version() {
    let installed = after_install(&was("9.0.5.22"), &fix_pack(), at());
    assert_eq!(installed.version, "9.0.5.23");
    assert_eq!(
        installed.packages[0].previous_version.as_deref(),
        Some("9.0.5.22")
    );
    assert!(installed.packages[0].backup);
    let removed = after_uninstall(&installed, "9.0.5-WS-WAS-FP023");
    assert_eq!(removed, was("9.0.5.22"));
}

#[test]
fn uninstall_plan_runs_in_reverse_and_refuses_without_backup() {
    let mut product = after_install(&was("9.0.5.22"), &fix_pack(), at());
    product = after_install(&product, &interim_fix(), at());
    let removals = [
        Removal {
            id: "9.0.5-WS-WAS-FP023".into(),
            product: "was".into(),
        },
        Removal {
            id: "9.0.5.23-WS-WAS-IFPH12345".into(),
            product: "was".into(),
        },
    ];
    let steps = plan_uninstall(std::slice::from_ref(&product), &removals);
    assert_eq!(steps[0].id, "9.0.5.23-WS-WAS-IFPH12345");
    assert_eq!(steps[1].version_after.as_deref(), Some("9.0.5.22"));
    assert!(steps.iter().all(|s| s.decision == Decision::Run));
    product.packages[1].backup = false;
    let steps = plan_uninstall(&[product], &removals);
    assert!(matches!(&steps[0].decision, Decision::Refuse(r) if r.reason == Reason::BackupMissing));
}

#[test]
fn a_later_package_touching_the_same_files_blocks_an_uninstall() {
    let a: BTreeSet<String> = ["lib/a.jar".to_string()].into();
    let b: BTreeSet<String> = ["lib/b.jar".to_string()].into();
    let ab: BTreeSet<String> = ["lib/a.jar".to_string(), "lib/c.jar".to_string()].into();
    let installed = [("IF1", &a), ("IF2", &b), ("FP", &ab)];
    assert_eq!(blocking_package("IF1", &installed), Some("FP"));
    assert_eq!(blocking_package("IF2", &installed), None);
    assert_eq!(blocking_package("FP", &installed), None);
    assert_eq!(blocking_package("absent", &installed), None);
}

fn run_job(
    steps: &[Step],
    mut run: impl FnMut(&Step) -> PackageRun,
) -> (Vec<PackageRun>, HostOutcome) {
    let mut runs = Vec::new();
    loop {
        match next(steps, &runs) {
            Next::Run(step) => runs.push(run(step)),
            Next::Record(r) => runs.push(r),
            Next::Done(outcome) => return (runs, outcome),
        }
    }
}

#[test]
fn every_package_succeeding_completes_the_task() {
    let steps = plan_install(&[was("9.0.5.22")], &[fix_pack(), interim_fix()], at());
    let (runs, outcome) = run_job(&steps, |s| PackageRun::success(&s.id, "installed"));
    assert_eq!(runs.len(), 2);
    assert_eq!(outcome.code, PatchCode::Completed);
    assert_eq!(outcome.code.number(), 2036);
    assert_eq!(outcome.reason, None);
}

#[test]
fn a_failure_cancels_the_rest_and_fails_the_task_with_its_reason() {
    let steps = plan_install(&[was("9.0.5.22")], &[fix_pack(), interim_fix()], at());
    let (runs, outcome) = run_job(&steps, |s| {
        PackageRun::ended(
            &s.id,
            PackageResult::Failure,
            Reason::ProcessesRunning,
            "pid 7 (java)",
        )
    });
    assert_eq!(runs[0].result, Some(PackageResult::Failure));
    assert_eq!(runs[1].result, Some(PackageResult::Cancelled));
    assert!(
        runs[1]
            .message
            .contains("9.0.5-WS-WAS-FP023 ended before it")
    );
    assert_eq!(outcome.code.number(), 2046);
    assert_eq!(outcome.reason, Some(Reason::ProcessesRunning));
    assert!(outcome.message.contains("pid 7 (java)"));
}

#[test]
fn a_partial_success_fails_the_task_as_an_install_failure() {
    let runs = [PackageRun {
        id: "x".into(),
        result: Some(PackageResult::PartialSuccess),
        reason: None,
        message: "tool exit 1".into(),
    }];
    let outcome = host_outcome(&runs);
    assert_eq!(outcome.code, PatchCode::JobFailed);
    assert_eq!(outcome.reason, Some(Reason::InstallFailed));
    assert!(outcome.message.contains("partialSuccess"));
}

#[test]
fn a_refused_step_ends_failure_without_running() {
    let mut product = after_install(&was("9.0.5.23"), &interim_fix(), at());
    product.packages[0].backup = false;
    let steps = plan_uninstall(
        &[product],
        &[Removal {
            id: "9.0.5.23-WS-WAS-IFPH12345".into(),
            product: "was".into(),
        }],
    );
    let (runs, outcome) = run_job(&steps, |_| panic!("a refused step must not run"));
    assert_eq!(runs[0].result, Some(PackageResult::Failure));
    assert_eq!(outcome.code.number(), 2046);
    assert_eq!(outcome.reason, Some(Reason::BackupMissing));
}

#[test]
fn nothing_applicable_is_not_applicable() {
    let steps = plan_install(&[was("9.0.4.0")], &[fix_pack()], at());
    let (runs, outcome) = run_job(&steps, |_| panic!("a skipped step must not run"));
    assert_eq!(runs[0].result, None);
    assert_eq!(runs[0].reason, Some(Reason::NotApplicable));
    assert_eq!(outcome.code, PatchCode::NotApplicable);
    assert_eq!(outcome.code.number(), 2053);
    assert_eq!(outcome.reason, Some(Reason::NotApplicable));
}

#[test]
fn skipped_packages_beside_successes_still_complete() {
    let steps = plan_install(&[was("9.0.5.23")], &[fix_pack(), interim_fix()], at());
    let (runs, outcome) = run_job(&steps, |s| PackageRun::success(&s.id, "installed"));
    assert_eq!(runs[0].result, None);
    assert_eq!(outcome.code, PatchCode::Completed);
    assert_eq!(outcome.message, "1 package(s) done, 1 not applicable");
}

#[test]
fn packages_cancelled_by_the_window_time_the_task_out() {
    let steps = plan_install(&[was("9.0.5.22")], &[fix_pack(), interim_fix()], at());
    let mut runs = vec![PackageRun::success(&steps[0].id, "installed")];
    cancel_rest(
        &steps,
        &mut runs,
        Reason::PatchingOutsideWindow,
        "the window closed",
    );
    assert_eq!(runs[1].result, Some(PackageResult::Cancelled));
    let outcome = host_outcome(&runs);
    assert_eq!(outcome.code.number(), 2037);
    assert_eq!(outcome.reason, Some(Reason::PatchingOutsideWindow));
    assert!(matches!(next(&steps, &runs), Next::Done(_)));
}

#[test]
fn runs_become_the_tasks_package_outcomes() {
    let run = PackageRun::ended("x", PackageResult::Failure, Reason::BackupMissing, "gone");
    let outcome = PackageOutcome::from(&run);
    assert_eq!(outcome.result.as_deref(), Some("failure"));
    assert_eq!(outcome.reason.as_deref(), Some("BackupMissing"));
    for r in Reason::ALL {
        assert_eq!(r.as_str().parse::<Reason>(), Ok(*r));
    }
}

#[test]
fn history_gains_the_package_event_then_one_per_component() {
    let names = EventNames {
        primary_content: "fp.pak".into(),
        log_name: "/opt/was/logs/update/x.log".into(),
        backup_name: "/opt/was/properties/version/update/backup/fp.zip".into(),
    };
    let components = vec![
        ComponentInfo {
            name: "runtime".into(),
            update_type: UpdateType::Replace,
        },
        ComponentInfo {
            name: "samples".into(),
            update_type: UpdateType::Add,
        },
    ];
    let end: Timestamp = "2026-12-05T22:01:00Z".parse().unwrap();
    let subject = EventSubject {
        product: "was",
        id: "fp",
        components: &components,
    };
    let events = history_events(
        subject,
        HistoryAction::Install,
        PackageResult::Success,
        &names,
        at(),
        end,
    );
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].event_type, EventType::Ptf);
    assert_eq!(events[0].update_type, Some(UpdateType::Replace));
    assert_eq!(events[0].primary_content, "fp.pak");
    assert!(events.iter().all(|e| e.product == "was"));
    assert_eq!(events[2].event_type, EventType::Component);
    assert_eq!(events[2].id, "samples");
    assert_eq!(events[2].update_type, Some(UpdateType::Add));
    assert!(
        events
            .iter()
            .all(|e| e.result == "success" && e.end_time == Some(Time(end)))
    );
    assert_eq!(package_update_type(&components[1..]), UpdateType::Add);
    assert_eq!(package_update_type(&[]), UpdateType::Replace);
}
