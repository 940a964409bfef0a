//! Field ownership (`metadata.managedFields`) as server-side apply tracks it.
//!
//! Granularity: a field is a path of object keys; every leaf is owned separately: a scalar, a
//! list (lists are atomic: a list is one field, whatever its items), or an empty object. So
//! `spec.image` and `spec.rollout.maxConcurrent` are distinct fields, and `status.conditions`
//! is one field. Paths are kept in the `FieldsV1` spelling (`f:spec`, `f:image`); entries read
//! from stored objects may also carry `k:`/`v:`/`i:` list-item keys (written by a real API
//! server), which are kept and compared as opaque path segments below their list.
//!
//! Not tracked, as on the real server: `apiVersion`, `kind` and the system fields of `metadata`
//! (`name`, `namespace`, `uid`, `resourceVersion`, `generation`, `creationTimestamp`,
//! `deletionTimestamp`, `deletionGracePeriodSeconds`, `managedFields`, `selfLink`). For a
//! resource with the status subresource, a write to the main resource tracks everything but
//! `status`, and a write to `/status` tracks `status` only.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A field path in `FieldsV1` spelling, e.g. `["f:spec", "f:image"]`.
pub(crate) type Path = Vec<String>;

/// Which part of an object a write may change and whose fields it tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Domain {
    /// Everything but the system fields.
    Whole,
    /// Everything but the system fields and `status` (main resource with a status subresource).
    NoStatus,
    /// `status` only (the status subresource).
    StatusOnly,
}

const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

impl Domain {
    /// Whether the child `key` of the node at `path` is inside the domain.
    fn keeps(self, path: &[String], key: &str) -> bool {
        match path.len() {
            0 => match key {
                "apiVersion" | "kind" => false,
                "status" => self != Domain::NoStatus,
                _ => self != Domain::StatusOnly,
            },
            1 if path[0] == "f:metadata" => !SYSTEM_META.contains(&key),
            _ => true,
        }
    }
}

/// A set of owned fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldSet(BTreeSet<Path>);

impl FieldSet {
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The paths, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }

    /// Adds a path.
    pub fn insert(&mut self, path: Path) {
        self.0.insert(path);
    }

    /// Whether the set holds exactly `path`.
    pub fn contains(&self, path: &Path) -> bool {
        self.0.contains(path)
    }

    /// Whether the set holds `path`, an ancestor of it, or a descendant of it.
    pub fn overlaps(&self, path: &[String]) -> bool {
        (1..=path.len()).any(|n| self.0.contains(&path[..n]))
            || self.descendants(path).next().is_some()
    }

    fn descendants<'a>(&'a self, path: &'a [String]) -> impl Iterator<Item = &'a Path> + 'a {
        self.0
            .range(path.to_vec()..)
            .skip_while(move |p| p.as_slice() == path)
            .take_while(move |p| p.starts_with(path))
    }

    /// Removes `path`, its ancestors and its descendants; true if anything was removed.
    pub fn remove_overlapping(&mut self, path: &[String]) -> bool {
        let mut removed = false;
        for n in 1..=path.len() {
            removed |= self.0.remove(&path[..n]);
        }
        self.remove_descendants(path) || removed
    }

    /// Removes `path` and its descendants; true if anything was removed.
    pub fn remove_subtree(&mut self, path: &[String]) -> bool {
        let removed = self.0.remove(path);
        self.remove_descendants(path) || removed
    }

    fn remove_descendants(&mut self, path: &[String]) -> bool {
        let doomed: Vec<Path> = self.descendants(path).cloned().collect();
        for p in &doomed {
            self.0.remove(p);
        }
        !doomed.is_empty()
    }

    /// The `FieldsV1` object of this set.
    pub fn to_fields_v1(&self) -> Value {
        fn insert(node: &mut Map<String, Value>, path: &[String]) {
            let Some((first, rest)) = path.split_first() else {
                return;
            };
            let child = node.entry(first.clone()).or_insert_with(|| json!({}));
            if let Value::Object(map) = child {
                insert(map, rest);
            }
        }
        // A path that is also a prefix of another owned path is marked with ".".
        fn mark(node: &mut Map<String, Value>, path: &mut Path, set: &FieldSet) {
            for (key, child) in node.iter_mut() {
                if key == "." {
                    continue;
                }
                path.push(key.clone());
                if let Value::Object(map) = child {
                    if !map.is_empty() && set.contains(path) {
                        map.insert(".".into(), json!({}));
                    }
                    mark(map, path, set);
                }
                path.pop();
            }
        }
        let mut root = Map::new();
        for path in &self.0 {
            insert(&mut root, path);
        }
        mark(&mut root, &mut Vec::new(), self);
        Value::Object(root)
    }

    /// Reads a `FieldsV1` object (lenient: anything that is not an object is ignored).
    pub fn from_fields_v1(value: &Value) -> Self {
        fn walk(node: &Map<String, Value>, path: &mut Path, out: &mut BTreeSet<Path>) {
            for (key, child) in node {
                if key == "." {
                    if !path.is_empty() {
                        out.insert(path.clone());
                    }
                    continue;
                }
                path.push(key.clone());
                match child {
                    Value::Object(map) if !map.is_empty() => walk(map, path, out),
                    _ => {
                        out.insert(path.clone());
                    }
                }
                path.pop();
            }
        }
        let mut out = BTreeSet::new();
        if let Value::Object(map) = value {
            walk(map, &mut Vec::new(), &mut out);
        }
        Self(out)
    }

    /// The field paths as the API server prints them in conflicts: `.spec.image`.
    pub fn display(path: &[String]) -> String {
        let mut s = String::new();
        for segment in path {
            match segment.split_once(':') {
                Some(("f", name)) => {
                    s.push('.');
                    s.push_str(name);
                }
                Some((_, item)) => {
                    s.push('[');
                    s.push_str(item);
                    s.push(']');
                }
                None => {
                    s.push('.');
                    s.push_str(segment);
                }
            }
        }
        s
    }
}

