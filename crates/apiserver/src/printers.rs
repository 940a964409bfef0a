//! The `Table` columns and cells of the built-in kinds, as kube-apiserver's printers make them
//! (`pkg/printers/internalversion`): the columns `kubectl get` shows against a real server,
//! priority-1 columns included (kubectl shows those with `-o wide`), and the same cell values
//! (`1/1`, `Running`, `<none>`, ages as `kubectl` prints them).
//!
//! Invariant: cells are computed from an object in its store's form (an Event is read as an
//! `events.k8s.io/v1` Event whichever API it is listed through), so one printer serves a
//! resource and its views. A cell never fails: a missing or malformed field prints as the real
//! printer prints the zero value.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::render::human_duration;

/// How a resource's objects are printed in a `Table`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Printer {
    /// A custom resource: `Name`, the CRD's printer columns (or `Age`).
    Custom,
    Namespace,
    Node,
    Secret,
    ConfigMap,
    Pod,
    Event,
    Lease,
    Job,
    PodDisruptionBudget,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
}

/// A column of a built-in printer: name, type, priority (1: `-o wide` only).
type Def = (&'static str, &'static str, i32);

const NAME: Def = ("Name", "string", 0);
const AGE: Def = ("Age", "string", 0);
const CONTAINERS: Def = ("Containers", "string", 1);
const IMAGES: Def = ("Images", "string", 1);
const SELECTOR: Def = ("Selector", "string", 1);

/// What a printer makes of one object: its cells and its row conditions.
pub(crate) struct Row {
    pub cells: Vec<Value>,
    pub conditions: Option<Value>,
}

