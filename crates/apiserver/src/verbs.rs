//! The write verbs and what the API server does around them: system metadata, generation,
//! the status subresource, optimistic concurrency, managed fields, finalizers and
//! deletionTimestamp, and garbage collection of dependents.
//!
//! Everything here runs under the state lock, so a write is atomic with its event.

use std::collections::VecDeque;
use std::sync::Arc;

use http::StatusCode;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::apply::{self, Applier};
use super::fields::{self, Domain, Entry, Writer};
use super::patch::{self, PatchKind};
use super::resources::{Registry, ResourceId, ResourceInfo};
use super::selector::valid_label_value;
use super::status::{ApiError, ApiResult, Cause};
use super::store::{ObjKey, ObjRef, State, Stored};
use super::validation::Validations;
use super::{ObjectKey, WriteCounts};

/// The finalizer the API server adds for foreground deletion.
const FOREGROUND: &str = "foregroundDeletion";

/// One write request's context.
#[derive(Clone)]
pub(crate) struct Ctx<'a> {
    /// The store the objects live in (the request's resource, or the one it is a view of).
    pub res: ResourceId,
    /// The request's resource: objects are checked and written in its form, and converted to
    /// the store's form only when stored (see `convert`).
    pub info: &'a ResourceInfo,
    pub registry: &'a Registry,
    pub validations: &'a Validations,
    /// The version of the URL.
    pub version: &'a str,
    /// The namespace of the URL (namespaced resources).
    pub namespace: Option<&'a str>,
    /// A write to the status subresource.
    pub status: bool,
    /// The field manager (`fieldManager`, or from the user agent).
    pub manager: &'a str,
    /// Whether the manager was given explicitly (`fieldManager`), as apply requires.
    pub manager_given: bool,
    pub dry_run: bool,
    pub now: Timestamp,
}

impl Ctx<'_> {
    fn api_version(&self) -> String {
        self.info.api_version(self.version)
    }

    fn domain(&self) -> Domain {
        if self.status {
            Domain::StatusOnly
        } else if self.info.status_subresource {
            Domain::NoStatus
        } else {
            Domain::Whole
        }
    }

    fn subresource(&self) -> Option<&'static str> {
        self.status.then_some("status")
    }

    fn key(&self, name: &str) -> ObjKey {
        ObjKey::new(self.namespace.unwrap_or_default(), name)
    }

    fn object_key(&self, name: &str) -> ObjectKey {
        ObjectKey {
            kind: self.info.kind.clone(),
            namespace: self.namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        }
    }

    /// Counts a write in the totals and, but for Events, per object: Events are many, each
    /// written once and soon expired, and a count kept for every Event a long run made would
    /// outgrow the Events themselves.
    fn count(&self, state: &mut State, name: &str, bump: impl Fn(&mut WriteCounts)) {
        if self.dry_run {
            return;
        }
        let object = (self.info.kind != "Event").then(|| self.object_key(name));
        state.count(object, bump);
    }

    fn writer<'w>(&'w self, api_version: &'w str, now: &'w str) -> Writer<'w> {
        Writer {
            manager: self.manager,
            subresource: self.subresource(),
            api_version,
            now,
        }
    }

    fn now_string(&self) -> String {
        timestamp(self.now)
    }

    /// `object` of the request's resource in its store's form.
    pub fn to_storage(&self, mut object: Value) -> Value {
        if self.info.conversion.is_some() {
            let store = self.registry.get(self.res);
            let api_version = store.api_version(&store.versions[0]);
            self.info.conversion.to_storage(&mut object, &api_version);
        }
        object
    }

    /// The stored object at `key`, in the request's resource's form.
    pub fn load(&self, state: &State, key: &ObjKey) -> Option<Arc<Stored>> {
        let stored = state.get(self.res, key)?;
        if !self.info.conversion.is_some() {
            return Some(stored.clone());
        }
        let mut value = stored.value();
        self.info
            .conversion
            .to_view(&mut value, &self.api_version());
        Some(Arc::new(Stored::new(value, stored.rv)))
    }

    /// Stores `object` (of the request's resource) at `key` in its store's form.
    fn put(&self, state: &mut State, key: ObjKey, object: Value) -> Arc<Stored> {
        state.put(self.res, key, self.to_storage(object))
    }
}

