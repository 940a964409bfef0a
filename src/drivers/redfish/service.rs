//! Reading a Redfish service: the service root, the ComputerSystem and its Manager, the
//! UpdateService's capabilities, FirmwareInventory, and tasks (task monitors and TaskService).

use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::client::{Client, members, messages, odata_id, text};
use crate::drivers::wire::malformed;
use crate::engine::firmware::observe::{CallError, FaultKind};

/// The service root's links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Root {
    /// The ComputerSystem collection.
    pub systems: String,
    /// The UpdateService, if the service has one.
    pub update_service: Option<String>,
    /// The TaskService, if the service has one.
    pub task_service: Option<String>,
}

/// Where the service keeps everything, read from `/redfish/v1/`.
pub(crate) async fn root(client: &Client) -> Result<Root, CallError> {
    let root = client.get("/redfish/v1/").await?;
    Ok(Root {
        systems: odata_id(root.get("Systems"))
            .unwrap_or("/redfish/v1/Systems")
            .to_string(),
        update_service: odata_id(root.get("UpdateService")).map(str::to_string),
        task_service: odata_id(root.get("TaskService")).map(str::to_string),
    })
}

/// The path of the system `configured` names (an id or a path), or the only system listed.
pub(crate) async fn system_path(
    client: &Client,
    root: &Root,
    configured: Option<&str>,
) -> Result<String, CallError> {
    if let Some(system) = configured.map(str::trim).filter(|s| !s.is_empty()) {
        if system.starts_with('/') {
            return Ok(system.to_string());
        }
        return Ok(format!("{}/{system}", root.systems.trim_end_matches('/')));
    }
    let collection = client.get(&root.systems).await?;
    let mut systems = members(&collection);
    match systems.len() {
        1 => Ok(systems.remove(0)),
        0 => Err(CallError::new(
            FaultKind::Error,
            format!("{} lists no ComputerSystem", root.systems),
        )),
        n => Err(CallError::new(
            FaultKind::Error,
            format!(
                "{} lists {n} systems ({}); set the Device's redfish.system to one of them",
                root.systems,
                systems.join(", ")
            ),
        )),
    }
}

/// The `ComputerSystem.Reset` action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResetAction {
    /// Where to POST.
    pub target: String,
    /// `ResetType@Redfish.AllowableValues` (empty when the service does not say).
    pub types: Vec<String>,
}

impl ResetAction {
    /// The reset type to restart with: GracefulRestart when allowed, else ForceRestart, else
    /// PowerCycle; GracefulRestart when the service lists nothing.
    pub(crate) fn restart_type(&self) -> Result<&str, CallError> {
        if self.types.is_empty() {
            return Ok("GracefulRestart");
        }
        ["GracefulRestart", "ForceRestart", "PowerCycle"]
            .into_iter()
            .find(|t| self.types.iter().any(|a| a == t))
            .ok_or_else(|| {
                CallError::new(
                    FaultKind::Error,
                    format!(
                        "the system allows no restart (ResetType {}); upkeep needs GracefulRestart, ForceRestart or PowerCycle",
                        self.types.join(", ")
                    ),
                )
            })
    }
}

/// What upkeep reads from a ComputerSystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct System {
    /// Its path.
    pub path: String,
    /// `Manufacturer Model`, whichever is present.
    pub model: String,
    /// `BiosVersion`.
    pub bios_version: Option<String>,
    /// `PowerState`.
    pub power_state: Option<String>,
    /// Its first manager (`Links.ManagedBy`).
    pub manager: Option<String>,
    /// The reset action.
    pub reset: Option<ResetAction>,
}

/// Reads the ComputerSystem at `path`.
pub(crate) async fn system(client: &Client, path: &str) -> Result<System, CallError> {
    let body = client.get(path).await?;
    let model = match (text(&body, "Manufacturer"), text(&body, "Model")) {
        (Some(make), Some(model)) if !model.starts_with(make) => format!("{make} {model}"),
        (_, Some(model)) => model.to_string(),
        (Some(make), None) => make.to_string(),
        (None, None) => "ComputerSystem".to_string(),
    };
    let manager = body
        .get("Links")
        .and_then(|l| l.get("ManagedBy"))
        .and_then(Value::as_array)
        .and_then(|m| m.first())
        .and_then(|m| odata_id(Some(m)))
        .map(str::to_string);
    let reset = body
        .get("Actions")
        .and_then(|a| a.get("#ComputerSystem.Reset"))
        .map(|action| ResetAction {
            target: text(action, "target")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{path}/Actions/ComputerSystem.Reset")),
            types: strings(action.get("ResetType@Redfish.AllowableValues")),
        });
    Ok(System {
        // A redirect (an alias of the system) is followed; keep the canonical path.
        path: text(&body, "@odata.id").unwrap_or(path).to_string(),
        model,
        bios_version: text(&body, "BiosVersion").map(str::to_string),
        power_state: text(&body, "PowerState").map(str::to_string),
        manager,
        reset,
    })
}

