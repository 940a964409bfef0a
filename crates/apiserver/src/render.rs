//! How objects go out: as stored (rewritten to the requested resource's form and version, see
//! `convert`), as `PartialObjectMetadata` (kube's metadata watchers), or as a `Table`: a CRD's
//! printer columns, or a built-in kind's columns as the real server prints them (`printers`).

use bytes::{BufMut, Bytes, BytesMut};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::printers::Printer;
use super::resources::{Column, ResourceInfo};
use super::store::Stored;

/// Which objects a `Table` row carries (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// The representation a client asked for (`Accept`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// The objects themselves.
    Full,
    /// `meta.k8s.io/v1` `PartialObjectMetadata`.
    Metadata,
    /// `meta.k8s.io` `Table` (`v1` or `v1beta1`).
    Table {
        v1beta1: bool,
        include: IncludeObject,
    },
}

impl Format {
    /// The format an `Accept` header asks for; `include_object` is the `includeObject` query
    /// parameter.
    pub fn negotiate(accept: &str, include_object: Option<&str>) -> Self {
        for candidate in accept.split(',') {
            let params: Vec<&str> = candidate.split(';').map(str::trim).collect();
            let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
            if has("as=Table") && has("g=meta.k8s.io") {
                let include = match include_object {
                    Some("None") => IncludeObject::None,
                    Some("Object") => IncludeObject::Object,
                    _ => IncludeObject::Metadata,
                };
                return Self::Table {
                    v1beta1: has("v=v1beta1"),
                    include,
                };
            }
            if (has("as=PartialObjectMetadata") || has("as=PartialObjectMetadataList"))
                && has("g=meta.k8s.io")
            {
                return Self::Metadata;
            }
        }
        Self::Full
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Full => "application/json",
            Self::Metadata => "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            Self::Table { v1beta1: false, .. } => "application/json;as=Table;g=meta.k8s.io;v=v1",
            Self::Table { v1beta1: true, .. } => {
                "application/json;as=Table;g=meta.k8s.io;v=v1beta1"
            }
        }
    }
}

/// Renders objects of one resource for one request.
pub(crate) struct Renderer<'a> {
    pub info: &'a ResourceInfo,
    /// `apiVersion` of the request (objects are rewritten to it; conversion strategy `None`).
    pub api_version: String,
    pub format: Format,
    /// For the `Age` of table rows.
    pub now: Timestamp,
}

impl Renderer<'_> {
    /// One object (a GET, a write's response, a watch event).
    pub fn object(&self, stored: &Stored) -> Bytes {
        match self.format {
            Format::Full => self.full(stored),
            Format::Metadata => partial_metadata_json(&stored.metadata_json()),
            Format::Table { .. } => self.table(std::slice::from_ref(&stored), stored.rv),
        }
    }

    fn full(&self, stored: &Stored) -> Bytes {
        if !self.info.conversion.is_some() && stored.api_version() == self.api_version {
            return stored.json();
        }
        to_bytes(&self.view(stored))
    }

    /// The object as the request's resource and version show it.
    pub fn view(&self, stored: &Stored) -> Value {
        let mut value = stored.value();
        self.info.conversion.to_view(&mut value, &self.api_version);
        value
    }

    /// A list at resourceVersion `rv`.
    pub fn list<S: AsRef<Stored>>(&self, items: &[S], rv: u64) -> Bytes {
        let (api_version, kind) = match self.format {
            Format::Full => (self.api_version.clone(), format!("{}List", self.info.kind)),
            Format::Metadata => (
                "meta.k8s.io/v1".to_string(),
                "PartialObjectMetadataList".to_string(),
            ),
            Format::Table { .. } => return self.table(items, rv),
        };
        let mut out = BytesMut::with_capacity(64 + items.len() * 512);
        out.put_slice(b"{\"apiVersion\":");
        out.put_slice(&to_bytes(&Value::String(api_version)));
        out.put_slice(b",\"kind\":");
        out.put_slice(&to_bytes(&Value::String(kind)));
        out.put_slice(b",\"metadata\":{\"resourceVersion\":\"");
        out.put_slice(rv.to_string().as_bytes());
        out.put_slice(b"\"},\"items\":[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.put_slice(&self.object(item.as_ref()));
        }
        out.put_slice(b"]}");
        out.freeze()
    }

    fn columns(&self) -> Vec<Column> {
        let mut columns = vec![Column {
            name: "Name".into(),
            type_: "string".into(),
            format: "name".into(),
            description: "Name must be unique within a namespace.".into(),
            priority: 0,
            json_path: ".metadata.name".into(),
        }];
        if self.info.columns.is_empty() {
            columns.push(Column {
                name: "Age".into(),
                type_: "date".into(),
                format: String::new(),
                description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
                priority: 0,
                json_path: ".metadata.creationTimestamp".into(),
            });
        } else {
            columns.extend(self.info.columns.iter().cloned());
        }
        columns
    }

    fn table<S: AsRef<Stored>>(&self, items: &[S], rv: u64) -> Bytes {
        let Format::Table { v1beta1, include } = self.format else {
            return Bytes::new();
        };
        // A CRD's printer columns (built-in kinds have their printer's).
        let custom = match self.info.printer {
            Printer::Custom => self.columns(),
            _ => Vec::new(),
        };
        let definitions: Vec<Value> = match self.info.printer {
            Printer::Custom => custom
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "type": c.type_,
                        "format": c.format,
                        "description": c.description,
                        "priority": c.priority,
                    })
                })
                .collect(),
            printer => printer.column_definitions(),
        };
        let rows: Vec<Value> = items
            .iter()
            .map(|item| {
                let stored = item.as_ref();
                let object = stored.value();
                let (cells, conditions) = match self.info.printer {
                    Printer::Custom => {
                        (custom.iter().map(|c| self.cell(c, &object)).collect(), None)
                    }
                    printer => {
                        let row = printer.row(&object, self.now);
                        (row.cells, row.conditions)
                    }
                };
                let mut row = json!({"cells": cells});
                if let Some(conditions) = conditions {
                    row["conditions"] = conditions;
                }
                match include {
                    IncludeObject::None => {}
                    IncludeObject::Metadata => {
                        row["object"] = partial_metadata(object.get("metadata").cloned())
                    }
                    IncludeObject::Object => row["object"] = self.view(stored),
                }
                row
            })
            .collect();
        let api_version = if v1beta1 {
            "meta.k8s.io/v1beta1"
        } else {
            "meta.k8s.io/v1"
        };
        to_bytes(&json!({
            "kind": "Table",
            "apiVersion": api_version,
            "metadata": {"resourceVersion": rv.to_string()},
            "columnDefinitions": definitions,
            "rows": rows,
        }))
    }

    fn cell(&self, column: &Column, object: &Value) -> Value {
        let values = json_path(object, &column.json_path);
        let Some(first) = values.first() else {
            return Value::Null;
        };
        match column.type_.as_str() {
            "date" => first
                .as_str()
                .and_then(|s| s.parse::<Timestamp>().ok())
                .map(|t| Value::String(human_duration(self.now.duration_since(t))))
                .unwrap_or(Value::Null),
            "integer" | "number" | "boolean" => (*first).clone(),
            _ => {
                let parts: Vec<String> = values
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                Value::String(parts.join(" "))
            }
        }
    }
}

