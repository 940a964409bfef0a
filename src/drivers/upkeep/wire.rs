//! The upkeep device API on the wire: resource paths, headers and JSON bodies, shared by the
//! driver and the device simulator so both sides speak exactly one format. The API is described
//! in `docs/device-api.yaml`.
//!
//! Readers are lenient (unknown fields are ignored, so adapters may add their own); writers emit
//! every field the document names.

use serde::{Deserialize, Serialize};

use jiff::SignedDuration;

use crate::drivers::DeviceOp;
use crate::drivers::inventory::Inventory;
use crate::engine::devicepatch::observe::PatchOp;
use crate::engine::firmware::observe::{
    Domain, DomainStatus, Facts, OpKind, Patch, PatchLifecycle,
};

/// `GET {base}/facts`: everything the device reports about itself.
pub const FACTS: &str = "facts";
/// `GET {base}/licenses`: the licensed features.
pub const LICENSES: &str = "licenses";
/// `GET {base}/domains`: domains, quiesce states and unsaved changes.
pub const DOMAINS: &str = "domains";
/// `GET|PUT {base}/images/{name}`: an image on the device.
pub const IMAGES: &str = "images";
/// `POST {base}/operations`, `GET {base}/operations/{key}`: long operations.
pub const OPERATIONS: &str = "operations";
/// `GET {base}/patches`: the patches on the device and their states.
pub const PATCHES: &str = "patches";

/// Advisory: the task on whose behalf a call is made (`namespace/name/…`).
pub const TASK_HEADER: &str = "upkeep-task";
/// Advisory: why the call is made: `inventory`, `validation` or `execution`.
pub const PHASE_HEADER: &str = "upkeep-phase";
/// Image upload: the SHA-256 of the whole image, lower-case hex.
pub const SHA256_HEADER: &str = "upkeep-image-sha256";
/// Image upload: the size of the whole image in bytes.
pub const SIZE_HEADER: &str = "upkeep-image-size";
/// Image upload: where in the image the body starts (resuming a broken upload); default 0.
pub const OFFSET_HEADER: &str = "upkeep-image-offset";

/// The body of every error answer (4xx and 5xx).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a human.
    pub message: String,
}

/// Free bytes per file system.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeSpaceBody {
    /// Free bytes in the encrypted file system, if the device has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<u64>,
    /// Free bytes in the temporary file system, if the device has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary: Option<u64>,
    /// Free bytes on the board where a network element keeps its patches, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<u64>,
}

/// An application domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainBody {
    /// Its name.
    pub name: String,
    /// Whether it is quiesced.
    #[serde(default)]
    pub quiesced: bool,
}

/// A software patch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchBody {
    /// Its identifier.
    pub id: String,
    /// Its lifecycle state: `loaded`, `activating`, `activated` or `running`.
    pub state: String,
    /// For a patch not activated yet: seconds until the device's activation delay ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activates_in_seconds: Option<f64>,
}

/// The answer to `GET patches`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchesBody {
    /// Every patch on the device.
    pub patches: Vec<PatchBody>,
}

/// The patch named in a patch operation request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchRequest {
    /// The patch id.
    pub id: String,
    /// For `patchSetDelay`: the delay between load and activation, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_delay_seconds: Option<f64>,
}

/// The answer to `GET facts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FactsBody {
    /// The device type, e.g. `IDG`.
    pub model: String,
    /// Whether it is a virtual appliance.
    pub r#virtual: bool,
    /// The firmware version it runs.
    pub firmware: String,
    /// Free bytes per file system.
    #[serde(default)]
    pub free_space: FreeSpaceBody,
    /// Licensed features.
    #[serde(default)]
    pub features: Vec<String>,
    /// Whether the running configuration has unsaved changes.
    #[serde(default)]
    pub unsaved_changes: bool,
    /// Domains and their quiesce state.
    #[serde(default)]
    pub domains: Vec<DomainBody>,
    /// Software patches.
    #[serde(default)]
    pub patches: Vec<PatchBody>,
}

/// The answer to `GET licenses`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicensesBody {
    /// Licensed features.
    pub features: Vec<String>,
}

/// The answer to `GET domains`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainStatusBody {
    /// Every domain.
    pub domains: Vec<DomainBody>,
    /// Whether the running configuration has unsaved changes.
    pub unsaved_changes: bool,
}

/// An image named in an operation request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageBody {
    /// The image's file name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lower-case hex, when known: the device then checks it holds exactly these
    /// bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The answer to `GET images/{name}` and `PUT images/{name}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageStatusBody {
    /// The image's file name.
    pub name: String,
    /// Its full size in bytes.
    pub size: u64,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
    /// How many bytes of it the device holds (from the start of the image).
    pub received: u64,
    /// Whether the device holds the whole image and its checksum matched.
    pub complete: bool,
}