/// A manager's `FirmwareVersion`.
pub(crate) async fn manager_version(
    client: &Client,
    path: &str,
) -> Result<Option<String>, CallError> {
    let body = client.get(path).await?;
    Ok(text(&body, "FirmwareVersion").map(str::to_string))
}

/// When an update takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApplyTime {
    /// As soon as the service has the image (the update task covers the install).
    Immediate,
    /// At the next reset of the system.
    OnReset,
}

impl ApplyTime {
    /// The value of `@Redfish.OperationApplyTime`.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "Immediate",
            Self::OnReset => "OnReset",
        }
    }

    fn choose(supported: &[String]) -> Option<Self> {
        supported
            .iter()
            .any(|v| v == "OnReset")
            .then_some(Self::OnReset)
    }
}

/// How the service takes images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UpdateMethod {
    /// `MultipartHttpPushUri`: upkeep sends the image.
    Multipart {
        /// Where to POST the multipart form.
        uri: String,
        /// `OnReset` when the service supports it; `None` to leave the apply time to it.
        apply: Option<ApplyTime>,
    },
    /// `UpdateService.SimpleUpdate`: the service downloads the image from `ImageURI`.
    SimpleUpdate {
        /// The action's target.
        target: String,
        /// `TransferProtocol@Redfish.AllowableValues`.
        protocols: Vec<String>,
        /// `OnReset` when the action supports it; `None` to leave the apply time to it.
        apply: Option<ApplyTime>,
    },
}

impl UpdateMethod {
    /// When the update will take effect.
    pub(crate) fn apply_time(&self) -> ApplyTime {
        match self {
            Self::Multipart { apply, .. } | Self::SimpleUpdate { apply, .. } => {
                apply.unwrap_or(ApplyTime::Immediate)
            }
        }
    }
}

/// What upkeep reads from the UpdateService.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UpdateService {
    /// How images are taken (multipart push preferred).
    pub method: Option<UpdateMethod>,
    /// The URIs an update request goes to (to recognise update tasks).
    pub update_uris: Vec<String>,
    /// The FirmwareInventory collection.
    pub inventory: Option<String>,
}

/// Reads the UpdateService at `path`.
pub(crate) async fn update_service(
    client: &Client,
    path: &str,
) -> Result<UpdateService, CallError> {
    let body = client.get(path).await?;
    let simple = body
        .get("Actions")
        .and_then(|a| a.get("#UpdateService.SimpleUpdate"));
    let simple_target = simple.and_then(|s| text(s, "target")).map(str::to_string);
    let multipart = text(&body, "MultipartHttpPushUri").map(str::to_string);
    let mut update_uris: Vec<String> = [
        multipart.clone(),
        simple_target.clone(),
        text(&body, "HttpPushUri").map(str::to_string),
    ]
    .into_iter()
    .flatten()
    .collect();
    update_uris.dedup();
    let method = if let Some(uri) = multipart {
        let mut supported = strings(
            body.get("MultipartHttpPushUri@Redfish.OperationApplyTimeSupport")
                .and_then(|s| s.get("SupportedValues")),
        );
        supported.extend(strings(
            body.get("HttpPushUriOptions")
                .and_then(|o| o.get("HttpPushUriApplyTime"))
                .and_then(|o| o.get("ApplyTime@Redfish.AllowableValues")),
        ));
        Some(UpdateMethod::Multipart {
            uri,
            apply: ApplyTime::choose(&supported),
        })
    } else {
        simple_target.map(|target| {
            let simple = simple.unwrap_or(&Value::Null);
            UpdateMethod::SimpleUpdate {
                target,
                protocols: strings(simple.get("TransferProtocol@Redfish.AllowableValues")),
                apply: ApplyTime::choose(&strings(
                    simple
                        .get("@Redfish.OperationApplyTimeSupport")
                        .and_then(|s| s.get("SupportedValues")),
                )),
            }
        })
    };
    Ok(UpdateService {
        method,
        update_uris,
        inventory: odata_id(body.get("FirmwareInventory")).map(str::to_string),
    })
}