/// The object key of a `f:` path segment.
fn key_of(segment: &str) -> Option<&str> {
    segment.strip_prefix("f:")
}

/// The value at `path` in `object`, if every segment is an `f:` field that exists.
pub(crate) fn get<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = object;
    for segment in path {
        current = current.get(key_of(segment)?)?;
    }
    Some(current)
}

/// Removes the field at `path` from `object`, then every object left empty on the way up
/// (below the top level).
pub(crate) fn remove(object: &mut Value, path: &[String]) {
    fn go(node: &mut Value, path: &[String], depth: usize) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let Some(key) = key_of(first) else { return };
        let Some(map) = node.as_object_mut() else {
            return;
        };
        if rest.is_empty() {
            map.remove(key);
            return;
        }
        if let Some(child) = map.get_mut(key) {
            go(child, rest, depth + 1);
            if depth >= 1 && child.as_object().is_some_and(Map::is_empty) {
                map.remove(key);
            }
        }
    }
    go(object, path, 0);
}

/// Every leaf field of `object` inside `domain` (nulls are not fields).
pub(crate) fn leaves(object: &Value, domain: Domain) -> FieldSet {
    let mut out = BTreeSet::new();
    let mut path = Vec::new();
    if let Value::Object(map) = object {
        for (key, child) in map {
            if domain.keeps(&path, key) {
                path.push(format!("f:{key}"));
                collect(child, &mut path, domain, &mut out);
                path.pop();
            }
        }
    }
    FieldSet(out)
}