/// A time as object metadata carries it: RFC 3339, whole seconds.
pub(crate) fn timestamp(now: Timestamp) -> String {
    Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// How a write changes `managedFields`.
enum Managed {
    /// A create, update or patch by `Ctx::manager`.
    Update,
    /// A server-side apply: the entries it computed.
    Apply(Vec<Entry>),
}

/// Counts a write that failed with 409.
pub(crate) fn count_conflict(state: &mut State, ctx: &Ctx<'_>, name: &str, error: &ApiError) {
    if error.code == StatusCode::CONFLICT {
        ctx.count(state, name, |c| c.conflicts += 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

fn metadata(object: &Value) -> Option<&Map<String, Value>> {
    object.get("metadata").and_then(Value::as_object)
}

/// `metadata` of an object, made an (empty) object first if it is not one; callers have
/// checked that `object` itself is an object (a non-object is replaced by an empty one).
fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    let Value::Object(root) = object else {
        unreachable!("the root was just made an object")
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let Value::Object(map) = meta else {
        unreachable!("metadata was just made an object")
    };
    map
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    metadata(object)?.get(field)?.as_str()
}

/// The body must be an object of the URL's apiVersion and kind.
fn check_type(ctx: &Ctx<'_>, object: &Value) -> ApiResult<()> {
    if !object.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object of kind {}",
            ctx.info.kind
        )));
    }
    let expected = ctx.api_version();
    match object.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v == expected => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
        None => {
            return Err(ApiError::bad_request(format!(
                "Object 'apiVersion' is missing; expected {expected}"
            )));
        }
    }
    match object.get("kind").and_then(Value::as_str) {
        Some(k) if k == ctx.info.kind => Ok(()),
        Some(k) => Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            ctx.info.kind
        ))),
        None => Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing; expected {}",
            ctx.info.kind
        ))),
    }
}

/// Name and namespace of the body against the URL; fills them in where the body has none.
fn check_identity(ctx: &Ctx<'_>, object: &mut Value, name: &str) -> ApiResult<()> {
    if object
        .get("metadata")
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(ApiError::invalid_field(
            ctx.info,
            name,
            "metadata",
            "Invalid value: must be an object",
        ));
    }
    let meta = metadata_mut(object);
    match meta.get("name") {
        None | Some(Value::Null) => {
            meta.insert("name".into(), name.into());
        }
        Some(Value::String(n)) if n == name => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                other.as_str().unwrap_or(&other.to_string())
            )));
        }
    }
    check_namespace(ctx, meta)
}

fn check_namespace(ctx: &Ctx<'_>, meta: &mut Map<String, Value>) -> ApiResult<()> {
    match ctx.namespace {
        Some(ns) => match meta.get("namespace") {
            None | Some(Value::Null) => {
                meta.insert("namespace".into(), ns.into());
            }
            Some(Value::String(s)) if s.is_empty() => {
                meta.insert("namespace".into(), ns.into());
            }
            Some(Value::String(s)) if s == ns => {}
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        },
        None => {
            meta.remove("namespace");
        }
    }
    Ok(())
}

/// A DNS-1123 subdomain, as object names must be.
fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 253
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
}

fn cause(field: &str, message: impl Into<String>) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: message.into(),
        field: field.into(),
    }
}

/// The shape of `metadata`: name, labels, annotations, finalizers, owner references.
fn validate_metadata(ctx: &Ctx<'_>, object: &Value, name: &str) -> ApiResult<()> {
    let mut causes = Vec::new();
    if !valid_name(name) {
        causes.push(cause(
            "metadata.name",
            format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    let Some(meta) = metadata(object) else {
        return Ok(());
    };
    match meta.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            for (key, value) in labels {
                let ok_key = match key.rsplit_once('/') {
                    Some((prefix, n)) => {
                        !prefix.is_empty() && !n.is_empty() && n.len() <= 63 && valid_label_value(n)
                    }
                    None => !key.is_empty() && key.len() <= 63 && valid_label_value(key),
                };
                if !ok_key {
                    causes.push(cause(
                        "metadata.labels",
                        format!("Invalid value: {key:?}: not a valid label key"),
                    ));
                }
                match value.as_str() {
                    Some(v) if v.len() <= 63 && valid_label_value(v) => {}
                    _ => causes.push(cause(
                        "metadata.labels",
                        format!("Invalid value: {value}: not a valid label value"),
                    )),
                }
            }
        }
        Some(_) => causes.push(cause("metadata.labels", "Invalid value: must be an object")),
    }
    match meta.get("annotations") {
        None | Some(Value::Null) => {}
        Some(Value::Object(annotations)) => {
            if annotations.values().any(|v| !v.is_string()) {
                causes.push(cause(
                    "metadata.annotations",
                    "Invalid value: annotation values must be strings",
                ));
            }
        }
        Some(_) => causes.push(cause(
            "metadata.annotations",
            "Invalid value: must be an object",
        )),
    }
    match meta.get("finalizers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {}
        Some(_) => causes.push(cause(
            "metadata.finalizers",
            "Invalid value: must be a list of strings",
        )),
    }
    match meta.get("ownerReferences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(refs)) => {
            let mut controllers = 0;
            for (i, r) in refs.iter().enumerate() {
                for field in ["apiVersion", "kind", "name", "uid"] {
                    if r.get(field)
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        causes.push(Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value".into(),
                            field: format!("metadata.ownerReferences[{i}].{field}"),
                        });
                    }
                }
                if r.get("controller").and_then(Value::as_bool) == Some(true) {
                    controllers += 1;
                }
            }
            if controllers > 1 {
                causes.push(cause(
                    "metadata.ownerReferences",
                    "Invalid value: only one reference can have Controller set to true",
                ));
            }
        }
        Some(_) => causes.push(cause(
            "metadata.ownerReferences",
            "Invalid value: must be a list",
        )),
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(ctx.info, name, causes))
    }
}

