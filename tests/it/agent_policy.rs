//! The host agent's ValidatingAdmissionPolicy (charts/upkeep/templates/agent-policy.yaml), as
//! kube-apiserver applies it to an agent's writes: each agent writes only its own Host (never
//! `status.heldBy`), its own Lease and its own PatchJob tasks' status; and the rendered RBAC as
//! `kubectl auth can-i` answers it (`.ci/check_privileges.py`).
//!
//! The chart is rendered by Helm (`.ci/render_chart.py`, run by the Python of `.venv-ci`, which
//! `.ci/run` sets up and names in `UPKEEP_CI_PYTHON`; without it the tests fail under
//! `CI=true` and are skipped otherwise). The rendered policy is then evaluated the way the
//! API server's admission plugin does: `matchConstraints` (resource rules with `*`, `*/*` and
//! `res/*`), `matchConditions`, the `variables` in order, then each validation in order, the
//! first that is false denying with its `messageExpression` (or `message`), and, since the
//! policy's `failurePolicy` is `Fail`, an expression that cannot be evaluated denying too. The
//! CEL is a real implementation: the `cel` crate with Kubernetes' CEL libraries (kube-cel,
//! re-exported by kube as `kube::core::cel`; the same evaluator `upkeep check` runs the CRDs'
//! rules with). `request` is shaped as kube-apiserver builds it, an AdmissionRequest turned into
//! unstructured JSON: empty fields are absent (`subResource` outside a subresource,
//! `userInfo.extra` of a credential without extras), `userInfo.extra` maps each key to a list
//! of strings, `oldObject` is null on CREATE and `object` on DELETE. The policy is written to
//! need no optional-types syntax, so nothing here depends on a CEL feature the crate might
//! lack; a variable that fails to evaluate fails the test, which is stricter than the API
//! server (it evaluates variables lazily).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use kube::core::cel::KubeCelExt as _;
use kube::core::cel::cel::{Context, Program, Value as Cel, objects::Key};
use serde_json::{Value, json};

const NS: &str = "upkeep-system";
const AGENT_USER: &str = "system:serviceaccount:upkeep-system:upkeep-agent";
const NODE_CLAIM: &str = "authentication.kubernetes.io/node-name";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("UPKEEP_CI_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(repo().join(".venv-ci/bin/python")).filter(|p| p.is_file()));
    if found.is_none() {
        let reason = "the Python of .venv-ci is missing (run .ci/run once, or set UPKEEP_CI_PYTHON to a python with .ci/requirements.txt)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: {reason}; CI must render the chart");
        }
        eprintln!("SKIPPED {test}: {reason}");
    }
    found
}

/// The chart's objects for CI's release with a values file of `.ci/`, rendered once per file.
fn rendered(test: &str, values: &'static str) -> Option<&'static [Value]> {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<&'static str, &'static [Value]>>> =
        OnceLock::new();
    let python = python(test)?;
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    if let Some(objects) = cache.get(values) {
        return Some(objects);
    }
    let out = Command::new(&python)
        .arg(".ci/render_chart.py")
        .arg("charts/upkeep")
        .arg(format!(".ci/{values}"))
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{test}: running {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{test}: rendering the chart with .ci/{values} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects: Vec<Value> = serde_json::from_slice(&out.stdout).expect("the render is JSON");
    let objects: &'static [Value] = Vec::leak(objects);
    cache.insert(values, objects);
    Some(objects)
}

fn only<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} expected, found {}", found.len());
    found[0]
}

/// What the policy decides for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Decision {
    /// The policy does not apply (its constraints or conditions leave the request out).
    NotMatched,
    /// Every validation holds.
    Allowed,
    /// The first validation that does not hold, by its message.
    Denied(String),
}

/// An identity as the authenticator hands it to admission.
#[derive(Clone, Debug)]
struct User {
    username: String,
    groups: Vec<String>,
    extra: BTreeMap<String, Vec<String>>,
}