fn collect(value: &Value, path: &mut Path, domain: Domain, out: &mut BTreeSet<Path>) {
    match value {
        Value::Null => {}
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                if domain.keeps(path, key) {
                    path.push(format!("f:{key}"));
                    collect(child, path, domain, out);
                    path.pop();
                }
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The fields a non-apply write changed: leaves added or changed in `new` (`changed`) and
/// leaves of `old` gone from `new` (`removed`), inside `domain`.
pub(crate) fn diff(old: &Value, new: &Value, domain: Domain) -> (FieldSet, FieldSet) {
    let mut changed = BTreeSet::new();
    let mut removed = BTreeSet::new();
    diff_node(
        Some(old),
        Some(new),
        &mut Vec::new(),
        domain,
        &mut changed,
        &mut removed,
    );
    (FieldSet(changed), FieldSet(removed))
}

fn diff_node(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Path,
    domain: Domain,
    changed: &mut BTreeSet<Path>,
    removed: &mut BTreeSet<Path>,
) {
    match (old, new) {
        (Some(Value::Object(o)), Some(Value::Object(n)))
            if path.is_empty() || (!o.is_empty() && !n.is_empty()) =>
        {
            let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
            for key in keys {
                if !domain.keeps(path, key) {
                    continue;
                }
                path.push(format!("f:{key}"));
                diff_node(o.get(key), n.get(key), path, domain, changed, removed);
                path.pop();
            }
        }
        (old, new) if old == new => {}
        (old, new) => {
            let mut new_leaves = BTreeSet::new();
            if let Some(n) = new {
                collect(n, path, domain, &mut new_leaves);
            }
            if let Some(o) = old {
                let mut old_leaves = BTreeSet::new();
                collect(o, path, domain, &mut old_leaves);
                removed.extend(old_leaves.difference(&new_leaves).cloned());
            }
            changed.extend(new_leaves);
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    /// `status` for writes to the status subresource.
    pub subresource: Option<String>,
    pub fields: FieldSet,
    /// The entry as read from the stored object, kept to write it back unchanged; cleared by
    /// any change.
    pub raw: Option<Value>,
}

impl Entry {
    /// Marks the entry changed, so that it is encoded again.
    pub fn touch(&mut self) {
        self.raw = None;
    }

    /// Whether this entry is the one of `manager` doing `operation` on `subresource`.
    pub fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }
}

/// The entries of `object`'s `metadata.managedFields` (malformed entries are skipped).
pub(crate) fn read(object: &Value) -> Vec<Entry> {
    let Some(list) = object
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            Some(Entry {
                manager: e.get("manager")?.as_str()?.to_string(),
                operation: e
                    .get("operation")
                    .and_then(Value::as_str)
                    .unwrap_or("Update")
                    .to_string(),
                api_version: e
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                time: e.get("time").and_then(Value::as_str).map(str::to_string),
                subresource: e
                    .get("subresource")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                fields: e
                    .get("fieldsV1")
                    .map(FieldSet::from_fields_v1)
                    .unwrap_or_default(),
                raw: Some(e.clone()),
            })
        })
        .collect()
}

/// Writes `entries` as `object`'s `metadata.managedFields` (removed when there are none); an
/// unchanged entry is written back as it was read.
pub(crate) fn write(object: &mut Value, entries: Vec<Entry>) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            if let Some(raw) = e.raw {
                return raw;
            }
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.fields.to_fields_v1(),
            });
            if let Some(time) = &e.time {
                v["time"] = time.clone().into();
            }
            if let Some(sub) = &e.subresource {
                v["subresource"] = sub.clone().into();
            }
            v
        })
        .collect();
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// Who writes: the field manager of a write, the subresource it writes, the `apiVersion` it
/// uses and the time to stamp on its entry.
pub(crate) struct Writer<'a> {
    pub manager: &'a str,
    pub subresource: Option<&'a str>,
    pub api_version: &'a str,
    pub now: &'a str,
}

/// Records a non-apply write: the writer owns what it changed; nobody owns what it removed.
pub(crate) fn record_update(
    entries: &mut Vec<Entry>,
    old: &Value,
    new: &Value,
    domain: Domain,
    writer: &Writer<'_>,
) {
    let Writer {
        manager,
        subresource,
        api_version,
        now,
    } = *writer;
    let (changed, removed) = diff(old, new, domain);
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    for path in removed.iter() {
        for e in entries.iter_mut() {
            if e.fields.remove_subtree(path) {
                e.touch();
            }
        }
    }
    for path in changed.iter() {
        for e in entries.iter_mut() {
            if e.fields.remove_overlapping(path) {
                e.touch();
            }
        }
    }
    let index = match entries
        .iter()
        .position(|e| e.is(manager, "Update", subresource))
    {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: None,
                subresource: subresource.map(str::to_string),
                fields: FieldSet::default(),
                raw: None,
            });
            entries.len() - 1
        }
    };
    let me = &mut entries[index];
    me.touch();
    for path in changed.iter() {
        me.fields.insert(path.clone());
    }
    me.time = Some(now.to_string());
    me.api_version = api_version.to_string();
    entries.retain(|e| !e.fields.is_empty());
}
