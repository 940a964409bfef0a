//! Building the driver for a Device: the protocol its spec names, with its address, credentials
//! and TLS settings ([`DriverConfig`]). The one place that knows every driver.

use std::time::Duration;

use super::upkeep::UpkeepDriver;
use super::{ConnectError, DeviceDriver, DriverConfig};
use crate::api::device::DriverKind;

/// The default bound on one call to a device.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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
