//! PodDisruptionBudgets and the Pod `eviction` subresource.
//!
//! No disruption controller runs beside this server, so the server keeps every PDB's `.status`
//! current itself, computed as kube-controller-manager's disruption controller computes it:
//! the pods of the PDB's namespace its selector matches (a null selector matches none, an empty
//! one all), `expectedPods` and `desiredHealthy` from `minAvailable` (an integer: that many of
//! the matching pods; a percentage: of the controllers' scale, rounded up) or `maxUnavailable`
//! (of the controllers' scale), `currentHealthy` the matching pods that are not being deleted and
//! have the `Ready` condition, `disruptionsAllowed = currentHealthy - desiredHealthy` (0 when
//! negative or when no pod is expected), the `DisruptionAllowed` condition, and
//! `observedGeneration`. A controller's scale is the `spec.replicas` of the pod's controlling
//! ReplicaSet (or of the Deployment controlling that), StatefulSet; a pod controlled by anything
//! else, or a bad percentage, fails the sync as on a real cluster: `disruptionsAllowed` 0 and
//! the condition `False` with reason `SyncFailed`.
//!
//! Invariant: the status is recomputed, under the state lock, for every namespace in which a
//! pod, a PDB or a scale source changed, before the lock is released (see `Locked` in the crate
//! root), so every read sees PDBs as current as the pods. Recomputing is idempotent: a second
//! pass writes nothing. Because the status is current at once, an approved eviction does not
//! record the pod in `disruptedPods` (the real server does so until its controller catches up):
//! the deletion that follows is already counted.
//!
//! Eviction (`POST …/pods/NAME/eviction` with a `policy/v1` or `v1beta1` Eviction) follows
//! kube-apiserver: a pod that is Pending, Succeeded, Failed or already being deleted is deleted
//! without looking at PDBs; otherwise more than one matching PDB is a 500, one whose
//! `disruptionsAllowed` is 0 a 429 `TooManyRequests` ("Cannot evict pod as it would violate the
//! pod's disruption budget.") with a `DisruptionBudget` cause, and an unready pod may go when the
//! budget is met anyway (or the PDB's `unhealthyPodEvictionPolicy` is `AlwaysAllow`); then the
//! pod is deleted with the Eviction's `deleteOptions` (preconditions, dry run) and the answer is
//! a `Success` Status, 201.

use std::collections::{BTreeMap, BTreeSet};

use http::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::resources::{Registry, ResourceId};
use super::selector::matches_label_selector;
use super::status::{ApiError, ApiResult, Cause};
use super::store::{ObjKey, State};
use super::verbs::{self, Ctx, DeleteOptions, timestamp};

/// The message of an eviction refused by a disruption budget.
const REFUSED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// The stores the disruption computation reads and writes.
#[derive(Clone, Debug)]
pub(crate) struct Stores {
    pub pods: ResourceId,
    pub pdbs: ResourceId,
    pub replica_sets: Option<ResourceId>,
    pub deployments: Option<ResourceId>,
    pub stateful_sets: Option<ResourceId>,
}

impl Stores {
    /// The stores of the registry's Pods and PodDisruptionBudgets, if it serves both.
    pub fn of(registry: &Registry) -> Option<Self> {
        Some(Self {
            pods: registry.by_group_kind("", "Pod")?,
            pdbs: registry.by_group_kind("policy", "PodDisruptionBudget")?,
            replica_sets: registry.by_group_kind("apps", "ReplicaSet"),
            deployments: registry.by_group_kind("apps", "Deployment"),
            stateful_sets: registry.by_group_kind("apps", "StatefulSet"),
        })
    }

    /// Every store whose changes may change a PDB's status.
    pub fn inputs(&self) -> Vec<ResourceId> {
        [self.pods, self.pdbs]
            .into_iter()
            .chain(self.replica_sets)
            .chain(self.deployments)
            .chain(self.stateful_sets)
            .collect()
    }
}

/// Recomputes the status of the PDBs in every namespace marked as changed (see the module
/// doc), until nothing changes.
pub(crate) fn settle(state: &mut State, stores: &Stores, now: Timestamp) {
    // A pass writes only PDB statuses, which a second pass finds current: two passes settle,
    // a third is a safety margin.
    for _ in 0..3 {
        let dirty = state.take_dirty();
        if dirty.is_empty() {
            return;
        }
        for namespace in dirty {
            sync_namespace(state, stores, &namespace, now);
        }
    }
    state.take_dirty();
}

