//! Unit tests of the agent half on its own; see `../tests/cases.rs` for the cases that drive
//! tasks through both halves.

use super::*;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

#[test]
fn a_reboot_polled_after_the_task_resumed_is_not_reported_again() {
    let spec: PatchJobSpec =
        serde_json::from_value(serde_json::json!({"hosts": {"names": ["h"]}})).unwrap();
    let ctx = Context {
        task: "ns/t/uid",
        spec: &spec,
        boot_id: "boot-2",
    };
    let mut task = HostTask::new(at(0), 3);
    task.started_at = Some(at(1));
    task.progress.received = true;
    task.progress.boot_id = Some("boot-1".into());
    for code in [
        PatchCode::JobStarted,
        PatchCode::PendingReboot,
        PatchCode::Rebooted,
        PatchCode::JobResumed,
    ] {
        task.enter(code, "", at(2));
    }
    // The status says resumed; the journal, written after it, still says the reboot runs.
    let mut journal = Journal {
        running: Some((Op::Reboot, "ns/t/uid/reboot".into())),
        reboot_from: Some("boot-1".into()),
        reboot_at: Some(at(2)),
        signal_read: true,
        ..Default::default()
    };
    let history = task.history.len();
    let step = step(
        &ctx,
        &mut task,
        &mut journal,
        Some(Observation::Op(Op::Reboot, OpStatus::Unknown)),
        at(3),
    );
    assert_eq!(task.code, PatchCode::JobResumed);
    assert_eq!(task.history.len(), history, "no second 2035/2045");
    assert_eq!(journal.running, None);
    assert!(journal.done.contains(&"reboot".to_string()));
    assert_eq!(step.wake_at, Some(at(3)));
}
