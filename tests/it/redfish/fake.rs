//! An in-process fake Redfish service (axum) for what sushy-tools does not emulate: task
//! monitors with TaskState progression and Retry-After, MultipartHttpPushUri,
//! FirmwareInventory, OperationApplyTime OnReset applied by a reset, a TaskService listing,
//! redirects, basic auth, and faults (error bodies, malformed JSON, connection resets, hangs).
//!
//! SimpleUpdate really downloads its `ImageURI` (from upkeep's image server), and a multipart
//! push really carries the image: the fake records the bytes it got.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// A fault the fake injects on one path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// An HTTP error with a Redfish error body.
    Error(StatusCode, &'static str),
    /// 200 with a body that is not JSON.
    Malformed,
    /// The connection is cut in the middle of the answer.
    Reset,
    /// No answer for a minute.
    Hang,
}

/// An update task.
#[derive(Clone, Debug)]
pub struct Task {
    /// The states still to report, one per poll; the last one stays.
    pub states: Vec<&'static str>,
    /// The current state.
    pub state: &'static str,
    /// The URI the request went to, and its JSON body.
    pub target_uri: String,
    pub json_body: String,
    /// What finishing does: the component and the version it gets.
    pub component: String,
    pub version: String,
    /// Whether the version waits for a reset.
    pub on_reset: bool,
    /// Messages reported with the task.
    pub messages: Vec<String>,
}

/// What the fake is and what happened to it.
#[derive(Debug)]
pub struct Fake {
    pub systems: usize,
    pub bios_in_inventory: bool,
    pub inventory: bool,
    pub multipart: bool,
    pub apply_on_reset: bool,
    pub versions: BTreeMap<String, String>,
    pub image_versions: HashMap<String, String>,
    /// TaskState progression each new task goes through.
    pub task_states: Vec<&'static str>,
    /// A task's final Exception messages (the task fails).
    pub task_fails: Option<String>,
    pub retry_after: Option<u64>,
    pub power_state: &'static str,
    pub auth: Option<(String, String)>,
    pub faults: HashMap<String, Fault>,
    // What happened.
    pub tasks: Vec<Task>,
    /// Versions staged for the next reset.
    pub staged: Vec<(String, String)>,
    pub requests: Vec<String>,
    pub updates: Vec<Value>,
    pub received: Vec<(String, Vec<u8>)>,
    pub resets: Vec<String>,
}

impl Default for Fake {
    fn default() -> Self {
        Self {
            systems: 1,
            bios_in_inventory: true,
            inventory: true,
            multipart: false,
            apply_on_reset: false,
            versions: BTreeMap::from([
                ("BIOS".into(), "2.4.0".into()),
                ("BMC".into(), "5.10".into()),
                ("NIC.1".into(), "22.31.6".into()),
            ]),
            image_versions: HashMap::new(),
            task_states: vec!["Running", "Completed"],
            task_fails: None,
            retry_after: Some(2),
            power_state: "On",
            auth: None,
            faults: HashMap::new(),
            tasks: Vec::new(),
            staged: Vec::new(),
            requests: Vec::new(),
            updates: Vec::new(),
            received: Vec::new(),
            resets: Vec::new(),
        }
    }
}

/// The fake's shared state.
pub type Shared = Arc<Mutex<Fake>>;

fn redfish_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"code": "Base.1.8.GeneralError",
        "message": "A general error has occurred. See ExtendedInfo for more information.",
        "@Message.ExtendedInfo": [{"@odata.type": "#Message.v1_1_1.Message",
            "MessageId": "Base.1.8.GeneralError", "Message": message, "Severity": "Critical"}]}});
    (status, axum::Json(body)).into_response()
}