fn finalizers(object: &Value) -> Vec<&str> {
    metadata(object)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn is_deleting(object: &Value) -> bool {
    metadata(object).is_some_and(|m| m.get("deletionTimestamp").is_some_and(|t| !t.is_null()))
}

/// Everything of an object but `metadata` (and `status` when `without_status`).
fn content_equal(a: &Value, b: &Value, without_status: bool) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let skip = |k: &str| k == "metadata" || (without_status && k == "status");
    let a_keys = a.iter().filter(|(k, _)| !skip(k));
    let b_count = b.keys().filter(|k| !skip(k)).count();
    let mut a_count = 0;
    for (k, v) in a_keys {
        a_count += 1;
        if b.get(k) != Some(v) {
            return false;
        }
    }
    a_count == b_count
}

/// What the API server does to a Secret on every write: `stringData` goes into `data`
/// (base64-encoded), overriding keys of the same name, and is not stored; a missing `type` is
/// `Opaque`.
fn fold_string_data(ctx: &Ctx<'_>, object: &mut Value) {
    if !ctx.info.is_core("Secret") {
        return;
    }
    let Some(map) = object.as_object_mut() else {
        return;
    };
    // The real server's defaulting: a Secret without a type is `Opaque`.
    if map.get("type").is_none_or(|t| t.is_null() || t == "") {
        map.insert("type".into(), "Opaque".into());
    }
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    if !map.get("data").is_some_and(Value::is_object) {
        map.insert("data".into(), json!({}));
    }
    if let Some(Value::Object(data)) = map.get_mut("data") {
        for (key, value) in strings {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let encoded = serde_json::to_value(k8s_openapi::ByteString(text.into_bytes()))
                .unwrap_or(Value::Null);
            data.insert(key, encoded);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Create

/// POST: creates the object.
pub(crate) fn create(state: &mut State, ctx: &Ctx<'_>, body: Value) -> ApiResult<Arc<Stored>> {
    let mut object = body;
    check_type(ctx, &object)?;
    if object.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(ApiError::invalid_field(
            ctx.info,
            "",
            "metadata",
            "Invalid value: must be an object",
        ));
    }
    let meta = metadata_mut(&mut object);
    check_namespace(ctx, meta)?;
    let name = match (meta.get("name"), meta.get("generateName")) {
        (Some(Value::String(n)), _) if !n.is_empty() => n.clone(),
        (_, Some(Value::String(prefix))) if !prefix.is_empty() => {
            let prefix = prefix.clone();
            loop {
                let candidate = state.generate_name(&prefix);
                if state.get(ctx.res, &ctx.key(&candidate)).is_none() {
                    break candidate;
                }
            }
        }
        _ => {
            return Err(ApiError::invalid(
                ctx.info,
                "",
                vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: name or generateName is required".into(),
                    field: "metadata.name".into(),
                }],
            ));
        }
    };
    metadata_mut(&mut object).insert("name".into(), name.clone().into());
    let result = create_prepared(state, ctx, object, &name, Managed::Update);
    match &result {
        Ok(_) => ctx.count(state, &name, |c| c.creates += 1),
        Err(e) => count_conflict(state, ctx, &name, e),
    }
    result
}

