//! The parent status rules on their own: counts that add up, the bounded and ordered failure
//! list, the progress phases and the message's window hint.

use proptest::prelude::*;

use super::*;
use crate::api::codes::FirmwareCode;

fn gate(reason: &str) -> Gate {
    Gate {
        open: false,
        reason: reason.into(),
        blackout: false,
        next_change: None,
    }
}

fn task(code: FirmwareCode) -> ChildTask<'static, FirmwareCode> {
    ChildTask {
        target: "t",
        code,
        result: code.result(),
        finished_at: None,
        message: "",
    }
}

#[test]
fn a_waiting_rollout_says_why_the_gate_holds_it() {
    let summary = summarize(&[task(FirmwareCode::ReadyForExecution)]);
    let p = progress(
        &summary,
        false,
        &gate("no maintenance window is open (nightly)"),
    );
    assert_eq!(p.phase, Phase::Reconciling);
    assert!(
        p.message
            .ends_with("window gate: no maintenance window is open (nightly)"),
        "{}",
        p.message
    );
    let running = summarize(&[task(FirmwareCode::ExecutionUpgradeStarted)]);
    let p = progress(&running, false, &gate("closed"));
    assert!(!p.message.contains("window gate"), "{}", p.message);
}

proptest! {
    #[test]
    fn the_counts_add_up(codes in prop::collection::vec(prop::sample::select(FirmwareCode::ALL), 0..60)) {
        let tasks: Vec<_> = codes.iter().map(|c| task(*c)).collect();
        let s = summarize(&tasks);
        let skipped_or_canceled = codes.iter().filter(|c| matches!(c.result(), TaskResult::Skipped | TaskResult::Canceled)).count() as u32;
        prop_assert_eq!(s.total as usize, codes.len());
        prop_assert_eq!(s.succeeded + s.failed + s.running + s.waiting + skipped_or_canceled, s.total);
        prop_assert_eq!(s.by_code.values().sum::<u32>(), s.total);
        prop_assert!(first_failures(&tasks).len() <= FIRST_FAILURES);
    }
}
