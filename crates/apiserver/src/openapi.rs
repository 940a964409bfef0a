//! OpenAPI v3: `/openapi/v3` (where each group-version's document is) and
//! `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}` (one document per group-version),
//! enough for `kubectl explain` and `kubectl apply`:
//!
//! - `paths`: each resource's collection and object paths, whose operations carry
//!   `x-kubernetes-group-version-kind` (kubectl explain finds a resource's kind there) and the
//!   query parameters kubectl looks for (`fieldValidation`, so that `kubectl apply` validates on
//!   the server);
//! - `components.schemas`: every kind of the group-version with `x-kubernetes-group-version-kind`
//!   (kubectl explain finds the kind's schema by it) and the schemas they reference. A custom
//!   resource's schema is its CRD's `openAPIV3Schema` (storage version) named as the real server
//!   names it (`dev.upkeep.v1alpha1.FirmwareUpgrade`), with `apiVersion`, `kind` and `metadata`
//!   (a reference to `ObjectMeta`) described as the real server describes them; a built-in
//!   kind's is k8s-openapi's schema of the type (`io.k8s.api.core.v1.Pod`).
//!
//! Invariant: a document is built from the registry alone, so the same server always serves the
//! same documents.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::schemars::SchemaGenerator;
use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::resources::{Registry, ResourceInfo};

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const SCHEMAS: &str = "#/components/schemas/";

/// `/openapi/v3`: where each group-version's document is.
pub(crate) fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let key = if group.is_empty() {
                format!("api/{version}")
            } else {
                format!("apis/{group}/{version}")
            };
            let url = format!("/openapi/v3/{key}");
            paths.insert(key, json!({"serverRelativeURL": url}));
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`, if served.
pub(crate) fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<&ResourceInfo> = registry.in_group_version(group, version).collect();
    if resources.is_empty() {
        return None;
    }
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut kinds = Vec::new();
    // CRD schemas go in as they are, after the generator's transforms ran over its own.
    let mut custom = Vec::new();
    for info in &resources {
        let name = match (&info.schema, info.builtin_schema) {
            (Some(schema), _) => {
                custom_schema(&mut generator, info, version, schema).map(|(name, schema)| {
                    custom.push((name.clone(), schema));
                    name
                })
            }
            (None, Some(build)) => {
                let reference = build(&mut generator);
                reference
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix(SCHEMAS))
                    .map(str::to_string)
            }
            (None, None) => None,
        };
        if let Some(name) = name {
            kinds.push((name, gvk(group, version, &info.kind)));
        }
    }
    let mut schemas = generator.take_definitions(true);
    schemas.extend(custom);
    for (name, gvk) in kinds {
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            schema.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
        }
    }
    let mut paths = Map::new();
    for info in &resources {
        add_paths(&mut paths, info, group, version);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// The component name the real server gives a custom resource: the group reversed, the
/// version, the kind (`dev.upkeep.v1alpha1.FirmwareUpgrade`).
fn component_name(info: &ResourceInfo, version: &str) -> String {
    let mut group: Vec<&str> = info.group.split('.').collect();
    group.reverse();
    format!("{}.{version}.{}", group.join("."), info.kind)
}

/// A custom resource's component: its name and schema (`ObjectMeta`, which it references, goes
/// into the generator's definitions).
fn custom_schema(
    generator: &mut SchemaGenerator,
    info: &ResourceInfo,
    version: &str,
    schema: &Value,
) -> Option<(String, Value)> {
    let meta = generator.subschema_for::<ObjectMeta>();
    let mut schema = schema.clone();
    let properties = schema
        .as_object_mut()?
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()?;
    for (field, doc) in [("apiVersion", API_VERSION_DOC), ("kind", KIND_DOC)] {
        let entry = properties
            .entry(field)
            .or_insert_with(|| json!({"type": "string"}));
        if let Some(map) = entry.as_object_mut() {
            map.entry("description").or_insert_with(|| doc.into());
        }
    }
    properties.insert(
        "metadata".into(),
        json!({"allOf": [meta], "description": METADATA_DOC}),
    );
    Some((component_name(info, version), schema))
}

/// The collection and object paths of a resource, each operation naming its kind.
fn add_paths(paths: &mut Map<String, Value>, info: &ResourceInfo, group: &str, version: &str) {
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let collection = if info.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", info.plural)
    } else {
        format!("{prefix}/{}", info.plural)
    };
    let gvk = gvk(group, version, &info.kind);
    let parameters = json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        {"name": "force", "in": "query", "schema": {"type": "boolean"}},
    ]);
    let operation = |verb: &str, action: &str| {
        json!({
            "operationId": format!("{verb}{}", info.kind),
            "parameters": parameters,
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        })
    };
    paths.insert(
        collection.clone(),
        json!({
            "get": operation("list", "list"),
            "post": operation("create", "post"),
            "delete": operation("deletecollection", "deletecollection"),
        }),
    );
    paths.insert(
        format!("{collection}/{{name}}"),
        json!({
            "get": operation("read", "get"),
            "put": operation("replace", "put"),
            "patch": operation("patch", "patch"),
            "delete": operation("delete", "delete"),
        }),
    );
}
