//! What the engine asks the outside world to do, and what comes back: plain values, so the
//! engine stays pure. Drivers and controllers translate between these and real devices.
//!
//! The device readings here ([`Facts`], [`Patch`], [`CallError`], [`OpStatus`]) are shared with
//! the DevicePatch engine (`engine::devicepatch::observe` has its own actions).

use std::fmt;

use jiff::SignedDuration;

/// Why a call is made, passed to every driver call: drivers log it, adapters may audit it, and
/// simulated devices use it to script behaviour "from the execution on".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Refreshing the Device's status.
    Inventory,
    /// Validating a task.
    Validation,
    /// Executing a task.
    Execution,
}

impl Phase {
    /// The phase's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Validation => "validation",
            Self::Execution => "execution",
        }
    }
}

/// How a call to a device went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The device answered, with an error.
    Error,
    /// The call broke: connection reset, or an answer that could not be read.
    Exception,
    /// The device did not answer at all: connection refused, or no answer in time.
    Unreachable,
}

/// A failed device call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    /// What kind of failure.
    pub kind: FaultKind,
    /// What the device or the transport said.
    pub message: String,
}

impl CallError {
    /// A failure of the given kind.
    pub fn new(kind: FaultKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FaultKind::Error => "the device answered with an error",
            FaultKind::Exception => "the call broke",
            FaultKind::Unreachable => "the device did not answer",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

/// An application domain and whether it is quiesced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// The domain's name.
    pub name: String,
    /// Whether it is quiesced.
    pub quiesced: bool,
}

/// What a device reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The device type, e.g. `IDG`.
    pub model: String,
    /// Whether it is a virtual appliance.
    pub r#virtual: bool,
    /// The firmware version it runs (for Redfish: the version of the component being updated).
    pub firmware: String,
    /// Free bytes in the encrypted file system, if the device has one.
    pub free_encrypted: Option<u64>,
    /// Free bytes in the temporary file system, if the device has one.
    pub free_temporary: Option<u64>,
    /// Free bytes on the board where a network element keeps its patches, if it reports them.
    pub free_board: Option<u64>,
    /// The software patches on the device and their states.
    pub patches: Vec<Patch>,
}

/// Where a patch on a device stands in its lifecycle: load → activate → confirm.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PatchLifecycle {
    /// Loaded, not activated.
    Loaded,
    /// Being activated (an element with an activation delay stays here until the delay ends).
    Activating,
    /// Activated, not yet confirmed: it does not take effect yet.
    Activated,
    /// Confirmed and in effect.
    Running,
    /// A state the device reports that upkeep does not know; it counts as not in effect.
    Other(String),
}

impl PatchLifecycle {
    /// Reads a state as a device reports it (case and surrounding blanks do not matter).
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "loaded" => Self::Loaded,
            "activating" => Self::Activating,
            "activated" => Self::Activated,
            "running" => Self::Running,
            _ => Self::Other(text.trim().to_string()),
        }
    }

    /// The state as devices and statuses write it, e.g. `activating`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Loaded => "loaded",
            Self::Activating => "activating",
            Self::Activated => "activated",
            Self::Running => "running",
            Self::Other(text) => text,
        }
    }

    /// Whether the patch takes effect: only a running patch does.
    pub fn is_running(&self) -> bool {
        *self == Self::Running
    }
}

impl fmt::Display for PatchLifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A software patch on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// The patch's identifier, e.g. `V100R004C01SPH106`.
    pub id: String,
    /// Where it stands.
    pub state: PatchLifecycle,
    /// For a patch not yet activated: how long until the device's activation delay ends, if the
    /// device says (`None`: it does not say, or no delay is left).
    pub activates_in: Option<SignedDuration>,
}

impl Patch {
    /// A patch in `state` with no activation delay reported.
    pub fn new(id: impl Into<String>, state: PatchLifecycle) -> Self {
        Self {
            id: id.into(),
            state,
            activates_in: None,
        }
    }
}

