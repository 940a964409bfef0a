//! The Redfish driver: servers and their BMCs through the DMTF Redfish UpdateService.
//!
//! What each engine call does on the wire (see `docs/drivers.md` for the whole story):
//!
//! - **facts**: the service root (`/redfish/v1/`), the ComputerSystem (the Device's
//!   `redfish.system`, an id or a path; else the only member of the Systems collection), and the
//!   version of the Device's `redfish.component` (`BIOS` by default, `BMC`, or a
//!   FirmwareInventory member id) from the UpdateService's FirmwareInventory, falling back to the
//!   system's `BiosVersion` for `BIOS` and the Manager's `FirmwareVersion` for `BMC`.
//! - **licenses / domain status**: Redfish has neither: an empty list, and no domains with no
//!   unsaved changes. The engine does not ask for them for [`crate::api::device::DeviceFamily::Server`] devices.
//! - **upload**: with a `MultipartHttpPushUri`, a multipart push of the image (`UpdateParameters`
//!   with `Targets` and `@Redfish.OperationApplyTime: OnReset` where supported, then
//!   `UpdateFile`); otherwise `UpdateService.SimpleUpdate` with `ImageURI =
//!   {image_base_url}/{image}` (served by [`crate::images::server`]), `TransferProtocol`
//!   when the service lists it, and `OnReset` where supported.
//! - **upgrade**: applies what the upload staged: a `ComputerSystem.Reset` when the update waits
//!   for a reset (`OnReset`), else waiting for the update task; then, either way, waiting until
//!   the component reports the image's catalog version.
//! - **restart**: `ComputerSystem.Reset` (GracefulRestart, else ForceRestart, else PowerCycle).
//! - **quiesce / unquiesce**: not applicable; done at once.
//!
//! Long operations are tasks: `202 Accepted` with a `Location` task monitor, polled until the
//! task is `Completed` (done) or `Exception`/`Killed`/`Cancelled` (failed with the task's
//! messages); `200`/`204` is a synchronous completion. Redfish has no idempotency keys, so the
//! driver remembers key → task itself, and on a key it does not know (after an operator restart)
//! first checks whether the component already runs the image's version and whether an update
//! task is still running in the TaskService, and adopts it instead of starting a second update.

mod client;
mod service;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use jiff::SignedDuration;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use tracing::Instrument as _;

use self::client::{Answer, Client, text};
use self::service::{ApplyTime, Component, Root, System, TaskPoll, UpdateMethod};
use super::{Caller, DeviceDriver, ImageRef};
use super::{ConnectError, DriverConfig};
use crate::engine::firmware::observe::{
    CallError, DomainStatus, Facts, FaultKind, OpKind, OpStatus, Start,
};
use crate::engine::firmware::version::same_version;

/// The component updated when the Device names none.
pub const DEFAULT_COMPONENT: &str = "BIOS";

/// How soon to look again while waiting for a reset to bring the new version up.
const VERSION_POLL: SignedDuration = SignedDuration::from_secs(15);

/// The slowest transfer rate an upload is given time for (bytes per second), on top of the
/// ordinary call timeout.
const MIN_UPLOAD_RATE: u64 = 1 << 20;

/// What the driver remembers about an operation it started.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Record {
    /// Finished when it was started (`200`/`204`), or its task completed.
    Done,
    /// A task to poll.
    Task(String),
    /// An upgrade: first the task (if any), then until the component reports `target`.
    Version {
        monitor: Option<String>,
        target: Option<String>,
    },
}

/// What an upload staged, by image name, for the upgrade that follows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Staged {
    apply: ApplyTime,
    monitor: Option<String>,
}

/// A [`DeviceDriver`] for one Redfish service.
#[derive(Debug)]
pub struct RedfishDriver {
    client: Client,
    address: String,
    system: Option<String>,
    component: String,
    image_base_url: Option<Url>,
    root: Mutex<Option<Root>>,
    system_path: Mutex<Option<String>>,
    ops: Mutex<HashMap<String, Record>>,
    staged: Mutex<HashMap<String, Staged>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RedfishDriver {
    /// A driver for the Redfish service at `config.address`, updating `config.redfish`'s
    /// component (`BIOS` by default) of its system.
    pub fn new(config: &DriverConfig) -> Result<Self, ConnectError> {
        let bad = |reason: String| ConnectError::Address {
            address: config.address.clone(),
            reason,
        };
        let base = Url::parse(&config.address).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".into()));
        }
        let image_base_url = match &config.image_base_url {
            Some(u) => Some(Url::parse(u).map_err(|e| ConnectError::Address {
                address: u.clone(),
                reason: format!("the image base URL is not a URL: {e}"),
            })?),
            None => None,
        };
        let http = super::http::client(&config.tls, config.timeout)?;
        let target = config.redfish.clone().unwrap_or_default();
        Ok(Self {
            client: Client::new(base, http, config.credentials.clone(), config.timeout),
            address: config.address.clone(),
            system: target.system,
            component: target
                .component
                .unwrap_or_else(|| DEFAULT_COMPONENT.to_string()),
            image_base_url,
            root: Mutex::new(None),
            system_path: Mutex::new(None),
            ops: Mutex::new(HashMap::new()),
            staged: Mutex::new(HashMap::new()),
        })
    }