fn sync_namespace(state: &mut State, stores: &Stores, namespace: &str, now: Timestamp) {
    let pdbs: Vec<Value> = state.stores[stores.pdbs]
        .in_namespace(Some(namespace))
        .map(|s| s.value())
        .collect();
    if pdbs.is_empty() {
        return;
    }
    let pods: Vec<Value> = state.stores[stores.pods]
        .in_namespace(Some(namespace))
        .map(|s| s.value())
        .collect();
    for pdb in pdbs {
        let matching: Vec<&Value> = pods
            .iter()
            .filter(|pod| selects_for_status(&pdb, pod))
            .collect();
        let status = compute_status(state, stores, &pdb, &matching, namespace, now);
        if pdb.get("status") != Some(&status) {
            let mut updated = pdb;
            updated["status"] = status;
            let name = updated
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            state.put(stores.pdbs, ObjKey::new(namespace, &name), updated);
        }
    }
}

/// Whether the disruption controller counts `pod` for `pdb`: a null selector matches no pod,
/// an empty one every pod of the namespace.
fn selects_for_status(pdb: &Value, pod: &Value) -> bool {
    match pdb.pointer("/spec/selector") {
        None | Some(Value::Null) => false,
        Some(selector) => matches_label_selector(selector, pod),
    }
}

/// Whether the eviction handler applies `pdb` to `pod`: a null or empty selector matches none.
fn selects_for_eviction(pdb: &Value, pod: &Value) -> bool {
    match pdb.pointer("/spec/selector") {
        None | Some(Value::Null) => false,
        Some(selector) if selector_is_empty(selector) => false,
        Some(selector) => matches_label_selector(selector, pod),
    }
}

fn selector_is_empty(selector: &Value) -> bool {
    let empty = |field: &str| {
        selector.get(field).is_none_or(|v| match v {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => v.is_null(),
        })
    };
    empty("matchLabels") && empty("matchExpressions")
}

/// Whether a pod has the `Ready` condition `True` (`podutil.IsPodReady`).
fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn is_deleting(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `intstr.GetScaledValueFromIntOrPercent(value, total, roundUp=true)`.
fn scaled(value: &Value, total: i64) -> Result<i64, String> {
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("invalid value {n}")),
        Value::String(s) => {
            let percent = s
                .strip_suffix('%')
                .and_then(|p| p.parse::<i64>().ok())
                .ok_or_else(|| {
                    format!(
                        "invalid value for IntOrString: invalid value \"{s}\": must be an integer or a percentage"
                    )
                })?;
            Ok((percent * total + 99) / 100)
        }
        other => Err(format!("invalid value for IntOrString: {other}")),
    }
}

/// The controller reference of an object, if any.
fn controller_of(object: &Value) -> Option<&Value> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller") == Some(&Value::Bool(true)))
}

fn str_of<'v>(value: &'v Value, field: &str) -> &'v str {
    value.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// `spec.replicas` (default 1) of the object `reference` names in `store`, if it is there
/// with that uid.
fn replicas_of(
    state: &State,
    store: Option<ResourceId>,
    namespace: &str,
    reference: &Value,
) -> Option<(Value, i64)> {
    let stored = state.get(store?, &ObjKey::new(namespace, str_of(reference, "name")))?;
    if stored.uid() != str_of(reference, "uid") {
        return None;
    }
    let object = stored.value();
    let replicas = object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    Some((object, replicas))
}

/// The scale of the controllers of `pods` (`getExpectedScale`): the sum of each distinct
/// controller's replicas; pods without a controller are not counted.
fn expected_scale(
    state: &State,
    stores: &Stores,
    pods: &[&Value],
    namespace: &str,
) -> Result<i64, String> {
    let mut scale: BTreeMap<String, i64> = BTreeMap::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for pod in pods {
        let Some(reference) = controller_of(pod) else {
            continue;
        };
        if !seen.insert(str_of(reference, "uid")) {
            continue;
        }
        let api_group = str_of(reference, "apiVersion")
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or_default();
        let found = match (api_group, str_of(reference, "kind")) {
            ("apps", "ReplicaSet") => replicas_of(state, stores.replica_sets, namespace, reference)
                .map(|(rs, n)| {
                    match controller_of(&rs)
                        .filter(|c| str_of(c, "kind") == "Deployment")
                        .and_then(|d| replicas_of(state, stores.deployments, namespace, d))
                    {
                        Some((deployment, replicas)) => {
                            (str_of(&deployment["metadata"], "uid").to_string(), replicas)
                        }
                        None => (str_of(&rs["metadata"], "uid").to_string(), n),
                    }
                }),
            ("apps", "StatefulSet") => {
                replicas_of(state, stores.stateful_sets, namespace, reference)
                    .map(|(sts, n)| (str_of(&sts["metadata"], "uid").to_string(), n))
            }
            _ => None,
        };
        let Some((uid, replicas)) = found else {
            return Err(format!(
                "found no controllers for pod \"{}\"",
                str_of(&pod["metadata"], "name")
            ));
        };
        scale.insert(uid, replicas);
    }
    Ok(scale.values().sum())
}

