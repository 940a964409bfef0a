//! The fleet file: the input of `upkeep simulate` and `upkeep devicesim`, an image repository
//! and the devices (and their facts, timings and faults) a simulation plays, and the hosts with
//! their maintenance-package repository ([`hosts`]). These are the
//! types `upkeep check` validates a fleet file against (its schema comes from them); the model
//! that plays the devices is `sim::fleet`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::GoDuration;
use crate::drivers::ImageRef;
use crate::engine::devicepatch::observe::PatchOp;
use crate::engine::firmware::observe::{DeviceFamily, ImageEntry, OpKind, PatchLifecycle};
use crate::engine::size::parse_bytes;
use crate::images::repository::StaticRepository;

pub mod hosts;

pub use hosts::{FleetHost, FleetPackage};

/// The namespace of devices and manifests that name none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A fleet file: the image repository and the devices of a simulation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fleet {
    /// `upkeep.dev/v1alpha1`.
    pub api_version: String,
    /// `Fleet`.
    pub kind: String,
    /// The image repository.
    #[serde(default)]
    pub images: Vec<FleetImage>,
    /// The devices.
    #[serde(default)]
    pub devices: Vec<FleetDevice>,
    /// The hosts, each with a simulated agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<FleetHost>,
    /// The maintenance packages the hosts' agents can fetch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repository: Vec<FleetPackage>,
}

/// An image in the simulated repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetImage {
    /// The file name, e.g. `idg7519.oradco.scrypt4`.
    pub name: String,
    /// Its size, e.g. `600Mi`.
    #[serde(default = "default_image_size")]
    pub size: String,
    /// The version it installs, for names that carry none (Redfish images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

fn default_image_size() -> String {
    "600Mi".into()
}

/// Free space per file system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetFreeSpace {
    /// Free space in the encrypted file system. Default `2Gi`.
    #[serde(default = "two_gi")]
    pub encrypted: String,
    /// Free space in the temporary file system. Default `2Gi`.
    #[serde(default = "two_gi")]
    pub temporary: String,
    /// Free space on the board a network element keeps its patches on (reported by devices of
    /// `family: NetworkElement`). Default `2Gi`.
    #[serde(default = "two_gi")]
    pub board: String,
}

fn two_gi() -> String {
    "2Gi".into()
}

impl Default for FleetFreeSpace {
    fn default() -> Self {
        Self {
            encrypted: two_gi(),
            temporary: two_gi(),
            board: two_gi(),
        }
    }
}

/// A domain on a simulated device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetDomain {
    /// Its name.
    pub name: String,
    /// Whether it starts quiesced.
    #[serde(default)]
    pub quiesced: bool,
}

/// How long the device's operations take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timings {
    /// A quiesce. Default `30s`.
    #[serde(default = "thirty_seconds")]
    pub quiesce: GoDuration,
    /// An unquiesce. Default `30s`.
    #[serde(default = "thirty_seconds")]
    pub unquiesce: GoDuration,
    /// A restart. Default `5m`.
    #[serde(default = "five_minutes")]
    pub restart: GoDuration,
    /// Installing an image, restart included. Default `15m`.
    #[serde(default = "fifteen_minutes")]
    pub upgrade: GoDuration,
    /// Upload speed per second, e.g. `50Mi`. Default `50Mi`.
    #[serde(default = "fifty_mi")]
    pub upload_rate: String,
    /// Loading a patch package once it is on the element. Default `1m`.
    #[serde(default = "one_minute")]
    pub patch_load: GoDuration,
    /// Activating a patch once its activation delay ended. Default `2m`.
    #[serde(default = "two_minutes")]
    pub patch_activate: GoDuration,
    /// Confirming an activated patch. Default `30s`.
    #[serde(default = "thirty_seconds")]
    pub patch_confirm: GoDuration,
}

fn one_minute() -> GoDuration {
    GoDuration::from_mins(1)
}

fn two_minutes() -> GoDuration {
    GoDuration::from_mins(2)
}

fn thirty_seconds() -> GoDuration {
    GoDuration::from_secs(30)
}

fn five_minutes() -> GoDuration {
    GoDuration::from_mins(5)
}

fn fifteen_minutes() -> GoDuration {
    GoDuration::from_mins(15)
}

fn fifty_mi() -> String {
    "50Mi".into()
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            quiesce: thirty_seconds(),
            unquiesce: thirty_seconds(),
            restart: five_minutes(),
            upgrade: fifteen_minutes(),
            upload_rate: fifty_mi(),
            patch_load: one_minute(),
            patch_activate: two_minutes(),
            patch_confirm: thirty_seconds(),
        }
    }
}