    fn span(&self, call: &str, caller: Caller<'_>, key: Option<&str>) -> tracing::Span {
        tracing::info_span!(
            "redfish",
            address = %self.address,
            call,
            key = key.unwrap_or(""),
            task = caller.task.unwrap_or(""),
            phase = caller.phase.as_str(),
        )
    }

    // ---- discovery ----

    async fn root(&self) -> Result<Root, CallError> {
        if let Some(root) = lock(&self.root).clone() {
            return Ok(root);
        }
        let root = service::root(&self.client).await?;
        *lock(&self.root) = Some(root.clone());
        Ok(root)
    }

    async fn system(&self, root: &Root) -> Result<System, CallError> {
        let cached = lock(&self.system_path).clone();
        let path = match cached {
            Some(path) => path,
            None => service::system_path(&self.client, root, self.system.as_deref()).await?,
        };
        let system = service::system(&self.client, &path).await?;
        *lock(&self.system_path) = Some(system.path.clone());
        Ok(system)
    }

    async fn update_service(&self, root: &Root) -> Result<service::UpdateService, CallError> {
        match &root.update_service {
            Some(path) => service::update_service(&self.client, path).await,
            None => Ok(service::UpdateService {
                method: None,
                update_uris: Vec::new(),
                inventory: None,
            }),
        }
    }

    /// The configured component's version and update target.
    async fn component(
        &self,
        system: &System,
        update: &service::UpdateService,
    ) -> Result<Component, CallError> {
        let wanted = self.component.as_str();
        let bios = wanted.eq_ignore_ascii_case("BIOS");
        let bmc = wanted.eq_ignore_ascii_case("BMC");
        if let Some(inventory) = &update.inventory
            && let Some((version, member)) =
                service::inventory_version(&self.client, inventory, wanted).await?
        {
            let target = if bios {
                system.path.clone()
            } else if bmc {
                system.manager.clone().unwrap_or(member)
            } else {
                member
            };
            return Ok(Component { version, target });
        }
        if bios && let Some(version) = &system.bios_version {
            return Ok(Component {
                version: version.clone(),
                target: system.path.clone(),
            });
        }
        if bmc
            && let Some(manager) = &system.manager
            && let Some(version) = service::manager_version(&self.client, manager).await?
        {
            return Ok(Component {
                version,
                target: manager.clone(),
            });
        }
        Err(CallError::new(
            FaultKind::Error,
            format!(
                "the service reports no version for component {wanted:?} (FirmwareInventory{})",
                if bios {
                    " and the system's BiosVersion"
                } else if bmc {
                    " and the Manager's FirmwareVersion"
                } else {
                    ""
                }
            ),
        ))
    }

    async fn read_facts(&self) -> Result<Facts, CallError> {
        let root = self.root().await?;
        let system = self.system(&root).await?;
        let update = self.update_service(&root).await?;
        let component = self.component(&system, &update).await?;
        Ok(Facts {
            model: system.model,
            r#virtual: false,
            firmware: component.version,
            ..Facts::default()
        })
    }

    // ---- operations ----

    fn remember(&self, key: &str, record: Record) {
        lock(&self.ops).insert(key.to_string(), record);
    }

    /// How the operation recorded under `key` stands (polling its task), or `None` when the
    /// driver knows no such operation.
    async fn poll_known(&self, key: &str) -> Option<OpStatus> {
        let record = lock(&self.ops).get(key).cloned()?;
        Some(self.poll_record(key, record).await)
    }