/// The fake's router.
pub fn router(fake: Shared) -> Router {
    Router::new()
        .route("/redfish/v1/", get(service_root))
        .route(
            "/redfish/v1",
            get(|| async { Redirect::permanent("/redfish/v1/") }),
        )
        .route("/redfish/v1/Systems", get(systems))
        .route("/redfish/v1/Systems/{id}", get(system))
        .route(
            "/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset",
            post(reset),
        )
        .route("/redfish/v1/Managers/bmc", get(manager))
        .route("/redfish/v1/UpdateService", get(update_service))
        .route(
            "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            post(simple_update),
        )
        .route("/redfish/v1/UpdateService/upload", post(multipart))
        .route(
            "/redfish/v1/UpdateService/FirmwareInventory",
            get(inventory),
        )
        .route(
            "/redfish/v1/UpdateService/FirmwareInventory/{id}",
            get(inventory_member),
        )
        .route("/redfish/v1/TaskService", get(task_service))
        .route("/redfish/v1/TaskService/Tasks", get(tasks))
        .route("/redfish/v1/TaskService/Tasks/{id}", get(task))
        .route("/redfish/v1/TaskService/TaskMonitors/{id}", get(monitor))
        .layer(middleware::from_fn_with_state(fake.clone(), gate))
        .with_state(fake)
}

/// Logs the request, checks basic auth and injects faults.
async fn gate(State(fake): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let (fault, auth) = {
        let mut f = fake.lock().unwrap();
        f.requests.push(format!("{} {path}", request.method()));
        (f.faults.get(&path).cloned(), f.auth.clone())
    };
    if let Some((user, password)) = auth {
        let expected = format!(
            "Basic {}",
            upkeep::drivers::wire::base64(format!("{user}:{password}").as_bytes())
        );
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return redfish_error(StatusCode::UNAUTHORIZED, "The authentication failed.");
        }
    }
    match fault {
        None => next.run(request).await,
        Some(Fault::Error(status, message)) => redfish_error(status, message),
        Some(Fault::Malformed) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"Members\": [ oops",
        )
            .into_response(),
        Some(Fault::Reset) => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"Id\": \"1\", ")),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "cut",
                )),
            ];
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, "4096")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap()
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            next.run(request).await
        }
    }
}

async fn service_root() -> axum::Json<Value> {
    axum::Json(json!({
        "@odata.id": "/redfish/v1/", "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
        "Id": "RootService", "RedfishVersion": "1.17.0",
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "Managers": {"@odata.id": "/redfish/v1/Managers"},
        "UpdateService": {"@odata.id": "/redfish/v1/UpdateService"},
        "TaskService": {"@odata.id": "/redfish/v1/TaskService"},
    }))
}

async fn systems(State(fake): State<Shared>) -> axum::Json<Value> {
    let n = fake.lock().unwrap().systems;
    let members: Vec<Value> = (1..=n)
        .map(|i| json!({"@odata.id": format!("/redfish/v1/Systems/{i}")}))
        .collect();
    axum::Json(
        json!({"@odata.id": "/redfish/v1/Systems", "Members@odata.count": n, "Members": members}),
    )
}

