//! Firmware upgrades of appliances: image names, versions, validation and execution.

pub mod image;
pub mod machine;
pub mod observe;
pub mod plan;
pub mod state;
pub mod validation;
pub mod version;

use jiff::Timestamp;

use super::targets::{Resolution, ResolveError};
use crate::api::codes::FirmwareCode;

/// A code for a FirmwareUpgrade as a whole, when its targets cannot become tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceOutcome {
    /// `SKIPPED_NO_DEVICES_MATCHING_PATTERN` or `SKIPPED_INTERNAL_EXCEPTION`.
    pub code: FirmwareCode,
    /// What happened, with the incident id when there is one.
    pub message: String,
    /// The incident id of an internal failure.
    pub incident_id: Option<String>,
}

/// The whole-resource outcome of resolving a FirmwareUpgrade's targets: `None` when tasks are to
/// be created. `resource` identifies the FirmwareUpgrade for incident ids.
pub fn resource_outcome(
    resolution: &Result<Resolution, ResolveError>,
    resource: &str,
    now: Timestamp,
) -> Option<ResourceOutcome> {
    match resolution {
        Ok(Resolution::Targets(_)) => None,
        Ok(Resolution::NoneMatching) => Some(ResourceOutcome {
            code: FirmwareCode::SkippedNoDevicesMatchingPattern,
            message: "no Device in the namespace matches the names, pattern and selector".into(),
            incident_id: None,
        }),
        Err(error) => {
            let code = FirmwareCode::SkippedInternalException;
            let incident = state::TaskState::incident(code, resource, now);
            let id = incident.clone().unwrap_or_default();
            Some(ResourceOutcome {
                code,
                message: format!("the targets could not be resolved: {error} (incident {id})"),
                incident_id: incident,
            })
        }
    }
}
