//! The validation of a DevicePatch task, in the contract's order (the first check that applies
//! decides the code): the Device exists, the element answers, the patch is not running already,
//! the package is in the repository, the board has room for it. One reading (the facts) covers
//! every check.

use super::observe::{CallError, Facts, FaultKind, ImageEntry, PatchAction, PatchLifecycle};
use crate::api::DevicePatchSpec;
use crate::api::codes::DevicePatchCode;
use crate::engine::size::format_bytes;

/// What is known so far about the target, filled in one reading at a time; it need not be
/// stored between steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readings {
    /// The answer to [`PatchAction::ReadFacts`].
    pub facts: Option<Result<Facts, CallError>>,
}

/// The inputs of validation besides the device readings.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The resource's spec.
    pub spec: &'a DevicePatchSpec,
    /// Whether the Device object exists.
    pub device_exists: bool,
    /// The package's entry in the repository, if it is there.
    pub package: Option<&'a ImageEntry>,
}

/// The verdict of one pass over the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The next check needs this reading.
    Need(PatchAction),
    /// The task ends with this code and message (a failure, a skip, or `PATCH_ALREADY_RUNNING`).
    End(DevicePatchCode, String),
    /// Every check passed; the message says what was found.
    Pass(String),
}

/// Runs the checks in order on what is known.
pub fn validate(subject: Subject<'_>, readings: &Readings) -> Verdict {
    use DevicePatchCode::*;
    let spec = subject.spec;
    // 1. The target exists.
    if !subject.device_exists {
        return Verdict::End(
            SkippedDeviceDoesNotExist,
            "no Device with this name in the namespace".into(),
        );
    }
    // 2. The element answers.
    let facts = match &readings.facts {
        None => return Verdict::Need(PatchAction::ReadFacts),
        Some(Ok(facts)) => facts,
        Some(Err(e)) if e.kind == FaultKind::Unreachable => {
            return Verdict::End(
                SkippedDeviceNotAvailable,
                format!("reading the element's facts failed: {e}"),
            );
        }
        Some(Err(e)) => {
            return Verdict::End(
                ErrorCommunicationFailed,
                format!("reading the element's facts failed: {e}"),
            );
        }
    };
    let on_device = facts.patches.iter().find(|p| p.id == spec.patch);
    // 3. The patch runs already.
    if let Some(patch) = on_device
        && patch.state == PatchLifecycle::Running
    {
        return Verdict::End(
            PatchAlreadyRunning,
            format!("the element reports patch {} running already", spec.patch),
        );
    }
    // 4. The package is in the repository.
    let Some(package) = subject.package else {
        return Verdict::End(
            ErrorPatchPackageDoesNotExist,
            format!("package {:?} is not in the image repository", spec.package),
        );
    };
    // 5. The board has room for it (unless the patch is on the element already: nothing to
    // load then).
    if on_device.is_none()
        && let Some(free) = facts.free_board.filter(|free| *free < package.size)
    {
        return Verdict::End(
            ErrorNotEnoughFreeSpaceOnBoard,
            format!(
                "the package needs {} but the board has {} free",
                format_bytes(package.size),
                format_bytes(free)
            ),
        );
    }
    Verdict::Pass(match on_device {
        Some(patch) => format!(
            "validated: the element holds patch {} ({}); waiting for a rollout slot and an open window",
            spec.patch, patch.state
        ),
        None => format!(
            "validated: {} ({}) fits on the board; waiting for a rollout slot and an open window",
            spec.package,
            format_bytes(package.size)
        ),
    })
}