    async fn poll_record(&self, key: &str, record: Record) -> OpStatus {
        match record {
            Record::Done => OpStatus::Done,
            Record::Task(monitor) => match service::poll_task(&self.client, &monitor).await {
                TaskPoll::Running(retry_after) => OpStatus::Running { retry_after },
                // A monitor the service deleted after the task ended: taken as finished; for an
                // update, the version check that follows decides.
                TaskPoll::Done | TaskPoll::Gone => {
                    self.remember(key, Record::Done);
                    OpStatus::Done
                }
                TaskPoll::Failed(e) => OpStatus::Failed(e),
            },
            Record::Version { monitor, target } => {
                if let Some(m) = &monitor {
                    match service::poll_task(&self.client, m).await {
                        TaskPoll::Running(retry_after) => {
                            return OpStatus::Running { retry_after };
                        }
                        TaskPoll::Failed(e) if e.kind != FaultKind::Unreachable => {
                            return OpStatus::Failed(e);
                        }
                        TaskPoll::Failed(_) => {
                            return OpStatus::Running { retry_after: None };
                        }
                        TaskPoll::Done | TaskPoll::Gone => {
                            self.remember(
                                key,
                                Record::Version {
                                    monitor: None,
                                    target: target.clone(),
                                },
                            );
                        }
                    }
                }
                let Some(target) = target else {
                    self.remember(key, Record::Done);
                    return OpStatus::Done;
                };
                match self.read_facts().await {
                    Ok(facts) if same_version(&facts.firmware, &target) => {
                        self.remember(key, Record::Done);
                        OpStatus::Done
                    }
                    // Not yet, or the system is still restarting: the engine's upgrade timeout
                    // bounds the wait.
                    Ok(_) | Err(_) => OpStatus::Running {
                        retry_after: Some(VERSION_POLL),
                    },
                }
            }
        }
    }

