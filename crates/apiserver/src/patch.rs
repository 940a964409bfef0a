//! The patch formats of `PATCH`: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//! strategic merge patch. Server-side apply is in [`super::apply`].
//!
//! Strategic merge patch is served for built-in kinds only (the real API server answers 415 for
//! custom resources). It is a merge patch that also merges the well-known keyed lists of the
//! built-in types by their merge key (`containers`, `env`, `volumes`, `conditions`,
//! `ownerReferences`, … by name, type or uid), merges `finalizers` as a set, and honours the
//! `$patch: replace|delete`, `$deleteFromPrimitiveList/<field>` and `$retainKeys` directives;
//! `$setElementOrder` is accepted and ignored (list order is kept as stored, new items appended).

use serde_json::{Map, Value};

use super::status::ApiError;

/// The content types of `PATCH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// The kind of a `Content-Type` header value (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }

    /// The media types accepted for a resource.
    pub fn accepted(custom: bool) -> &'static [&'static str] {
        if custom {
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ]
        } else {
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
                "application/apply-patch+yaml",
            ]
        }
    }
}

/// Parses a JSON patch body.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

/// Applies a JSON merge patch.
pub(crate) fn merge(doc: &mut Value, patch: &Value) {
    json_patch::merge(doc, patch);
}

/// Applies a JSON patch (RFC 6902); a failed operation (including `test`) is 422.
pub(crate) fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
    json_patch::patch(doc, &ops).map_err(|e| ApiError {
        code: http::StatusCode::UNPROCESSABLE_ENTITY,
        reason: "Invalid",
        message: format!("the server rejected our request due to an error in our request: {e}"),
        details: None,
    })
}

/// The merge key of a keyed list of the built-in types, by the list's field name.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" | "addresses" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Lists of scalars merged as sets.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch.
pub(crate) fn strategic(doc: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *doc = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = p.clone();
        replacement.remove("$patch");
        *doc = Value::Object(replacement);
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Value::Object(d) = doc else { return };
    let mut retain: Option<Vec<String>> = None;
    for (key, value) in p {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(doomed)) = (d.get_mut(field), value) {
                list.retain(|item| !doomed.contains(item));
            }
            continue;
        }
        if key == "$retainKeys" {
            retain = value.as_array().map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            });
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                d.remove(key);
            }
            Value::Array(items) => {
                let merged = match d.get_mut(key) {
                    Some(Value::Array(existing)) => merge_list(key, existing, items),
                    _ => false,
                };
                if !merged {
                    let items = items.iter().filter(|i| !is_delete_directive(i)).cloned();
                    d.insert(key.clone(), Value::Array(items.collect()));
                }
            }
            Value::Object(inner)
                if inner.get("$patch").and_then(Value::as_str) == Some("delete") =>
            {
                d.remove(key);
            }
            Value::Object(_) => {
                let entry = d.entry(key.clone()).or_insert(Value::Null);
                strategic(entry, value);
            }
            scalar => {
                d.insert(key.clone(), scalar.clone());
            }
        }
    }
    if let Some(keep) = retain {
        d.retain(|k, _| keep.contains(k));
    }
}

fn is_delete_directive(item: &Value) -> bool {
    item.get("$patch").and_then(Value::as_str) == Some("delete")
}

/// Merges `items` into `existing` if `field` is a keyed or set list; false if it is replaced.
fn merge_list(field: &str, existing: &mut Vec<Value>, items: &[Value]) -> bool {
    if is_set_list(field) {
        for item in items {
            if !existing.contains(item) {
                existing.push(item.clone());
            }
        }
        return true;
    }
    let Some(key) = merge_key(field) else {
        return false;
    };
    if !items.iter().all(|i| i.get(key).is_some()) {
        return false;
    }
    for item in items {
        let id = &item[key];
        let position = existing.iter().position(|e| e.get(key) == Some(id));
        match (position, is_delete_directive(item)) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic(&mut existing[i], item),
            (None, false) => existing.push(item.clone()),
        }
    }
    true
}