/// A `metav1.Condition` list with `DisruptionAllowed` set (`meta.SetStatusCondition`: the
/// transition time changes only with the status).
fn with_condition(
    old: Option<&Value>,
    status: bool,
    reason: &str,
    message: &str,
    observed_generation: i64,
    now: Timestamp,
) -> Value {
    let mut list: Vec<Value> = old.and_then(Value::as_array).cloned().unwrap_or_default();
    let status_text = if status { "True" } else { "False" };
    let position = list
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed"));
    let since = position
        .map(|i| &list[i])
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status_text))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| timestamp(now).into());
    let mut condition = json!({
        "type": "DisruptionAllowed",
        "status": status_text,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    });
    if observed_generation > 0 {
        condition["observedGeneration"] = observed_generation.into();
    }
    match position {
        Some(i) => list[i] = condition,
        None => list.push(condition),
    }
    Value::Array(list)
}

/// `(expectedPods, desiredHealthy)` of `pdb` over its `pods` (`getExpectedPodCount`), or why
/// they cannot be computed.
fn budget(
    state: &State,
    stores: &Stores,
    pdb: &Value,
    pods: &[&Value],
    namespace: &str,
) -> Result<(i64, i64), String> {
    if let Some(max) = pdb.pointer("/spec/maxUnavailable").filter(|v| !v.is_null()) {
        let expected = expected_scale(state, stores, pods, namespace)?;
        let unavailable = scaled(max, expected)?;
        return Ok((expected, (expected - unavailable).max(0)));
    }
    match pdb.pointer("/spec/minAvailable") {
        Some(Value::Number(n)) => Ok((pods.len() as i64, n.as_i64().unwrap_or(0))),
        Some(min @ Value::String(_)) => {
            let expected = expected_scale(state, stores, pods, namespace)?;
            Ok((expected, scaled(min, expected)?))
        }
        _ => Ok((0, 0)),
    }
}

/// The status the disruption controller would write for `pdb` over its `pods`.
fn compute_status(
    state: &State,
    stores: &Stores,
    pdb: &Value,
    pods: &[&Value],
    namespace: &str,
    now: Timestamp,
) -> Value {
    let old = pdb.get("status").cloned().unwrap_or_else(|| json!({}));
    let generation = pdb
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let counts = budget(state, stores, pdb, pods, namespace);
    let (expected, desired) = match counts {
        Ok(counts) => counts,
        Err(message) => {
            // failSafe: nothing may be disrupted until the budget can be computed.
            let observed = old
                .get("observedGeneration")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let mut status = old.clone();
            status["disruptionsAllowed"] = 0.into();
            status["conditions"] = with_condition(
                old.get("conditions"),
                false,
                "SyncFailed",
                &message,
                observed,
                now,
            );
            for field in ["currentHealthy", "desiredHealthy", "expectedPods"] {
                if status.get(field).is_none() {
                    status[field] = 0.into();
                }
            }
            return status;
        }
    };
    let healthy = pods
        .iter()
        .filter(|pod| !is_deleting(pod) && is_ready(pod))
        .count() as i64;
    let allowed = if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    };
    let (reason, ok) = if allowed > 0 {
        ("SufficientPods", true)
    } else {
        ("InsufficientPods", false)
    };
    let mut status = json!({
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": with_condition(old.get("conditions"), ok, reason, "", generation, now),
    });
    if generation > 0 {
        status["observedGeneration"] = generation.into();
    }
    status
}

