//! Building the driver for a Device: the protocol its spec names, its address, credentials and
//! TLS settings.

use std::time::Duration;

use super::DeviceDriver;
use super::credentials::Credentials;
use super::http::{ClientError, TlsSettings};
use super::upkeep::UpkeepDriver;
use crate::api::device::{DriverKind, RedfishTarget};

/// The default bound on one call to a device.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The driver for a device of `kind`.
pub fn connect(
    kind: DriverKind,
    config: DriverConfig,
) -> Result<Box<dyn DeviceDriver>, ConnectError> {
    match kind {
        DriverKind::Upkeep => Ok(Box::new(UpkeepDriver::new(config)?)),
        DriverKind::Redfish => Ok(Box::new(super::redfish::RedfishDriver::new(&config)?)),
        DriverKind::Datapower => Ok(Box::new(super::datapower::DatapowerDriver::new(&config)?)),
    }
}