async fn system(State(fake): State<Shared>, Path(id): Path<String>) -> Response {
    if id == "alias" {
        return Redirect::permanent("/redfish/v1/Systems/1").into_response();
    }
    let f = fake.lock().unwrap();
    let n: usize = id.parse().unwrap_or(0);
    if n == 0 || n > f.systems {
        return redfish_error(StatusCode::NOT_FOUND, "The resource was not found.");
    }
    let path = format!("/redfish/v1/Systems/{id}");
    axum::Json(json!({
        "@odata.id": path, "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
        "Id": id, "Manufacturer": "Contoso", "Model": "R900",
        "BiosVersion": f.versions["BIOS"], "PowerState": f.power_state,
        "Links": {"ManagedBy": [{"@odata.id": "/redfish/v1/Managers/bmc"}]},
        "Actions": {"#ComputerSystem.Reset": {
            "target": format!("{path}/Actions/ComputerSystem.Reset"),
            "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "ForceRestart", "GracefulRestart"]}}
    }))
    .into_response()
}

async fn reset(State(fake): State<Shared>, body: axum::Json<Value>) -> Response {
    let mut f = fake.lock().unwrap();
    let kind = body
        .get("ResetType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    f.resets.push(kind);
    let staged: Vec<(String, String)> = std::mem::take(&mut f.staged);
    for (component, version) in staged {
        f.versions.insert(component, version);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn manager(State(fake): State<Shared>) -> axum::Json<Value> {
    let f = fake.lock().unwrap();
    axum::Json(json!({"@odata.id": "/redfish/v1/Managers/bmc", "Id": "bmc",
        "ManagerType": "BMC", "FirmwareVersion": f.versions["BMC"]}))
}

async fn update_service(State(fake): State<Shared>) -> axum::Json<Value> {
    let f = fake.lock().unwrap();
    let mut simple = json!({
        "target": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
        "TransferProtocol@Redfish.AllowableValues": ["HTTP", "HTTPS"],
    });
    if f.apply_on_reset {
        simple["@Redfish.OperationApplyTimeSupport"] = json!({
            "@odata.type": "#Settings.v1_3_5.OperationApplyTimeSupport",
            "SupportedValues": ["Immediate", "OnReset"]});
    }
    let mut body = json!({
        "@odata.id": "/redfish/v1/UpdateService", "Id": "UpdateService", "ServiceEnabled": true,
        "HttpPushUri": "/redfish/v1/UpdateService/upload",
        "Actions": {"#UpdateService.SimpleUpdate": simple},
    });
    if f.inventory {
        body["FirmwareInventory"] =
            json!({"@odata.id": "/redfish/v1/UpdateService/FirmwareInventory"});
    }
    if f.multipart {
        body["MultipartHttpPushUri"] = json!("/redfish/v1/UpdateService/upload");
        if f.apply_on_reset {
            body["MultipartHttpPushUri@Redfish.OperationApplyTimeSupport"] =
                json!({"SupportedValues": ["Immediate", "OnReset"]});
        }
    }
    axum::Json(body)
}

fn inventory_ids(f: &Fake) -> Vec<&'static str> {
    let mut ids = vec!["BMC", "NIC.1"];
    if f.bios_in_inventory {
        ids.insert(0, "BIOS");
    }
    ids
}

async fn inventory(State(fake): State<Shared>) -> Response {
    let f = fake.lock().unwrap();
    if !f.inventory {
        return redfish_error(StatusCode::NOT_FOUND, "The resource was not found.");
    }
    let members: Vec<Value> = inventory_ids(&f)
        .iter()
        .map(|id| json!({"@odata.id": format!("/redfish/v1/UpdateService/FirmwareInventory/{id}")}))
        .collect();
    axum::Json(
        json!({"@odata.id": "/redfish/v1/UpdateService/FirmwareInventory", "Members": members}),
    )
    .into_response()
}

async fn inventory_member(State(fake): State<Shared>, Path(id): Path<String>) -> Response {
    let f = fake.lock().unwrap();
    if !f.inventory || !inventory_ids(&f).contains(&id.as_str()) {
        return redfish_error(StatusCode::NOT_FOUND, "The resource was not found.");
    }
    axum::Json(json!({
        "@odata.id": format!("/redfish/v1/UpdateService/FirmwareInventory/{id}"),
        "Id": id, "Name": format!("{id} firmware"), "Updateable": true,
        "Version": f.versions[&id],
    }))
    .into_response()
}

/// Creates a task for an accepted update and answers 202 with its monitor.
fn accept(
    f: &mut Fake,
    target_uri: &str,
    json_body: String,
    component: String,
    image: &str,
) -> Response {
    let version = f
        .image_versions
        .get(image)
        .cloned()
        .unwrap_or_else(|| "0.0.0".into());
    let on_reset =
        f.apply_on_reset && json_body.contains("\"@Redfish.OperationApplyTime\":\"OnReset\"");
    let id = f.tasks.len() + 1;
    f.tasks.push(Task {
        states: f.task_states.clone(),
        state: "New",
        target_uri: target_uri.to_string(),
        json_body,
        component,
        version,
        on_reset,
        messages: Vec::new(),
    });
    let mut response = (
        StatusCode::ACCEPTED,
        axum::Json(task_body(id, &f.tasks[id - 1])),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        format!("/redfish/v1/TaskService/TaskMonitors/{id}")
            .parse()
            .unwrap(),
    );
    if let Some(s) = f.retry_after {
        headers.insert(header::RETRY_AFTER, s.to_string().parse().unwrap());
    }
    response
}

fn component_of(f: &Fake, targets: &Value) -> String {
    let target = targets
        .as_array()
        .and_then(|t| t.first())
        .and_then(Value::as_str)
        .unwrap_or("");
    if target.starts_with("/redfish/v1/Systems/") {
        "BIOS".into()
    } else if target.starts_with("/redfish/v1/Managers/") {
        "BMC".into()
    } else {
        let id = target.rsplit('/').next().unwrap_or("");
        if f.versions.contains_key(id) {
            id.into()
        } else {
            "?".into()
        }
    }
}

async fn simple_update(
    State(fake): State<Shared>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let Some(uri) = body
        .get("ImageURI")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return redfish_error(
            StatusCode::BAD_REQUEST,
            "The action requires the parameter ImageURI.",
        );
    };
    // Download the image as a real BMC would.
    let download = async {
        let http = upkeep::drivers::http::client(
            &upkeep::drivers::http::TlsSettings::default(),
            Duration::from_secs(5),
        )
        .expect("an HTTP client");
        let r = http.get(&uri).send().await?.error_for_status()?;
        r.bytes().await
    }
    .await;
    let bytes = match download {
        Ok(b) => b.to_vec(),
        Err(e) => {
            return redfish_error(
                StatusCode::BAD_REQUEST,
                &format!("The image could not be downloaded: {e}"),
            );
        }
    };
    let image = uri.rsplit('/').next().unwrap_or("").to_string();
    let mut f = fake.lock().unwrap();
    f.updates.push(body.clone());
    f.received.push((image.clone(), bytes));
    let component = component_of(&f, body.get("Targets").unwrap_or(&Value::Null));
    accept(
        &mut f,
        "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
        body.to_string(),
        component,
        &image,
    )
}

/// A minimal multipart/form-data reader: the parts' names, file names and bodies.
fn parts(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return Vec::new();
    };
    let delimiter = format!("--{}", boundary.trim_matches('"'));
    let mut out = Vec::new();
    let text = body;
    let mut pos = 0;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    while let Some(start) = find(text, delimiter.as_bytes(), pos) {
        let header_start = start + delimiter.len() + 2;
        let Some(header_end) = find(text, b"\r\n\r\n", header_start) else {
            break;
        };
        let headers = String::from_utf8_lossy(&text[header_start..header_end]).to_string();
        let content_start = header_end + 4;
        let Some(next) = find(text, delimiter.as_bytes(), content_start) else {
            break;
        };
        let content = text[content_start..next - 2].to_vec();
        let field = |key: &str| {
            headers
                .split(';')
                .find_map(|p| p.trim().strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches(['"', '\r', '\n']).to_string())
                .map(|v| v.split('"').next().unwrap_or("").to_string())
        };
        out.push((
            field("name").unwrap_or_default(),
            field("filename"),
            content,
        ));
        pos = next;
    }
    out
}

async fn multipart(State(fake): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let parts = parts(&content_type, &body);
    let parameters = parts
        .iter()
        .find(|(name, _, _)| name == "UpdateParameters")
        .and_then(|(_, _, b)| serde_json::from_slice::<Value>(b).ok());
    let file = parts.iter().find(|(name, _, _)| name == "UpdateFile");
    let (Some(parameters), Some((_, Some(filename), bytes))) = (parameters, file) else {
        return redfish_error(
            StatusCode::BAD_REQUEST,
            "A multipart update needs UpdateParameters and UpdateFile.",
        );
    };
    let mut f = fake.lock().unwrap();
    f.updates.push(parameters.clone());
    f.received.push((filename.clone(), bytes.clone()));
    let component = component_of(&f, parameters.get("Targets").unwrap_or(&Value::Null));
    accept(
        &mut f,
        "/redfish/v1/UpdateService/upload",
        parameters.to_string(),
        component,
        filename,
    )
}

fn task_body(id: usize, task: &Task) -> Value {
    let messages: Vec<Value> = task
        .messages
        .iter()
        .map(|m| json!({"MessageId": "Update.1.0.ApplyFailed", "Message": m}))
        .collect();
    json!({
        "@odata.id": format!("/redfish/v1/TaskService/Tasks/{id}"),
        "@odata.type": "#Task.v1_7_1.Task", "Id": id.to_string(),
        "TaskState": task.state,
        "TaskStatus": if task.state == "Exception" { "Critical" } else { "OK" },
        "TaskMonitor": format!("/redfish/v1/TaskService/TaskMonitors/{id}"),
        "Messages": messages,
        "Payload": {"HttpOperation": "POST", "TargetUri": task.target_uri, "JsonBody": task.json_body},
    })
}

async fn task_service() -> axum::Json<Value> {
    axum::Json(
        json!({"@odata.id": "/redfish/v1/TaskService", "Id": "TaskService",
        "Tasks": {"@odata.id": "/redfish/v1/TaskService/Tasks"}}),
    )
}

async fn tasks(State(fake): State<Shared>) -> axum::Json<Value> {
    let f = fake.lock().unwrap();
    let members: Vec<Value> = (1..=f.tasks.len())
        .map(|i| json!({"@odata.id": format!("/redfish/v1/TaskService/Tasks/{i}")}))
        .collect();
    axum::Json(json!({"@odata.id": "/redfish/v1/TaskService/Tasks", "Members": members}))
}

async fn task(State(fake): State<Shared>, Path(id): Path<usize>) -> Response {
    let f = fake.lock().unwrap();
    match f.tasks.get(id.wrapping_sub(1)) {
        Some(task) => axum::Json(task_body(id, task)).into_response(),
        None => redfish_error(StatusCode::NOT_FOUND, "The resource was not found."),
    }
}

/// Each poll moves the task one state on; finishing applies (or stages) the new version.
async fn monitor(State(fake): State<Shared>, Path(id): Path<usize>) -> Response {
    let mut guard = fake.lock().unwrap();
    let f = &mut *guard;
    let fails = f.task_fails.clone();
    let retry_after = f.retry_after;
    let Some(task) = f.tasks.get_mut(id.wrapping_sub(1)) else {
        return redfish_error(StatusCode::NOT_FOUND, "The resource was not found.");
    };
    if !task.states.is_empty() {
        task.state = task.states.remove(0);
    }
    let mut effect = None;
    if task.state == "Completed" {
        if let Some(message) = fails {
            task.state = "Exception";
            task.messages = vec![message];
        } else if task.states.is_empty() && !task.json_body.is_empty() {
            effect = Some((task.component.clone(), task.version.clone(), task.on_reset));
            // Apply once.
            task.json_body.clear();
        }
    }
    let body = task_body(id, task);
    let running = !matches!(
        task.state,
        "Completed" | "Exception" | "Killed" | "Cancelled"
    );
    if let Some((component, version, on_reset)) = effect {
        if on_reset {
            f.staged.push((component, version));
        } else {
            f.versions.insert(component, version);
        }
    }
    if running {
        let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
        if let Some(s) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, s.to_string().parse().unwrap());
        }
        return response;
    }
    axum::Json(body).into_response()
}
