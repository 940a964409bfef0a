//! Request routing: URL paths and query parameters to verbs, bodies in, responses out. One
//! handler serves both transports (in-process tower service and HTTP).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;

use super::Shared;
use super::discovery;
use super::disruption;
use super::openapi;
use super::patch::PatchKind;
use super::render::{Format, Renderer};
use super::resources::{ResourceId, ResourceInfo};
use super::selector::{FieldSelector, LabelSelector, selects};
use super::status::{self, ApiError, ApiResult};
use super::store::{ObjKey, Stored};
use super::verbs::{self, Ctx, DeleteOptions, Deleted};
use super::watch::{self, Start, WatchRequest};

/// The body of every response: whole for ordinary requests, streaming for watches.
pub type ResponseBody = axum::body::Body;

/// How long a watch stays open when the client sets no `timeoutSeconds`.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// Query parameters, decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Self(pairs)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }
}

/// Decodes `%XX` escapes and `+` (as a space).
fn percent_decode(input: &str) -> String {
    if !input.contains(['%', '+']) {
        return input.to_string();
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(code: StatusCode, content_type: &str, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(body));
    *response.status_mut() = code;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn json(code: StatusCode, value: &Value) -> Response<ResponseBody> {
    respond(
        code,
        "application/json",
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}

/// The `Status` response of a failed request.
pub(crate) fn error_response(err: &ApiError) -> Response<ResponseBody> {
    let mut response = json(err.code, &err.to_status());
    if let Some(seconds) = err
        .details
        .as_ref()
        .map(|d| d.retry_after_seconds)
        .filter(|s| *s > 0)
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Handles one request; `live_clock` tells whether the server's clock may be read here.
pub(crate) fn handle(
    shared: &Arc<Shared>,
    parts: &http::request::Parts,
    body: Bytes,
    live_clock: bool,
) -> Response<ResponseBody> {
    match route(shared, parts, body, live_clock) {
        Ok(response) => response,
        Err(err) => {
            tracing::trace!(method = %parts.method, uri = %parts.uri, code = err.code.as_u16(), reason = err.reason, "request failed");
            error_response(&err)
        }
    }
}

fn route(
    shared: &Arc<Shared>,
    parts: &http::request::Parts,
    body: Bytes,
    live_clock: bool,
) -> ApiResult<Response<ResponseBody>> {
    let segments: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let registry = &shared.registry;
    let discovery_get = |doc: Option<Value>| -> ApiResult<Response<ResponseBody>> {
        if parts.method != Method::GET {
            return Err(ApiError::method_not_allowed(&parts.method));
        }
        doc.map(|d| json(StatusCode::OK, &d))
            .ok_or_else(ApiError::no_route)
    };
    match segs.as_slice() {
        ["version"] => discovery_get(Some(discovery::version())),
        ["healthz" | "livez" | "readyz", ..] => Ok(respond(
            StatusCode::OK,
            "text/plain",
            Bytes::from_static(b"ok"),
        )),
        ["api"] => discovery_get(Some(discovery::core_versions())),
        ["api", version] => discovery_get(discovery::resources(registry, "", version)),
        ["apis"] => discovery_get(Some(discovery::groups(registry))),
        ["apis", group] => discovery_get(discovery::group(registry, group)),
        ["apis", group, version] => discovery_get(discovery::resources(registry, group, version)),
        ["openapi", "v3"] => discovery_get(Some(openapi::root(registry))),
        ["openapi", "v3", "api", version] => {
            discovery_get(openapi::group_version(registry, "", version))
        }
        ["openapi", "v3", "apis", group, version] => {
            discovery_get(openapi::group_version(registry, group, version))
        }
        ["api", version, rest @ ..] => {
            let target = resolve(shared, "", version, rest)?;
            dispatch(shared, parts, body, target, live_clock)
        }
        ["apis", group, version, rest @ ..] => {
            let target = resolve(shared, group, version, rest)?;
            dispatch(shared, parts, body, target, live_clock)
        }
        _ => Err(ApiError::no_route()),
    }
}

/// A request for a resource.
struct Target {
    /// The resource of the URL (its objects may live in another's store: `ResourceInfo::storage`).
    res: ResourceId,
    version: String,
    /// The namespace of the URL; None for cluster-scoped resources and for lists and watches
    /// across all namespaces.
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
    /// The `eviction` subresource of a Pod.
    eviction: bool,
}

fn resolve(shared: &Shared, group: &str, version: &str, rest: &[&str]) -> ApiResult<Target> {
    let registry = &shared.registry;
    let namespaced_route = match rest {
        ["namespaces", ns, plural, tail @ ..] => registry
            .lookup(group, version, plural)
            .filter(|id| registry.get(*id).namespaced)
            .map(|id| (id, Some(ns.to_string()), tail)),
        _ => None,
    };
    let (res, namespace, tail) = match namespaced_route {
        Some(route) => route,
        None => {
            let [plural, tail @ ..] = rest else {
                return Err(ApiError::no_route());
            };
            let id = registry
                .lookup(group, version, plural)
                .ok_or_else(ApiError::no_route)?;
            if registry.get(id).namespaced && !tail.is_empty() {
                return Err(ApiError::no_route());
            }
            (id, None, tail)
        }
    };
    let info = registry.get(res);
    let (name, status, eviction) = match tail {
        [] => (None, false, false),
        [name] => (Some(name.to_string()), false, false),
        [name, "status"] if info.status_subresource => (Some(name.to_string()), true, false),
        [name, "eviction"] if info.eviction => (Some(name.to_string()), false, true),
        _ => return Err(ApiError::no_route()),
    };
    Ok(Target {
        res,
        version: version.to_string(),
        namespace,
        name,
        status,
        eviction,
    })
}

fn header_str(parts: &http::request::Parts, name: header::HeaderName) -> &str {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn dispatch(
    shared: &Arc<Shared>,
    parts: &http::request::Parts,
    body: Bytes,
    target: Target,
    live_clock: bool,
) -> ApiResult<Response<ResponseBody>> {
    let query = Query::parse(parts.uri.query());
    let info = shared.registry.get(target.res);
    let format = Format::negotiate(
        header_str(parts, header::ACCEPT),
        query.get("includeObject"),
    );
    let renderer = Renderer {
        info,
        api_version: info.api_version(&target.version),
        format,
        now: shared.now(live_clock),
    };
    let user_agent = header_str(parts, header::USER_AGENT);
    let manager = match query.get("fieldManager") {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => match user_agent.split('/').next() {
            Some(ua) if !ua.is_empty() => ua.to_string(),
            _ => "unknown".to_string(),
        },
    };
    let ctx = Ctx {
        res: info.storage,
        info,
        registry: &shared.registry,
        validations: &shared.validations,
        version: &target.version,
        namespace: target.namespace.as_deref(),
        status: target.status,
        manager: &manager,
        manager_given: query.get("fieldManager").is_some_and(|m| !m.is_empty()),
        dry_run: query.get("dryRun").is_some_and(|v| !v.is_empty()),
        now: renderer.now,
    };
    let ok = |code: StatusCode, bytes: Bytes| respond(code, format.content_type(), bytes);
    let method = &parts.method;
    match (&target.name, method) {
        (None, &Method::GET) => {
            if query.flag("watch") {
                watch_response(shared, &query, &target, format, live_clock)
            } else {
                let (items, rv) = list(shared, &query, &target, info)?;
                Ok(ok(StatusCode::OK, renderer.list(&items, rv)))
            }
        }
        (None, &Method::POST) => {
            if info.namespaced && target.namespace.is_none() {
                return Err(ApiError::method_not_allowed(method));
            }
            let object = parse_body(parts, &body)?;
            let stored = verbs::create(&mut shared.lock(), &ctx, object)?;
            Ok(ok(StatusCode::CREATED, renderer.object(&stored)))
        }
        (None, &Method::DELETE) => {
            let opts = delete_options(&query, &body)?;
            let selectors = selectors(&query, info)?;
            let mut state = shared.lock();
            let keys: Vec<(Arc<str>, Arc<str>)> = state.stores[info.storage]
                .objects
                .iter()
                .filter(|(k, _)| {
                    target
                        .namespace
                        .as_ref()
                        .is_none_or(|ns| **ns == *k.namespace)
                })
                .filter(|(_, s)| selects(&selectors.0, &selectors.1, s))
                .map(|(k, _)| (k.namespace.clone(), k.name.clone()))
                .collect();
            let mut deleted = Vec::new();
            for (namespace, name) in keys {
                let ctx = Ctx {
                    namespace: info.namespaced.then_some(&*namespace),
                    ..ctx.clone()
                };
                match verbs::delete(&mut state, &ctx, &name, &opts)? {
                    Deleted::Gone(s) | Deleted::Pending(s) => deleted.push(s),
                }
            }
            let rv = state.rv;
            drop(state);
            Ok(ok(StatusCode::OK, renderer.list(&deleted, rv)))
        }
        (None, _) => Err(ApiError::method_not_allowed(method)),
        (Some(name), &Method::POST) if target.eviction => {
            let Some(stores) = &shared.disruption else {
                return Err(ApiError::no_route());
            };
            let (code, status) = disruption::evict(&mut shared.lock(), stores, &ctx, name, &body)?;
            Ok(json(code, &status))
        }
        (Some(_), _) if target.eviction => Err(ApiError::method_not_allowed(method)),
        (Some(name), &Method::GET) => {
            let state = shared.lock();
            let stored = state
                .get(info.storage, &key(&target, name))
                .cloned()
                .ok_or_else(|| ApiError::not_found(info, name))?;
            drop(state);
            Ok(ok(StatusCode::OK, renderer.object(&stored)))
        }
        (Some(name), &Method::PUT) => {
            let object = parse_body(parts, &body)?;
            let stored = verbs::replace(&mut shared.lock(), &ctx, name, object)?;
            Ok(ok(StatusCode::OK, renderer.object(&stored)))
        }
        (Some(name), &Method::PATCH) => {
            let content_type = header_str(parts, header::CONTENT_TYPE);
            let kind = PatchKind::from_content_type(content_type)
                .filter(|k| *k != PatchKind::Strategic || !info.custom)
                .ok_or_else(|| {
                    ApiError::unsupported_media_type(content_type, PatchKind::accepted(info.custom))
                })?;
            let (stored, created) = verbs::patch(
                &mut shared.lock(),
                &ctx,
                name,
                kind,
                &body,
                query.flag("force"),
            )?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(ok(code, renderer.object(&stored)))
        }
        (Some(name), &Method::DELETE) if !target.status => {
            let opts = delete_options(&query, &body)?;
            let outcome = verbs::delete(&mut shared.lock(), &ctx, name, &opts)?;
            Ok(match outcome {
                Deleted::Gone(stored) if info.custom => {
                    ok(StatusCode::OK, renderer.object(&stored))
                }
                Deleted::Gone(stored) => json(
                    StatusCode::OK,
                    &status::success(info, stored.name(), stored.uid()),
                ),
                Deleted::Pending(stored) => ok(StatusCode::ACCEPTED, renderer.object(&stored)),
            })
        }
        (Some(_), _) => Err(ApiError::method_not_allowed(method)),
    }
}

fn key(target: &Target, name: &str) -> ObjKey {
    ObjKey::new(target.namespace.as_deref().unwrap_or_default(), name)
}

fn selectors(query: &Query, info: &ResourceInfo) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default(), info)?;
    Ok((labels, fields))
}

/// The objects a list returns, and the version it is at.
fn list(
    shared: &Shared,
    query: &Query,
    target: &Target,
    info: &ResourceInfo,
) -> ApiResult<(Vec<Arc<Stored>>, u64)> {
    let (labels, fields) = selectors(query, info)?;
    let state = shared.lock();
    let store = &state.stores[info.storage];
    let in_target = |s: &&Arc<Stored>| {
        target
            .namespace
            .as_deref()
            .is_none_or(|ns| s.namespace() == ns)
    };
    // The objects the selectors may select, from the narrowest index that has them.
    let candidates: Box<dyn Iterator<Item = &Arc<Stored>>> = match (
        fields.pinned_name(),
        target.namespace.as_deref(),
        fields.pinned_node(),
    ) {
        (Some(name), Some(ns), _) => {
            Box::new(store.objects.get(&ObjKey::new(ns, name)).into_iter())
        }
        (Some(name), None, _) if !info.namespaced => {
            Box::new(store.objects.get(&ObjKey::new("", name)).into_iter())
        }
        // The pods of one node (a drain's list).
        (_, _, Some(node)) => Box::new(store.on_node(node).filter(in_target)),
        _ => match labels.required_value() {
            Some((key, value)) => Box::new(store.with_label(key, value).filter(in_target)),
            None => store.in_namespace(target.namespace.as_deref()),
        },
    };
    let items: Vec<Arc<Stored>> = candidates
        .filter(|s| selects(&labels, &fields, s))
        .cloned()
        .collect();
    Ok((items, state.rv))
}

fn watch_response(
    shared: &Arc<Shared>,
    query: &Query,
    target: &Target,
    format: Format,
    live_clock: bool,
) -> ApiResult<Response<ResponseBody>> {
    let info = shared.registry.get(target.res);
    let (labels, fields) = selectors(query, info)?;
    let start = match query.get("resourceVersion") {
        None | Some("" | "0") => Start::Current,
        Some(rv) => Start::After(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?,
        ),
    };
    let timeout = match query.get("timeoutSeconds").map(str::parse::<u64>) {
        None | Some(Ok(0)) => DEFAULT_WATCH_TIMEOUT,
        Some(Ok(secs)) => Duration::from_secs(secs),
        Some(Err(_)) => {
            return Err(ApiError::bad_request(
                "timeoutSeconds must be a number of seconds",
            ));
        }
    };
    let request = WatchRequest {
        res: info.storage,
        view: target.res,
        namespace: target.namespace.clone(),
        labels,
        fields,
        start,
        send_initial_events: query.flag("sendInitialEvents"),
        bookmarks: query.flag("allowWatchBookmarks"),
        timeout,
        api_version: info.api_version(&target.version),
        format,
        live_clock,
    };
    let events = watch::stream(shared.clone(), request).map(Ok::<_, Infallible>);
    let mut response = Response::new(ResponseBody::from_stream(events));
    if let Ok(value) = HeaderValue::from_str(format.content_type()) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Ok(response)
}

/// The body of a create or replace: JSON, or YAML.
fn parse_body(parts: &http::request::Parts, body: &[u8]) -> ApiResult<Value> {
    let content_type = header_str(parts, header::CONTENT_TYPE);
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "" | "application/json" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("couldn't decode the body as JSON: {e}"))),
        "application/yaml" => std::str::from_utf8(body)
            .ok()
            .and_then(|text| serde_saphyr::from_str::<Value>(text).ok())
            .ok_or_else(|| ApiError::bad_request("couldn't decode the body as YAML")),
        _ => Err(ApiError::unsupported_media_type(
            content_type,
            &["application/json", "application/yaml"],
        )),
    }
}

/// `DeleteOptions` from the body, with query parameters filling in what it leaves out.
fn delete_options(query: &Query, body: &[u8]) -> ApiResult<DeleteOptions> {
    let mut opts = DeleteOptions::parse(body)?;
    if let Some(policy) = query.get("propagationPolicy") {
        let from_query = DeleteOptions::parse(
            serde_json::json!({"propagationPolicy": policy})
                .to_string()
                .as_bytes(),
        )?;
        opts.propagation = from_query.propagation;
    }
    if query.get("dryRun").is_some_and(|v| !v.is_empty()) {
        opts.dry_run = true;
    }
    Ok(opts)
}