/// Creates `object` (named `name`, identity checked) with system metadata.
fn create_prepared(
    state: &mut State,
    ctx: &Ctx<'_>,
    mut object: Value,
    name: &str,
    managed: Managed,
) -> ApiResult<Arc<Stored>> {
    validate_metadata(ctx, &object, name)?;
    fold_string_data(ctx, &mut object);
    ctx.validations.prune_and_default(ctx.res, &mut object);
    if !ctx.dry_run {
        state.expire(ctx.now);
    }
    let key = ctx.key(name);
    if state.get(ctx.res, &key).is_some() {
        return Err(ApiError::already_exists(ctx.info, name));
    }
    if ctx.info.status_subresource
        && !ctx.info.status_on_create
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    if ctx.info.is_core("Pod") {
        // As the real server prepares a new pod: Pending until a kubelet says otherwise.
        object["status"] = json!({"phase": "Pending"});
    }
    if ctx.info.is_core("Namespace") {
        object["status"] = json!({"phase": "Active"});
        let meta = metadata_mut(&mut object);
        if !meta.get("labels").is_some_and(Value::is_object) {
            meta.insert("labels".into(), json!({}));
        }
        if let Some(Value::Object(labels)) = meta.get_mut("labels") {
            labels.insert("kubernetes.io/metadata.name".into(), name.into());
        }
    }
    let uid = state.next_uid();
    let now = ctx.now_string();
    let meta = metadata_mut(&mut object);
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ] {
        meta.remove(field);
    }
    meta.insert("uid".into(), uid.into());
    meta.insert("creationTimestamp".into(), now.clone().into());
    if ctx.info.generation {
        meta.insert("generation".into(), 1.into());
    } else {
        meta.remove("generation");
    }
    ctx.validations
        .check(ctx.res, ctx.info, name, &object, None)?;
    let entries = match managed {
        Managed::Update => {
            let mut entries = Vec::new();
            let api_version = ctx.api_version();
            let writer = ctx.writer(&api_version, &now);
            fields::record_update(&mut entries, &json!({}), &object, ctx.domain(), &writer);
            entries
        }
        Managed::Apply(entries) => entries,
    };
    fields::write(&mut object, entries);
    if ctx.dry_run {
        return Ok(Arc::new(Stored::new(object, state.rv)));
    }
    let stored = ctx.put(state, key.clone(), object);
    if ctx.info.kind == "Event" {
        let at = ObjRef {
            res: ctx.res,
            key: key.clone(),
        };
        state.expire_later(at, &stored, ctx.now);
    }
    collect_if_orphaned(state, ctx, &key, &stored);
    Ok(stored)
}

// ---------------------------------------------------------------------------------------------
// Update: replace, patch, apply

/// PUT: replaces the object (or its status).
pub(crate) fn replace(
    state: &mut State,
    ctx: &Ctx<'_>,
    name: &str,
    body: Value,
) -> ApiResult<Arc<Stored>> {
    let result = replace_inner(state, ctx, name, body);
    match &result {
        Ok(_) if ctx.status => ctx.count(state, name, |c| c.status_writes += 1),
        Ok(_) => ctx.count(state, name, |c| c.replaces += 1),
        Err(e) => count_conflict(state, ctx, name, e),
    }
    result
}

fn replace_inner(
    state: &mut State,
    ctx: &Ctx<'_>,
    name: &str,
    mut body: Value,
) -> ApiResult<Arc<Stored>> {
    check_type(ctx, &body)?;
    check_identity(ctx, &mut body, name)?;
    let old = ctx
        .load(state, &ctx.key(name))
        .ok_or_else(|| ApiError::not_found(ctx.info, name))?;
    match meta_str(&body, "resourceVersion") {
        Some(rv) if !rv.is_empty() && rv != old.rv.to_string() => {
            return Err(ApiError::stale(ctx.info, name));
        }
        Some(rv) if !rv.is_empty() => {}
        _ if ctx.info.custom => {
            return Err(ApiError::invalid_field(
                ctx.info,
                name,
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            ));
        }
        _ => {}
    }
    let old_value = old.value();
    let new = finish_update(ctx, &old_value, body, name, Managed::Update)?;
    Ok(commit_update(state, ctx, &old, &old_value, new))
}

/// PATCH: a merge, JSON, strategic or apply patch of the object (or its status). True with
/// the object when an apply created it.
pub(crate) fn patch(
    state: &mut State,
    ctx: &Ctx<'_>,
    name: &str,
    kind: PatchKind,
    body: &[u8],
    force: bool,
) -> ApiResult<(Arc<Stored>, bool)> {
    let result = match kind {
        PatchKind::Apply => apply_patch(state, ctx, name, body, force),
        _ => patch_inner(state, ctx, name, kind, body).map(|s| (s, false)),
    };
    match &result {
        Ok((_, true)) => ctx.count(state, name, |c| c.creates += 1),
        Ok(_) if ctx.status => ctx.count(state, name, |c| c.status_writes += 1),
        Ok(_) if kind == PatchKind::Apply => ctx.count(state, name, |c| c.applies += 1),
        Ok(_) => ctx.count(state, name, |c| c.patches += 1),
        Err(e) => count_conflict(state, ctx, name, e),
    }
    result
}

