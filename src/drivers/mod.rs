//! Drivers: how upkeep talks to devices. One trait, [`DeviceDriver`], with an implementation per
//! protocol; the engine's actions map onto its calls one to one.

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
pub use perform::{Hooks, perform};

use crate::api::device::RedfishTarget;
use crate::engine::firmware::observe::{CallError, DomainStatus, Facts, OpKind, OpStatus, Start};
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
    /// status in turn (no patches); drivers whose device reports it all at once override this.
    fn inventory<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Inventory, CallError>> {
        async move {
            Ok(Inventory {
                facts: self.facts(caller).await?,
                features: self.licenses(caller).await?,
                domains: self.domain_status(caller).await?,
                patches: Vec::new(),
            })
        }
        .boxed()
    }
}
