//! Custom resources checked on write as the API server checks them: unknown fields pruned
//! (dropped, as with the default `fieldValidation`), schema defaults filled in, then the CRD's
//! structural schema (types,
//! enums, patterns, lengths, ranges, required fields) and its CEL rules
//! (`x-kubernetes-validations`, transition rules against the stored object), each failure a 422
//! `Invalid` naming the field.
//!
//! The schema check is the one `upkeep check` uses ([`upkeep_core::schema::KindSchema`]); CEL
//! runs on kube's evaluator. As on the real server (validation ratcheting), a failure about a
//! value the write did not change is let through, so an object written before a rule existed
//! (or by [`super::ApiServer::insert_raw`]) can still get status writes. A rule the evaluator
//! cannot compile or evaluate is skipped with a warning rather than failing the write; CEL is
//! not evaluated at all when no field a rule sits on is present (create) or changed (update).
//! Validators are compiled on a resource's first write.

use std::sync::OnceLock;

use kube::core::cel::{CompiledSchema, ErrorKind, Validator, compile_schema};
use serde_json::Value;

use super::resources::{ResourceId, ResourceInfo};
use super::status::{ApiError, ApiResult, Cause};
use upkeep_core::schema::KindSchema;

/// The schema of one custom resource and its compiled validators.
struct Validation {
    openapi: Value,
    compiled: OnceLock<Compiled>,
}

struct Compiled {
    schema: KindSchema,
    cel: CompiledSchema,
    /// Where the CEL rules sit, to skip evaluating them when they cannot fail.
    sites: Vec<RuleSite>,
}

/// The fields a rule looks at: the object keys down to the rule's schema node (or to the list
/// or map above it), and whether every rule there is a transition rule (uses `oldSelf`).
struct RuleSite {
    path: Vec<String>,
    transition_only: bool,
}

/// The CEL rule sites of a schema.
fn rule_sites(
    schema: &Value,
    path: &mut Vec<String>,
    below_collection: bool,
    out: &mut Vec<RuleSite>,
) {
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
    {
        let transition_only = rules.iter().all(|r| {
            r.get("rule")
                .and_then(Value::as_str)
                .is_some_and(|rule| rule.contains("oldSelf"))
        });
        out.push(RuleSite {
            path: path.clone(),
            transition_only,
        });
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, child) in properties {
            if below_collection {
                rule_sites(child, path, true, out);
            } else {
                path.push(key.clone());
                rule_sites(child, path, false, out);
                path.pop();
            }
        }
    }
    for collection in ["items", "additionalProperties"] {
        if let Some(child) = schema.get(collection).filter(|c| c.is_object()) {
            rule_sites(child, path, true, out);
        }
    }
}

/// The value at a path of object keys.
fn at<'v>(object: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(object, |v, key| v.get(key))
}

/// The value at a dotted field path as errors name them (`spec.rollout`,
/// `spec.packages[0].id`).
fn at_field<'v>(object: &'v Value, field: &str) -> Option<&'v Value> {
    let field = field.trim_start_matches('.');
    if field.is_empty() {
        return Some(object);
    }
    let mut current = object;
    for segment in field.split('.') {
        let (key, mut indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            current = current.get(key)?;
        }
        while let Some(rest) = indexes.strip_prefix('[') {
            let end = rest.find(']')?;
            current = current.get(rest[..end].parse::<usize>().ok()?)?;
            indexes = &rest[end + 1..];
        }
    }
    Some(current)
}

/// Whether the node a failure is about did not change (ratcheting: the real server lets an
/// unchanged invalid value stand). A failure about a missing field is about its parent.
fn unchanged(old: Option<&Value>, new: &Value, field: &str) -> bool {
    let Some(old) = old else {
        return false;
    };
    match at_field(old, field) {
        Some(before) => Some(before) == at_field(new, field),
        None => {
            let parent = field.rsplit_once('.').map_or("", |(p, _)| p);
            let before = at_field(old, parent);
            before.is_some() && before == at_field(new, parent) && at_field(new, field).is_none()
        }
    }
}