fn patch_inner(
    state: &mut State,
    ctx: &Ctx<'_>,
    name: &str,
    kind: PatchKind,
    body: &[u8],
) -> ApiResult<Arc<Stored>> {
    let patch_doc = patch::parse_json(body)?;
    let old = ctx
        .load(state, &ctx.key(name))
        .ok_or_else(|| ApiError::not_found(ctx.info, name))?;
    let mut doc = old.value();
    match kind {
        PatchKind::Merge => patch::merge(&mut doc, &patch_doc),
        PatchKind::Json => patch::json_patch(&mut doc, &patch_doc)?,
        PatchKind::Strategic => patch::strategic(&mut doc, &patch_doc),
        PatchKind::Apply => {}
    }
    check_type(ctx, &doc)?;
    check_identity(ctx, &mut doc, name)?;
    if let Some(rv) = meta_str(&doc, "resourceVersion")
        && !rv.is_empty()
        && rv != old.rv.to_string()
    {
        return Err(ApiError::stale(ctx.info, name));
    }
    let old_value = old.value();
    let new = finish_update(ctx, &old_value, doc, name, Managed::Update)?;
    Ok(commit_update(state, ctx, &old, &old_value, new))
}

/// Parses an apply body: JSON, or YAML.
fn parse_apply_body(body: &[u8]) -> ApiResult<Value> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Ok(value);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("error decoding YAML: the body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

fn apply_patch(
    state: &mut State,
    ctx: &Ctx<'_>,
    name: &str,
    body: &[u8],
    force: bool,
) -> ApiResult<(Arc<Stored>, bool)> {
    if !ctx.manager_given {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let mut config = parse_apply_body(body)?;
    check_type(ctx, &config)?;
    check_identity(ctx, &mut config, name)?;
    let meta = metadata_mut(&mut config);
    if meta.get("managedFields").is_some_and(|m| !m.is_null()) {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let precondition = match meta.remove("resourceVersion") {
        Some(Value::String(rv)) if !rv.is_empty() => Some(rv),
        _ => None,
    };
    for field in ["uid", "creationTimestamp", "generation", "selfLink"] {
        meta.remove(field);
    }
    let old = ctx.load(state, &ctx.key(name));
    if let Some(rv) = &precondition {
        match &old {
            Some(old) if *rv == old.rv.to_string() => {}
            _ => return Err(ApiError::stale(ctx.info, name)),
        }
    }
    if old.is_none() && ctx.status {
        return Err(ApiError::not_found(ctx.info, name));
    }
    let live = match &old {
        Some(old) => old.value(),
        None => {
            let mut skeleton = json!({
                "apiVersion": ctx.api_version(),
                "kind": ctx.info.kind,
                "metadata": {"name": name},
            });
            if let Some(ns) = ctx.namespace {
                skeleton["metadata"]["namespace"] = ns.into();
            }
            skeleton
        }
    };
    ctx.validations.prune(ctx.res, &mut config);
    let mut entries = fields::read(&live);
    let now = ctx.now_string();
    let api_version = ctx.api_version();
    let applier = Applier {
        manager: ctx.manager,
        subresource: ctx.subresource(),
        api_version: &api_version,
        force,
        domain: ctx.domain(),
        now: &now,
    };
    let merged = apply::apply(&live, &config, &mut entries, &applier)
        .map_err(|conflicts| ApiError::apply_conflicts(ctx.info, name, &conflicts))?;
    match old {
        None => {
            create_prepared(state, ctx, merged, name, Managed::Apply(entries)).map(|s| (s, true))
        }
        Some(old) => {
            // `live` is the old object, already read (the apply merged onto it).
            let new = finish_update(ctx, &live, merged, name, Managed::Apply(entries))?;
            Ok((commit_update(state, ctx, &old, &live, new), false))
        }
    }
}

/// Turns the requested object into the one to store: identity checked, system fields kept
/// from the live object, `.status` or everything else kept as the subresource demands,
/// generation bumped on spec changes, managed fields recorded.
fn finish_update(
    ctx: &Ctx<'_>,
    old_value: &Value,
    requested: Value,
    name: &str,
    managed: Managed,
) -> ApiResult<Value> {
    let mut new = requested;
    check_type(ctx, &new)?;
    check_identity(ctx, &mut new, name)?;
    validate_metadata(ctx, &new, name)?;
    fold_string_data(ctx, &mut new);
    ctx.validations.prune_and_default(ctx.res, &mut new);
    if ctx.status {
        let status = new.get("status").cloned();
        new = old_value.clone();
        match (new.as_object_mut(), status) {
            (Some(map), Some(status)) => {
                map.insert("status".into(), status);
            }
            (Some(map), None) => {
                map.remove("status");
            }
            _ => {}
        }
    } else if ctx.info.status_subresource {
        let status = old_value.get("status").cloned();
        if let Some(map) = new.as_object_mut() {
            match status {
                Some(status) => map.insert("status".into(), status),
                None => map.remove("status"),
            };
        }
    }
    let old_meta = metadata(old_value);
    let meta = metadata_mut(&mut new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
    ] {
        match old_meta.and_then(|m| m.get(field)) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    meta.remove("selfLink");
    if is_deleting(old_value) {
        let before = finalizers(old_value);
        if finalizers(&new).iter().any(|f| !before.contains(f)) {
            return Err(ApiError::invalid(
                ctx.info,
                name,
                vec![Cause {
                    reason: "FieldValueForbidden".into(),
                    message:
                        "Forbidden: no new finalizers can be added if the object is being deleted"
                            .into(),
                    field: "metadata.finalizers".into(),
                }],
            ));
        }
    }
    if ctx.info.generation
        && !ctx.status
        && !content_equal(old_value, &new, ctx.info.status_subresource)
    {
        let generation = old_meta
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        metadata_mut(&mut new).insert("generation".into(), (generation + 1).into());
    }
    ctx.validations
        .check(ctx.res, ctx.info, name, &new, Some(old_value))?;
    let entries = match managed {
        Managed::Update => {
            let mut entries = fields::read(old_value);
            let (api_version, now) = (ctx.api_version(), ctx.now_string());
            let writer = ctx.writer(&api_version, &now);
            fields::record_update(&mut entries, old_value, &new, ctx.domain(), &writer);
            entries
        }
        Managed::Apply(entries) => entries,
    };
    fields::write(&mut new, entries);
    Ok(new)
}

/// Stores an update of `old` (whose object is `old_value`): nothing happens for an unchanged
/// object (no new version, no event); an object being deleted whose last finalizer is gone is
/// removed.
fn commit_update(
    state: &mut State,
    ctx: &Ctx<'_>,
    old: &Arc<Stored>,
    old_value: &Value,
    new: Value,
) -> Arc<Stored> {
    // The trees compare as their JSON would (keys in order, numbers as written), without
    // encoding the one or decoding the other.
    if new == *old_value {
        return old.clone();
    }
    if ctx.dry_run {
        return Arc::new(Stored::new(new, old.rv));
    }
    let key = ctx.key(old.name());
    if is_deleting(&new) && finalizers(&new).is_empty() {
        let mut gc = Gc::new(ctx.registry, ctx.now);
        let removed = gc.remove(state, ctx.res, &key, ctx.to_storage(new));
        gc.run(state);
        if let Some(removed) = removed {
            return removed;
        }
        return old.clone();
    }
    let stored = ctx.put(state, key.clone(), new);
    collect_if_orphaned(state, ctx, &key, &stored);
    stored
}

/// The garbage collector deletes an object whose owners are all gone (here: at once, after
/// the write that named them).
fn collect_if_orphaned(state: &mut State, ctx: &Ctx<'_>, key: &ObjKey, stored: &Stored) {
    let owners = stored.owners();
    if owners.is_empty() || owners.iter().any(|uid| state.by_uid(uid).is_some()) {
        return;
    }
    let mut gc = Gc::new(ctx.registry, ctx.now);
    gc.delete_dependent(
        state,
        &ObjRef {
            res: ctx.res,
            key: key.clone(),
        },
    );
    gc.run(state);
}

// ---------------------------------------------------------------------------------------------
// Delete

/// How dependents are treated when their owner is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Propagation {
    /// Delete the owner now, its dependents after (the default).
    #[default]
    Background,
    /// Delete the dependents first; the owner waits with the `foregroundDeletion` finalizer.
    Foreground,
    /// Keep the dependents, removing their references to the owner.
    Orphan,
}

/// The `DeleteOptions` body of a delete.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOptions {
    pub propagation: Propagation,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (empty body: the defaults).
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        let propagation = match v.get("propagationPolicy").and_then(Value::as_str) {
            None => match v.get("orphanDependents").and_then(Value::as_bool) {
                Some(true) => Propagation::Orphan,
                _ => Propagation::Background,
            },
            Some("Background") => Propagation::Background,
            Some("Foreground") => Propagation::Foreground,
            Some("Orphan") => Propagation::Orphan,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unsupported propagationPolicy {other:?}: Orphan, Background or Foreground"
                )));
            }
        };
        let pre = |field: &str| {
            v.pointer(&format!("/preconditions/{field}"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let dry_run = match v.get("dryRun") {
            Some(Value::Array(list)) => !list.is_empty(),
            Some(Value::String(s)) => !s.is_empty(),
            _ => false,
        };
        Ok(Self {
            propagation,
            precondition_uid: pre("uid"),
            precondition_rv: pre("resourceVersion"),
            dry_run,
        })
    }
}

/// What a delete did.
pub(crate) enum Deleted {
    /// The object is gone (the object as last seen).
    Gone(Arc<Stored>),
    /// The object waits for finalizers, with its deletionTimestamp set.
    Pending(Arc<Stored>),
}

/// DELETE of one object.
pub(crate) fn delete(
    state: &mut State,
    ctx: &Ctx<'_>,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Deleted> {
    let result = delete_inner(state, ctx, name, opts);
    match &result {
        Ok(_) if !opts.dry_run => ctx.count(state, name, |c| c.deletes += 1),
        Ok(_) => {}
        Err(e) => count_conflict(state, ctx, name, e),
    }
    result
}

fn delete_inner(
    state: &mut State,
    ctx: &Ctx<'_>,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Deleted> {
    let key = ctx.key(name);
    let old = ctx
        .load(state, &key)
        .ok_or_else(|| ApiError::not_found(ctx.info, name))?;
    if let Some(uid) = &opts.precondition_uid
        && uid != old.uid()
    {
        return Err(ApiError::conflict(
            ctx.info,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old.uid()
            ),
        ));
    }
    if let Some(rv) = &opts.precondition_rv
        && *rv != old.rv.to_string()
    {
        return Err(ApiError::conflict(
            ctx.info,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                old.rv
            ),
        ));
    }
    if opts.dry_run || ctx.dry_run {
        return Ok(if finalizers(&old.value()).is_empty() {
            Deleted::Gone(old)
        } else {
            Deleted::Pending(old)
        });
    }
    let uid = old.uid().to_string();
    let mut gc = Gc::new(ctx.registry, ctx.now);
    let mut value = old.value();
    match opts.propagation {
        Propagation::Orphan => gc.orphan_children(state, &uid),
        Propagation::Foreground if state.has_children(&uid) => {
            let mut fins: Vec<Value> = finalizers(&value).iter().map(|f| json!(f)).collect();
            if !fins.iter().any(|f| f == FOREGROUND) {
                fins.push(json!(FOREGROUND));
            }
            metadata_mut(&mut value).insert("finalizers".into(), Value::Array(fins));
            mark_deleting(&mut value, ctx.now);
            let stored = if value == old.value() {
                old.clone()
            } else {
                ctx.put(state, key, value)
            };
            for child in state.children_of(&uid) {
                gc.delete_dependent(state, &child);
            }
            gc.run(state);
            // The owner is gone already if every dependent went at once.
            let current = state.by_uid(&uid).cloned();
            return Ok(
                match current.and_then(|r| state.get(r.res, &r.key).cloned()) {
                    Some(now) => Deleted::Pending(now),
                    None => Deleted::Gone(stored),
                },
            );
        }
        _ => {}
    }
    if finalizers(&value).is_empty() {
        let removed = gc.remove(state, ctx.res, &key, ctx.to_storage(value));
        gc.run(state);
        return removed
            .map(Deleted::Gone)
            .ok_or_else(|| ApiError::not_found(ctx.info, name));
    }
    if mark_deleting(&mut value, ctx.now) {
        let stored = ctx.put(state, key, value);
        gc.run(state);
        return Ok(Deleted::Pending(stored));
    }
    gc.run(state);
    Ok(Deleted::Pending(old))
}

