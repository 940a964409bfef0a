//! Crash safety: the installer is killed (SIGKILL) at every step of an install, an uninstall
//! and a roll back, in a child process (`upkeep host … --kill-at N`); the product tree is then
//! the tree before or the tree after, byte for byte, once recovery ran, and the next run ends
//! at the tree after. Failures injected at every step roll the product back.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::Arc;

use upkeep::agent::installers::{BuiltinInstaller, Installer, ProductTarget};
use upkeep::agent::products::read_history;
use upkeep::api::host::{EventType, HistoryAction};

use super::fixtures::*;

fn recover(root: &Path) {
    let at: jiff::Timestamp = AT.parse().unwrap();
    let installer = BuiltinInstaller::new(Arc::new(move || at));
    let target = ProductTarget {
        id: "was".into(),
        location: root.to_path_buf(),
    };
    installer.recover(&target).unwrap();
}

fn ptf_events(root: &Path, action: HistoryAction) -> Vec<String> {
    read_history(root)
        .unwrap()
        .iter()
        .flat_map(|h| &h.events)
        .filter(|e| e.event_type == EventType::Ptf && e.action == action)
        .map(|e| e.result.clone())
        .collect()
}

/// Kills `action` at every step N on a fresh copy of `start`; checks the tree after recovery
/// is `start`'s or `end`, and that a re-run ends at `end`. Returns the number of steps.
fn kill_everywhere(start: &Path, end: &Tree, action: &str, arg: &str, scratch: &Path) -> u64 {
    let initial = snapshot(start);
    for n in 1.. {
        let run = |suffix: &str| {
            let copy = scratch.join(format!("{action}-{n}-{suffix}"));
            copy_tree(start, &copy);
            let out = host(action, &copy, &["--kill-at", &n.to_string(), arg]);
            (copy, out)
        };
        let (copy, out) = run("recover");
        if out.status.success() {
            assert!(n > 10, "only {n} steps?");
            assert_same(&snapshot(&copy), end, "a run past the last step");
            return n - 1;
        }
        assert_eq!(out.status.signal(), Some(9), "step {n}: {}", text(&out));
        recover(&copy);
        let tree = snapshot(&copy);
        assert!(
            tree == initial || &tree == end,
            "{action} killed at step {n}: the tree is neither before nor after"
        );
        assert!(journal_is_empty(&copy), "step {n}");

        let (copy, out) = run("rerun");
        assert_eq!(out.status.signal(), Some(9));
        let out = host(action, &copy, &[arg]);
        assert!(
            out.status.success(),
            "re-run after a kill at step {n}: {}",
            text(&out)
        );
        assert_same(
            &snapshot(&copy),
            end,
            &format!("re-run after a kill at step {n}"),
        );
        assert!(journal_is_empty(&copy));
        let which = if action == "install" {
            HistoryAction::Install
        } else {
            HistoryAction::Uninstall
        };
        assert_eq!(ptf_events(&copy, which), ["success"], "step {n}");
    }
    unreachable!()
}

#[test]
fn a_kill_at_any_step_of_an_install_or_uninstall_leaves_before_or_after() {
    let tmp = tempdir();
    let before_dir = product(tmp.path());
    let fp = fix_pack(tmp.path());
    let fp = fp.to_str().unwrap();
    let before = snapshot(&before_dir);

    let after_dir = tmp.path().join("after");
    copy_tree(&before_dir, &after_dir);
    let out = host("install", &after_dir, &[fp]);
    assert!(out.status.success(), "{}", text(&out));
    let after = snapshot(&after_dir);
    assert_ne!(before, after);

    let steps = kill_everywhere(&before_dir, &after, "install", fp, tmp.path());
    let steps_back = kill_everywhere(
        &after_dir,
        &before,
        "uninstall",
        "9.0.5-WS-WAS-FP023",
        tmp.path(),
    );
    assert!(steps > 20 && steps_back > 15, "{steps} {steps_back}");
}

#[test]
fn a_failure_at_any_step_rolls_the_install_back_even_when_killed_while_rolling_back() {
    let tmp = tempdir();
    let start = product(tmp.path());
    let fp = fix_pack(tmp.path());
    let fp = fp.to_str().unwrap();
    let before = snapshot(&start);
    let after_dir = tmp.path().join("after");
    copy_tree(&start, &after_dir);
    assert!(host("install", &after_dir, &[fp]).status.success());
    let after = snapshot(&after_dir);
    let mut applying = Vec::new();
    for n in 1.. {
        let copy = tmp.path().join(format!("fail-{n}"));
        copy_tree(&start, &copy);
        let out = host("install", &copy, &["--fail-at", &n.to_string(), fp]);
        if out.status.success() {
            break;
        }
        assert_eq!(out.status.code(), Some(1), "step {n}: {}", text(&out));
        let said = stdout(&out);
        assert!(said.contains("failure: InstallFailed"), "step {n}: {said}");
        assert!(
            said.contains(&format!("injected failure at step {n}")),
            "{said}"
        );
        if said.contains("the product was rolled back") {
            applying.push(n);
            assert_same(&snapshot(&copy), &before, &format!("failure at step {n}"));
            assert_eq!(ptf_events(&copy, HistoryAction::Install), ["failure"]);
            assert!(journal_is_empty(&copy));
        } else {
            // Failed before the commit (nothing changed), or while writing the log or history
            // after the product was complete (the journal stays, the next run records it).
            recover(&copy);
            let tree = snapshot(&copy);
            assert!(tree == before || tree == after, "step {n}");
            assert!(journal_is_empty(&copy), "step {n}");
        }
    }
    assert!(applying.len() > 5, "{applying:?}");

    // Fail in the middle of applying, and kill every step of the roll back. A kill before the
    // roll back is recorded in the journal rolls forward on recovery; after it, back.
    let fail = applying[applying.len() / 2];
    let mut rolled_back = 0;
    for kill in fail + 1.. {
        let copy = tmp.path().join(format!("fail-{fail}-kill-{kill}"));
        copy_tree(&start, &copy);
        let out = host(
            "install",
            &copy,
            &[
                "--fail-at",
                &fail.to_string(),
                "--kill-at",
                &kill.to_string(),
                fp,
            ],
        );
        recover(&copy);
        let tree = snapshot(&copy);
        assert!(
            tree == before || tree == after,
            "fail at {fail}, kill at {kill}"
        );
        assert!(journal_is_empty(&copy));
        if out.status.signal().is_none() {
            assert_same(&tree, &before, "the failed install, not killed");
            assert!(kill > fail + 3);
            break;
        }
        rolled_back += usize::from(tree == before);
    }
    assert!(rolled_back > 3, "{rolled_back}");
}