impl Printer {
    fn defs(self) -> &'static [Def] {
        match self {
            Self::Custom => &[],
            Self::Namespace => &[NAME, ("Status", "string", 0), AGE],
            Self::Node => &[
                NAME,
                ("Status", "string", 0),
                ("Roles", "string", 0),
                AGE,
                ("Version", "string", 0),
                ("Internal-IP", "string", 1),
                ("External-IP", "string", 1),
                ("OS-Image", "string", 1),
                ("Kernel-Version", "string", 1),
                ("Container-Runtime", "string", 1),
            ],
            Self::Secret => &[NAME, ("Type", "string", 0), ("Data", "string", 0), AGE],
            Self::ConfigMap => &[NAME, ("Data", "string", 0), AGE],
            Self::Pod => &[
                NAME,
                ("Ready", "string", 0),
                ("Status", "string", 0),
                ("Restarts", "string", 0),
                AGE,
                ("IP", "string", 1),
                ("Node", "string", 1),
                ("Nominated Node", "string", 1),
                ("Readiness Gates", "string", 1),
            ],
            Self::Event => &[
                ("Last Seen", "string", 0),
                ("Type", "string", 0),
                ("Reason", "string", 0),
                ("Object", "string", 0),
                ("Subobject", "string", 1),
                ("Source", "string", 1),
                ("Message", "string", 0),
                ("First Seen", "string", 1),
                ("Count", "string", 1),
                ("Name", "string", 1),
            ],
            Self::Lease => &[NAME, ("Holder", "string", 0), AGE],
            Self::Job => &[
                NAME,
                ("Status", "string", 0),
                ("Completions", "string", 0),
                ("Duration", "string", 0),
                AGE,
                CONTAINERS,
                IMAGES,
                SELECTOR,
            ],
            Self::PodDisruptionBudget => &[
                NAME,
                ("Min Available", "string", 0),
                ("Max Unavailable", "string", 0),
                ("Allowed Disruptions", "integer", 0),
                AGE,
            ],
            Self::Deployment => &[
                NAME,
                ("Ready", "string", 0),
                ("Up-to-date", "string", 0),
                ("Available", "string", 0),
                AGE,
                CONTAINERS,
                IMAGES,
                SELECTOR,
            ],
            Self::ReplicaSet => &[
                NAME,
                ("Desired", "integer", 0),
                ("Current", "integer", 0),
                ("Ready", "integer", 0),
                AGE,
                CONTAINERS,
                IMAGES,
                SELECTOR,
            ],
            Self::StatefulSet => &[NAME, ("Ready", "string", 0), AGE, CONTAINERS, IMAGES],
            Self::DaemonSet => &[
                NAME,
                ("Desired", "integer", 0),
                ("Current", "integer", 0),
                ("Ready", "integer", 0),
                ("Up-to-date", "integer", 0),
                ("Available", "integer", 0),
                ("Node Selector", "string", 0),
                AGE,
                CONTAINERS,
                IMAGES,
                SELECTOR,
            ],
        }
    }

    /// The `columnDefinitions` of a built-in printer.
    pub fn column_definitions(self) -> Vec<Value> {
        self.defs()
            .iter()
            .map(|(name, type_, priority)| {
                json!({
                    "name": name,
                    "type": type_,
                    "format": if *name == "Name" { "name" } else { "" },
                    "description": description(name),
                    "priority": priority,
                })
            })
            .collect()
    }

    /// The row of `object` (in its store's form) at `now`.
    pub fn row(self, object: &Value, now: Timestamp) -> Row {
        let o = Obj { object, now };
        let name = Value::String(o.str("/metadata/name").to_string());
        let age = Value::String(o.age("/metadata/creationTimestamp"));
        let mut conditions = None;
        let cells = match self {
            Self::Custom => Vec::new(),
            Self::Namespace => vec![name, o.text("/status/phase"), age],
            Self::Node => node(&o, name, age),
            Self::Secret => {
                let data = o.object.pointer("/data").and_then(Value::as_object);
                let type_ = match o.str("/type") {
                    "" => "Opaque",
                    t => t,
                };
                vec![name, json!(type_), json!(data.map_or(0, |d| d.len())), age]
            }
            Self::ConfigMap => {
                let count = ["/data", "/binaryData"]
                    .iter()
                    .filter_map(|p| o.object.pointer(p).and_then(Value::as_object))
                    .map(|m| m.len())
                    .sum::<usize>();
                vec![name, json!(count), age]
            }
            Self::Pod => {
                let (cells, row_conditions) = pod(&o, name, age);
                conditions = row_conditions;
                cells
            }
            Self::Event => event(&o),
            Self::Lease => {
                let holder = match o.object.pointer("/spec/holderIdentity") {
                    Some(Value::String(h)) => h.clone(),
                    _ => "<none>".into(),
                };
                vec![name, json!(holder), age]
            }
            Self::Job => job(&o, name, age),
            Self::PodDisruptionBudget => {
                let bound = |p: &str| match o.object.pointer(p) {
                    Some(Value::Number(n)) => n.to_string(),
                    Some(Value::String(s)) => s.clone(),
                    _ => "N/A".into(),
                };
                vec![
                    name,
                    json!(bound("/spec/minAvailable")),
                    json!(bound("/spec/maxUnavailable")),
                    json!(o.int("/status/disruptionsAllowed")),
                    age,
                ]
            }
            Self::Deployment => {
                let desired = o
                    .object
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                let (containers, images) = o.containers("/spec/template/spec/containers");
                vec![
                    name,
                    json!(format!("{}/{desired}", o.int("/status/readyReplicas"))),
                    json!(o.int("/status/updatedReplicas")),
                    json!(o.int("/status/availableReplicas")),
                    age,
                    json!(containers),
                    json!(images),
                    json!(selector_string(o.object.pointer("/spec/selector"))),
                ]
            }
            Self::ReplicaSet => {
                let desired = o
                    .object
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                let (containers, images) = o.containers("/spec/template/spec/containers");
                vec![
                    name,
                    json!(desired),
                    json!(o.int("/status/replicas")),
                    json!(o.int("/status/readyReplicas")),
                    age,
                    json!(containers),
                    json!(images),
                    json!(format_label_selector(o.object.pointer("/spec/selector"))),
                ]
            }
            Self::StatefulSet => {
                let desired = o
                    .object
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                let (containers, images) = o.containers("/spec/template/spec/containers");
                vec![
                    name,
                    json!(format!("{}/{desired}", o.int("/status/readyReplicas"))),
                    age,
                    json!(containers),
                    json!(images),
                ]
            }
            Self::DaemonSet => {
                let (containers, images) = o.containers("/spec/template/spec/containers");
                let node_selector = o
                    .object
                    .pointer("/spec/template/spec/nodeSelector")
                    .and_then(Value::as_object)
                    .filter(|m| !m.is_empty())
                    .map(|m| {
                        let pairs: Vec<String> = m
                            .iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                            .collect();
                        pairs.join(",")
                    })
                    .unwrap_or_else(|| "<none>".into());
                vec![
                    name,
                    json!(o.int("/status/desiredNumberScheduled")),
                    json!(o.int("/status/currentNumberScheduled")),
                    json!(o.int("/status/numberReady")),
                    json!(o.int("/status/updatedNumberScheduled")),
                    json!(o.int("/status/numberAvailable")),
                    json!(node_selector),
                    age,
                    json!(containers),
                    json!(images),
                    json!(format_label_selector(o.object.pointer("/spec/selector"))),
                ]
            }
        };
        Row { cells, conditions }
    }
}