impl AsRef<Stored> for Stored {
    fn as_ref(&self) -> &Stored {
        self
    }
}

fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// `PartialObjectMetadata` of an object whose `metadata` is the JSON `metadata`, as the
/// encoding of [`partial_metadata`] writes it (keys in order), built without parsing it.
fn partial_metadata_json(metadata: &[u8]) -> Bytes {
    const HEAD: &[u8] =
        br#"{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata","metadata":"#;
    let mut out = BytesMut::with_capacity(HEAD.len() + metadata.len() + 1);
    out.put_slice(HEAD);
    out.put_slice(metadata);
    out.put_u8(b'}');
    out.freeze()
}

/// `PartialObjectMetadata` of an object with this `metadata`.
pub(crate) fn partial_metadata(metadata: Option<Value>) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata.unwrap_or_else(|| json!({})),
    })
}

/// Evaluates the JSONPath subset of printer columns: `.a.b`, `[N]`, `[*]` and
/// `[?(@.field=="value")]`.
pub(crate) fn json_path<'v>(object: &'v Value, path: &str) -> Vec<&'v Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut current: Vec<&Value> = vec![object];
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let field = &after[..end];
            rest = &after[end..];
            if field.is_empty() {
                continue;
            }
            current = current.into_iter().filter_map(|v| v.get(field)).collect();
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return Vec::new();
            };
            // A filter may contain ']' only inside quotes; printer columns do not.
            let inner = &after[..end];
            rest = &after[end + 1..];
            current = select(current, inner);
        } else {
            return Vec::new();
        }
    }
    current
}

fn select<'v>(current: Vec<&'v Value>, selector: &str) -> Vec<&'v Value> {
    let items = current
        .into_iter()
        .filter_map(Value::as_array)
        .flat_map(|a| a.iter());
    if selector == "*" {
        return items.collect();
    }
    if let Ok(index) = selector.parse::<usize>() {
        return items.skip(index).take(1).collect();
    }
    let Some(filter) = selector
        .strip_prefix("?(")
        .and_then(|s| s.strip_suffix(')'))
    else {
        return Vec::new();
    };
    let Some((lhs, rhs)) = filter.split_once("==") else {
        return Vec::new();
    };
    let field = lhs.trim().trim_start_matches('@');
    let expected = rhs.trim().trim_matches(|c| c == '"' || c == '\'');
    items
        .filter(|item| {
            json_path(item, field).first().is_some_and(|v| match v {
                Value::String(s) => s == expected,
                other => *other == expected,
            })
        })
        .collect()
}

/// A duration as `kubectl` prints ages (`k8s.io/apimachinery/pkg/util/duration.HumanDuration`).
pub(crate) fn human_duration(d: jiff::SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}
