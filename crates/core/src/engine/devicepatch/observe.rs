//! What the DevicePatch engine asks the outside world to do, and what comes back: plain values.
//! The device readings themselves ([`Facts`], [`Patch`], [`CallError`], [`OpStatus`]) are the
//! ones the firmware engine uses too; `drivers::perform::perform_patch` is the one mapping of
//! these actions onto driver calls.

use jiff::SignedDuration;

pub use crate::engine::firmware::observe::{
    CallError, Facts, FaultKind, ImageEntry, OpStatus, Patch, PatchLifecycle, Phase,
};

/// A patch operation on an element, started once with an idempotency key and then polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatchOp {
    /// Transfer the package to the element and load it as the patch.
    Load,
    /// Tell the element the delay between load and activation.
    SetDelay,
    /// Activate the loaded patch.
    Activate,
    /// Confirm the activated patch, so that it runs.
    Confirm,
}

impl PatchOp {
    /// Every operation, in lifecycle order.
    pub const ALL: [PatchOp; 4] = [Self::Load, Self::SetDelay, Self::Activate, Self::Confirm];

    /// The operation's name in keys and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Load => "patch-load",
            Self::SetDelay => "patch-set-delay",
            Self::Activate => "patch-activate",
            Self::Confirm => "patch-confirm",
        }
    }

    /// What the operation does, for messages ("loading the patch failed: …").
    pub const fn doing(self) -> &'static str {
        match self {
            Self::Load => "loading the patch",
            Self::SetDelay => "setting the activation delay",
            Self::Activate => "activating the patch",
            Self::Confirm => "confirming the patch",
        }
    }
}

/// What starting a patch operation needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PatchStart {
    /// The operation.
    pub op: PatchOp,
    /// The idempotency key: starting again with it reports the operation already started.
    pub key: String,
    /// The patch id, e.g. `V100R004C01SPH106`.
    pub patch: String,
    /// For [`PatchOp::SetDelay`]: the delay to tell the element.
    pub delay: Option<SignedDuration>,
}

/// Something the DevicePatch engine needs done or read before it can decide further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchAction {
    /// Read the element's facts (free board space, patches).
    ReadFacts,
    /// Read the patches on the element and their states.
    ReadPatches,
    /// Start an operation with an idempotency key (the package travels with a load).
    Start(PatchStart),
    /// Ask how the operation with this key stands.
    Poll(PatchOp, String),
}

/// The answer to a [`PatchAction`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchObservation {
    /// The answer to [`PatchAction::ReadFacts`].
    Facts(Result<Facts, CallError>),
    /// The answer to [`PatchAction::ReadPatches`].
    Patches(Result<Vec<Patch>, CallError>),
    /// The answer to [`PatchAction::Start`] or [`PatchAction::Poll`].
    Op(PatchOp, OpStatus),
    /// upkeep itself failed while performing an action (not the element); the text says how.
    Internal(String),
}