/// The description of a built-in column.
fn description(column: &str) -> &'static str {
    match column {
        "Name" => {
            "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically."
        }
        "Age" => {
            "CreationTimestamp is a timestamp representing the server time when this object was created."
        }
        "Containers" => "Names of each container in the template.",
        "Images" => "Images referenced by each container in the template.",
        "Selector" => "A label query over pods that should match the replica count.",
        "Ready" => "The aggregate readiness state of this pod for accepting traffic.",
        "Status" => "The aggregate status of the object.",
        "Restarts" => {
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."
        }
        "Last Seen" => "The time at which the most recent occurrence of this event was recorded.",
        "First Seen" => "The time at which the event was first recorded.",
        "Object" => "The object that this event is about.",
        "Message" => "A human-readable description of the status of this operation.",
        "Min Available" => "The minimum number of pods that must be available.",
        "Max Unavailable" => "The maximum number of pods that may be unavailable.",
        "Allowed Disruptions" => "Calculated number of pods that may be disrupted at this time.",
        "Holder" => "The holder of the lease.",
        _ => "",
    }
}

/// An object being printed, with the time its ages are computed at.
struct Obj<'a> {
    object: &'a Value,
    now: Timestamp,
}

impl Obj<'_> {
    fn str(&self, pointer: &str) -> &str {
        self.object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn text(&self, pointer: &str) -> Value {
        Value::String(self.str(pointer).to_string())
    }

    fn int(&self, pointer: &str) -> i64 {
        self.object
            .pointer(pointer)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    /// `translateTimestampSince`: the age of a time, `<unknown>` without one.
    fn age(&self, pointer: &str) -> String {
        since(self.str(pointer), self.now)
    }

    /// `layoutContainerCells`: container names and images, comma-separated.
    fn containers(&self, pointer: &str) -> (String, String) {
        let list = self
            .object
            .pointer(pointer)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let field = |f: &str| -> String {
            let parts: Vec<&str> = list
                .iter()
                .map(|c| c.get(f).and_then(Value::as_str).unwrap_or_default())
                .collect();
            parts.join(",")
        };
        (field("name"), field("image"))
    }
}

/// The age of an RFC 3339 time at `now`, `<unknown>` for none.
fn since(time: &str, now: Timestamp) -> String {
    match time.parse::<Timestamp>() {
        Ok(t) => human_duration(now.duration_since(t)),
        Err(_) => "<unknown>".into(),
    }
}

/// Whether the condition list at `pointer` has `type_` with status `True`.
fn condition_true(object: &Value, pointer: &str, type_: &str) -> bool {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(type_)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// A label selector as `labels.Selector.String()` spells it: requirements sorted by key.
fn selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            requirements.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
        }
    }
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let text = match e.get("operator").and_then(Value::as_str) {
            Some("In") => format!("{key} in ({})", values.join(",")),
            Some("NotIn") => format!("{key} notin ({})", values.join(",")),
            Some("Exists") => key.to_string(),
            Some("DoesNotExist") => format!("!{key}"),
            _ => "<invalid>".to_string(),
        };
        requirements.push((key.to_string(), text));
    }
    requirements.sort();
    let parts: Vec<String> = requirements.into_iter().map(|(_, t)| t).collect();
    parts.join(",")
}