/// Sets deletionTimestamp (and bumps generation) unless already set; true if it changed.
fn mark_deleting(value: &mut Value, now: Timestamp) -> bool {
    if is_deleting(value) {
        return false;
    }
    let meta = metadata_mut(value);
    meta.insert("deletionTimestamp".into(), timestamp(now).into());
    meta.insert("deletionGracePeriodSeconds".into(), 0.into());
    if let Some(generation) = meta.get("generation").and_then(Value::as_i64)
        && generation > 0
    {
        meta.insert("generation".into(), (generation + 1).into());
    }
    true
}

/// Pending garbage-collection work.
enum Work {
    /// The object with this uid is gone: handle its dependents.
    OwnerGone(String),
    /// A dependent of this owner is gone: finish its foreground deletion if it was the last.
    CheckForeground(String),
    /// This namespace is gone: delete what was in it.
    NamespaceGone(String),
}

/// The garbage collector, run synchronously after a removal.
pub(crate) struct Gc<'a> {
    registry: &'a Registry,
    now: Timestamp,
    queue: VecDeque<Work>,
}

impl<'a> Gc<'a> {
    pub fn new(registry: &'a Registry, now: Timestamp) -> Self {
        Self {
            registry,
            now,
            queue: VecDeque::new(),
        }
    }

