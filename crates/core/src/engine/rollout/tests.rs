use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;

use super::*;
use crate::api::codes::{FirmwareCode, Stage};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn policy(max: usize) -> Policy {
    Policy {
        max_concurrent: max,
        error_policy: ErrorPolicy::Continue,
        outside_window: OutsideWindow::Wait,
        blackout: BlackoutRule::CloseGate,
        max_wait: SignedDuration::from_hours(24),
        suspend: false,
    }
}

fn open() -> Gate {
    Gate {
        open: true,
        reason: "no maintenance window is required".into(),
        blackout: false,
        next_change: None,
    }
}

fn closed(next: Option<Timestamp>) -> Gate {
    Gate {
        open: false,
        reason: "no maintenance window is open (nightly)".into(),
        blackout: false,
        next_change: next,
    }
}

fn ready(target: &str) -> Queued<'_, FirmwareCode> {
    Queued {
        target,
        code: FirmwareCode::ReadyForExecution,
        created_at: at(0),
        wave: 0,
        released: false,
        blocked: false,
    }
}

fn granted(plan: &Plan<FirmwareCode>, tasks: &[Queued<'_, FirmwareCode>]) -> Vec<String> {
    plan.decisions
        .iter()
        .filter(|(_, d)| *d == Decision::Grant)
        .map(|(i, _)| tasks[*i].target.to_string())
        .collect()
}

#[test]
fn max_concurrent_integers_and_percentages() {
    assert_eq!(max_concurrent(&IntOrString::Int(3), 10), Ok(3));
    assert_eq!(
        max_concurrent(&IntOrString::String("25%".into()), 10),
        Ok(2)
    );
    assert_eq!(
        max_concurrent(&IntOrString::String("1%".into()), 10),
        Ok(1),
        "at least one"
    );
    assert_eq!(
        max_concurrent(&IntOrString::String("100%".into()), 7),
        Ok(7)
    );
    assert_eq!(max_concurrent(&IntOrString::String("4".into()), 7), Ok(4));
    for bad in [
        IntOrString::Int(0),
        IntOrString::String("0%".into()),
        IntOrString::String("101%".into()),
        IntOrString::String("x".into()),
    ] {
        assert!(max_concurrent(&bad, 10).is_err(), "{bad:?}");
    }
}

#[test]
fn grants_in_target_order_up_to_the_free_slots() {
    let mut tasks = vec![ready("dp-3"), ready("dp-1"), ready("dp-2")];
    tasks.push(Queued {
        target: "dp-0",
        code: FirmwareCode::ExecutionWaitingForUploadImage,
        created_at: at(0),
        wave: 0,
        released: false,
        blocked: false,
    });
    let plan = plan(&policy(2), &tasks, &open(), at(10));
    assert_eq!(granted(&plan, &tasks), ["dp-1"]);
}

#[test]
fn a_closed_gate_waits_or_cancels() {
    let tasks = vec![ready("dp-1")];
    let wait = plan(&policy(1), &tasks, &closed(Some(at(3600))), at(10));
    assert!(wait.decisions.is_empty());
    assert_eq!(wait.wake_at, Some(at(3600)));

    let cancel_policy = Policy {
        outside_window: OutsideWindow::Cancel,
        ..policy(1)
    };
    let cancel = plan(&cancel_policy, &tasks, &closed(None), at(10));
    assert!(
        matches!(&cancel.decisions[0].1, Decision::End(FirmwareCode::ExecutionCanceledBecauseMaintenanceWindow, _, why) if why.contains("nightly"))
    );
}

#[test]
fn waiting_too_long_cancels() {
    let tasks = vec![ready("dp-1")];
    let plan = plan(&policy(1), &tasks, &closed(None), at(24 * 3600));
    assert!(matches!(
        plan.decisions[0].1,
        Decision::End(FirmwareCode::ExecutionCanceledBecauseADayPassed, _, _)
    ));
    let before = super::plan(&policy(1), &tasks, &closed(None), at(10));
    assert_eq!(before.wake_at, Some(at(24 * 3600)));
}

#[test]
fn error_policy_fail_ends_everything_not_started() {
    let tasks = vec![
        Queued {
            target: "dp-1",
            code: FirmwareCode::ErrorDowngradeNotSupported,
            created_at: at(0),
            wave: 0,
            released: false,
            blocked: false,
        },
        Queued {
            target: "dp-2",
            code: FirmwareCode::WaitingForPreValidation,
            created_at: at(0),
            wave: 0,
            released: false,
            blocked: false,
        },
        ready("dp-3"),
        Queued {
            target: "dp-4",
            code: FirmwareCode::ExecutionUpgradeWaitingForUpgrade,
            created_at: at(0),
            wave: 0,
            released: false,
            blocked: false,
        },
    ];
    let fail = Policy {
        error_policy: ErrorPolicy::Fail,
        ..policy(5)
    };
    let plan = plan(&fail, &tasks, &open(), at(10));
    let codes: Vec<_> = plan
        .decisions
        .iter()
        .map(|(i, d)| match d {
            Decision::End(code, _, _) => (tasks[*i].target, *code),
            Decision::Grant => (tasks[*i].target, FirmwareCode::SentToMdb),
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("dp-2", FirmwareCode::SkippedBecauseErrorPolicy),
            ("dp-3", FirmwareCode::ExecutionCanceledBecauseErrorPolicy)
        ]
    );
    // Skips are not failures: they do not stop a Fail rollout.
    let skipped = vec![
        Queued {
            target: "dp-1",
            code: FirmwareCode::SkippedDeviceNotAvailable,
            created_at: at(0),
            wave: 0,
            released: false,
            blocked: false,
        },
        ready("dp-2"),
    ];
    assert_eq!(
        granted(&super::plan(&fail, &skipped, &open(), at(10)), &skipped),
        ["dp-2"]
    );
}

#[test]
fn suspend_holds_the_queue() {
    let tasks = vec![ready("dp-1")];
    let hold = Policy {
        suspend: true,
        outside_window: OutsideWindow::Cancel,
        ..policy(1)
    };
    assert!(
        plan(&hold, &tasks, &closed(None), at(10))
            .decisions
            .is_empty()
    );
}

/// A small world: tasks move ready → executing → (succeeded | failed) as the rollout grants and a
/// script finishes them.
fn simulate(max: usize, policy_fail: bool, script: &[(u8, bool)]) -> Result<(), TestCaseError> {
    let names: Vec<String> = (0..12).map(|i| format!("t-{i:02}")).collect();
    let mut codes: Vec<FirmwareCode> = vec![FirmwareCode::ReadyForExecution; names.len()];
    let policy = Policy {
        error_policy: if policy_fail {
            ErrorPolicy::Fail
        } else {
            ErrorPolicy::Continue
        },
        ..super::tests::policy(max)
    };
    let mut failure_seen = false;
    for (pick, fails) in script {
        let tasks: Vec<Queued<'_, FirmwareCode>> = names
            .iter()
            .zip(&codes)
            .map(|(n, c)| Queued {
                target: n,
                code: *c,
                created_at: at(0),
                wave: 0,
                released: false,
                blocked: false,
            })
            .collect();
        let plan = plan(&policy, &tasks, &open(), at(10));
        for (i, decision) in plan.decisions {
            match decision {
                Decision::Grant => {
                    prop_assert!(
                        !(policy_fail && failure_seen),
                        "granted after a failure under Fail"
                    );
                    codes[i] = FirmwareCode::ExecutionWaitingForUploadImage;
                }
                Decision::End(code, _, _) => codes[i] = code,
            }
        }
        let executing = codes
            .iter()
            .filter(|c| c.stage() == Stage::Execution && !c.is_terminal())
            .count();
        prop_assert!(
            executing <= max,
            "{executing} executing with maxConcurrent {max}"
        );
        // Finish one executing task, chosen by the script.
        let running: Vec<usize> = (0..codes.len())
            .filter(|i| codes[*i] == FirmwareCode::ExecutionWaitingForUploadImage)
            .collect();
        if !running.is_empty() {
            let i = running[usize::from(*pick) % running.len()];
            codes[i] = if *fails {
                FirmwareCode::ExecutionUploadImageError
            } else {
                FirmwareCode::Success
            };
            failure_seen |= *fails;
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn never_more_than_max_concurrent_and_fail_never_starts_after_a_failure(
        max in 1usize..5,
        policy_fail in any::<bool>(),
        script in prop::collection::vec((any::<u8>(), prop::bool::weighted(0.2)), 1..40),
    ) {
        simulate(max, policy_fail, &script)?;
    }
}
