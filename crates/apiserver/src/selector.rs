//! Label and field selectors, as the `labelSelector` and `fieldSelector` query parameters
//! spell them.
//!
//! Labels: `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`
//! (exists), `!key` (does not exist), and `key>N` / `key<N` (integer comparison), joined by
//! commas (all must hold). Fields: `label=value`, `label==value`, `label!=value` joined by
//! commas (`\,` and `\=` escape them in values), over the labels the resource serves (see
//! `resources::FieldLabel`: a label reads one or more paths of the stored object, and compares
//! an absent field as the value the real server's defaulting would have stored).

use serde_json::Value;

use super::resources::{FieldLabel, ResourceInfo};
use super::status::ApiError;
use super::store::{Interest, Stored};

/// One label requirement.
#[derive(Clone, Debug, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<LabelReq>);

impl LabelSelector {
    /// Parses a `labelSelector` query value.
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(input) {
            let part = part.trim();
            if part.is_empty() {
                if input.trim().is_empty() {
                    continue;
                }
                return Err(bad_label(input, "empty requirement"));
            }
            reqs.push(parse_requirement(part).map_err(|why| bad_label(part, &why))?);
        }
        Ok(Self(reqs))
    }

    /// The first label value the selector requires (`key=value`, `key in (value)`), if any:
    /// only objects with it can match.
    pub fn required_value(&self) -> Option<(&str, &str)> {
        self.0.iter().find_map(|req| match req {
            LabelReq::Eq(k, v) => Some((k.as_str(), v.as_str())),
            LabelReq::In(k, vs) if vs.len() == 1 => Some((k.as_str(), vs[0].as_str())),
            _ => None,
        })
    }

    /// Whether an object whose label `key` is `get(key)` (`metadata.labels`) matches.
    fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|req| match req {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Gt(k, n) => get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            LabelReq::Lt(k, n) => get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        })
    }
}

fn bad_label(input: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {input:?}: {why}"))
}

/// Splits on commas outside parentheses.
fn split_top_level(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')
}

fn parse_requirement(part: &str) -> Result<LabelReq, String> {
    if let Some(rest) = part.strip_prefix('!') {
        let key = rest.trim();
        validate_key(key)?;
        return Ok(LabelReq::NotExists(key.to_string()));
    }
    let key_end = part.find(|c: char| !is_key_char(c)).unwrap_or(part.len());
    let key = &part[..key_end];
    validate_key(key)?;
    let rest = part[key_end..].trim_start();
    if rest.is_empty() {
        return Ok(LabelReq::Exists(key.to_string()));
    }
    let key = key.to_string();
    for (op, ctor) in [
        ("!=", LabelReq::NotEq as fn(String, String) -> LabelReq),
        ("==", LabelReq::Eq),
        ("=", LabelReq::Eq),
    ] {
        if let Some(value) = rest.strip_prefix(op) {
            let value = value.trim();
            validate_value(value)?;
            return Ok(ctor(key, value.to_string()));
        }
    }
    for (op, is_gt) in [(">", true), ("<", false)] {
        if let Some(value) = rest.strip_prefix(op) {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| format!("for '{op}' operator, the value must be an integer"))?;
            return Ok(if is_gt {
                LabelReq::Gt(key, n)
            } else {
                LabelReq::Lt(key, n)
            });
        }
    }
    for (word, notin) in [("notin", true), ("in", false)] {
        if let Some(after) = rest.strip_prefix(word)
            && after.starts_with(|c: char| c.is_whitespace() || c == '(')
        {
            let values = parse_set(after.trim())?;
            return Ok(if notin {
                LabelReq::NotIn(key, values)
            } else {
                LabelReq::In(key, values)
            });
        }
    }
    Err(format!(
        "found '{rest}', expected: in, notin, =, ==, !=, gt, lt"
    ))
}

fn parse_set(input: &str) -> Result<Vec<String>, String> {
    let inner = input
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("found '{input}', expected: '(' values ')'"))?;
    let mut values = Vec::new();
    for v in inner.split(',') {
        let v = v.trim();
        validate_value(v)?;
        values.push(v.to_string());
    }
    Ok(values)
}

fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || prefix.len() > 253 || prefix.contains('/'))
    {
        return Err(format!("invalid label key {key:?}: bad prefix"));
    }
    if name.is_empty() || name.len() > 63 || !valid_label_value(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), String> {
    if value.len() > 63 || !valid_label_value(value) {
        return Err(format!(
            "invalid label value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A label value: empty, or alphanumerics with `-_.` inside.
pub(crate) fn valid_label_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let bytes = value.as_bytes();
    bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `object`'s labels match a `metav1.LabelSelector` (`matchLabels` and
/// `matchExpressions`, all must hold; an empty selector matches everything). A selector with an
/// unknown operator matches nothing, as one that does not convert to a selector.
pub(crate) fn matches_label_selector(selector: &Value, object: &Value) -> bool {
    let labels = object.pointer("/metadata/labels");
    let get = |key: &str| -> Option<&str> { labels?.get(key)?.as_str() };
    let by_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| {
            m.iter()
                .all(|(k, v)| v.as_str().is_some_and(|v| get(k) == Some(v)))
        });
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    by_labels
        && expressions.iter().all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e.get("operator").and_then(Value::as_str) {
                Some("In") => get(key).is_some_and(|l| values.contains(&l)),
                Some("NotIn") => get(key).is_none_or(|l| !values.contains(&l)),
                Some("Exists") => get(key).is_some(),
                Some("DoesNotExist") => get(key).is_none(),
                _ => false,
            }
        })
}

/// One field requirement: the label's paths and default, the value, and whether it must
/// differ.
#[derive(Clone, Debug, PartialEq)]
struct FieldReq {
    field: FieldLabel,
    value: String,
    negate: bool,
}

/// What an object must have for both selectors to select it, when they say: a name
/// (`metadata.name=N`), else a label value (the first `key=value` or `key in (value)`). A watch
/// with one waits only for the writes of the objects that have it.
pub(crate) fn interest(labels: &LabelSelector, fields: &FieldSelector) -> Option<Interest> {
    if let Some(name) = fields.pinned_name() {
        return Some(Interest::Name(name.to_string()));
    }
    let (key, value) = labels.required_value()?;
    Some(Interest::Label(key.to_string(), value.to_string()))
}

/// Whether both selectors select `stored`: labels, `metadata.name`, `metadata.namespace` and
/// `spec.nodeName` from what the store keeps apart, the object parsed only for another field.
/// (A watch tests every write of its resource: with thousands of watches, parsing each version
/// for each would be most of the server's work.)
pub(crate) fn selects(labels: &LabelSelector, fields: &FieldSelector, stored: &Stored) -> bool {
    if !labels.matches_with(|key| stored.label(key)) {
        return false;
    }
    let mut parsed: Option<Value> = None;
    fields.0.iter().all(|req| {
        let kept = match req.field.label.as_str() {
            "metadata.name" => Some(stored.name()),
            "metadata.namespace" => Some(stored.namespace()),
            "spec.nodeName" => Some(stored.node_name()),
            _ => None,
        }
        .filter(|_| req.field.paths == [req.field.label.as_str()]);
        let actual = match kept {
            Some(kept) => std::borrow::Cow::Borrowed(kept),
            None => std::borrow::Cow::Owned(field_value(
                parsed.get_or_insert_with(|| stored.value()),
                &req.field,
            )),
        };
        (actual == req.value.as_str()) != req.negate
    })
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<FieldReq>);

impl FieldSelector {
    /// Parses a `fieldSelector` query value, rejecting field labels the resource does not
    /// serve with the real server's 400 (`field label not supported: LABEL`).
    pub fn parse(input: &str, info: &ResourceInfo) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_unescaped(input, ',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (path, value, negate) = if let Some((p, v)) = part.split_once("!=") {
                (p, v, true)
            } else if let Some((p, v)) = part.split_once("==") {
                (p, v, false)
            } else if let Some((p, v)) = part.split_once('=') {
                (p, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                )));
            };
            let label = path.trim();
            let Some(field) = info.field_label(label) else {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {label}"
                )));
            };
            reqs.push(FieldReq {
                field: field.clone(),
                value: unescape(value.trim()),
                negate,
            });
        }
        Ok(Self(reqs))
    }

    /// The name the selector pins with `metadata.name=…`, if any (a fast path for lookups).
    pub fn pinned_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.field.label == "metadata.name" && !r.negate)
            .map(|r| r.value.as_str())
    }

    /// The node the selector pins with `spec.nodeName=…` where that is the object's own
    /// `spec.nodeName` (a pod's), if any: a list's fast path through the node index, which
    /// holds the objects bound to a node (not those with none: `spec.nodeName=` is no pin).
    pub fn pinned_node(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|r| {
                r.field.label == "spec.nodeName"
                    && r.field.paths == ["spec.nodeName"]
                    && !r.negate
                    && !r.value.is_empty()
            })
            .map(|r| r.value.as_str())
    }
}

/// Splits on `sep` where it is not escaped with a backslash (as field selectors escape `,`
/// and `=` in values).
fn split_unescaped(input: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == sep && !escaped => {
                parts.push(&input[start..i]);
                start = i + c.len_utf8();
            }
            _ => escaped = false,
        }
    }
    parts.push(&input[start..]);
    parts
}

/// A field selector value without its escapes (`\,` `\=` `\\`).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// The value of a field label in `object` as a field selector compares it: the first of its
/// paths holding a non-empty value, else its default.
fn field_value(object: &Value, field: &FieldLabel) -> String {
    field
        .paths
        .iter()
        .map(|path| path_value(object, path))
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| field.default.clone())
}

/// The value at a dotted path (numeric segments index lists); empty when absent or null.
fn path_value(object: &Value, path: &str) -> String {
    let mut current = object;
    for segment in path.split('.') {
        let next = match current {
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => current.get(segment),
        };
        match next {
            Some(next) => current = next,
            None => return String::new(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}