impl Compiled {
    /// Whether some rule could fail: on create, a non-transition rule whose field is present;
    /// on update, a rule whose field changed (failures of unchanged fields are ratcheted away,
    /// as on the real server).
    fn rules_apply(&self, object: &Value, old: Option<&Value>) -> bool {
        self.sites.iter().any(|site| match old {
            None => !site.transition_only && at(object, &site.path).is_some(),
            Some(old) => at(object, &site.path) != at(old, &site.path),
        })
    }
}

/// The validators of every resource (none for built-in kinds), or nothing when validation is
/// off.
pub(crate) struct Validations {
    per_resource: Vec<Option<Validation>>,
    cel: Validator,
}

impl std::fmt::Debug for Validations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validations")
            .field(
                "resources",
                &self.per_resource.iter().filter(|v| v.is_some()).count(),
            )
            .finish_non_exhaustive()
    }
}

impl Validations {
    /// Validators for the resources that have a schema, when `enabled`.
    pub fn new(resources: &[ResourceInfo], enabled: bool) -> Self {
        let per_resource = resources
            .iter()
            .map(|info| {
                let openapi = info.schema.clone().filter(|_| enabled)?;
                Some(Validation {
                    openapi,
                    compiled: OnceLock::new(),
                })
            })
            .collect();
        Self {
            per_resource,
            cel: Validator::new(),
        }
    }

    fn of(&self, res: ResourceId) -> Option<&Validation> {
        self.per_resource.get(res)?.as_ref()
    }

    /// Drops the fields the schema does not know (outside `apiVersion`, `kind`, `metadata`) and
    /// fills in the schema's defaults, as the API server does to what it decodes.
    pub fn prune_and_default(&self, res: ResourceId, object: &mut Value) {
        let Some(validation) = self.of(res) else {
            return;
        };
        prune_root(validation, object);
        fill_defaults(&validation.openapi, object, 0);
    }

    /// Drops the fields the schema does not know (an applied configuration is pruned, not
    /// defaulted, so that its manager does not own the defaults).
    pub fn prune(&self, res: ResourceId, object: &mut Value) {
        if let Some(validation) = self.of(res) {
            prune_root(validation, object);
        }
    }

    /// Checks `object` (and, for transition rules, `old`): 422 with every failure.
    pub fn check(
        &self,
        res: ResourceId,
        info: &ResourceInfo,
        name: &str,
        object: &Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let Some(validation) = self.of(res) else {
            return Ok(());
        };
        let compiled = validation.compiled.get_or_init(|| {
            let mut sites = Vec::new();
            rule_sites(&validation.openapi, &mut Vec::new(), false, &mut sites);
            Compiled {
                schema: KindSchema::new(validation.openapi.clone()),
                cel: compile_schema(&validation.openapi),
                sites,
            }
        });
        let mut causes: Vec<Cause> = compiled
            .schema
            .problems(object)
            .into_iter()
            .filter(|p| !unchanged(old, object, &p.field))
            .map(|p| Cause {
                reason: "FieldValueInvalid".into(),
                message: if p.fix.is_empty() {
                    p.message
                } else {
                    format!("{}: {}", p.message, p.fix)
                },
                field: p.field,
            })
            .collect();
        if causes.is_empty()
            && compiled.rules_apply(object, old)
            && let Err(errors) = self.cel.validate_compiled(&compiled.cel, object, old)
        {
            for error in errors.as_slice() {
                if !error.rule.contains("oldSelf") && unchanged(old, object, &error.field_path) {
                    // Ratcheting: a field that did not change may keep failing a rule.
                    continue;
                }
                if error.kind == ErrorKind::ValidationFailure {
                    causes.push(Cause {
                        reason: error
                            .reason
                            .clone()
                            .unwrap_or_else(|| "FieldValueInvalid".into()),
                        message: format!("Invalid value: {}", error.message),
                        field: error.field_path.clone(),
                    });
                } else {
                    tracing::warn!(
                        kind = %info.kind,
                        rule = %error.rule,
                        error = %error.message,
                        "a CEL rule could not be evaluated; the simulated API server skips it"
                    );
                }
            }
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(info, name, causes))
        }
    }
}

/// Prunes an object at the top level: `apiVersion`, `kind` and `metadata` are kept as they are.
fn prune_root(validation: &Validation, object: &mut Value) {
    if let Value::Object(map) = object {
        let properties = validation.openapi.get("properties");
        let preserve = preserves_unknown(&validation.openapi);
        map.retain(|key, child| {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                return true;
            }
            match properties.and_then(|p| p.get(key)) {
                Some(schema) => {
                    prune(child, schema);
                    true
                }
                None => preserve || properties.is_none(),
            }
        });
    }
}