/// A component's version and the URI an update of it targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Component {
    /// The version it runs.
    pub version: String,
    /// The `Targets` entry of an update of it.
    pub target: String,
}

/// The most FirmwareInventory members read to find a component by name.
const INVENTORY_SCAN_LIMIT: usize = 64;

/// Finds `component` in the FirmwareInventory at `inventory`: a member whose id is the
/// component (case-insensitive), else for `BIOS`/`BMC` a member whose id or `Name` mentions it.
/// `Ok(None)` when the inventory has no such member (or no inventory exists).
pub(crate) async fn inventory_version(
    client: &Client,
    inventory: &str,
    component: &str,
) -> Result<Option<(String, String)>, CallError> {
    let collection = match client.get(inventory).await {
        Ok(c) => c,
        // A service that advertises an inventory it does not serve (sushy-tools) has none.
        Err(e) if e.kind == FaultKind::Error && e.message.starts_with("HTTP 404") => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let ids = members(&collection);
    let last = |m: &String| {
        m.trim_end_matches('/')
            .rsplit('/')
            .next()
            .map(str::to_string)
    };
    let wanted = component.to_ascii_lowercase();
    let exact = ids
        .iter()
        .find(|m| last(m).is_some_and(|id| id.eq_ignore_ascii_case(component)));
    let generic = matches!(wanted.as_str(), "bios" | "bmc");
    let mut candidates: Vec<&String> = exact.into_iter().collect();
    if candidates.is_empty() && generic {
        candidates.extend(
            ids.iter()
                .filter(|m| last(m).is_some_and(|id| id.to_ascii_lowercase().contains(&wanted))),
        );
        if candidates.is_empty() {
            candidates.extend(ids.iter().take(INVENTORY_SCAN_LIMIT));
        }
    }
    for member in candidates {
        let body = client.get(member).await?;
        let id = text(&body, "Id").unwrap_or_default().to_ascii_lowercase();
        let name = text(&body, "Name").unwrap_or_default().to_ascii_lowercase();
        let matches = id == wanted
            || (generic && (id.contains(&wanted) || name.contains(&wanted)))
            || last(member).is_some_and(|l| l.eq_ignore_ascii_case(component));
        if !matches {
            continue;
        }
        if let Some(version) = text(&body, "Version") {
            let path = text(&body, "@odata.id").unwrap_or(member).to_string();
            return Ok(Some((version.to_string(), path)));
        }
    }
    Ok(None)
}

/// How a task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TaskPoll {
    /// Still running; ask again after the hint.
    Running(Option<SignedDuration>),
    /// Finished successfully.
    Done,
    /// Finished badly (or the poll failed).
    Failed(CallError),
    /// The monitor is gone (404): the service no longer knows the task.
    Gone,
}

/// Polls a task monitor (or a Task resource).
pub(crate) async fn poll_task(client: &Client, monitor: &str) -> TaskPoll {
    let request = match client.request(Method::GET, monitor) {
        Ok(r) => r,
        Err(e) => return TaskPoll::Failed(e),
    };
    match client.send(request).await {
        Err(e) if e.kind == FaultKind::Error && e.message.starts_with("HTTP 404") => TaskPoll::Gone,
        Err(e) => TaskPoll::Failed(e),
        Ok(answer) if answer.status == StatusCode::ACCEPTED => {
            match answer.body.as_ref().map(task_state) {
                Some(TaskPoll::Failed(e)) => TaskPoll::Failed(e),
                _ => TaskPoll::Running(answer.retry_after),
            }
        }
        Ok(answer) => match answer.body.as_ref() {
            Some(body) if body.get("TaskState").is_some() => match task_state(body) {
                TaskPoll::Running(_) => TaskPoll::Running(answer.retry_after),
                other => other,
            },
            // The task finished and the monitor returns the operation's own answer.
            _ => TaskPoll::Done,
        },
    }
}

