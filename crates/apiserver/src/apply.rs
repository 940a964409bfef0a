//! Server-side apply: merge a manager's applied configuration into the live object, with field
//! ownership (see [`super::fields`] for the granularity).
//!
//! For the manager `M` applying configuration `C` to the live object `L`:
//! 1. The fields of `C` (its leaves inside the write's domain) become `M`'s applied set.
//! 2. Conflict: a field of `C` whose value differs from `L` and that another manager (any other
//!    entry: another name, or the same name with operation `Update`, as on the real server)
//!    owns, as the same field, an ancestor or a descendant. Without `force` the apply fails with
//!    409 and every conflict; with `force` the other managers lose those fields. A field set to
//!    the value it already has is shared, not a conflict.
//! 3. Fields `M` applied before but not now are removed from the object unless another manager
//!    also owns them.
//! 4. `C` is merged into the object: objects merge key by key, scalars and lists replace, a
//!    `null` removes the field.

use serde_json::Value;

use super::fields::{self, Domain, Entry, FieldSet, Path};

/// A field another manager owns: (manager, field as `.spec.image`).
pub(crate) type Conflict = (String, String);

/// Who applies, and how.
pub(crate) struct Applier<'a> {
    pub manager: &'a str,
    pub subresource: Option<&'a str>,
    pub api_version: &'a str,
    pub force: bool,
    pub domain: Domain,
    /// The time stamped on the manager's entry when its fields change.
    pub now: &'a str,
}

/// Applies `config` to `live`, updating `entries`; the merged object, or the conflicts.
pub(crate) fn apply(
    live: &Value,
    config: &Value,
    entries: &mut Vec<Entry>,
    who: &Applier<'_>,
) -> Result<Value, Vec<Conflict>> {
    let applied = fields::leaves(config, who.domain);
    let mine = entries
        .iter()
        .position(|e| e.is(who.manager, "Apply", who.subresource));

    let mut conflicts = Vec::new();
    let mut taken: Vec<Path> = Vec::new();
    for path in applied.iter() {
        if fields::get(live, path) == fields::get(config, path) {
            continue;
        }
        for (i, entry) in entries.iter().enumerate() {
            if Some(i) != mine && entry.fields.overlaps(path) {
                conflicts.push((entry.manager.clone(), FieldSet::display(path)));
                taken.push(path.clone());
            }
        }
    }
    if !conflicts.is_empty() && !who.force {
        return Err(conflicts);
    }

    let previous = mine.map(|i| entries[i].fields.clone()).unwrap_or_default();
    let mut result = live.clone();
    for path in previous.iter() {
        if applied.contains(path) {
            continue;
        }
        let shared = entries
            .iter()
            .enumerate()
            .any(|(i, e)| Some(i) != mine && e.fields.overlaps(path));
        if !shared {
            fields::remove(&mut result, path);
        }
    }
    merge_into(&mut result, config);

    for path in &taken {
        for (i, entry) in entries.iter_mut().enumerate() {
            if Some(i) != mine && entry.fields.remove_overlapping(path) {
                entry.touch();
            }
        }
    }
    match mine {
        Some(i) => {
            let entry = &mut entries[i];
            if entry.fields != applied || entry.api_version != who.api_version {
                entry.time = Some(who.now.to_string());
                entry.fields = applied;
                entry.api_version = who.api_version.to_string();
                entry.touch();
            }
        }
        None => entries.push(Entry {
            manager: who.manager.to_string(),
            operation: "Apply".into(),
            api_version: who.api_version.to_string(),
            time: Some(who.now.to_string()),
            subresource: who.subresource.map(str::to_string),
            fields: applied,
            raw: None,
        }),
    }
    entries.retain(|e| !e.fields.is_empty());
    Ok(result)
}

/// Merges an applied configuration: objects key by key, anything else replaces, null removes.
fn merge_into(target: &mut Value, config: &Value) {
    match (target, config) {
        (Value::Object(t), Value::Object(c)) => {
            for (key, value) in c {
                match value {
                    Value::Null => {
                        t.remove(key);
                    }
                    Value::Object(_) => match t.get_mut(key) {
                        Some(existing @ Value::Object(_)) => merge_into(existing, value),
                        _ => {
                            let mut fresh = Value::Object(Default::default());
                            merge_into(&mut fresh, value);
                            t.insert(key.clone(), fresh);
                        }
                    },
                    other => {
                        t.insert(key.clone(), other.clone());
                    }
                }
            }
        }
        (t, c) => *t = c.clone(),
    }
}