/// The DaemonSet agent on `node`: a pod-bound token of `upkeep-agent` with the claims
/// Kubernetes 1.30+ puts in `userInfo.extra`.
fn node_agent(node: &str) -> User {
    User {
        username: AGENT_USER.into(),
        groups: service_account_groups(),
        extra: BTreeMap::from([
            (
                "authentication.kubernetes.io/credential-id".into(),
                vec!["JTI=7ee52be0-9045-4653-aa5e-0da57b8dccdc".into()],
            ),
            (NODE_CLAIM.into(), vec![node.into()]),
            (
                "authentication.kubernetes.io/node-uid".into(),
                vec!["497e9d9a-47aa-4930-b0f6-9f2fb574c8c6".into()],
            ),
            (
                "authentication.kubernetes.io/pod-name".into(),
                vec![format!("upkeep-agent-{node}")],
            ),
            (
                "authentication.kubernetes.io/pod-uid".into(),
                vec!["e87dbbd6-3d7e-45db-aafb-72b24627dff5".into()],
            ),
        ]),
    }
}

/// A machine outside the cluster: the long-lived token of its ServiceAccount, no extras.
fn external_host(host: &str) -> User {
    User {
        username: format!("system:serviceaccount:{NS}:upkeep-host-{host}"),
        groups: service_account_groups(),
        extra: BTreeMap::new(),
    }
}

fn operator() -> User {
    User {
        username: format!("system:serviceaccount:{NS}:upkeep"),
        groups: service_account_groups(),
        extra: BTreeMap::new(),
    }
}

fn service_account_groups() -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{NS}"),
        "system:authenticated".into(),
    ]
}

/// One write, as admission sees it.
#[derive(Clone, Debug)]
struct Write {
    operation: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    resource: &'static str,
    sub_resource: &'static str,
    object: Option<Value>,
    old_object: Option<Value>,
}

impl Write {
    fn named(&self) -> &Value {
        self.object
            .as_ref()
            .or(self.old_object.as_ref())
            .expect("an object or an old object")
    }

    /// The `request` variable: the AdmissionRequest as unstructured JSON, empty fields absent.
    fn request(&self, user: &User) -> Value {
        let kind = json!({"group": self.group, "version": self.version, "kind": self.kind});
        let resource =
            json!({"group": self.group, "version": self.version, "resource": self.resource});
        let mut user_info = json!({
            "username": user.username,
            "uid": "0d8b5c1e-2f4a-4c1b-9d51-6a7e1f3b2c90",
            "groups": user.groups,
        });
        if !user.extra.is_empty() {
            user_info["extra"] = json!(user.extra);
        }
        let mut request = json!({
            "uid": "b5d1c6a2-6c3e-4e9f-8f7d-3a2b1c0d9e8f",
            "kind": kind,
            "resource": resource,
            "requestKind": kind,
            "requestResource": resource,
            "name": self.named()["metadata"]["name"],
            "namespace": NS,
            "operation": self.operation,
            "userInfo": user_info,
        });
        if !self.sub_resource.is_empty() {
            request["subResource"] = json!(self.sub_resource);
            request["requestSubResource"] = json!(self.sub_resource);
        }
        request
    }
}

fn upkeep(kind: &'static str, resource: &'static str, sub: &'static str) -> Write {
    Write {
        operation: "UPDATE",
        group: "upkeep.dev",
        version: "v1alpha1",
        kind,
        resource,
        sub_resource: sub,
        object: None,
        old_object: None,
    }
}

fn lease_write() -> Write {
    Write {
        group: "coordination.k8s.io",
        version: "v1",
        ..upkeep("Lease", "leases", "")
    }
}

fn create(write: Write, object: Value) -> Write {
    Write {
        operation: "CREATE",
        object: Some(object),
        ..write
    }
}

fn update(write: Write, old: Value, new: Value) -> Write {
    Write {
        operation: "UPDATE",
        object: Some(new),
        old_object: Some(old),
        ..write
    }
}

fn delete(write: Write, old: Value) -> Write {
    Write {
        operation: "DELETE",
        old_object: Some(old),
        ..write
    }
}

fn task(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "upkeep.dev/v1alpha1", "kind": "UpgradeTask",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"parent": {"kind": "PatchJob", "name": "nightly"}, "target": "web-1"},
        "status": {"code": "Pending", "statusCode": 2032},
    })
}

fn patch_task(name: &str, target: &str) -> Value {
    task(
        name,
        json!({"upkeep.dev/parent-kind": "PatchJob", "upkeep.dev/parent": "nightly", "upkeep.dev/target": target}),
    )
}

fn with_code(mut task: Value, code: &str, number: u32) -> Value {
    task["status"] = json!({"code": code, "statusCode": number});
    task
}