/// How deep [`fill_defaults`] goes: kube's CEL validators' nesting limit, which its
/// `apply_defaults` stops at too.
const MAX_DEFAULTING_DEPTH: usize = 64;

/// Fills in the schema's `default` of every field `value` lacks, in place, as kube's
/// `apply_defaults` does (which builds a defaulted copy: copying every object on every write
/// was a measurable part of a fleet's CPU). The same walk: `properties`, array `items`, and
/// `additionalProperties` (map values, unless `x-kubernetes-preserve-unknown-fields`), not
/// `allOf`/`oneOf`/`anyOf`; a default put in is not itself defaulted; nothing deeper than
/// [`MAX_DEFAULTING_DEPTH`]. A test holds it to kube's on the same inputs.
fn fill_defaults(schema: &Value, value: &mut Value, depth: usize) {
    if depth > MAX_DEFAULTING_DEPTH {
        return;
    }
    match value {
        Value::Object(object) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema
                .get("additionalProperties")
                .filter(|a| a.is_object() && !preserves_unknown(schema));
            for (key, child) in object.iter_mut() {
                if let Some(child_schema) = properties.and_then(|p| p.get(key)).or(additional) {
                    fill_defaults(child_schema, child, depth + 1);
                }
            }
            for (key, property) in properties.into_iter().flatten() {
                if !object.contains_key(key)
                    && let Some(default) = property.get("default")
                {
                    object.insert(key.clone(), default.clone());
                }
            }
        }
        Value::Array(items) => {
            if let Some(items_schema) = schema.get("items") {
                for item in items {
                    fill_defaults(items_schema, item, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Prunes `value` against its structural `schema`: where a schema lists `properties`, keys
/// neither among them nor covered by `additionalProperties` or
/// `x-kubernetes-preserve-unknown-fields` are dropped.
fn prune(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let preserve = preserves_unknown(schema);
            map.retain(|key, child| {
                if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
                    prune(child, child_schema);
                    return true;
                }
                if let Some(child_schema) = additional {
                    prune(child, child_schema);
                    return true;
                }
                // Without `properties` the schema does not say what is unknown: keep it.
                preserve || properties.is_none()
            });
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    prune(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use kube::core::cel::apply_defaults;
    use serde_json::json;

    use super::*;

    /// `fill_defaults` gives what kube's `apply_defaults` gives, on every kind upkeep serves and
    /// on a schema with each case of the walk (nested defaults, lists, maps, preserved unknown
    /// fields, a default that is an object itself).
    #[test]
    fn defaults_in_place_as_kube_does() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "mode": {"type": "string", "default": "auto"},
                        "limits": {"type": "object", "default": {"max": 3}, "properties": {
                            "max": {"type": "integer"}, "min": {"type": "integer", "default": 1}}},
                        "steps": {"type": "array", "items": {"type": "object", "properties": {
                            "retries": {"type": "integer", "default": 2}}}},
                        "byName": {"type": "object", "additionalProperties": {"type": "object",
                            "properties": {"on": {"type": "boolean", "default": true}}}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                            "additionalProperties": {"type": "object", "properties": {
                                "on": {"type": "boolean", "default": true}}}},
                    },
                },
            },
        });
        let objects = [
            json!({}),
            json!({"spec": {}}),
            json!({"spec": {"mode": "manual", "limits": {}, "steps": [{}, {"retries": 5}],
                "byName": {"a": {}, "b": {"on": false}}, "free": {"x": {}}}}),
            json!({"spec": {"steps": "not a list", "byName": 7}}),
        ];
        let mut schemas = vec![schema];
        schemas.extend(
            upkeep_core::api::crds()
                .into_iter()
                .filter_map(|crd| crd.spec.versions.into_iter().next()?.schema)
                .filter_map(|s| serde_json::to_value(s.open_api_v3_schema?).ok()),
        );
        for schema in &schemas {
            for object in &objects {
                let mut filled = object.clone();
                fill_defaults(schema, &mut filled, 0);
                assert_eq!(filled, apply_defaults(schema, object), "{object}");
            }
        }
    }
}