/// The operations a device runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OperationKind {
    /// Quiesce the domains before the optional restart and the upload.
    FirstQuiesce,
    /// Quiesce the domains right before the upgrade.
    SecondQuiesce,
    /// Unquiesce the domains (after a failure).
    Unquiesce,
    /// Restart the device.
    Restart,
    /// Confirm that the uploaded image is on the device (done at once when it is).
    Upload,
    /// Install an uploaded image (the device restarts into it).
    Upgrade,
    /// Load an uploaded package as a patch (`done` when the device lists the patch).
    PatchLoad,
    /// Set a loaded patch's activation delay.
    PatchSetDelay,
    /// Activate a loaded patch (`done` when the patch is `activated`).
    PatchActivate,
    /// Confirm an activated patch (`done` when the patch is `running`).
    PatchConfirm,
}

impl OperationKind {
    /// Every kind, in the order the document lists them.
    pub const ALL: [OperationKind; 10] = [
        Self::FirstQuiesce,
        Self::SecondQuiesce,
        Self::Unquiesce,
        Self::Restart,
        Self::Upload,
        Self::Upgrade,
        Self::PatchLoad,
        Self::PatchSetDelay,
        Self::PatchActivate,
        Self::PatchConfirm,
    ];

    /// The operation of the engines this kind is.
    pub const fn op(self) -> DeviceOp {
        match self {
            Self::FirstQuiesce => DeviceOp::Firmware(OpKind::FirstQuiesce),
            Self::SecondQuiesce => DeviceOp::Firmware(OpKind::SecondQuiesce),
            Self::Unquiesce => DeviceOp::Firmware(OpKind::Unquiesce),
            Self::Restart => DeviceOp::Firmware(OpKind::Restart),
            Self::Upload => DeviceOp::Firmware(OpKind::Upload),
            Self::Upgrade => DeviceOp::Firmware(OpKind::Upgrade),
            Self::PatchLoad => DeviceOp::Patch(PatchOp::Load),
            Self::PatchSetDelay => DeviceOp::Patch(PatchOp::SetDelay),
            Self::PatchActivate => DeviceOp::Patch(PatchOp::Activate),
            Self::PatchConfirm => DeviceOp::Patch(PatchOp::Confirm),
        }
    }
}

impl From<DeviceOp> for OperationKind {
    fn from(op: DeviceOp) -> Self {
        match op {
            DeviceOp::Firmware(OpKind::FirstQuiesce) => Self::FirstQuiesce,
            DeviceOp::Firmware(OpKind::SecondQuiesce) => Self::SecondQuiesce,
            DeviceOp::Firmware(OpKind::Unquiesce) => Self::Unquiesce,
            DeviceOp::Firmware(OpKind::Restart) => Self::Restart,
            DeviceOp::Firmware(OpKind::Upload) => Self::Upload,
            DeviceOp::Firmware(OpKind::Upgrade) => Self::Upgrade,
            DeviceOp::Patch(PatchOp::Load) => Self::PatchLoad,
            DeviceOp::Patch(PatchOp::SetDelay) => Self::PatchSetDelay,
            DeviceOp::Patch(PatchOp::Activate) => Self::PatchActivate,
            DeviceOp::Patch(PatchOp::Confirm) => Self::PatchConfirm,
        }
    }
}

impl From<OpKind> for OperationKind {
    fn from(op: OpKind) -> Self {
        DeviceOp::Firmware(op).into()
    }
}

impl From<PatchOp> for OperationKind {
    fn from(op: PatchOp) -> Self {
        DeviceOp::Patch(op).into()
    }
}

/// The body of `POST operations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationRequest {
    /// What to do.
    pub kind: OperationKind,
    /// The idempotency key: starting again with a known key reports that operation.
    pub key: String,
    /// The image, for `upload`, `upgrade` and `patchLoad` (the package).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageBody>,
    /// The patch, for the `patch…` kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchRequest>,
}

/// Where an operation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OperationState {
    /// Still running.
    Running,
    /// Finished successfully.
    Done,
    /// Finished with a failure; `error` says what.
    Failed,
}

/// An operation, as `POST operations` and `GET operations/{key}` report it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationBody {
    /// The idempotency key it was started with.
    pub key: String,
    /// What it does.
    pub kind: OperationKind,
    /// Where it stands.
    pub state: OperationState,
    /// When running: the device's estimate of when to ask again, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<f64>,
    /// When failed: what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn domains_from(body: &[DomainBody]) -> Vec<Domain> {
    body.iter()
        .map(|d| Domain {
            name: d.name.clone(),
            quiesced: d.quiesced,
        })
        .collect()
}

fn domains_to(domains: &[Domain]) -> Vec<DomainBody> {
    domains
        .iter()
        .map(|d| DomainBody {
            name: d.name.clone(),
            quiesced: d.quiesced,
        })
        .collect()
}

impl FactsBody {
    /// What validation needs of it.
    pub fn facts(&self) -> Facts {
        Facts {
            model: self.model.clone(),
            r#virtual: self.r#virtual,
            firmware: self.firmware.clone(),
            free_encrypted: self.free_space.encrypted,
            free_temporary: self.free_space.temporary,
            free_board: self.free_space.board,
            patches: self.patches.iter().map(Patch::from).collect(),
        }
    }