    async fn start_op(&self, start: &Start, image: &ImageRef) -> OpStatus {
        let (op, key) = (start.op, start.key.as_str());
        // The version the engine validated; empty only before validation.
        let target = Some(start.target_version.as_str()).filter(|t| !t.is_empty());
        if matches!(
            op,
            OpKind::FirstQuiesce | OpKind::SecondQuiesce | OpKind::Unquiesce
        ) {
            return OpStatus::Done;
        }
        if let Some(status) = self.poll_known(key).await {
            tracing::debug!("the operation is known; reporting it");
            return status;
        }
        let started = match op {
            OpKind::Restart => self.restart(key).await,
            OpKind::Upload => self.upload(key, image, target).await,
            _ => self.upgrade(key, image, target).await,
        };
        started.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "starting the operation failed");
            OpStatus::Failed(e)
        })
    }

    async fn poll_op(&self, op: OpKind, key: &str) -> OpStatus {
        if matches!(
            op,
            OpKind::FirstQuiesce | OpKind::SecondQuiesce | OpKind::Unquiesce
        ) {
            return OpStatus::Done;
        }
        if let Some(status) = self.poll_known(key).await {
            return status;
        }
        if matches!(op, OpKind::Upload | OpKind::Upgrade) {
            // After an operator restart: an update still running is this operation.
            let found = async {
                let root = self.root().await?;
                let update = self.update_service(&root).await?;
                service::find_update_task(
                    &self.client,
                    root.task_service.as_deref(),
                    &update.update_uris,
                    "",
                )
                .await
            }
            .await;
            match found {
                Ok(Some(monitor)) => {
                    self.remember(key, Record::Task(monitor.clone()));
                    return self.poll_record(key, Record::Task(monitor)).await;
                }
                Ok(None) => {}
                Err(e) => return OpStatus::Failed(e),
            }
        }
        OpStatus::Unknown
    }

    /// Records what a start answered and reports it.
    fn started(&self, key: &str, answer: &Answer) -> (Record, OpStatus) {
        let task = answer
            .body
            .as_ref()
            .filter(|b| b.get("TaskState").is_some());
        let monitor = match (answer.status, &answer.location, task) {
            (StatusCode::ACCEPTED, Some(location), _) => Some(location.clone()),
            (_, _, Some(task)) => text(task, "TaskMonitor")
                .or_else(|| text(task, "@odata.id"))
                .map(str::to_string),
            _ => None,
        };
        let (record, status) = match monitor {
            Some(m) => (
                Record::Task(m),
                OpStatus::Running {
                    retry_after: answer.retry_after,
                },
            ),
            None if answer.status == StatusCode::ACCEPTED => (
                Record::Done,
                // Accepted with nothing to poll: the effect shows later (the version check).
                OpStatus::Done,
            ),
            None => (Record::Done, OpStatus::Done),
        };
        self.remember(key, record.clone());
        (record, status)
    }

    async fn reset(&self, system: &System) -> Result<Answer, CallError> {
        let Some(reset) = &system.reset else {
            return Err(CallError::new(
                FaultKind::Error,
                format!("{} offers no ComputerSystem.Reset action", system.path),
            ));
        };
        let reset_type = reset.restart_type()?;
        tracing::info!(system = %system.path, reset_type, "resetting the system");
        self.client
            .post(&reset.target, &json!({ "ResetType": reset_type }))
            .await
    }

    async fn restart(&self, key: &str) -> Result<OpStatus, CallError> {
        let root = self.root().await?;
        let system = self.system(&root).await?;
        let answer = self.reset(&system).await?;
        Ok(self.started(key, &answer).1)
    }

    async fn upload(
        &self,
        key: &str,
        image: &ImageRef,
        target: Option<&str>,
    ) -> Result<OpStatus, CallError> {
        let root = self.root().await?;
        let system = self.system(&root).await?;
        let update = self.update_service(&root).await?;
        let component = self.component(&system, &update).await?;
        let name = image.entry.name.as_str();
        if let Some(target) = target
            && same_version(&component.version, target)
        {
            tracing::info!(version = %target, "the component already runs the image's version");
            self.remember(key, Record::Done);
            return Ok(OpStatus::Done);
        }
        let Some(method) = update.method.clone() else {
            return Err(CallError::new(
                FaultKind::Error,
                "the UpdateService offers neither MultipartHttpPushUri nor SimpleUpdate",
            ));
        };
        let apply = method.apply_time();
        if let Some(monitor) = service::find_update_task(
            &self.client,
            root.task_service.as_deref(),
            &update.update_uris,
            name,
        )
        .await?
        {
            tracing::info!(%monitor, "an update task is already running; adopting it");
            lock(&self.staged).insert(
                name.to_string(),
                Staged {
                    apply,
                    monitor: Some(monitor.clone()),
                },
            );
            self.remember(key, Record::Task(monitor.clone()));
            return Ok(self.poll_record(key, Record::Task(monitor)).await);
        }
        let answer = match &method {
            UpdateMethod::Multipart { uri, apply } => {
                self.push(uri, *apply, &component.target, image).await?
            }
            UpdateMethod::SimpleUpdate {
                target,
                protocols,
                apply,
            } => {
                self.simple_update(target, protocols, *apply, &component.target, image)
                    .await?
            }
        };
        let (record, status) = self.started(key, &answer);
        let monitor = match record {
            Record::Task(m) => Some(m),
            _ => None,
        };
        lock(&self.staged).insert(name.to_string(), Staged { apply, monitor });
        Ok(status)
    }

    async fn push(
        &self,
        uri: &str,
        apply: Option<ApplyTime>,
        target: &str,
        image: &ImageRef,
    ) -> Result<Answer, CallError> {
        let Some(path) = &image.path else {
            return Err(CallError::new(
                FaultKind::Exception,
                format!(
                    "the repository holds no file for image {}",
                    image.entry.name
                ),
            ));
        };
        let broken = |e: std::io::Error| {
            CallError::new(
                FaultKind::Exception,
                format!("reading the image {}: {e}", path.display()),
            )
        };
        let file = tokio::fs::File::open(path).await.map_err(broken)?;
        let length = file.metadata().await.map_err(broken)?.len();
        let mut parameters = json!({ "Targets": [target] });
        if let Some(apply) = apply {
            parameters["@Redfish.OperationApplyTime"] = Value::from(apply.as_str());
        }
        let json_part = Part::text(parameters.to_string())
            .mime_str("application/json")
            .map_err(|e| CallError::new(FaultKind::Exception, e.to_string()))?;
        let file_part = Part::stream_with_length(
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file)),
            length,
        )
        .file_name(image.entry.name.clone())
        .mime_str("application/octet-stream")
        .map_err(|e| CallError::new(FaultKind::Exception, e.to_string()))?;
        let form = Form::new()
            .part("UpdateParameters", json_part)
            .part("UpdateFile", file_part);
        tracing::info!(uri, bytes = length, "pushing the image (multipart)");
        let request = self
            .client
            .request(Method::POST, uri)?
            .multipart(form)
            .timeout(upload_timeout(self.client.timeout(), length));
        self.client.send(request).await
    }

    async fn simple_update(
        &self,
        action: &str,
        protocols: &[String],
        apply: Option<ApplyTime>,
        target: &str,
        image: &ImageRef,
    ) -> Result<Answer, CallError> {
        let Some(base) = &self.image_base_url else {
            return Err(CallError::new(
                FaultKind::Error,
                "the service takes images by SimpleUpdate only (it downloads them), and no image base URL is configured for upkeep to serve the image from: start the operator with --image-base-url URL, or give `upkeep device upgrade` --serve-images ADDR",
            ));
        };
        let mut uri = base.clone();
        uri.path_segments_mut()
            .map_err(|()| {
                CallError::new(
                    FaultKind::Error,
                    format!("the image base URL {base} cannot take a path"),
                )
            })?
            .pop_if_empty()
            .push(&image.entry.name);
        let mut body = json!({ "ImageURI": uri.as_str(), "Targets": [target] });
        let protocol = uri.scheme().to_ascii_uppercase();
        if protocols.contains(&protocol) {
            body["TransferProtocol"] = Value::from(protocol);
        }
        if let Some(apply) = apply {
            body["@Redfish.OperationApplyTime"] = Value::from(apply.as_str());
        }
        tracing::info!(action, image_uri = %uri, "requesting SimpleUpdate");
        self.client.post(action, &body).await
    }

    async fn upgrade(
        &self,
        key: &str,
        image: &ImageRef,
        target: Option<&str>,
    ) -> Result<OpStatus, CallError> {
        let target = target.map(str::to_string);
        let staged = lock(&self.staged).get(&image.entry.name).cloned();
        let root = self.root().await?;
        let system = self.system(&root).await?;
        let update = self.update_service(&root).await?;
        let apply = match &staged {
            Some(s) => s.apply,
            None => update
                .method
                .as_ref()
                .map_or(ApplyTime::Immediate, UpdateMethod::apply_time),
        };
        let record = match apply {
            ApplyTime::Immediate => {
                let monitor = match staged.and_then(|s| s.monitor) {
                    Some(m) => Some(m),
                    None => {
                        service::find_update_task(
                            &self.client,
                            root.task_service.as_deref(),
                            &update.update_uris,
                            &image.entry.name,
                        )
                        .await?
                    }
                };
                Record::Version { monitor, target }
            }
            ApplyTime::OnReset => {
                let current = self.component(&system, &update).await?;
                if target
                    .as_deref()
                    .is_some_and(|t| same_version(&current.version, t))
                {
                    Record::Done
                } else if matches!(
                    system.power_state.as_deref(),
                    Some("PoweringOn" | "PoweringOff" | "Paused")
                ) {
                    // A reset is already under way (an earlier start whose answer was lost).
                    tracing::info!(power_state = ?system.power_state, "the system is already changing power state; not resetting again");
                    Record::Version {
                        monitor: None,
                        target,
                    }
                } else {
                    let answer = self.reset(&system).await?;
                    let monitor = (answer.status == StatusCode::ACCEPTED)
                        .then(|| answer.location.clone())
                        .flatten();
                    Record::Version { monitor, target }
                }
            }
        };
        self.remember(key, record.clone());
        Ok(self.poll_record(key, record).await)
    }
}