    /// Removes an object for good and queues what follows from it.
    pub fn remove(
        &mut self,
        state: &mut State,
        res: ResourceId,
        key: &ObjKey,
        last: Value,
    ) -> Option<Arc<Stored>> {
        let removed = state.remove(res, key, last)?;
        let uid = removed.uid().to_string();
        if !uid.is_empty() {
            self.queue.push_back(Work::OwnerGone(uid));
        }
        for owner in removed.owners() {
            self.queue
                .push_back(Work::CheckForeground(owner.to_string()));
        }
        let info = self.registry.get(res);
        if info.group.is_empty() && info.kind == "Namespace" {
            self.queue
                .push_back(Work::NamespaceGone(removed.name().to_string()));
        }
        Some(removed)
    }

    /// Deletes a dependent in the background: at once, or by deletionTimestamp when it has
    /// finalizers.
    fn delete_dependent(&mut self, state: &mut State, at: &ObjRef) {
        let Some(current) = state.get(at.res, &at.key).cloned() else {
            return;
        };
        let mut value = current.value();
        if finalizers(&value).is_empty() {
            self.remove(state, at.res, &at.key, value);
        } else if mark_deleting(&mut value, self.now) {
            state.put(at.res, at.key.clone(), value);
        }
    }

    /// Removes references to `uid` from its dependents (orphan propagation).
    fn orphan_children(&mut self, state: &mut State, uid: &str) {
        for child in state.take_children(uid) {
            strip_owner(state, &child, uid);
        }
    }

