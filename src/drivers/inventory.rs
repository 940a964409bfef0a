//! Everything a device reports about itself in one reading: what a Device's `status.facts` shows
//! (the engine's [`Facts`], with its patches and free space, plus licensed features, domains and
//! unsaved changes).

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::api::device::{DeviceFacts, DomainState, FreeSpace, PatchState};
use crate::engine::firmware::observe::{DomainStatus, Facts};
use crate::engine::size::format_bytes;

/// What a device reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Model, firmware, free space and patches: what validation needs.
    pub facts: Facts,
    /// Licensed features, e.g. `DCO-Oracle`.
    pub features: Vec<String>,
    /// Domains with their quiesce state, and whether there are unsaved changes.
    pub domains: DomainStatus,
}

impl Inventory {
    /// The Device status shape: free space as quantities such as `2Gi`.
    pub fn to_device_facts(&self) -> DeviceFacts {
        let quantity = |bytes: Option<u64>| bytes.map(|b| Quantity(format_bytes(b)));
        let free_space = FreeSpace {
            encrypted: quantity(self.facts.free_encrypted),
            temporary: quantity(self.facts.free_temporary),
            board: quantity(self.facts.free_board),
        };
        let has_space = free_space.encrypted.is_some()
            || free_space.temporary.is_some()
            || free_space.board.is_some();
        DeviceFacts {
            model: Some(self.facts.model.clone()),
            r#virtual: Some(self.facts.r#virtual),
            firmware: Some(self.facts.firmware.clone()),
            features: self.features.clone(),
            free_space: has_space.then_some(free_space),
            unsaved_changes: Some(self.domains.unsaved_changes),
            domains: self
                .domains
                .domains
                .iter()
                .map(|d| DomainState {
                    name: d.name.clone(),
                    quiesced: d.quiesced,
                })
                .collect(),
            patches: self
                .facts
                .patches
                .iter()
                .map(|p| PatchState {
                    id: p.id.clone(),
                    state: p.state.to_string(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::firmware::observe::{Domain, Patch, PatchLifecycle};

    #[test]
    fn the_status_shape_writes_sizes_as_quantities() {
        let inventory = Inventory {
            facts: Facts {
                model: "IDG".into(),
                r#virtual: true,
                firmware: "7.5.1.7".into(),
                free_encrypted: Some(2 << 30),
                free_temporary: Some(600 << 20),
                free_board: None,
                patches: vec![Patch::new("IT12345", PatchLifecycle::Activated)],
            },
            features: vec!["DCO-Oracle".into()],
            domains: DomainStatus {
                domains: vec![Domain {
                    name: "default".into(),
                    quiesced: false,
                }],
                unsaved_changes: true,
            },
        };
        let json = serde_json::to_value(inventory.to_device_facts()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "model": "IDG", "virtual": true, "firmware": "7.5.1.7",
                "features": ["DCO-Oracle"],
                "freeSpace": {"encrypted": "2Gi", "temporary": "600Mi"},
                "unsavedChanges": true,
                "domains": [{"name": "default", "quiesced": false}],
                "patches": [{"id": "IT12345", "state": "activated"}],
            })
        );
    }
}