fn host(name: &str, node_name: Option<&str>, held_by: Option<&str>) -> Value {
    let mut host = json!({
        "apiVersion": "upkeep.dev/v1alpha1", "kind": "Host",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"patchManagement": "Enabled"},
        "status": {"agent": {"version": "0.1.0", "online": true}, "rebootRequired": "No"},
    });
    if let Some(node) = node_name {
        host["spec"]["nodeName"] = json!(node);
    }
    if let Some(holder) = held_by {
        host["status"]["heldBy"] = json!(holder);
    }
    host
}

fn reboot_required(mut host: Value) -> Value {
    host["status"]["rebootRequired"] = json!("Yes");
    host
}

fn lease(name: &str, holder: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 40, "renewTime": "2026-12-01T00:00:00.000000Z"},
    })
}

fn renewed(mut lease: Value) -> Value {
    lease["spec"]["renewTime"] = json!("2026-12-01T00:00:10.000000Z");
    lease
}

fn cel(value: &Value) -> Cel {
    kube::core::cel::cel::to_value(value).expect("JSON converts to CEL")
}

fn evaluate(expression: &str, context: &Context<'_>) -> Result<Cel, String> {
    let program =
        Program::compile(expression).map_err(|e| format!("does not compile: {e}: {expression}"))?;
    program
        .execute(context)
        .map_err(|e| format!("cannot be evaluated: {e}: {expression}"))
}

fn expression<'a>(entry: &'a Value, field: &str) -> &'a str {
    entry[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} of {entry}"))
}

/// Whether a rule's `resources` entry covers `resource` with `sub` (empty: none), by the
/// admission rule semantics: `*` is every resource but no subresource, `*/*` every
/// subresource, `res/*` every subresource of res, `*/sub` that subresource of any resource.
fn covers(entry: &str, resource: &str, sub: &str) -> bool {
    let (res, entry_sub) = entry.split_once('/').unwrap_or((entry, ""));
    let resource_ok = res == "*" || res == resource;
    let sub_ok = if sub.is_empty() {
        entry_sub.is_empty()
    } else {
        entry_sub == "*" || entry_sub == sub
    };
    resource_ok && sub_ok
}

fn listed(list: &Value, value: &str) -> bool {
    list.as_array()
        .expect("a list")
        .iter()
        .any(|v| v == "*" || v == value)
}

/// The policy's decision on `write` by `user`.
fn admit(policy: &Value, user: &User, write: &Write) -> Decision {
    let spec = &policy["spec"];
    assert_eq!(spec["failurePolicy"], "Fail", "the policy must fail closed");
    let matched = spec["matchConstraints"]["resourceRules"]
        .as_array()
        .expect("resourceRules")
        .iter()
        .any(|rule| {
            listed(&rule["apiGroups"], write.group)
                && listed(&rule["apiVersions"], write.version)
                && listed(&rule["operations"], write.operation)
                && rule["resources"]
                    .as_array()
                    .expect("resources")
                    .iter()
                    .any(|r| covers(r.as_str().unwrap(), write.resource, write.sub_resource))
        });
    if !matched {
        return Decision::NotMatched;
    }

    let mut context = Context::default();
    context.register_all();
    context.add_variable_from_value("request", cel(&write.request(user)));
    context.add_variable_from_value("object", cel(write.object.as_ref().unwrap_or(&Value::Null)));
    context.add_variable_from_value(
        "oldObject",
        cel(write.old_object.as_ref().unwrap_or(&Value::Null)),
    );
    for condition in spec["matchConditions"].as_array().into_iter().flatten() {
        match evaluate(expression(condition, "expression"), &context) {
            Ok(Cel::Bool(true)) => {}
            Ok(Cel::Bool(false)) => return Decision::NotMatched,
            other => return Decision::Denied(format!("match condition: {other:?}")),
        }
    }
    let mut variables: HashMap<Key, Cel> = HashMap::new();
    for variable in spec["variables"].as_array().into_iter().flatten() {
        let name = expression(variable, "name");
        context.add_variable_from_value("variables", Cel::from(variables.clone()));
        let value = evaluate(expression(variable, "expression"), &context)
            .unwrap_or_else(|e| panic!("variable {name} {e} (for {write:?} by {user:?})"));
        variables.insert(Key::String(Arc::new(name.to_string())), value);
    }
    context.add_variable_from_value("variables", Cel::from(variables));
    for validation in spec["validations"].as_array().expect("validations") {
        match evaluate(expression(validation, "expression"), &context) {
            Ok(Cel::Bool(true)) => continue,
            Ok(Cel::Bool(false)) => {}
            other => return Decision::Denied(format!("validation error: {other:?}")),
        }
        let message = match validation.get("messageExpression").and_then(Value::as_str) {
            Some(message) => match evaluate(message, &context) {
                Ok(Cel::String(text)) => text.to_string(),
                other => panic!("messageExpression {message} gave {other:?}"),
            },
            None => expression(validation, "message").to_string(),
        };
        return Decision::Denied(message);
    }
    Decision::Allowed
}

