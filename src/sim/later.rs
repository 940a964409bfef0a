//! Manifests a simulation applies later than its start: a manifest annotated
//! `simulate.upkeep.dev/apply-after: <duration>` is created when the virtual clock has run that
//! long (e.g. a FirmwareUpgrade an hour after a DevicePatch), as a user would apply it then.
//! The annotation means nothing to the operator; the cluster keeps it like any other.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::api::common::GoDuration;

/// The annotation that defers a manifest.
pub const APPLY_AFTER: &str = "simulate.upkeep.dev/apply-after";

/// A bad `apply-after` annotation.
#[derive(Debug, thiserror::Error)]
#[error(
    "{object}: metadata.annotations.\"{APPLY_AFTER}\" is {value:?}, not a duration; write one such as 90s, 10m or 1h30m"
)]
pub struct BadDelay {
    /// The manifest.
    pub object: String,
    /// The annotation's value.
    pub value: String,
}

/// When, after `start`, `manifest` is to be applied: `None` at the start.
pub fn apply_at(manifest: &Value, start: Timestamp) -> Result<Option<Timestamp>, BadDelay> {
    let Some(value) = manifest
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(APPLY_AFTER))
    else {
        return Ok(None);
    };
    let bad = || BadDelay {
        object: format!(
            "{}/{}",
            manifest.get("kind").and_then(Value::as_str).unwrap_or("?"),
            manifest
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ),
        value: value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string),
    };
    let delay: GoDuration = value.as_str().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let delay = SignedDuration::try_from(delay.get()).map_err(|_| bad())?;
    Ok(Some(start.checked_add(delay).map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_manifest_applies_at_the_start_unless_annotated_with_a_duration() {
        let start = Timestamp::from_second(1_800_000_000).unwrap();
        let plain = json!({ "kind": "DevicePatch", "metadata": { "name": "p" } });
        assert_eq!(apply_at(&plain, start).unwrap(), None);
        let later = json!({ "kind": "FirmwareUpgrade", "metadata": { "name": "fw",
            "annotations": { APPLY_AFTER: "1h30m" } } });
        assert_eq!(
            apply_at(&later, start).unwrap(),
            Some(start + SignedDuration::from_mins(90))
        );
        let bad = json!({ "kind": "FirmwareUpgrade", "metadata": { "name": "fw",
            "annotations": { APPLY_AFTER: "soon" } } });
        let message = apply_at(&bad, start).unwrap_err().to_string();
        assert!(
            message.starts_with("FirmwareUpgrade/fw: metadata.annotations.\"simulate.upkeep.dev/apply-after\" is \"soon\""),
            "{message}"
        );
    }
}
