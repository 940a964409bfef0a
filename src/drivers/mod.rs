//! Drivers: how upkeep talks to devices. One trait, [`DeviceDriver`], with an implementation per
//! protocol; the engines' actions map onto its calls one to one (`perform` for the firmware
//! engine, `perform_patch` for the DevicePatch engine). Only the upkeep device API carries
//! network-element patch operations; the other drivers answer them "not supported".

pub mod connect;
pub mod credentials;
pub mod datapower;
pub mod http;
pub mod inventory;
pub mod perform;
pub mod redfish;
pub mod upkeep;
pub mod wire;

use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;

pub use crate::engine::firmware::observe::Phase;
pub use crate::images::ImageRef;
pub use connect::{DEFAULT_TIMEOUT, connect};
pub use inventory::Inventory;
pub use perform::{Hooks, perform, perform_patch};

use crate::api::device::RedfishTarget;
use crate::engine::devicepatch::observe::{PatchOp, PatchStart};
use crate::engine::firmware::observe::{
    CallError, DomainStatus, Facts, FaultKind, OpKind, OpStatus, Patch, Start,
};
use credentials::Credentials;
use http::{ClientError, TlsSettings};

/// Everything a driver needs to reach one device.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// The management endpoint, e.g. `https://10.0.0.5:5554`.
    pub address: String,
    /// The credentials, when the device needs them.
    pub credentials: Option<Credentials>,
    /// How to verify the device's certificate.
    pub tls: TlsSettings,
    /// For Redfish: which system and component to update.
    pub redfish: Option<RedfishTarget>,
    /// Where the device can download images that upkeep serves (Redfish `ImageURI`), e.g.
    /// `http://upkeep.upkeep-system.svc:8080/images`.
    pub image_base_url: Option<String>,
    /// The bound on one call.
    pub timeout: Duration,
}

/// A driver cannot be built for the device.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The address is not a usable URL.
    #[error("address {address:?} is not a usable URL: {reason}")]
    Address {
        /// The address.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client cannot be built (CA bundle, TLS).
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// An operation a device runs, of either engine: how devices, their simulators and the device
/// API's `kind` tell operations apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceOp {
    /// A firmware operation (quiesce, restart, upload, upgrade, unquiesce).
    Firmware(OpKind),
    /// A network-element patch operation (load, set the delay, activate, confirm).
    Patch(PatchOp),
}

impl DeviceOp {
    /// The operation's name in keys and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Firmware(op) => op.as_str(),
            Self::Patch(op) => op.as_str(),
        }
    }
}

/// The answer of a driver whose protocol has no patch operations.
fn patches_not_supported(what: &str) -> CallError {
    CallError::new(
        FaultKind::Error,
        format!(
            "{what}: this device's driver has no patch operations; network-element patches need driver: upkeep (the upkeep device API, e.g. a vendor adapter)"
        ),
    )
}

/// Who calls a driver, and why.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    /// The task on whose behalf the call is made (`namespace/name`), if any.
    pub task: Option<&'a str>,
    /// The phase of the work.
    pub phase: Phase,
}

/// A device, as upkeep drives it. Every call is bounded in time by the driver; a device that does
/// not answer in time gives [`crate::engine::firmware::observe::FaultKind::Unreachable`].
///
/// Long operations are started with an idempotency key and then polled: starting again with the
/// same key reports the existing operation instead of starting a second one.
pub trait DeviceDriver: Send + Sync {
    /// Reads the device's facts.
    fn facts<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Facts, CallError>>;
    /// Reads the device's licensed features.
    fn licenses<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Vec<String>, CallError>>;
    /// Reads the device's domains and whether it has unsaved changes.
    fn domain_status<'a>(
        &'a self,
        caller: Caller<'a>,
    ) -> BoxFuture<'a, Result<DomainStatus, CallError>>;
    /// Starts the operation `start` names (or reports the one already started with its key).
    fn start<'a>(
        &'a self,
        caller: Caller<'a>,
        start: &'a Start,
        image: &'a ImageRef,
    ) -> BoxFuture<'a, OpStatus>;
    /// Reports how the operation started with `key` stands.
    fn poll<'a>(&'a self, caller: Caller<'a>, op: OpKind, key: &'a str) -> BoxFuture<'a, OpStatus>;
    /// Reads everything the Device's status shows. By default the facts, licenses and domain
    /// status in turn; drivers whose device reports it all at once override this.
    fn inventory<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Inventory, CallError>> {
        async move {
            Ok(Inventory {
                facts: self.facts(caller).await?,
                features: self.licenses(caller).await?,
                domains: self.domain_status(caller).await?,
            })
        }
        .boxed()
    }
    /// Reads the patches on the device and their states. By default the patches of the facts
    /// (none, for devices without patches).
    fn patches<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Vec<Patch>, CallError>> {
        async move { self.facts(caller).await.map(|facts| facts.patches) }.boxed()
    }
    /// Starts the patch operation `start` names (or reports the one already started with its
    /// key); a load transfers `package` first. By default: not supported.
    fn start_patch<'a>(
        &'a self,
        _caller: Caller<'a>,
        start: &'a PatchStart,
        _package: Option<&'a ImageRef>,
    ) -> BoxFuture<'a, OpStatus> {
        futures::future::ready(OpStatus::Failed(patches_not_supported(start.op.doing()))).boxed()
    }
    /// Reports how the patch operation started with `key` stands. By default: not supported.
    fn poll_patch<'a>(
        &'a self,
        _caller: Caller<'a>,
        op: PatchOp,
        _key: &'a str,
    ) -> BoxFuture<'a, OpStatus> {
        futures::future::ready(OpStatus::Failed(patches_not_supported(op.doing()))).boxed()
    }
}