/// `metav1.FormatLabelSelector`: the selector, `<none>` when it selects by nothing.
fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        s if s.is_empty() => "<none>".into(),
        s => s,
    }
}

fn node(o: &Obj<'_>, name: Value, age: Value) -> Vec<Value> {
    let ready = o
        .object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        });
    let mut status = vec![match ready {
        Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if o.object.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<String> = o
        .object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role.to_string()),
            Some(_) => None,
            None if k == "kubernetes.io/role" => {
                v.as_str().filter(|v| !v.is_empty()).map(str::to_string)
            }
            None => None,
        })
        .collect();
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |type_: &str| {
        o.object
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter()
                    .find(|a| a.get("type").and_then(Value::as_str) == Some(type_))
            })
            .and_then(|a| a.get("address").and_then(Value::as_str))
            .unwrap_or("<none>")
            .to_string()
    };
    let info = |field: &str| match o.str(&format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        name,
        json!(status.join(",")),
        json!(roles),
        age,
        o.text("/status/nodeInfo/kubeletVersion"),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// A container status's restart count and last termination time.
fn restarts_of(status: &Value) -> (i64, &str) {
    (
        status
            .get("restartCount")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        status
            .pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
}

/// The reason a terminated container state prints as, given the prefix (`Init:` or none).
fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    match terminated.get("reason").and_then(Value::as_str) {
        Some(reason) if !reason.is_empty() => format!("{prefix}{reason}"),
        _ => match terminated.get("signal").and_then(Value::as_i64) {
            Some(signal) if signal != 0 => format!("{prefix}Signal:{signal}"),
            _ => format!(
                "{prefix}ExitCode:{}",
                terminated
                    .get("exitCode")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            ),
        },
    }
}

/// `printPod`: ready containers, the aggregate status, restarts, and the wide columns.
fn pod(o: &Obj<'_>, name: Value, age: Value) -> (Vec<Value>, Option<Value>) {
    let pod = o.object;
    let list = |p: &str| {
        pod.pointer(p)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let phase = o.str("/status/phase");
    let mut reason = match o.str("/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if list("/status/conditions").iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some("PodScheduled")
            && c.get("reason").and_then(Value::as_str) == Some("SchedulingGated")
    }) {
        reason = "SchedulingGated".into();
    }
    let conditions = match phase {
        "Succeeded" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]),
        ),
        _ => None,
    };
    let init_specs = list("/spec/initContainers");
    let restartable = |name: &str| {
        init_specs.iter().any(|c| {
            c.get("name").and_then(Value::as_str) == Some(name)
                && c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
        })
    };
    let total = list("/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"))
            .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart = "";
    let mut sidecar_restarts = 0;
    let mut last_sidecar_restart = "";
    let mut initializing = false;
    let init_statuses = list("/status/initContainerStatuses");
    for (i, status) in init_statuses.iter().enumerate() {
        let container = status.get("name").and_then(Value::as_str).unwrap_or("");
        let (count, finished) = restarts_of(status);
        restarts += count;
        last_restart = last_restart.max(finished);
        if restartable(container) {
            sidecar_restarts += count;
            last_sidecar_restart = last_sidecar_restart.max(finished);
        }
        let terminated = status.pointer("/state/terminated");
        let waiting_reason = status
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .unwrap_or("");
        if terminated
            .and_then(|t| t.get("exitCode"))
            .and_then(Value::as_i64)
            == Some(0)
        {
            continue;
        }
        if restartable(container) && status.get("started") == Some(&Value::Bool(true)) {
            if status.get("ready") == Some(&Value::Bool(true)) {
                ready += 1;
            }
            continue;
        }
        reason = match terminated {
            Some(t) => terminated_reason(t, "Init:"),
            None if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" => {
                format!("Init:{waiting_reason}")
            }
            None => format!("Init:{i}/{}", init_specs.len()),
        };
        initializing = true;
        break;
    }
    if !initializing || condition_true(pod, "/status/conditions", "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list("/status/containerStatuses").iter().rev() {
            let (count, finished) = restarts_of(status);
            restarts += count;
            last_restart = last_restart.max(finished);
            let waiting = status
                .pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = status.pointer("/state/terminated") {
                reason = terminated_reason(t, "");
            } else if status.get("ready") == Some(&Value::Bool(true))
                && status.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "/status/conditions", "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        if o.str("/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }
    let restarts = if restarts != 0 && !last_restart.is_empty() {
        format!("{restarts} ({} ago)", since(last_restart, o.now))
    } else {
        restarts.to_string()
    };
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let ip = pod
        .pointer("/status/podIPs/0/ip")
        .and_then(Value::as_str)
        .unwrap_or_else(|| o.str("/status/podIP"));
    let gates = list("/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_gates = gates
            .iter()
            .filter_map(|g| g.get("conditionType").and_then(Value::as_str))
            .filter(|t| condition_true(pod, "/status/conditions", t))
            .count();
        format!("{true_gates}/{}", gates.len())
    };
    let cells = vec![
        name,
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        age,
        json!(or_none(ip)),
        json!(or_none(o.str("/spec/nodeName"))),
        json!(or_none(o.str("/status/nominatedNodeName"))),
        json!(readiness_gates),
    ];
    (cells, conditions)
}

