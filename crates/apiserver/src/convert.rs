//! Conversion between a view's form of an object and its store's (see `resources`): core `v1`
//! Events are `events.k8s.io/v1` Events with some fields renamed, as kube-apiserver's
//! conversion functions map them (`regarding` ↔ `involvedObject`, `note` ↔ `message`,
//! `reportingController` ↔ `reportingComponent`, the `deprecated*` fields ↔ `source`,
//! `firstTimestamp`, `lastTimestamp`, `count`).
//!
//! Invariant: both directions only rename top-level fields and set `apiVersion`, so each is
//! idempotent and accepts an object in either form: converting an object already in the target
//! form changes nothing but `apiVersion`.

use serde_json::Value;

/// How a resource's objects convert to and from its store's form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conversion {
    /// The resource is its own store: only `apiVersion` may change (between served versions).
    None,
    /// Core `v1` Events over the `events.k8s.io/v1` store.
    CoreEvent,
}

/// Field names of `events.k8s.io/v1` Events and their core `v1` names.
const CORE_EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

impl Conversion {
    /// Whether objects change shape (not only `apiVersion`) between the forms.
    pub fn is_some(self) -> bool {
        self != Self::None
    }

    /// Rewrites a stored object into the view's form with `api_version`.
    pub fn to_view(self, object: &mut Value, api_version: &str) {
        self.rename(object, false);
        set_api_version(object, api_version);
    }

    /// Rewrites an object of the view into the store's form with `api_version`.
    pub fn to_storage(self, object: &mut Value, api_version: &str) {
        self.rename(object, true);
        set_api_version(object, api_version);
    }

    fn rename(self, object: &mut Value, into_storage: bool) {
        let renames = match self {
            Self::None => return,
            Self::CoreEvent => CORE_EVENT_RENAMES,
        };
        let Some(map) = object.as_object_mut() else {
            return;
        };
        for (stored, viewed) in renames {
            let (from, to) = if into_storage {
                (viewed, stored)
            } else {
                (stored, viewed)
            };
            if let Some(value) = map.remove(*from) {
                map.insert((*to).to_string(), value);
            }
        }
    }
}

fn set_api_version(object: &mut Value, api_version: &str) {
    if let Some(map) = object.as_object_mut()
        && map.get("apiVersion").and_then(Value::as_str) != Some(api_version)
    {
        map.insert("apiVersion".into(), api_version.into());
    }
}