/// Where a fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FaultStep {
    /// Reading the facts.
    Facts,
    /// Reading the licenses.
    Licenses,
    /// Reading the domain status.
    DomainStatus,
    /// Uploading the image.
    Upload,
    /// The optional first quiesce.
    FirstQuiesce,
    /// The quiesce before the upgrade.
    SecondQuiesce,
    /// The optional restart.
    Restart,
    /// The upgrade.
    Upgrade,
    /// The unquiesce after a failure.
    Unquiesce,
    /// Loading a patch package (its transfer included).
    PatchLoad,
    /// Setting a patch's activation delay, and activating it.
    PatchActivate,
    /// Confirming a patch.
    PatchConfirm,
}

impl FaultStep {
    /// The step of an operation.
    pub fn of(op: OpKind) -> Self {
        match op {
            OpKind::FirstQuiesce => Self::FirstQuiesce,
            OpKind::Restart => Self::Restart,
            OpKind::Upload => Self::Upload,
            OpKind::SecondQuiesce => Self::SecondQuiesce,
            OpKind::Upgrade => Self::Upgrade,
            OpKind::Unquiesce => Self::Unquiesce,
        }
    }

    /// The step of a patch operation.
    pub fn of_patch(op: PatchOp) -> Self {
        match op {
            PatchOp::Load => Self::PatchLoad,
            PatchOp::SetDelay | PatchOp::Activate => Self::PatchActivate,
            PatchOp::Confirm => Self::PatchConfirm,
        }
    }
}

/// What kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FaultMode {
    /// The device answers with an error.
    Error,
    /// The call breaks: a reset connection or a malformed answer.
    Exception,
    /// The step never completes (a reading never answers).
    Hang,
}

/// A fault: where it strikes and what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// The step.
    pub step: FaultStep,
    /// The kind.
    pub kind: FaultMode,
}

/// From when a device stops answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UnavailableFrom {
    /// From the first validation call on.
    Validation,
    /// From the first execution call on.
    Execution,
}

/// How a hook Job of the simulation ends for this device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookOutcome {
    /// The exit code; non-zero fails the hook. Default 0.
    #[serde(default)]
    pub exit_code: i32,
    /// How long the Job runs. Default `10s`.
    #[serde(default = "ten_seconds")]
    pub duration: GoDuration,
}

fn ten_seconds() -> GoDuration {
    GoDuration::from_secs(10)
}

impl Default for HookOutcome {
    fn default() -> Self {
        Self {
            exit_code: 0,
            duration: ten_seconds(),
        }
    }
}

/// The outcome of each hook in a simulation (a real cluster runs the Jobs instead).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookOutcomes {
    /// The prePlan hook.
    #[serde(default)]
    pub pre_plan: HookOutcome,
    /// The pre hook.
    #[serde(default)]
    pub pre: HookOutcome,
    /// The post hook.
    #[serde(default)]
    pub post: HookOutcome,
}

/// Where a patch of a simulated network element stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FleetPatchState {
    /// Loaded, not activated.
    Loaded,
    /// Being activated.
    Activating,
    /// Activated, not confirmed.
    Activated,
    /// Confirmed and in effect.
    Running,
}

impl From<FleetPatchState> for PatchLifecycle {
    fn from(state: FleetPatchState) -> Self {
        match state {
            FleetPatchState::Loaded => Self::Loaded,
            FleetPatchState::Activating => Self::Activating,
            FleetPatchState::Activated => Self::Activated,
            FleetPatchState::Running => Self::Running,
        }
    }
}

/// A patch a simulated network element holds from the start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetPatch {
    /// The patch id, e.g. `V100R004C01SPH106`.
    pub id: String,
    /// Its state.
    pub state: FleetPatchState,
}

/// How a simulated network element treats patches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchBehaviour {
    /// The element's own delay between loading a patch and activating it, unless it is told
    /// another (`activation.delay` of a DevicePatch). Default `0s`.
    #[serde(default)]
    pub activation_delay: GoDuration,
}

/// A simulated device. Every field but `name` has a default: a healthy virtual IDG at 7.5.1.7
/// with DCO-Oracle and 2Gi free in both file systems.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetDevice {
    /// The Device's name.
    pub name: String,
    /// Its namespace. Default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels of the Device object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The device type. Default `IDG`.
    #[serde(default = "default_model")]
    pub model: String,
    /// Whether it is a virtual appliance. Default true.
    #[serde(default = "default_true", rename = "virtual")]
    pub r#virtual: bool,
    /// Its firmware. Default `7.5.1.7`.
    #[serde(default = "default_firmware")]
    pub firmware: String,
    /// Its licensed features. Default `[DCO-Oracle]`.
    #[serde(default = "default_features")]
    pub features: Vec<String>,
    /// Free space.
    #[serde(default)]
    pub free_space: FleetFreeSpace,
    /// Whether the running configuration has unsaved changes. Default false.
    #[serde(default)]
    pub unsaved_changes: bool,
    /// Its domains. Default one unquiesced `default` domain.
    #[serde(default = "default_domains")]
    pub domains: Vec<FleetDomain>,
    /// Whether it answers at all. Default true.
    #[serde(default = "default_true")]
    pub available: bool,
    /// How long its operations take.
    #[serde(default)]
    pub timings: Timings,
    /// Its faults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// An external party changes the firmware to this version once execution starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_changes_to: Option<String>,
    /// The device stops answering from this phase on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_from: Option<UnavailableFrom>,
    /// How the hook Jobs end for this device (simulation only).
    #[serde(default)]
    pub hooks: HookOutcomes,
    /// `Appliance`, `Server` or `NetworkElement`: the Device's `spec.family`. Default: the
    /// driver's (`Appliance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<DeviceFamily>,
    /// The patches it holds from the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<FleetPatch>,
    /// How it treats patches.
    #[serde(default)]
    pub patch_behaviour: PatchBehaviour,
}

