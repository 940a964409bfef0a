//! `Device`: a managed appliance, server or network element, how to reach it, and the facts
//! read from it.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{LocalObjectRef, SecretKeyRef};

/// The protocol upkeep speaks to the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// The upkeep device API (HTTP + JSON), spoken by the simulator and by vendor adapters.
    #[default]
    Upkeep,
    /// DMTF Redfish UpdateService (servers and their BMCs).
    Redfish,
    /// The DataPower REST management interface.
    Datapower,
}

/// How a device's images are validated and its upgrade driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DeviceFamily {
    /// Appliances of the IDG / XB62 / XI52 / XG45 family: the image name rules, licenses, free
    /// space, domain checks and quiesces.
    Appliance,
    /// Servers (Redfish): the image's version comes from the repository's catalog; the
    /// appliance-only checks do not apply.
    Server,
    /// Network elements: validated like servers, by the catalog's version.
    NetworkElement,
}

impl DriverKind {
    /// The family a device driven by this driver belongs to unless its spec says otherwise.
    pub const fn family(self) -> DeviceFamily {
        match self {
            Self::Upkeep | Self::Datapower => DeviceFamily::Appliance,
            Self::Redfish => DeviceFamily::Server,
        }
    }
}

/// How to verify the device's TLS certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// A Secret key holding the PEM CA bundle that signed the device's certificate. Without it the
    /// operator's trusted roots are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<SecretKeyRef>,
    /// Accept any certificate. Only for lab devices: the connection is then open to
    /// interception. Default false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// What a Redfish service should update.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedfishTarget {
    /// The ComputerSystem: its id (e.g. `1`) or full path (`/redfish/v1/Systems/1`). Default: the
    /// only system the service lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub system: Option<String>,
    /// The firmware component: `BIOS`, `BMC`, or a FirmwareInventory member id. Default `BIOS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub component: Option<String>,
}

/// How to reach and authenticate to a device.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "Device",
    doc = "A managed appliance, server or network element: how to reach it and the facts read from it.",
    namespaced,
    shortname = "dev",
    category = "upkeep",
    status = "DeviceStatus",
    cel,
    printcolumn(name = "Driver", type_ = "string", json_path = ".spec.driver"),
    printcolumn(name = "Model", type_ = "string", json_path = ".status.facts.model"),
    printcolumn(
        name = "Firmware",
        type_ = "string",
        json_path = ".status.facts.firmware"
    ),
    printcolumn(name = "Reachable", type_ = "boolean", json_path = ".status.reachable"),
    printcolumn(
        name = "Last Seen",
        type_ = "date",
        json_path = ".status.lastSeen",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.driver == 'redfish' || !has(self.redfish)")
        .message("the redfish block applies to driver: redfish only: remove it, or set driver: redfish")
        .field_path(".redfish"),
    validation = Rule::new("!has(self.tls) || !has(self.tls.caBundleSecretRef) || !self.tls.insecureSkipVerify")
        .message("set either tls.caBundleSecretRef or tls.insecureSkipVerify, not both")
        .field_path(".tls")
)]
pub struct DeviceSpec {
    /// `upkeep` (the upkeep device API, default), `redfish` or `datapower`.
    #[serde(default)]
    pub driver: DriverKind,
    /// The management endpoint, e.g. `https://10.0.0.5:5554`.
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^https?://[^\s/]+(/\S*)?$")
    )]
    pub address: String,
    /// A Secret in the same namespace with keys `username` and `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectRef>,
    /// TLS verification settings; by default the certificate is verified against the operator's
    /// trusted roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// For `driver: redfish`: which system and component to update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redfish: Option<RedfishTarget>,
    /// `Appliance`, `Server` or `NetworkElement`: how images are validated. Default from the
    /// driver: `redfish` → Server, `upkeep` and `datapower` → Appliance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<DeviceFamily>,
}

impl DeviceSpec {
    /// The device's family: the spec's, else its driver's.
    pub fn family(&self) -> DeviceFamily {
        self.family.unwrap_or(self.driver.family())
    }
}

/// Free space per file system.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FreeSpace {
    /// Free space in the encrypted file system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<Quantity>,
    /// Free space in the temporary file system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary: Option<Quantity>,
    /// Free space on the board where a network element keeps its patches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<Quantity>,
}

/// An application domain on the device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainState {
    /// The domain's name.
    pub name: String,
    /// Whether the domain is quiesced (stopped taking traffic).
    #[serde(default)]
    pub quiesced: bool,
}

/// A software patch on the device and where it stands in its lifecycle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchState {
    /// The patch's identifier.
    pub id: String,
    /// Its state as the device reports it: `loaded`, `activating`, `activated` or `running`.
    /// Only a `running` patch takes effect; a firmware upgrade refuses a device with a patch in
    /// any other state (`ERROR_DEVICE_PATCH_NOT_RUNNING`).
    pub state: String,
}

/// What the driver last read from the device.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceFacts {
    /// The device type, e.g. `IDG`, `XG45`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Whether the device is a virtual appliance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#virtual: Option<bool>,
    /// The firmware version it runs, e.g. `7.5.1.7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// Licensed features, e.g. `DCO-Oracle`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Free space per file system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_space: Option<FreeSpace>,
    /// Whether the running configuration has changes not yet saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsaved_changes: Option<bool>,
    /// Application domains and their quiesce state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<DomainState>,
    /// Software patches and their lifecycle state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<PatchState>,
}

/// One entry of a device's history: a code an upgrade passed, or a change of reachability.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceEvent {
    /// When it happened.
    pub at: Time,
    /// What happened, e.g. a task code or `Unreachable`.
    pub event: String,
    /// Details.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// What the controller knows about the device.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether the device answered the last time it was asked.
    #[serde(default)]
    pub reachable: bool,
    /// The facts last read from the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<DeviceFacts>,
    /// When the device last answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Time>,
    /// Recent events, oldest first; bounded (the oldest entries are dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<DeviceEvent>,
    /// `Ready` and `Reachable`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