/// The time given to an upload of `bytes`: the call timeout plus a second per MiB.
fn upload_timeout(base: Duration, bytes: u64) -> Duration {
    base + Duration::from_secs(bytes / MIN_UPLOAD_RATE)
}

impl DeviceDriver for RedfishDriver {
    fn facts<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Facts, CallError>> {
        let span = self.span("facts", caller, None);
        self.read_facts().instrument(span).boxed()
    }

    fn licenses<'a>(
        &'a self,
        _caller: Caller<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, CallError>> {
        // Redfish has no licensed features in the appliance sense.
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    fn domain_status<'a>(
        &'a self,
        _caller: Caller<'a>,
    ) -> BoxFuture<'a, Result<DomainStatus, CallError>> {
        // No application domains, nothing to save.
        futures::future::ready(Ok(DomainStatus::default())).boxed()
    }

    fn start<'a>(
        &'a self,
        caller: Caller<'a>,
        start: &'a Start,
        image: &'a ImageRef,
    ) -> BoxFuture<'a, OpStatus> {
        let span = self.span(start.op.as_str(), caller, Some(&start.key));
        self.start_op(start, image).instrument(span).boxed()
    }

    fn poll<'a>(&'a self, caller: Caller<'a>, op: OpKind, key: &'a str) -> BoxFuture<'a, OpStatus> {
        let span = self.span(op.as_str(), caller, Some(key));
        self.poll_op(op, key).instrument(span).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_get_time_for_their_size() {
        assert_eq!(
            upload_timeout(Duration::from_secs(30), 64 << 20),
            Duration::from_secs(94)
        );
    }
}
