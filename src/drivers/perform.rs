//! Performing one engine action: the single mapping from what an engine asks for onto a driver
//! call, and from the driver's answer back to what the engine reads: [`perform`] for the firmware
//! engine ([`Action`] → [`Observation`]), [`perform_patch`] for the DevicePatch engine
//! ([`PatchAction`] → [`PatchObservation`]). The controllers, `upkeep device upgrade` and the
//! driver tests all go through them, so they cannot disagree on it.
//!
//! Hooks are the one action a driver cannot perform: the caller says how hook Jobs run where it
//! is (the controller creates Jobs; a command line without a cluster has none).

use futures::future::BoxFuture;

use super::{Caller, DeviceDriver, ImageRef};
use crate::engine::devicepatch::observe::{PatchAction, PatchObservation, PatchOp};
use crate::engine::firmware::observe::{Action, HookKind, HookStatus, Observation};

/// How the caller runs the hook Jobs of a task.
pub trait Hooks: Send + Sync {
    /// The status of the task's hook of `kind` (its Job is created when it does not exist yet),
    /// or why hooks cannot run here.
    fn status(&self, kind: HookKind) -> BoxFuture<'_, Result<HookStatus, String>>;
}

/// Performs `action` for a task whose image is `image` (`None`: the repository does not hold
/// it), on behalf of `caller`.
pub async fn perform(
    driver: &dyn DeviceDriver,
    caller: Caller<'_>,
    image: Option<&ImageRef>,
    hooks: &dyn Hooks,
    action: Action,
) -> Observation {
    match action {
        Action::ReadFacts => Observation::Facts(driver.facts(caller).await),
        Action::ReadLicenses => Observation::Licenses(driver.licenses(caller).await),
        Action::ReadDomainStatus => Observation::DomainStatus(driver.domain_status(caller).await),
        Action::Hook(kind) => match hooks.status(kind).await {
            Ok(status) => Observation::Hook(kind, status),
            Err(why) => Observation::Internal(why),
        },
        Action::Start(start) => match image {
            Some(image) => Observation::Op(start.op, driver.start(caller, &start, image).await),
            None => Observation::Internal(format!(
                "{} needs the image, which the repository no longer holds",
                start.op.as_str()
            )),
        },
        Action::Poll(op, key) => Observation::Op(op, driver.poll(caller, op, &key).await),
    }
}

/// Performs the DevicePatch engine's `action` for a task whose package is `package` (`None`: the
/// repository does not hold it), on behalf of `caller`.
pub async fn perform_patch(
    driver: &dyn DeviceDriver,
    caller: Caller<'_>,
    package: Option<&ImageRef>,
    action: PatchAction,
) -> PatchObservation {
    match action {
        PatchAction::ReadFacts => PatchObservation::Facts(driver.facts(caller).await),
        PatchAction::ReadPatches => PatchObservation::Patches(driver.patches(caller).await),
        PatchAction::Start(start) => match (start.op, package) {
            (PatchOp::Load, None) => PatchObservation::Internal(
                "loading needs the patch package, which the repository no longer holds".into(),
            ),
            (op, package) => {
                PatchObservation::Op(op, driver.start_patch(caller, &start, package).await)
            }
        },
        PatchAction::Poll(op, key) => {
            PatchObservation::Op(op, driver.poll_patch(caller, op, &key).await)
        }
    }
}
