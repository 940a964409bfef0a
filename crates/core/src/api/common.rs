//! Types shared by several kinds: durations, target selection, rollout settings and summaries.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The pattern every duration field of the CRDs accepts: a Go/Kubernetes duration string such as
/// `90s`, `10m` or `1h30m` (units `ns`, `us`, `ms`, `s`, `m`, `h`; no sign).
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$";

/// The pattern of a Kubernetes object name (RFC 1123 subdomain).
pub const NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A non-negative Go/Kubernetes duration (`90s`, `10m`, `1h30m`), as `metav1.Duration` writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a duration: write a number and a unit, e.g. 90s, 10m or 1h30m (units ns, us, ms, s, m, h)"
)]
pub struct DurationParseError {
    /// The rejected text.
    pub input: String,
}

impl GoDuration {
    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// A duration of whole minutes.
    pub const fn from_mins(mins: u64) -> Self {
        Self(Duration::from_secs(mins * 60))
    }

    /// A duration of whole hours.
    pub const fn from_hours(hours: u64) -> Self {
        Self(Duration::from_secs(hours * 3600))
    }

    /// The standard-library duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for GoDuration {
    type Err = DurationParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DurationParseError {
            input: s.to_string(),
        };
        let trimmed = s.trim();
        if trimmed.is_empty() || trimmed.starts_with('-') || trimmed.starts_with('+') {
            return Err(err());
        }
        // Every component needs a unit; "0" alone is the one unit-less value Go accepts.
        if trimmed != "0" && !trimmed.ends_with(|c: char| c.is_alphabetic()) {
            return Err(err());
        }
        let parsed: kube::core::Duration = trimmed.parse().map_err(|_| err())?;
        Ok(Self(parsed.into()))
    }
}

impl fmt::Display for GoDuration {
    /// Prints the shortest Go-style form: `1h30m`, `90ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0;
        if total.is_zero() {
            return f.write_str("0s");
        }
        let secs = total.as_secs();
        let nanos = total.subsec_nanos();
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if nanos == 0 {
            if s > 0 {
                write!(f, "{s}s")?;
            }
        } else if secs == 0 {
            if nanos.is_multiple_of(1_000_000) {
                write!(f, "{}ms", nanos / 1_000_000)?;
            } else {
                write!(f, "{nanos}ns")?;
            }
        } else {
            let frac = format!("{nanos:09}");
            write!(f, "{s}.{}s", frac.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for GoDuration {
    fn schema_name() -> Cow<'static, str> {
        "GoDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
        })
    }
}

/// Which objects of the resource's namespace it acts on: the named ones, plus those matching every
/// given filter (`pattern` and `selector`). At least one of the three must be set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("(has(self.names) && size(self.names) > 0) || has(self.pattern) || has(self.selector)")
        .message("name at least one target: set names, pattern or selector")
        .reason(Reason::FieldValueRequired)
)]
pub struct TargetSelector {
    /// Object names in the resource's namespace. A name with no such object still gets a task,
    /// which ends with a "does not exist" code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000), inner(length(min = 1, max = 253), regex(pattern = NAME_PATTERN)))]
    pub names: Vec<String>,
    /// A shell glob over object names in the namespace (`*`, `?`, `[abc]`), e.g. `dp-*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub pattern: Option<String>,
    /// A label selector over objects in the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// What happens to the remaining targets once one fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ErrorPolicy {
    /// Keep going: the other targets are unaffected by a failure.
    #[default]
    Continue,
    /// Stop the rollout at the first failure: targets not yet started are skipped or canceled;
    /// targets already executing run to their end.
    Fail,
}

/// How many targets may execute at once, and what a failure does to the rest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// Targets executing at the same time: an integer of at least 1, or a percentage of all
    /// targets such as `25%` (rounded down, at least 1). Default 1.
    #[serde(default = "default_max_concurrent")]
    #[x_kube(validation = Rule::new("string(self).matches('^([1-9][0-9]*|([1-9][0-9]?|100)%)$')")
        .message("maxConcurrent must be an integer of at least 1 or a percentage from 1% to 100%, e.g. 25%"))]
    pub max_concurrent: IntOrString,
    /// `Continue` (default) or `Fail`: stop the rollout at the first failed target.
    #[serde(default)]
    pub error_policy: ErrorPolicy,
}

fn default_max_concurrent() -> IntOrString {
    IntOrString::Int(1)
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            max_concurrent: default_max_concurrent(),
            error_policy: ErrorPolicy::Continue,
        }
    }
}

/// A reference to an object by name in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectRef {
    /// The object's name.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
}

/// A key of a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// The key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Counts over a parent's tasks, kept small whatever the number of targets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Number of tasks (one per target).
    pub total: u32,
    /// Number of tasks per current code.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_code: BTreeMap<String, u32>,
    /// Tasks that ended successfully.
    pub succeeded: u32,
    /// Tasks that ended in a failure (skipped and canceled tasks are not failures).
    pub failed: u32,
    /// Tasks that left the queue and are executing.
    pub running: u32,
    /// Tasks validating or queued, not yet executing.
    pub waiting: u32,
}

/// One failed target, for a quick look without listing the tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetFailure {
    /// The target's name.
    pub target: String,
    /// The code the task ended with.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go_and_print_compactly() {
        let cases = [
            ("90s", 90, "1m30s"),
            ("10m", 600, "10m"),
            ("1h30m", 5400, "1h30m"),
            ("0", 0, "0s"),
            ("24h", 86400, "24h"),
            ("1.5h", 5400, "1h30m"),
        ];
        for (text, secs, printed) in cases {
            let d: GoDuration = text.parse().unwrap();
            assert_eq!(d.get(), Duration::from_secs(secs), "{text}");
            assert_eq!(d.to_string(), printed, "{text}");
        }
        let ms: GoDuration = "250ms".parse().unwrap();
        assert_eq!(ms.to_string(), "250ms");
        let frac: GoDuration = "1.5s".parse().unwrap();
        assert_eq!(frac.to_string(), "1.5s");
    }

    #[test]
    fn bad_durations_are_rejected_with_a_hint() {
        for bad in ["", "10", "-5m", "5 minutes", "1d", "m", "+3s"] {
            let err = bad.parse::<GoDuration>().unwrap_err();
            assert!(err.to_string().contains("e.g. 90s"), "{bad}: {err}");
        }
    }

    #[test]
    fn duration_pattern_agrees_with_the_parser() {
        let re = regex_lite(DURATION_PATTERN);
        for ok in ["90s", "10m", "1h30m", "0", "1.5h", "250ms"] {
            assert!(re(ok), "{ok}");
            assert!(ok.parse::<GoDuration>().is_ok(), "{ok}");
        }
        for bad in ["10", "-5m", "1d", "5 m"] {
            assert!(!re(bad), "{bad}");
        }
    }

    /// Runs a pattern through the same JSON-schema engine `upkeep check` uses.
    fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool {
        let schema = serde_json::json!({"type": "string", "pattern": pattern});
        let validator = jsonschema::validator_for(&schema).unwrap();
        move |s| validator.is_valid(&serde_json::json!(s))
    }
}
