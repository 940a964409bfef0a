//! Patches on network elements (DevicePatch): validation, then load → activation delay →
//! activate → confirm, until the element itself reports the patch `running`; and the one rule of
//! what a patch that does not take effect is (a firmware upgrade refuses such a device at its
//! validation step 13; `upkeep device facts` warns of it).
//!
//! Pure like the rest of the engine: the controller feeds device answers in
//! ([`observe::PatchObservation`]) and performs what the step asks ([`observe::PatchAction`]).

pub mod machine;
pub mod observe;
pub mod plan;
pub mod state;
pub mod validation;

use jiff::Timestamp;

use super::firmware::observe::Patch;
use super::targets::{self, Resolution, ResolveError};
use crate::api::codes::DevicePatchCode;

/// The patches of a device that do not take effect: each is in a state other than `running`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotInEffect<'a> {
    /// The patches, in the order the device lists them; never empty.
    pub patches: Vec<&'a Patch>,
}

impl NotInEffect<'_> {
    /// What is wrong and what to do, naming every patch and its state.
    pub fn message(&self) -> String {
        let named: Vec<String> = self
            .patches
            .iter()
            .map(|p| format!("{} is {}", p.id, p.state))
            .collect();
        format!(
            "patch {}, not running: it does not take effect; confirm it until the device reports it running (a DevicePatch with confirm: true) or remove it, then try again",
            named.join(", patch ")
        )
    }
}

/// The patches of a device that do not take effect, if any: every patch whose state is not
/// `running` (loaded, activating, activated, or a state upkeep does not know).
pub fn not_in_effect(patches: &[Patch]) -> Option<NotInEffect<'_>> {
    let patches: Vec<&Patch> = patches.iter().filter(|p| !p.state.is_running()).collect();
    (!patches.is_empty()).then_some(NotInEffect { patches })
}

/// A code for a DevicePatch as a whole, when its targets cannot become tasks.
pub type ResourceOutcome = targets::ResourceOutcome<DevicePatchCode>;

/// The whole-resource outcome of resolving a DevicePatch's targets: `None` when tasks are to be
/// created. `resource` identifies the DevicePatch for incident ids.
pub fn resource_outcome(
    resolution: &Result<Resolution, ResolveError>,
    resource: &str,
    now: Timestamp,
) -> Option<ResourceOutcome> {
    targets::resource_outcome(
        resolution,
        resource,
        now,
        DevicePatchCode::SkippedNoDevicesMatchingPattern,
        (
            DevicePatchCode::SkippedInternalException,
            DevicePatchCode::SkippedInternalException.name(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::firmware::observe::PatchLifecycle;

    #[test]
    fn only_running_patches_take_effect() {
        let patches = [
            Patch::new("SPH105", PatchLifecycle::Running),
            Patch::new("SPH106", PatchLifecycle::Activating),
            Patch::new("SPH107", PatchLifecycle::parse("Deactivated")),
        ];
        let found = not_in_effect(&patches).unwrap();
        let ids: Vec<&str> = found.patches.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["SPH106", "SPH107"]);
        let message = found.message();
        assert!(
            message.starts_with(
                "patch SPH106 is activating, patch SPH107 is Deactivated, not running"
            ),
            "{message}"
        );
        assert!(not_in_effect(&patches[..1]).is_none());
        assert!(not_in_effect(&[]).is_none());
    }

    #[test]
    fn states_parse_whatever_their_case() {
        assert_eq!(PatchLifecycle::parse(" Running "), PatchLifecycle::Running);
        assert_eq!(
            PatchLifecycle::parse("ACTIVATED"),
            PatchLifecycle::Activated
        );
        assert_eq!(PatchLifecycle::parse("loaded").as_str(), "loaded");
        assert!(!PatchLifecycle::parse("runnin").is_running());
    }
}