    /// All of it.
    pub fn inventory(&self) -> Inventory {
        Inventory {
            facts: self.facts(),
            features: self.features.clone(),
            domains: DomainStatus {
                domains: domains_from(&self.domains),
                unsaved_changes: self.unsaved_changes,
            },
        }
    }
}

impl From<&Inventory> for FactsBody {
    fn from(inventory: &Inventory) -> Self {
        let facts = &inventory.facts;
        Self {
            model: facts.model.clone(),
            r#virtual: facts.r#virtual,
            firmware: facts.firmware.clone(),
            free_space: FreeSpaceBody {
                encrypted: facts.free_encrypted,
                temporary: facts.free_temporary,
                board: facts.free_board,
            },
            features: inventory.features.clone(),
            unsaved_changes: inventory.domains.unsaved_changes,
            domains: domains_to(&inventory.domains.domains),
            patches: facts.patches.iter().map(PatchBody::from).collect(),
        }
    }
}

impl From<&PatchBody> for Patch {
    /// A lenient read: an unknown state is kept as it is (and counts as not running); a
    /// negative or unusable delay is no delay.
    fn from(body: &PatchBody) -> Self {
        Self {
            id: body.id.clone(),
            state: PatchLifecycle::parse(&body.state),
            activates_in: body
                .activates_in_seconds
                .and_then(|s| SignedDuration::try_from_secs_f64(s).ok())
                .filter(|d| d.is_positive()),
        }
    }
}

impl From<&Patch> for PatchBody {
    fn from(patch: &Patch) -> Self {
        Self {
            id: patch.id.clone(),
            state: patch.state.to_string(),
            activates_in_seconds: patch.activates_in.map(seconds),
        }
    }
}

/// A duration as the API's seconds, rounded up to whole milliseconds: a caller that waits this
/// long finds the change made.
pub fn seconds(d: SignedDuration) -> f64 {
    (d.as_secs_f64().max(0.0) * 1000.0).ceil() / 1000.0
}

impl From<&DomainStatusBody> for DomainStatus {
    fn from(body: &DomainStatusBody) -> Self {
        Self {
            domains: domains_from(&body.domains),
            unsaved_changes: body.unsaved_changes,
        }
    }
}

impl From<&DomainStatus> for DomainStatusBody {
    fn from(status: &DomainStatus) -> Self {
        Self {
            domains: domains_to(&status.domains),
            unsaved_changes: status.unsaved_changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_use_the_documented_names() {
        let request = OperationRequest {
            kind: OperationKind::SecondQuiesce,
            key: "default/fw/uid/second-quiesce".into(),
            image: None,
            patch: None,
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            serde_json::json!({"kind": "secondQuiesce", "key": "default/fw/uid/second-quiesce"})
        );
        let op: OperationBody = serde_json::from_value(serde_json::json!({
            "key": "k", "kind": "upgrade", "state": "running", "retryAfterSeconds": 2.5,
            "vendorField": 1
        }))
        .unwrap();
        assert_eq!(op.retry_after_seconds, Some(2.5));
        assert_eq!(op.state, OperationState::Running);
        let facts: FactsBody = serde_json::from_value(serde_json::json!({
            "model": "IDG", "virtual": true, "firmware": "7.5.1.7",
            "freeSpace": {"encrypted": 1024}
        }))
        .unwrap();
        assert_eq!(facts.facts().free_encrypted, Some(1024));
        assert_eq!(facts.facts().free_temporary, None);
        assert!(facts.domains.is_empty() && !facts.unsaved_changes);
    }

    #[test]
    fn kinds_map_both_ways() {
        for kind in OperationKind::ALL {
            assert_eq!(OperationKind::from(kind.op()), kind);
        }
        let names: Vec<serde_json::Value> = PatchOp::ALL
            .iter()
            .map(|op| serde_json::to_value(OperationKind::from(*op)).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "patchLoad",
                "patchSetDelay",
                "patchActivate",
                "patchConfirm"
            ]
        );
    }

    #[test]
    fn patches_read_leniently() {
        let body: PatchesBody = serde_json::from_value(serde_json::json!({
            "patches": [
                {"id": "SPH106", "state": "Activating", "activatesInSeconds": 86400},
                {"id": "SPH107", "state": "deactivated", "activatesInSeconds": -3},
            ]
        }))
        .unwrap();
        let patches: Vec<Patch> = body.patches.iter().map(Patch::from).collect();
        assert_eq!(patches[0].state, PatchLifecycle::Activating);
        assert_eq!(
            patches[0].activates_in,
            Some(SignedDuration::from_hours(24))
        );
        assert_eq!(patches[1].state.as_str(), "deactivated");
        assert_eq!(patches[1].activates_in, None);
        let back = PatchBody::from(&patches[0]);
        assert_eq!(back.state, "activating");
        assert_eq!(back.activates_in_seconds, Some(86400.0));
    }
}