/// `printEvent`, over an `events.k8s.io/v1` Event.
fn event(o: &Obj<'_>) -> Vec<Value> {
    let first = match o.str("/deprecatedFirstTimestamp") {
        "" => o.age("/eventTime"),
        _ => o.age("/deprecatedFirstTimestamp"),
    };
    let mut last = match o.str("/deprecatedLastTimestamp") {
        "" => first.clone(),
        _ => o.age("/deprecatedLastTimestamp"),
    };
    let mut count = o.int("/deprecatedCount");
    if o.object.get("series").is_some_and(|s| s.is_object()) {
        last = o.age("/series/lastObservedTime");
        count = o.int("/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = o.str("/regarding/kind").to_lowercase();
    let target = match o.str("/regarding/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let first_non_empty = |a: &str, b: &str| match o.str(a) {
        "" => o.str(b).to_string(),
        value => value.to_string(),
    };
    let component = first_non_empty("/deprecatedSource/component", "/reportingController");
    let instance = first_non_empty("/deprecatedSource/host", "/reportingInstance");
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        o.text("/type"),
        o.text("/reason"),
        json!(target),
        o.text("/regarding/fieldPath"),
        json!(source),
        json!(o.str("/note").trim()),
        json!(first),
        json!(count),
        o.text("/metadata/name"),
    ]
}

/// `printJob`: status from the conditions, completions, duration.
fn job(o: &Obj<'_>, name: Value, age: Value) -> Vec<Value> {
    let succeeded = o.int("/status/succeeded");
    let completions = match o
        .object
        .pointer("/spec/completions")
        .and_then(Value::as_i64)
    {
        Some(c) => format!("{succeeded}/{c}"),
        None => match o.int("/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = o.str("/status/startTime").parse::<Timestamp>().ok();
    let end = o.str("/status/completionTime").parse::<Timestamp>().ok();
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(o.now.duration_since(s)),
        (Some(s), Some(e)) => human_duration(e.duration_since(s)),
    };
    let has = |t: &str| condition_true(o.object, "/status/conditions", t);
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if o.object.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (containers, images) = o.containers("/spec/template/spec/containers");
    vec![
        name,
        json!(status),
        json!(completions),
        json!(duration),
        age,
        json!(containers),
        json!(images),
        json!(format_label_selector(o.object.pointer("/spec/selector"))),
    ]
}