fn default_model() -> String {
    "IDG".into()
}

fn default_true() -> bool {
    true
}

fn default_firmware() -> String {
    "7.5.1.7".into()
}

fn default_features() -> Vec<String> {
    vec!["DCO-Oracle".into()]
}

fn default_domains() -> Vec<FleetDomain> {
    vec![FleetDomain {
        name: "default".into(),
        quiesced: false,
    }]
}

impl FleetDevice {
    /// The namespace the device lives in.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    /// Whether the device is a network element (it reports its board's free space).
    pub fn is_network_element(&self) -> bool {
        self.family == Some(DeviceFamily::NetworkElement)
    }
}

/// A fleet file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FleetError {
    /// The field, e.g. `devices[2].timings.uploadRate`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Fleet {
    /// Parses a fleet file and checks what its schema cannot: sizes, versions and unique names.
    pub fn from_yaml(text: &str) -> Result<Self, FleetError> {
        let fleet: Fleet = serde_saphyr::from_str(text).map_err(|e| FleetError {
            field: "(file)".into(),
            message: e.to_string(),
        })?;
        fleet.validate()?;
        Ok(fleet)
    }

    /// Checks the fields serde cannot.
    pub fn validate(&self) -> Result<(), FleetError> {
        self.validate_devices()?;
        hosts::validate_hosts(&self.hosts, &self.repository)
    }

    fn validate_devices(&self) -> Result<(), FleetError> {
        let err = |field: String, message: String| Err(FleetError { field, message });
        if self.api_version != crate::api::API_VERSION || self.kind != "Fleet" {
            return err(
                "apiVersion/kind".into(),
                format!(
                    "a fleet file is apiVersion {} kind Fleet",
                    crate::api::API_VERSION
                ),
            );
        }
        let mut images = std::collections::BTreeSet::new();
        for (i, image) in self.images.iter().enumerate() {
            if let Err(e) = parse_bytes(&image.size) {
                return err(format!("images[{i}].size"), e.to_string());
            }
            if !images.insert(image.name.as_str()) {
                return err(
                    format!("images[{i}].name"),
                    format!("{:?} is listed twice", image.name),
                );
            }
        }
        let mut devices = std::collections::BTreeSet::new();
        for (i, device) in self.devices.iter().enumerate() {
            for (field, size) in [
                ("freeSpace.encrypted", &device.free_space.encrypted),
                ("freeSpace.temporary", &device.free_space.temporary),
                ("freeSpace.board", &device.free_space.board),
                ("timings.uploadRate", &device.timings.upload_rate),
            ] {
                match parse_bytes(size) {
                    Ok(0) if field == "timings.uploadRate" => {
                        return err(
                            format!("devices[{i}].{field}"),
                            "the upload rate must be above zero".into(),
                        );
                    }
                    Ok(_) => {}
                    Err(e) => return err(format!("devices[{i}].{field}"), e.to_string()),
                }
            }
            let mut patches = std::collections::BTreeSet::new();
            for (j, patch) in device.patches.iter().enumerate() {
                if !patches.insert(patch.id.as_str()) {
                    return err(
                        format!("devices[{i}].patches[{j}].id"),
                        format!("{:?} is listed twice", patch.id),
                    );
                }
            }
            if !devices.insert((device.namespace(), device.name.as_str())) {
                return err(
                    format!("devices[{i}].name"),
                    format!("{}/{} is listed twice", device.namespace(), device.name),
                );
            }
        }
        Ok(())
    }

    /// The image repository the fleet describes.
    pub fn repository(&self) -> StaticRepository {
        StaticRepository::new(self.images.iter().map(|image| ImageRef {
            entry: ImageEntry {
                name: image.name.clone(),
                size: parse_bytes(&image.size).unwrap_or(0),
                catalog_version: image.version.clone(),
            },
            sha256: None,
            path: None,
        }))
    }
}
