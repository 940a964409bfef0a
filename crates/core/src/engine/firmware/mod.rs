//! Firmware upgrades of appliances: image names, versions, validation and execution.

pub mod image;
pub mod machine;
pub mod observe;
pub mod plan;
pub mod state;
pub mod validation;
pub mod version;

use jiff::Timestamp;

use super::targets::{self, Resolution, ResolveError};
use crate::api::codes::FirmwareCode;

/// A code for a FirmwareUpgrade as a whole, when its targets cannot become tasks.
pub type ResourceOutcome = targets::ResourceOutcome<FirmwareCode>;

/// The whole-resource outcome of resolving a FirmwareUpgrade's targets: `None` when tasks are to
/// be created. `resource` identifies the FirmwareUpgrade for incident ids.
pub fn resource_outcome(
    resolution: &Result<Resolution, ResolveError>,
    resource: &str,
    now: Timestamp,
) -> Option<ResourceOutcome> {
    targets::resource_outcome(
        resolution,
        resource,
        now,
        FirmwareCode::SkippedNoDevicesMatchingPattern,
        (
            FirmwareCode::SkippedInternalException,
            FirmwareCode::SkippedInternalException.name(),
        ),
    )
}