/// What an Eviction asks: its delete options, as the real server reads them.
fn parse_eviction(name: &str, body: &[u8], dry_run: bool) -> ApiResult<DeleteOptions> {
    let eviction: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("couldn't decode the body as JSON: {e}")))?;
    if !eviction.is_object() {
        return Err(ApiError::bad_request(
            "the body must be a JSON object of kind Eviction",
        ));
    }
    let api_version = eviction.get("apiVersion").and_then(Value::as_str);
    if !matches!(api_version, None | Some("policy/v1" | "policy/v1beta1")) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version (policy/v1)",
            api_version.unwrap_or_default()
        )));
    }
    if !matches!(
        eviction.get("kind").and_then(Value::as_str),
        None | Some("Eviction")
    ) {
        return Err(ApiError::bad_request("not a Eviction object"));
    }
    if eviction.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let mut options = match eviction.get("deleteOptions") {
        Some(options) if options.is_object() => {
            DeleteOptions::parse(options.to_string().as_bytes())?
        }
        _ => DeleteOptions::default(),
    };
    options.dry_run |= dry_run;
    Ok(options)
}

/// 429 `TooManyRequests` for a disruption budget.
fn refused(cause: String, retry_after: Option<i64>) -> ApiError {
    ApiError::too_many_requests(
        REFUSED,
        Cause {
            reason: "DisruptionBudget".into(),
            message: cause,
            field: String::new(),
        },
        retry_after,
    )
}

/// `POST …/pods/NAME/eviction`: evicts the pod `ctx` names, as the module doc describes.
/// Returns the HTTP code and the `Status` to answer with.
pub(crate) fn evict(
    state: &mut State,
    stores: &Stores,
    ctx: &Ctx<'_>,
    name: &str,
    body: &[u8],
) -> ApiResult<(StatusCode, Value)> {
    let mut options = parse_eviction(name, body, ctx.dry_run)?;
    let namespace = ctx.namespace.unwrap_or_default();
    let pod = state
        .get(stores.pods, &ObjKey::new(namespace, name))
        .map(|s| (s.value(), s.rv))
        .ok_or_else(|| ApiError::not_found(ctx.info, name))?;
    let (pod, rv) = pod;
    let user_rv = options.precondition_rv.is_some();
    let success = || {
        (
            StatusCode::CREATED,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        )
    };
    let terminal = matches!(phase(&pod), "Succeeded" | "Failed");
    if terminal || phase(&pod) == "Pending" || is_deleting(&pod) {
        if !terminal && !is_deleting(&pod) && !user_rv {
            options.precondition_rv = Some(rv.to_string());
        }
        verbs::delete(state, ctx, name, &options)?;
        return Ok(success());
    }
    let pdbs: Vec<Value> = state.stores[stores.pdbs]
        .in_namespace(Some(namespace))
        .map(|s| s.value())
        .filter(|pdb| selects_for_eviction(pdb, &pod))
        .collect();
    if pdbs.len() > 1 {
        return Ok((
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                "code": 500,
            }),
        ));
    }
    let mut guarded_rv = false;
    if let Some(pdb) = pdbs.first() {
        let pdb_name = str_of(&pdb["metadata"], "name");
        let int = |field: &str| {
            pdb.pointer(&format!("/status/{field}"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        let always_allow =
            pdb.pointer("/spec/unhealthyPodEvictionPolicy") == Some(&json!("AlwaysAllow"));
        let unready_may_go = !is_ready(&pod)
            && (always_allow
                || (int("currentHealthy") >= int("desiredHealthy") && int("desiredHealthy") > 0));
        if unready_may_go {
            guarded_rv = true;
        } else {
            let generation = pdb
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if int("observedGeneration") < generation {
                return Err(refused(
                    format!(
                        "The disruption budget {pdb_name} is still being processed by the server."
                    ),
                    Some(10),
                ));
            }
            if int("disruptionsAllowed") < 0 {
                return Err(ApiError::forbidden(
                    "poddisruptionbudget.policy",
                    pdb_name,
                    "pdb disruptions allowed is negative",
                ));
            }
            if int("disruptionsAllowed") == 0 {
                return Err(refused(
                    format!(
                        "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                        int("desiredHealthy"),
                        int("currentHealthy")
                    ),
                    None,
                ));
            }
        }
        if guarded_rv && !user_rv {
            options.precondition_rv = Some(rv.to_string());
        }
        return match verbs::delete(state, ctx, name, &options) {
            Ok(_) => Ok(success()),
            Err(e) if e.code == StatusCode::CONFLICT && guarded_rv && !user_rv => Err(refused(
                format!("The disruption budget {pdb_name} is still being processed by the server."),
                Some(10),
            )),
            Err(e) => Err(e),
        };
    }
    verbs::delete(state, ctx, name, &options)?;
    Ok(success())
}