/// Asserts the decision on each write: `Ok(())` allowed, `Err(part)` denied with a message
/// containing `part`.
fn assert_decisions(policy: &Value, user: &User, cases: &[(&str, Write, Result<(), &str>)]) {
    let mut wrong = Vec::new();
    for (what, write, expected) in cases {
        let got = admit(policy, user, write);
        let ok = match (expected, &got) {
            (Ok(()), Decision::Allowed) => true,
            (Err(part), Decision::Denied(message)) => message.contains(part),
            _ => false,
        };
        if !ok {
            wrong.push(format!(
                "{what}: expected {expected:?}, got {got:?} ({} {} {}/{})",
                user.username, write.operation, write.resource, write.sub_resource
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn agent_policy(test: &str) -> Option<&'static Value> {
    rendered(test, "values-agent.yaml").map(|objects| only(objects, "ValidatingAdmissionPolicy"))
}

#[test]
fn the_policy_is_bound_to_deny_and_keyed_on_the_identities_the_chart_creates() {
    let Some(objects) = rendered("policy_binding", "values-agent.yaml") else {
        return;
    };
    let policy = only(objects, "ValidatingAdmissionPolicy");
    let binding = only(objects, "ValidatingAdmissionPolicyBinding");
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    assert!(
        binding["spec"].get("matchResources").is_none(),
        "the binding applies in every namespace"
    );
    let daemonset = only(objects, "DaemonSet");
    let account = &daemonset["spec"]["template"]["spec"]["serviceAccountName"];
    assert_eq!(
        format!("system:serviceaccount:{NS}:{}", account.as_str().unwrap()),
        AGENT_USER
    );
    for host in ["db-1", "db-2"] {
        let name = format!("upkeep-host-{host}");
        assert!(
            objects
                .iter()
                .any(|o| o["kind"] == "ServiceAccount" && o["metadata"]["name"] == name),
            "{name} is rendered"
        );
        let secret = objects
            .iter()
            .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == format!("{name}-token"))
            .expect("the token Secret is rendered");
        assert_eq!(secret["type"], "kubernetes.io/service-account-token");
        assert_eq!(
            secret["metadata"]["annotations"]["kubernetes.io/service-account.name"],
            name
        );
    }
    // Every identity the policy must hold is one it matches, and nobody else.
    let write = update(
        upkeep("Host", "hosts", "status"),
        host("web-1", None, None),
        host("web-1", None, None),
    );
    assert_eq!(
        admit(policy, &node_agent("web-1"), &write),
        Decision::Allowed
    );
    assert_eq!(
        admit(policy, &external_host("db-1"), &write),
        Decision::Denied("the agent of host db-1 may write its own Host only, not web-1".into())
    );
    assert_eq!(admit(policy, &operator(), &write), Decision::NotMatched);
}

#[test]
fn a_node_agent_writes_its_own_host_lease_and_task_status_only() {
    let Some(policy) = agent_policy("node_agent") else {
        return;
    };
    let own = patch_task("nightly-web-1", "web-1");
    let other = patch_task("nightly-web-2", "web-2");
    let firmware = task(
        "fw-web-1",
        json!({"upkeep.dev/parent-kind": "FirmwareUpgrade", "upkeep.dev/parent": "fw", "upkeep.dev/target": "web-1"}),
    );
    let unlabelled = task("loose", json!({}));
    let status = || upkeep("UpgradeTask", "upgradetasks", "status");
    let tasks = || upkeep("UpgradeTask", "upgradetasks", "");
    let hosts = || upkeep("Host", "hosts", "");
    let host_status = || upkeep("Host", "hosts", "status");
    let own_tasks_only = "may write the status of its own PatchJob tasks only";
    assert_decisions(
        policy,
        &node_agent("web-1"),
        &[
            (
                "its task's code",
                update(
                    status(),
                    own.clone(),
                    with_code(own.clone(), "JobReceived", 2055),
                ),
                Ok(()),
            ),
            (
                "another host's task",
                update(
                    status(),
                    other.clone(),
                    with_code(other.clone(), "Completed", 2036),
                ),
                Err(
                    "the agent of host web-1 may write the status of its own PatchJob tasks only (labels upkeep.dev/target=web-1 and upkeep.dev/parent-kind=PatchJob), not of UpgradeTask nightly-web-2",
                ),
            ),
            (
                "a FirmwareUpgrade's task for its host",
                update(
                    status(),
                    firmware.clone(),
                    with_code(firmware.clone(), "SUCCESS", 0),
                ),
                Err(own_tasks_only),
            ),
            (
                "a task without labels",
                update(
                    status(),
                    unlabelled.clone(),
                    with_code(unlabelled, "Completed", 2036),
                ),
                Err(own_tasks_only),
            ),
            (
                "its task's spec",
                update(
                    tasks(),
                    own.clone(),
                    with_code(own.clone(), "Completed", 2036),
                ),
                Err(
                    "an upkeep agent may not UPDATE upgradetasks: it creates its Host and its Lease",
                ),
            ),
            (
                "a task of its own making",
                create(tasks(), patch_task("forged", "web-1")),
                Err("may not CREATE upgradetasks"),
            ),
            (
                "deleting its task",
                delete(tasks(), own.clone()),
                Err("may not DELETE upgradetasks"),
            ),
            (
                "its Host, on first start",
                create(hosts(), host("web-1", Some("web-1"), None)),
                Ok(()),
            ),
            (
                "its Host without a nodeName",
                create(hosts(), host("web-1", None, None)),
                Ok(()),
            ),
            (
                "its Host named for another node",
                create(hosts(), host("web-1", Some("web-2"), None)),
                Err(
                    "the agent of node web-1 creates its Host with spec.nodeName web-1 or none, not web-2",
                ),
            ),
            (
                "another Host",
                create(hosts(), host("web-2", Some("web-2"), None)),
                Err("the agent of host web-1 may write its own Host only, not web-2"),
            ),
            (
                "its Host's status",
                update(
                    host_status(),
                    host("web-1", Some("web-1"), None),
                    reboot_required(host("web-1", Some("web-1"), None)),
                ),
                Ok(()),
            ),
            (
                "another Host's status",
                update(
                    host_status(),
                    host("web-2", Some("web-2"), None),
                    reboot_required(host("web-2", Some("web-2"), None)),
                ),
                Err("may write its own Host only, not web-2"),
            ),
            (
                "its Host's spec",
                update(
                    hosts(),
                    host("web-1", Some("web-1"), None),
                    host("web-1", Some("db-1"), None),
                ),
                Err("an upkeep agent may not UPDATE hosts"),
            ),
            (
                "deleting its Host",
                delete(hosts(), host("web-1", Some("web-1"), None)),
                Err("may not DELETE hosts"),
            ),
            (
                "its Lease, created",
                create(lease_write(), lease("upkeep-host-web-1", "web-1")),
                Ok(()),
            ),
            (
                "its Lease, renewed",
                update(
                    lease_write(),
                    lease("upkeep-host-web-1", "web-1"),
                    renewed(lease("upkeep-host-web-1", "web-1")),
                ),
                Ok(()),
            ),
            (
                "another host's Lease",
                update(
                    lease_write(),
                    lease("upkeep-host-web-2", "web-2"),
                    renewed(lease("upkeep-host-web-2", "web-1")),
                ),
                Err("may write its own Lease upkeep-host-web-1 only, not upkeep-host-web-2"),
            ),
            (
                "the operator's leader Lease",
                update(
                    lease_write(),
                    lease("upkeep-leader", "upkeep-0"),
                    renewed(lease("upkeep-leader", "web-1")),
                ),
                Err("not upkeep-leader"),
            ),
            (
                "deleting its Lease",
                delete(lease_write(), lease("upkeep-host-web-1", "web-1")),
                Err("may not DELETE leases"),
            ),
            (
                "a PatchJob",
                create(
                    upkeep("PatchJob", "patchjobs", ""),
                    json!({"metadata": {"name": "mine"}, "spec": {"hosts": {"names": ["web-2"]}}}),
                ),
                Err("may not CREATE patchjobs"),
            ),
            (
                "a PatchJob's status",
                update(
                    upkeep("PatchJob", "patchjobs", "status"),
                    json!({"metadata": {"name": "nightly"}}),
                    json!({"metadata": {"name": "nightly"}, "status": {"code": "x"}}),
                ),
                Err("may not UPDATE patchjobs/status"),
            ),
        ],
    );
}

#[test]
fn status_held_by_is_the_controllers_alone() {
    let Some(policy) = agent_policy("held_by") else {
        return;
    };
    let job = "PatchJob/upkeep-system/nightly";
    let status = || upkeep("Host", "hosts", "status");
    let message = "status.heldBy is written by the PatchJob controller only";
    assert_decisions(
        policy,
        &node_agent("web-1"),
        &[
            (
                "held, unchanged",
                update(
                    status(),
                    host("web-1", None, Some(job)),
                    reboot_required(host("web-1", None, Some(job))),
                ),
                Ok(()),
            ),
            (
                "taking the host",
                update(
                    status(),
                    host("web-1", None, None),
                    host("web-1", None, Some(job)),
                ),
                Err(message),
            ),
            (
                "releasing it",
                update(
                    status(),
                    host("web-1", None, Some(job)),
                    host("web-1", None, None),
                ),
                Err(message),
            ),
            (
                "handing it to another job",
                update(
                    status(),
                    host("web-1", None, Some(job)),
                    host("web-1", None, Some("PatchJob/upkeep-system/other")),
                ),
                Err(message),
            ),
        ],
    );
    // The controller, which writes it, is not the policy's business.
    let write = update(
        status(),
        host("web-1", None, None),
        host("web-1", None, Some(job)),
    );
    assert_eq!(admit(policy, &operator(), &write), Decision::NotMatched);
}

#[test]
fn a_machine_outside_the_cluster_is_its_service_account() {
    let Some(policy) = agent_policy("external_host") else {
        return;
    };
    let own = patch_task("nightly-db-1", "db-1");
    let other = patch_task("nightly-web-1", "web-1");
    assert_decisions(
        policy,
        &external_host("db-1"),
        &[
            (
                "its Host",
                create(upkeep("Host", "hosts", ""), host("db-1", None, None)),
                Ok(()),
            ),
            (
                "its Host posing as a node",
                create(
                    upkeep("Host", "hosts", ""),
                    host("db-1", Some("web-1"), None),
                ),
                Err(
                    "the agent of host db-1 runs outside the cluster: it creates its Host without spec.nodeName, not with web-1",
                ),
            ),
            (
                "its Host's status",
                update(
                    upkeep("Host", "hosts", "status"),
                    host("db-1", None, None),
                    reboot_required(host("db-1", None, None)),
                ),
                Ok(()),
            ),
            (
                "a node's Host",
                update(
                    upkeep("Host", "hosts", "status"),
                    host("web-1", Some("web-1"), None),
                    reboot_required(host("web-1", Some("web-1"), None)),
                ),
                Err("the agent of host db-1 may write its own Host only, not web-1"),
            ),
            (
                "its Lease",
                create(lease_write(), lease("upkeep-host-db-1", "db-1")),
                Ok(()),
            ),
            (
                "another Lease",
                create(lease_write(), lease("upkeep-host-db-2", "db-1")),
                Err("not upkeep-host-db-2"),
            ),
            (
                "its task",
                update(
                    upkeep("UpgradeTask", "upgradetasks", "status"),
                    own.clone(),
                    with_code(own, "JobStarted", 2044),
                ),
                Ok(()),
            ),
            (
                "a node's task",
                update(
                    upkeep("UpgradeTask", "upgradetasks", "status"),
                    other.clone(),
                    with_code(other, "JobStarted", 2044),
                ),
                Err("the agent of host db-1 may write the status of its own PatchJob tasks only"),
            ),
        ],
    );
    // A node claim in an external host's credential changes nothing: its name is its identity.
    let mut claimed = external_host("db-1");
    claimed
        .extra
        .insert(NODE_CLAIM.into(), vec!["web-1".into()]);
    let write = create(lease_write(), lease("upkeep-host-web-1", "web-1"));
    assert_eq!(
        admit(policy, &claimed, &write),
        Decision::Denied(
            "the agent of host db-1 may write its own Lease upkeep-host-db-1 only, not upkeep-host-web-1"
                .into()
        )
    );
}

#[test]
fn a_credential_that_names_no_host_writes_nothing() {
    let Some(policy) = agent_policy("no_claim") else {
        return;
    };
    let mut no_extra = node_agent("web-1");
    no_extra.extra.clear();
    let mut no_claim = node_agent("web-1");
    no_claim.extra.remove(NODE_CLAIM);
    let mut empty_claim = node_agent("web-1");
    empty_claim.extra.insert(NODE_CLAIM.into(), vec![]);
    let mut two_claims = node_agent("web-1");
    two_claims
        .extra
        .insert(NODE_CLAIM.into(), vec!["web-1".into(), "web-2".into()]);
    let write = create(lease_write(), lease("upkeep-host-", ""));
    let task = patch_task("nightly-", "");
    let task_write = update(
        upkeep("UpgradeTask", "upgradetasks", "status"),
        task.clone(),
        with_code(task, "Completed", 2036),
    );
    for user in [no_extra, no_claim, empty_claim, two_claims] {
        for write in [&write, &task_write] {
            let decision = admit(policy, &user, write);
            assert!(
                matches!(&decision, Decision::Denied(m) if m.starts_with("the agent's credential names no host")),
                "{user:?}: {decision:?}"
            );
        }
    }
}

/// values-full.yaml names the agent's ServiceAccount and puts the Hosts in another namespace:
/// the policy follows the ServiceAccount, and only it.
#[test]
fn the_policy_follows_the_agents_service_account_name() {
    let Some(objects) = rendered("service_account_name", "values-full.yaml") else {
        return;
    };
    let policy = only(objects, "ValidatingAdmissionPolicy");
    let write = update(
        upkeep("Host", "hosts", "status"),
        host("web-2", None, None),
        host("web-2", None, None),
    );
    let mut renamed = node_agent("web-1");
    renamed.username = format!("system:serviceaccount:{NS}:upkeep-node-agent");
    assert_eq!(
        admit(policy, &renamed, &write),
        Decision::Denied("the agent of host web-1 may write its own Host only, not web-2".into())
    );
    assert_eq!(
        admit(policy, &node_agent("web-1"), &write),
        Decision::NotMatched,
        "upkeep-agent is not this release's agent"
    );
    assert_eq!(
        admit(policy, &external_host("db-2.example.com"), &write),
        Decision::Denied(
            "the agent of host db-2.example.com may write its own Host only, not web-2".into()
        )
    );
}

#[test]
fn resource_rules_cover_as_admission_rules_do() {
    assert!(covers("*", "hosts", ""));
    assert!(!covers("*", "hosts", "status"));
    assert!(covers("*/*", "hosts", "status"));
    assert!(covers("hosts/*", "hosts", "status"));
    assert!(!covers("hosts/*", "leases", "status"));
    assert!(covers("*/status", "upgradetasks", "status"));
    assert!(!covers("leases", "leases", "status"));
}

/// The rendered RBAC, answered as `kubectl auth can-i` would for the agents (DaemonSet and
/// external hosts), the operator and users: `.ci/check_privileges.py` evaluates every Role,
/// ClusterRole and binding the chart renders with the RBAC authorizer's rules (and checks its
/// own evaluator on rules whose answers Kubernetes documents), plus the agent pod's privileges
/// per reboot method; any wrong answer fails it.
#[test]
fn the_rendered_rbac_answers_can_i_as_expected() {
    let Some(python) = python("can_i") else {
        return;
    };
    let out = Command::new(&python)
        .arg(".ci/check_privileges.py")
        .arg("charts/upkeep")
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.contains("FAIL")).collect();
    assert!(
        out.status.success() && failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    // The agent's denials are among the answers: a run that checked nothing cannot pass.
    for line in [
        "ok   agent DaemonSet: can-i create pods/eviction -n upkeep-system: no",
        "ok   agent DaemonSet: can-i patch hosts.upkeep.dev/status -n upkeep-system: yes",
        "ok   external host db-1: can-i delete hosts.upkeep.dev -n upkeep-system: no",
        "ok   operator: can-i create pods/eviction -n kube-system: yes",
        "privileges: ok",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}