/// The state a Task body reports.
pub(crate) fn task_state(task: &Value) -> TaskPoll {
    let Some(state) = text(task, "TaskState") else {
        return TaskPoll::Running(None);
    };
    let detail = || {
        let m = messages(task.get("Messages"));
        if m.is_empty() {
            String::new()
        } else {
            format!(": {m}")
        }
    };
    match state {
        "New" | "Starting" | "Running" | "Pending" | "Stopping" | "Suspended" | "Interrupted"
        | "Service" => TaskPoll::Running(None),
        "Completed" if text(task, "TaskStatus") == Some("Critical") => {
            TaskPoll::Failed(CallError::new(
                FaultKind::Error,
                format!("the task completed with TaskStatus Critical{}", detail()),
            ))
        }
        "Completed" => TaskPoll::Done,
        "Exception" | "Killed" | "Cancelled" | "Cancelling" => TaskPoll::Failed(CallError::new(
            FaultKind::Error,
            format!("the task ended {state}{}", detail()),
        )),
        other => TaskPoll::Failed(malformed(format!("unknown TaskState {other:?}"))),
    }
}

/// The most tasks read when looking for a running update.
const TASK_SCAN_LIMIT: usize = 32;

/// Looks in the TaskService for a task still running that updates firmware: its payload went to
/// one of `update_uris`, or mentions `image`. Returns the URI to poll (its `TaskMonitor`, else
/// the Task itself). `Ok(None)` when there is none, or the service keeps no task list.
pub(crate) async fn find_update_task(
    client: &Client,
    task_service: Option<&str>,
    update_uris: &[String],
    image: &str,
) -> Result<Option<String>, CallError> {
    let Some(task_service) = task_service else {
        return Ok(None);
    };
    let not_found = |e: &CallError| e.kind == FaultKind::Error && e.message.starts_with("HTTP 404");
    let service = match client.get(task_service).await {
        Ok(s) => s,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(tasks) = odata_id(service.get("Tasks")) else {
        return Ok(None);
    };
    let collection = match client.get(tasks).await {
        Ok(c) => c,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let ids = members(&collection);
    // Services list tasks oldest first; the newest are the likely ones.
    for id in ids.iter().rev().take(TASK_SCAN_LIMIT) {
        let task = match client.get(id).await {
            Ok(t) => t,
            Err(e) if not_found(&e) => continue,
            Err(e) => return Err(e),
        };
        if !matches!(task_state(&task), TaskPoll::Running(_)) {
            continue;
        }
        let payload = task.get("Payload");
        let target = payload
            .and_then(|p| text(p, "TargetUri"))
            .unwrap_or_default();
        let body = payload
            .and_then(|p| p.get("JsonBody"))
            .map(|b| match b {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let to_update = update_uris
            .iter()
            .any(|u| !target.is_empty() && (target == u || target.ends_with(u.as_str())));
        if to_update || (!image.is_empty() && body.contains(image)) {
            let monitor = text(&task, "TaskMonitor").unwrap_or(id).to_string();
            return Ok(Some(monitor));
        }
    }
    Ok(None)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn task_states_map_onto_running_done_and_failed() {
        for running in ["New", "Starting", "Running", "Pending"] {
            assert_eq!(
                task_state(&json!({"TaskState": running})),
                TaskPoll::Running(None)
            );
        }
        assert_eq!(
            task_state(&json!({"TaskState": "Completed", "TaskStatus": "OK"})),
            TaskPoll::Done
        );
        let TaskPoll::Failed(e) = task_state(&json!({"TaskState": "Exception",
            "Messages": [{"MessageId": "Update.1.0.ApplyFailed", "Message": "Flash write failed."}]}))
        else {
            panic!("an exception is a failure")
        };
        assert_eq!(e.kind, FaultKind::Error);
        assert_eq!(e.message, "the task ended Exception: Flash write failed.");
        for failed in ["Killed", "Cancelled"] {
            assert!(matches!(
                task_state(&json!({"TaskState": failed})),
                TaskPoll::Failed(_)
            ));
        }
        let TaskPoll::Failed(e) = task_state(&json!({"TaskState": "Sleeping"})) else {
            panic!("an unknown state is a malformed answer")
        };
        assert_eq!(e.kind, FaultKind::Exception);
    }

    #[test]
    fn restart_types_prefer_a_graceful_restart() {
        let reset = |types: &[&str]| ResetAction {
            target: "/x".into(),
            types: types.iter().map(|t| t.to_string()).collect(),
        };
        assert_eq!(reset(&[]).restart_type().unwrap(), "GracefulRestart");
        assert_eq!(
            reset(&["On", "ForceOff", "ForceRestart", "GracefulRestart"])
                .restart_type()
                .unwrap(),
            "GracefulRestart"
        );
        assert_eq!(
            reset(&["On", "PowerCycle"]).restart_type().unwrap(),
            "PowerCycle"
        );
        assert_eq!(
            reset(&["On", "ForceOff"]).restart_type().unwrap_err().kind,
            FaultKind::Error
        );
    }
}
