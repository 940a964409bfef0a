//! Structural validation of a manifest against its CRD's `openAPIV3Schema`, the way the API
//! server would see it: unknown fields rejected, types, enums, patterns, lengths and ranges.
//!
//! The CRD schema is OpenAPI v3 with Kubernetes extensions; it is rewritten into plain JSON Schema
//! (`nullable` → a `null` type, `x-kubernetes-int-or-string` → integer or string, closed objects
//! unless `x-kubernetes-preserve-unknown-fields`) and checked with the `jsonschema` crate.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::{Map, Value, json};

use crate::engine::lint::Finding;

use crate::api::common::{DURATION_PATTERN, NAME_PATTERN};
use crate::api::device_patch::PATCH_ID_PATTERN;
use crate::api::firmware_upgrade::IMAGE_NAME_PATTERN;

/// One thing wrong with a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field, as a dotted path (`spec.rollout.maxConcurrent`).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it; empty when the message already says.
    pub fix: String,
    /// Whether the API server accepts the document anyway: true for the engine's static
    /// findings (the controller then ends the resource's tasks in the code the finding names),
    /// false for what the API server rejects (schema, CEL) or what cannot be read at all.
    pub accepted_by_api: bool,
}

impl Problem {
    /// A problem at `field` that the API server would reject.
    pub fn new(field: String, message: String, fix: String) -> Self {
        Self {
            field,
            message,
            fix,
            accepted_by_api: false,
        }
    }
}

impl From<Finding> for Problem {
    /// An engine finding: the API server accepts the document.
    fn from(f: Finding) -> Self {
        Self {
            accepted_by_api: true,
            ..Self::new(f.field, f.message, f.fix)
        }
    }
}

/// A compiled validator for one kind, with the rewritten schema kept for field suggestions.
pub struct KindSchema {
    schema: Value,
    validator: jsonschema::Validator,
    /// The CRD's schema as the API server has it, for CEL evaluation.
    pub openapi: Value,
}

impl KindSchema {
    /// Compiles the validator for a CRD's `openAPIV3Schema`.
    pub fn new(openapi: Value) -> Self {
        let mut schema = openapi.clone();
        rewrite(&mut schema);
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            // The API server fills these in; a manifest may carry them.
            props.insert("apiVersion".into(), json!({"type": "string"}));
            props.insert("kind".into(), json!({"type": "string"}));
            props.insert("metadata".into(), json!({"type": "object"}));
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("the generated CRD schema must compile: {e}"));
        Self {
            schema,
            validator,
            openapi,
        }
    }

    /// Every structural problem of `object`, with the field named and a fix.
    pub fn problems(&self, object: &Value) -> Vec<Problem> {
        let mut problems: Vec<Problem> = self
            .validator
            .iter_errors(object)
            .map(|error| {
                let path: Vec<String> = error
                    .instance_path()
                    .into_iter()
                    .map(|segment| match segment {
                        jsonschema::paths::LocationSegment::Property(p) => p.to_string(),
                        jsonschema::paths::LocationSegment::Index(i) => i.to_string(),
                    })
                    .collect();
                self.describe(&path, error.kind(), error.instance())
            })
            .collect();
        problems.sort_by(|a, b| a.field.cmp(&b.field).then(a.message.cmp(&b.message)));
        problems.dedup();
        problems
    }

    fn describe(&self, path: &[String], kind: &ValidationErrorKind, instance: &Value) -> Problem {
        let field = field_path(path);
        let node = schema_at(&self.schema, path);
        let shown = short(instance);
        let (message, fix) = match kind {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let known = known_fields(node);
                let name = unexpected.join(", ");
                let suggestion = unexpected
                    .first()
                    .and_then(|u| closest(u, &known))
                    .map(|c| format!("did you mean {c:?}? "))
                    .unwrap_or_default();
                let field = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{field}.{name}")
                };
                return Problem::new(
                    field,
                    format!("unknown field {name:?}"),
                    format!(
                        "{suggestion}remove it or correct its spelling; known fields here: {}",
                        known.join(", ")
                    ),
                );
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                let field = if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{field}.{name}")
                };
                let what = node
                    .and_then(|n| n.pointer(&format!("/properties/{name}/description")))
                    .and_then(Value::as_str)
                    .map(|d| format!(" ({})", d.split_whitespace().collect::<Vec<_>>().join(" ")))
                    .unwrap_or_default();
                return Problem::new(
                    field,
                    "required field is missing".into(),
                    format!("add {name}{what}"),
                );
            }
            ValidationErrorKind::Enum { options } => {
                let choices = options
                    .as_array()
                    .map(|o| o.iter().map(short).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                (
                    format!("{shown} is not an allowed value"),
                    format!("use one of: {choices}"),
                )
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(t) => t.to_string(),
                    TypeKind::Multiple(ts) => ts
                        .iter()
                        .map(|t| t.to_string())
                        .filter(|t| t != "null")
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                (
                    format!("{shown} is a {}, not a {expected}", json_type(instance)),
                    format!("write a {expected} here"),
                )
            }
            ValidationErrorKind::Pattern { pattern } => {
                (format!("{shown} has the wrong form"), pattern_hint(pattern))
            }
            ValidationErrorKind::Format { format } => (
                format!("{shown} is not a valid {format}"),
                if format == "date-time" {
                    "write an RFC 3339 time such as 2026-12-24T00:00:00+01:00".into()
                } else {
                    format!("write a valid {format}")
                },
            ),
            ValidationErrorKind::MinLength { limit } => (
                format!("{shown} is too short"),
                format!("use at least {limit} characters"),
            ),
            ValidationErrorKind::MaxLength { limit } => (
                format!("{shown} is too long"),
                format!("use at most {limit} characters"),
            ),
            ValidationErrorKind::MinItems { limit } => (
                "the list is too short".into(),
                format!("give at least {limit} entries"),
            ),
            ValidationErrorKind::MaxItems { limit } => (
                "the list is too long".into(),
                format!("give at most {limit} entries"),
            ),
            ValidationErrorKind::Minimum { limit } => (
                format!("{shown} is too small"),
                format!("use {limit} or more"),
            ),
            ValidationErrorKind::Maximum { limit } => (
                format!("{shown} is too large"),
                format!("use {limit} or less"),
            ),
            ValidationErrorKind::OneOfNotValid { context }
            | ValidationErrorKind::AnyOf { context } => {
                let allowed: Vec<String> = context
                    .iter()
                    .flatten()
                    .filter_map(|e| match e.kind() {
                        ValidationErrorKind::Enum { options } => options
                            .as_array()
                            .map(|o| o.iter().map(short).collect::<Vec<_>>()),
                        ValidationErrorKind::Constant { expected_value } => {
                            Some(vec![short(expected_value)])
                        }
                        _ => None,
                    })
                    .flatten()
                    .collect();
                if allowed.is_empty() {
                    (
                        format!("{shown} matches none of the allowed forms"),
                        "see the field's description".into(),
                    )
                } else {
                    (
                        format!("{shown} is not an allowed value"),
                        format!("use one of: {}", allowed.join(", ")),
                    )
                }
            }
            _ => (
                format!("{shown} is not valid here"),
                "see the field's description (kubectl explain)".into(),
            ),
        };
        Problem::new(
            if field.is_empty() {
                "(document)".into()
            } else {
                field
            },
            message,
            fix,
        )
    }
}