/// The state of the device's domains, as the domain-status call reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainStatus {
    /// Every domain.
    pub domains: Vec<Domain>,
    /// Whether the running configuration has unsaved changes.
    pub unsaved_changes: bool,
}

/// An image in the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageEntry {
    /// The file name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The version a catalog gives it (images whose names carry no version, e.g. Redfish).
    pub catalog_version: Option<String>,
}

pub use crate::api::device::DeviceFamily;

/// A hook Job of the FirmwareUpgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// Run during validation.
    PrePlan,
    /// Run after the pre-checks.
    Pre,
    /// Run when the execution ends.
    Post,
}

impl HookKind {
    /// The name used in Job names and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PrePlan => "pre-plan",
            Self::Pre => "pre",
            Self::Post => "post",
        }
    }
}

/// Where a hook Job stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookStatus {
    /// Still running (or not yet scheduled).
    Running,
    /// Exited zero.
    Succeeded,
    /// Exited non-zero, or failed to run; the text says how.
    Failed(String),
}

/// A long-running device operation, started once and then polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Quiesce the device's domains before the upload (optional).
    FirstQuiesce,
    /// Restart the device before the upload (optional).
    Restart,
    /// Transfer the image to the device.
    Upload,
    /// Quiesce the device's domains right before the upgrade.
    SecondQuiesce,
    /// Install the uploaded image.
    Upgrade,
    /// Unquiesce after a failure.
    Unquiesce,
}

impl OpKind {
    /// The operation's name in keys and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FirstQuiesce => "first-quiesce",
            Self::Restart => "restart",
            Self::Upload => "upload",
            Self::SecondQuiesce => "second-quiesce",
            Self::Upgrade => "upgrade",
            Self::Unquiesce => "unquiesce",
        }
    }
}

/// Where a started operation stands, as the device reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpStatus {
    /// Still running; the device may say when to ask again.
    Running {
        /// The device's hint of when the operation will be done.
        retry_after: Option<SignedDuration>,
    },
    /// Finished successfully.
    Done,
    /// The device knows no operation with this key: the start never arrived.
    Unknown,
    /// The start or the poll failed.
    Failed(CallError),
}

/// Something the engine needs done or read before it can decide further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read the device's facts.
    ReadFacts,
    /// Read the device's licensed features.
    ReadLicenses,
    /// Read the state of the device's domains and unsaved changes.
    ReadDomainStatus,
    /// Make sure the hook Job exists (create it from the template if not) and report its status.
    Hook(HookKind),
    /// Start an operation with an idempotency key: a device that already has an operation with
    /// this key reports that one instead of starting another.
    Start(Start),
    /// Ask how the operation with this key stands.
    Poll(OpKind, String),
}

/// What starting an operation needs: which one, its idempotency key, and the version the
/// upgrade installs as validation found it (drivers never work it out again).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Start {
    /// The operation.
    pub op: OpKind,
    /// The idempotency key: starting again with it reports the operation already started.
    pub key: String,
    /// The version the image installs (empty before validation has found it).
    pub target_version: String,
}

impl Start {
    /// A start of `op` with `key`, towards `target_version`.
    pub fn new(op: OpKind, key: impl Into<String>, target_version: impl Into<String>) -> Self {
        Self {
            op,
            key: key.into(),
            target_version: target_version.into(),
        }
    }
}

/// The answer to an [`Action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The answer to [`Action::ReadFacts`].
    Facts(Result<Facts, CallError>),
    /// The answer to [`Action::ReadLicenses`]: the licensed feature names.
    Licenses(Result<Vec<String>, CallError>),
    /// The answer to [`Action::ReadDomainStatus`].
    DomainStatus(Result<DomainStatus, CallError>),
    /// The answer to [`Action::Hook`].
    Hook(HookKind, HookStatus),
    /// The answer to [`Action::Start`] or [`Action::Poll`].
    Op(OpKind, OpStatus),
    /// upkeep itself failed while performing an action (not the device); the text says how.
    Internal(String),
}