    /// Runs the queued work to the end.
    pub fn run(&mut self, state: &mut State) {
        while let Some(work) = self.queue.pop_front() {
            match work {
                Work::OwnerGone(uid) => {
                    for child in state.take_children(&uid) {
                        let Some(current) = state.get(child.res, &child.key) else {
                            continue;
                        };
                        let other_owners_alive = current
                            .owners()
                            .iter()
                            .any(|o| **o != *uid && state.by_uid(o).is_some());
                        if other_owners_alive {
                            strip_owner(state, &child, &uid);
                        } else {
                            self.delete_dependent(state, &child);
                        }
                    }
                }
                Work::CheckForeground(owner) => {
                    let Some(at) = state.by_uid(&owner).cloned() else {
                        continue;
                    };
                    let Some(current) = state.get(at.res, &at.key).cloned() else {
                        continue;
                    };
                    if !is_deleting(&current.value())
                        || !finalizers(&current.value()).contains(&FOREGROUND)
                        || state.has_children(&owner)
                    {
                        continue;
                    }
                    let mut value = current.value();
                    let rest: Vec<Value> = finalizers(&value)
                        .into_iter()
                        .filter(|f| *f != FOREGROUND)
                        .map(|f| json!(f))
                        .collect();
                    let empty = rest.is_empty();
                    let meta = metadata_mut(&mut value);
                    if empty {
                        meta.remove("finalizers");
                        self.remove(state, at.res, &at.key, value);
                    } else {
                        meta.insert("finalizers".into(), Value::Array(rest));
                        state.put(at.res, at.key.clone(), value);
                    }
                }
                Work::NamespaceGone(ns) => {
                    for (res, info) in self.registry.all().iter().enumerate() {
                        if !info.namespaced {
                            continue;
                        }
                        let keys: Vec<ObjKey> = state.stores[res]
                            .in_namespace(Some(&ns))
                            .map(|s| ObjKey::new(&ns, s.name()))
                            .collect();
                        for key in keys {
                            self.delete_dependent(state, &ObjRef { res, key });
                        }
                    }
                }
            }
        }
    }
}

/// Removes the owner reference to `uid` from the object at `at`.
fn strip_owner(state: &mut State, at: &ObjRef, uid: &str) {
    let Some(current) = state.get(at.res, &at.key) else {
        return;
    };
    let mut value = current.value();
    let meta = metadata_mut(&mut value);
    if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
        if refs.is_empty() {
            meta.remove("ownerReferences");
        }
    }
    state.put(at.res, at.key.clone(), value);
}