/// Rewrites an OpenAPI v3 structural schema into JSON Schema, recursively.
fn rewrite(node: &mut Value) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    for key in ["properties"] {
        if let Some(props) = map.get_mut(key).and_then(Value::as_object_mut) {
            props.values_mut().for_each(rewrite);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get_mut(key) {
            rewrite(child);
        }
    }
    let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        map.insert("type".into(), json!(["integer", "string"]));
    }
    if map.get("type") == Some(&json!("object"))
        && !preserve
        && !map.contains_key("additionalProperties")
    {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    if map.remove("nullable") == Some(Value::Bool(true)) {
        let types = match map.remove("type") {
            Some(Value::Array(mut ts)) => {
                ts.push(json!("null"));
                Value::Array(ts)
            }
            Some(t) => json!([t, "null"]),
            None => Value::Null,
        };
        if !types.is_null() {
            map.insert("type".into(), types);
        }
    }
    // `default` is applied by the API server, not checked; keep the schema lean.
    map.remove("default");
    strip_extensions(map);
}

fn strip_extensions(map: &mut Map<String, Value>) {
    map.retain(|k, _| !k.starts_with("x-kubernetes-"));
}

/// The schema node describing the value at `path`.
fn schema_at<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(schema, |node, segment| {
        node.get("properties")
            .and_then(|p| p.get(segment))
            .or_else(|| node.get("items"))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
    })
}

fn known_fields(node: Option<&Value>) -> Vec<String> {
    node.and_then(|n| n.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The known name closest to a misspelled one, if it is close enough to be a likely typo.
fn closest(name: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (edit_distance(&name.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min()
        .map(|(_, k)| k.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A dotted field path with list indexes in brackets: `spec.packages[0].id`.
pub fn field_path(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if segment.bytes().all(|b| b.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

fn pattern_hint(pattern: &str) -> String {
    match pattern {
        p if p == DURATION_PATTERN => "write a duration such as 90s, 10m or 1h30m (units ns, us, ms, s, m, h)".into(),
        p if p == NAME_PATTERN => "use a Kubernetes object name: lower-case letters, digits, '-' and '.'".into(),
        p if p == IMAGE_NAME_PATTERN => "give the image's file name only (no directories), e.g. idg7519.oradco.scrypt4".into(),
        p if p == PATCH_ID_PATTERN => "give the patch id as the element reports it (letters, digits, '.', '_' and '-'), e.g. V100R004C01SPH106".into(),
        p if p.contains(r"\S+(\s+\S+){4}") => "write a 5-field cron expression: minute hour day-of-month month day-of-week, e.g. \"0 22 * * SAT\"".into(),
        p if p.starts_with("^https?://") => "write the management URL with its scheme, e.g. https://10.0.0.5:5554".into(),
        p => format!("match the pattern {p}"),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// A value as it appears in a message, cut short when long.
pub fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_read_like_kubectl_explain() {
        let path = |p: &[&str]| field_path(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            path(&["spec", "packages", "0", "id"]),
            "spec.packages[0].id"
        );
        assert_eq!(path(&["spec"]), "spec");
    }

    #[test]
    fn typos_get_a_suggestion_but_unrelated_names_do_not() {
        let known = vec!["maxConcurrent".to_string(), "errorPolicy".to_string()];
        assert_eq!(
            closest("maxConcurent", &known),
            Some("maxConcurrent".into())
        );
        assert_eq!(closest("errorpolicy", &known), Some("errorPolicy".into()));
        assert_eq!(closest("banana", &known), None);
    }
}
