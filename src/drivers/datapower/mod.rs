//! The DataPower driver: IBM DataPower Gateway appliances through the REST management interface
//! (`https://<appliance>:5554/mgmt/…`).
//!
//! What each engine call does on the wire (see `docs/drivers.md`):
//!
//! - **facts**: `GET /mgmt/status/default/FirmwareVersion3` (falling back to `FirmwareVersion`):
//!   `Version` `IDG.7.5.1.7` gives the model (`IDG`) and the firmware (`7.5.1.7`);
//!   `MachineType`/`ModelType` naming a virtual or container platform make it virtual. Then
//!   `GET /mgmt/status/default/FilesystemStatus`: `FreeEncrypted` and `FreeTemporary`, in MB.
//! - **licenses**: `GET /mgmt/status/default/LicenseStatus`: the `Feature`s whose `Available` is
//!   `Yes`.
//! - **domain status**: `GET /mgmt/status/default/DomainStatus`: each domain's `QuiesceState`;
//!   unsaved changes when a domain's `SaveNeeded` is `on` (or its `ConfigState` is `modified`).
//! - **upload**: `PUT /mgmt/filestore/default/image/<file>` with
//!   `{"file": {"name", "content": <base64>}}`, streamed from the repository file; skipped when
//!   `GET /mgmt/filestore/default/image` already lists the file with the image's size.
//! - **quiesce / unquiesce**: `POST /mgmt/actionqueue/default` with `{"QuiesceDP": {"timeout"}}`
//!   / `{"UnquiesceDP": {}}`; done when the action completed and every domain reports the
//!   state asked for.
//! - **restart**: `{"Shutdown": {"Mode": "reboot"}}`; done when `DateTimeStatus` reports an
//!   `uptime2` shorter than the uptime before the request plus the time since.
//! - **upgrade**: `{"BootImage": {"Firmware": "image:///<file>", "AcceptLicense": "on"}}`; done
//!   when the appliance, back from its reboot, reports the image's version.
//!
//! Actions answered `202 Accepted` carry `_links.location.href`, polled until its `status` is
//! `completed` (or `error`). The REST interface has no idempotency keys: the driver remembers key
//! → action, and on an unknown key looks at the appliance first (the file already uploaded, the
//! domains already quiesced, the firmware already at the image's version or installed as the
//! primary image awaiting its boot) before acting again.
//!
//! These shapes come from IBM's REST management interface documentation and community code; the
//! driver is verified against recorded fixtures (`tests/fixtures/datapower/`), not against a
//! real appliance.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt as _};
use jiff::SignedDuration;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tracing::Instrument as _;

use super::credentials::Credentials;
use super::wire::{self, malformed, transport_fault};
use super::{Caller, DeviceDriver, ImageRef};
use super::{ConnectError, DriverConfig};
use crate::engine::firmware::observe::{
    CallError, Domain, DomainStatus, Facts, FaultKind, OpKind, OpStatus, Start,
};
use crate::engine::firmware::version::same_version;

/// The action that installs an uploaded firmware image and reboots into it.
pub const UPGRADE_ACTION: &str = "BootImage";

/// The quiesce timeout sent with `QuiesceDP` (seconds; DataPower's minimum is 60).
const QUIESCE_TIMEOUT_SECS: u64 = 60;

/// How soon to look again while the appliance reboots.
const REBOOT_POLL: SignedDuration = SignedDuration::from_secs(15);

/// The slowest transfer an upload is given time for (bytes per second, base64 included).
const MIN_UPLOAD_RATE: u64 = 1 << 20;

/// Bytes of the image read per chunk of the streamed upload (a multiple of 3, so that the
/// base64 of the chunks concatenates).
const UPLOAD_CHUNK: usize = 3 * 64 * 1024;

/// One mebibyte: the unit of `FilesystemStatus`.
const MB: u64 = 1024 * 1024;

/// What the driver remembers about an operation it started.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Record {
    /// Finished.
    Done,
    /// An action to poll, then (for quiesces) the domains' state to wait for.
    Action {
        href: Option<String>,
        quiesced: Option<bool>,
    },
    /// A reboot requested at `since`, when the appliance had been up `before` seconds.
    Reboot {
        href: Option<String>,
        since: Instant,
        before: Option<u64>,
    },
    /// A firmware install: the action, then the version to wait for.
    Upgrade {
        href: Option<String>,
        target: String,
    },
}

/// A [`DeviceDriver`] for one DataPower appliance.
pub struct DatapowerDriver {
    base: Url,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    timeout: Duration,
    address: String,
    ops: Mutex<HashMap<String, Record>>,
}

impl std::fmt::Debug for DatapowerDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatapowerDriver")
            .field("address", &self.address)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What an exchange answered.
struct Answer {
    status: StatusCode,
    body: Value,
}

/// The error messages of a DataPower error body (`"error": "…"` or `"error": ["…", …]`).
fn error_messages(body: &Value) -> Option<String> {
    match body.get("error")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => Some(other.to_string()),
    }
}

/// A status provider's entries: DataPower answers one entry as an object, several as an array.
fn entries<'a>(body: &'a Value, provider: &str) -> Result<Vec<&'a Value>, CallError> {
    match body.get(provider) {
        Some(Value::Array(items)) => Ok(items.iter().collect()),
        Some(item @ Value::Object(_)) => Ok(vec![item]),
        _ => Err(malformed(format!("the answer has no {provider}"))),
    }
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A number that DataPower may send as a number or as text.
fn number(value: &Value, key: &str) -> Option<u64> {
    match value.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Splits `IDG.7.5.1.7` into the model and the version.
fn split_version(version: &str) -> (Option<&str>, &str) {
    match version.split_once('.') {
        Some((model, rest))
            if !model.is_empty()
                && model.chars().any(|c| c.is_ascii_alphabetic())
                && model.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            (Some(model), rest)
        }
        _ => (None, version),
    }
}

/// Seconds of an uptime text such as `2 days 14:27:38` or `00:03:12`.
fn uptime_seconds(text: &str) -> Option<u64> {
    let mut days = 0;
    let mut clock = text.trim();
    if let Some((d, rest)) = clock.split_once("day") {
        days = d.trim().parse::<u64>().ok()?;
        clock = rest.trim_start_matches('s').trim();
    }
    let mut parts = clock.split(':').map(|p| p.trim().parse::<u64>());
    let (h, m, s) = (
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    );
    Some(days * 86_400 + h * 3_600 + m * 60 + s)
}

impl DatapowerDriver {
    /// A driver for the appliance's REST management interface at `config.address` (e.g.
    /// `https://dp1.example:5554`).
    pub fn new(config: &DriverConfig) -> Result<Self, ConnectError> {
        let base = Url::parse(&config.address).map_err(|e| ConnectError::Address {
            address: config.address.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ConnectError::Address {
                address: config.address.clone(),
                reason: "the scheme must be http or https".into(),
            });
        }
        Ok(Self {
            http: super::http::client(&config.tls, config.timeout)?,
            base,
            credentials: config.credentials.clone(),
            timeout: config.timeout,
            address: config.address.clone(),
            ops: Mutex::new(HashMap::new()),
        })
    }

    fn span(&self, call: &str, caller: Caller<'_>, key: Option<&str>) -> tracing::Span {
        tracing::info_span!(
            "datapower",
            address = %self.address,
            call,
            key = key.unwrap_or(""),
            task = caller.task.unwrap_or(""),
            phase = caller.phase.as_str(),
        )
    }

    fn request(&self, method: Method, link: &str) -> Result<reqwest::RequestBuilder, CallError> {
        let url = wire::resolve(&self.base, link)?;
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(c) = &self.credentials {
            request = request.basic_auth(&c.username, Some(c.password()));
        }
        Ok(request)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, CallError> {
        let response = request.send().await.map_err(|e| transport_fault(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport_fault(&e))?;
        let parsed = if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(Value::Null)
        } else {
            serde_json::from_slice::<Value>(&bytes)
        };
        if !status.is_success() {
            let detail = parsed.ok().as_ref().and_then(error_messages);
            let message = match detail {
                Some(d) => format!("HTTP {status}: {d}"),
                None => format!("HTTP {status}"),
            };
            return Err(CallError::new(FaultKind::Error, message));
        }
        let body = parsed.map_err(|e| malformed(format!("the body is not JSON ({e})")))?;
        Ok(Answer { status, body })
    }

    async fn get(&self, link: &str) -> Result<Value, CallError> {
        let answer = self.send(self.request(Method::GET, link)?).await?;
        if answer.body.is_object() {
            Ok(answer.body)
        } else {
            Err(malformed(format!(
                "GET {link} did not return a JSON object"
            )))
        }
    }

    async fn status(&self, provider: &str) -> Result<Value, CallError> {
        self.get(&format!("/mgmt/status/default/{provider}")).await
    }

    // ---- readings ----

    /// `(model, version, virtual)` from FirmwareVersion3, else FirmwareVersion.
    async fn firmware(&self) -> Result<(String, String, bool), CallError> {
        let (body, provider) = match self.status("FirmwareVersion3").await {
            Ok(body) => (body, "FirmwareVersion3"),
            Err(e) if e.kind == FaultKind::Error => {
                (self.status("FirmwareVersion").await?, "FirmwareVersion")
            }
            Err(e) => return Err(e),
        };
        let entry = *entries(&body, provider)?
            .first()
            .ok_or_else(|| malformed(format!("{provider} is empty")))?;
        let version = text(entry, "Version")
            .ok_or_else(|| malformed(format!("{provider} has no Version")))?;
        let (model, firmware) = split_version(version);
        let model = model
            .map(str::to_string)
            .or_else(|| text(entry, "ModelType").map(str::to_string))
            .unwrap_or_default();
        let platform = [text(entry, "MachineType"), text(entry, "ModelType")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase();
        let r#virtual = ["virtual", "docker", "container", "linux", "cloud"]
            .iter()
            .any(|w| platform.contains(w));
        Ok((model, firmware.to_string(), r#virtual))
    }

    async fn read_facts(&self) -> Result<Facts, CallError> {
        let (model, firmware, r#virtual) = self.firmware().await?;
        let fs = self.status("FilesystemStatus").await?;
        let fs = *entries(&fs, "FilesystemStatus")?
            .first()
            .ok_or_else(|| malformed("FilesystemStatus is empty"))?;
        Ok(Facts {
            model,
            r#virtual,
            firmware,
            free_encrypted: number(fs, "FreeEncrypted").map(|mb| mb.saturating_mul(MB)),
            free_temporary: number(fs, "FreeTemporary").map(|mb| mb.saturating_mul(MB)),
            ..Facts::default()
        })
    }

    async fn read_licenses(&self) -> Result<Vec<String>, CallError> {
        let body = self.status("LicenseStatus").await?;
        Ok(entries(&body, "LicenseStatus")?
            .into_iter()
            .filter(|l| text(l, "Available").is_none_or(|a| a.eq_ignore_ascii_case("yes")))
            .filter_map(|l| text(l, "Feature").map(str::to_string))
            .collect())
    }

    async fn read_domains(&self) -> Result<DomainStatus, CallError> {
        let body = self.status("DomainStatus").await?;
        let mut status = DomainStatus::default();
        for d in entries(&body, "DomainStatus")? {
            let name =
                text(d, "Domain").ok_or_else(|| malformed("a DomainStatus entry has no Domain"))?;
            let quiesce = text(d, "QuiesceState").unwrap_or("").to_ascii_lowercase();
            let save = text(d, "SaveNeeded").is_some_and(|s| s.eq_ignore_ascii_case("on"));
            let config = text(d, "ConfigState").is_some_and(|s| {
                s.eq_ignore_ascii_case("modified") || s.eq_ignore_ascii_case("new")
            });
            status.unsaved_changes |= save || config;
            status.domains.push(Domain {
                name: name.to_string(),
                quiesced: quiesce == "quiesced",
            });
        }
        Ok(status)
    }

    /// Whether every domain is quiesced (`true`) or none is (`false`), as `want` asks.
    async fn domains_are(&self, quiesced: bool) -> Result<bool, CallError> {
        let status = self.read_domains().await?;
        Ok(status.domains.iter().all(|d| d.quiesced == quiesced))
    }

    /// Seconds since the appliance booted.
    async fn uptime(&self) -> Result<u64, CallError> {
        let body = self.status("DateTimeStatus").await?;
        let entry = *entries(&body, "DateTimeStatus")?
            .first()
            .ok_or_else(|| malformed("DateTimeStatus is empty"))?;
        text(entry, "uptime2")
            .and_then(uptime_seconds)
            .ok_or_else(|| malformed("DateTimeStatus has no readable uptime2"))
    }

    /// The size of `name` in the image: directory, if it is there.
    async fn stored_size(&self, name: &str) -> Result<Option<u64>, CallError> {
        let body = self.get("/mgmt/filestore/default/image").await?;
        let files = body
            .get("filestore")
            .and_then(|f| f.get("location"))
            .and_then(|l| l.get("file"));
        let files: Vec<&Value> = match files {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(item @ Value::Object(_)) => vec![item],
            _ => Vec::new(),
        };
        Ok(files
            .into_iter()
            .find(|f| text(f, "name") == Some(name))
            .and_then(|f| number(f, "size")))
    }

    /// Whether the appliance holds `version` as its primary image (installed, awaiting or in
    /// its boot): `FirmwareStatus2` where the appliance has it.
    async fn primary_is(&self, version: &str) -> Result<bool, CallError> {
        let body = match self.status("FirmwareStatus2").await {
            Ok(b) => b,
            Err(e) if e.kind == FaultKind::Error => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(entries(&body, "FirmwareStatus2")?.into_iter().any(|f| {
            text(f, "Type").is_some_and(|t| t.eq_ignore_ascii_case("primary"))
                && text(f, "Version").is_some_and(|v| same_version(split_version(v).1, version))
        }))
    }

    // ---- actions ----

    /// Runs an action: `Some(href)` to poll when it was accepted for later, `None` when it
    /// completed at once.
    async fn action(&self, name: &str, parameters: Value) -> Result<Option<String>, CallError> {
        tracing::info!(action = name, "posting to the action queue");
        let request = self
            .request(Method::POST, "/mgmt/actionqueue/default")?
            .json(&json!({ name: parameters }));
        let answer = self.send(request).await?;
        let href = answer
            .body
            .get("_links")
            .and_then(|l| l.get("location"))
            .and_then(|l| l.get("href"))
            .and_then(Value::as_str)
            .map(str::to_string);
        match (answer.status, href) {
            (_, Some(href)) => Ok(Some(href)),
            (StatusCode::ACCEPTED, None) => Err(malformed(format!(
                "{name} was accepted without a status location"
            ))),
            (_, None) => Ok(None),
        }
    }

    /// How an accepted action stands.
    async fn action_status(&self, href: &str) -> Result<ActionState, CallError> {
        let answer = match self.send(self.request(Method::GET, href)?).await {
            Ok(a) => a,
            Err(e) if e.kind == FaultKind::Error && e.message.starts_with("HTTP 404") => {
                return Ok(ActionState::Gone);
            }
            Err(e) => return Err(e),
        };
        let status = text(&answer.body, "status")
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(match status.as_str() {
            "completed" => ActionState::Completed,
            "error" => ActionState::Error(
                error_messages(&answer.body).unwrap_or_else(|| "the action failed".into()),
            ),
            "" => return Err(malformed("the action status has no status")),
            _ => ActionState::Running,
        })
    }

    async fn upload(&self, image: &ImageRef) -> Result<(), CallError> {
        let name = &image.entry.name;
        let Some(path) = &image.path else {
            return Err(CallError::new(
                FaultKind::Exception,
                format!("the repository holds no file for image {name}"),
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
        let name_json = Value::from(name.as_str()).to_string();
        let prefix = format!("{{\"file\":{{\"name\":{name_json},\"content\":\"");
        let suffix = "\"}}";
        let encoded = length.div_ceil(3) * 4;
        let total = prefix.len() as u64 + encoded + suffix.len() as u64;
        let chunks = futures::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut buffer = vec![0u8; UPLOAD_CHUNK];
            let mut filled = 0;
            while filled < UPLOAD_CHUNK {
                match file.read(&mut buffer[filled..]).await {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => return Some((Err(e), None)),
                }
            }
            if filled == 0 {
                return None;
            }
            let chunk = Bytes::from(wire::base64(&buffer[..filled]));
            let next = (filled == UPLOAD_CHUNK).then_some(file);
            Some((Ok::<_, std::io::Error>(chunk), next))
        });
        let body = futures::stream::iter([Ok(Bytes::from(prefix))])
            .chain(chunks)
            .chain(futures::stream::iter([Ok(Bytes::from_static(
                suffix.as_bytes(),
            ))]));
        let mut url_path = wire::resolve(&self.base, "/mgmt/filestore/default/image")?;
        url_path
            .path_segments_mut()
            .map_err(|()| malformed("the address cannot take a path"))?
            .push(name);
        tracing::info!(image = %name, bytes = length, "uploading the image to image:///");
        let request = self
            .request(Method::PUT, url_path.as_str())?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(body))
            .timeout(self.timeout + Duration::from_secs(total / MIN_UPLOAD_RATE));
        self.send(request).await.map(|_| ())
    }

    // ---- operations ----

    fn remember(&self, key: &str, record: Record) {
        lock(&self.ops).insert(key.to_string(), record);
    }

    async fn poll_record(&self, key: &str, record: Record) -> OpStatus {
        let result = match &record {
            Record::Done => Ok(OpStatus::Done),
            Record::Action { href, quiesced } => self.poll_action(key, href, *quiesced).await,
            Record::Reboot {
                href,
                since,
                before,
            } => self.poll_reboot(href, *since, *before).await,
            Record::Upgrade { href, target } => self.poll_upgrade(key, href, target).await,
        };
        result.unwrap_or_else(OpStatus::Failed)
    }

    /// Polls `href` (if any); `Ok(None)` once the action is over.
    async fn action_over(&self, href: &Option<String>) -> Result<Option<OpStatus>, CallError> {
        let Some(href) = href else {
            return Ok(None);
        };
        match self.action_status(href).await? {
            ActionState::Running => Ok(Some(OpStatus::Running { retry_after: None })),
            ActionState::Error(message) => Err(CallError::new(FaultKind::Error, message)),
            ActionState::Completed | ActionState::Gone => Ok(None),
        }
    }

    async fn poll_action(
        &self,
        key: &str,
        href: &Option<String>,
        quiesced: Option<bool>,
    ) -> Result<OpStatus, CallError> {
        if let Some(running) = self.action_over(href).await? {
            return Ok(running);
        }
        if let Some(want) = quiesced
            && !self.domains_are(want).await?
        {
            return Ok(OpStatus::Running { retry_after: None });
        }
        self.remember(key, Record::Done);
        Ok(OpStatus::Done)
    }

    /// Done once the appliance reports an uptime shorter than it would have without a reboot.
    async fn poll_reboot(
        &self,
        href: &Option<String>,
        since: Instant,
        before: Option<u64>,
    ) -> Result<OpStatus, CallError> {
        // The appliance goes away while it reboots, and the action's status with it: only an
        // error the action reports counts; the uptime decides.
        if let Some(href) = href
            && let Ok(ActionState::Error(message)) = self.action_status(href).await
        {
            return Err(CallError::new(FaultKind::Error, message));
        }
        match self.uptime().await {
            Ok(up) if up < before.unwrap_or(0) + since.elapsed().as_secs() => Ok(OpStatus::Done),
            Ok(_) => Ok(OpStatus::Running {
                retry_after: Some(REBOOT_POLL),
            }),
            // Rebooting: unreachable, or answering 503 while it starts; the engine's restart
            // timeout bounds the wait.
            Err(_) => Ok(OpStatus::Running {
                retry_after: Some(REBOOT_POLL),
            }),
        }
    }

    async fn poll_upgrade(
        &self,
        key: &str,
        href: &Option<String>,
        target: &str,
    ) -> Result<OpStatus, CallError> {
        // An error the install action reports fails it; answers the rebooting appliance cannot
        // give (503, resets, no connection) only mean "not yet".
        if let Some(href) = href {
            match self.action_status(href).await {
                Ok(ActionState::Error(message)) => {
                    return Err(CallError::new(FaultKind::Error, message));
                }
                Ok(ActionState::Running) => return Ok(OpStatus::Running { retry_after: None }),
                Ok(ActionState::Completed | ActionState::Gone) | Err(_) => {}
            }
        }
        match self.firmware().await {
            Ok((_, version, _)) if same_version(&version, target) => {
                self.remember(key, Record::Done);
                Ok(OpStatus::Done)
            }
            // Installing and rebooting: the engine's upgrade timeout bounds the wait.
            _ => Ok(OpStatus::Running {
                retry_after: Some(REBOOT_POLL),
            }),
        }
    }

    async fn start_op(&self, start: &Start, image: &ImageRef) -> OpStatus {
        let (op, key) = (start.op, start.key.as_str());
        let known = lock(&self.ops).get(key).cloned();
        if let Some(record) = known {
            tracing::debug!("the operation is known; reporting it");
            return self.poll_record(key, record).await;
        }
        let started = async {
            let record = match op {
                OpKind::FirstQuiesce | OpKind::SecondQuiesce => {
                    let href = self
                        .action("QuiesceDP", json!({ "timeout": QUIESCE_TIMEOUT_SECS }))
                        .await?;
                    Record::Action {
                        href,
                        quiesced: Some(true),
                    }
                }
                OpKind::Unquiesce => Record::Action {
                    href: self.action("UnquiesceDP", json!({})).await?,
                    quiesced: Some(false),
                },
                OpKind::Restart => {
                    let before = self.uptime().await.ok();
                    let since = Instant::now();
                    Record::Reboot {
                        href: self.action("Shutdown", json!({ "Mode": "reboot" })).await?,
                        since,
                        before,
                    }
                }
                OpKind::Upload => {
                    match self.stored_size(&image.entry.name).await? {
                        Some(size) if size == image.entry.size => {
                            tracing::info!("the appliance already holds the image");
                        }
                        _ => self.upload(image).await?,
                    }
                    Record::Done
                }
                OpKind::Upgrade => {
                    let target = start.target_version.clone();
                    if target.is_empty() {
                        return Err(CallError::new(
                            FaultKind::Error,
                            "an upgrade was asked for before validation found the image's version",
                        ));
                    }
                    let (_, running, _) = self.firmware().await?;
                    if same_version(&running, &target) {
                        Record::Done
                    } else if self.primary_is(&target).await? {
                        tracing::info!(%target, "the image is already installed as the primary image; waiting for its boot");
                        Record::Upgrade { href: None, target }
                    } else {
                        let file = format!("image:///{}", image.entry.name);
                        let href = self
                            .action(
                                UPGRADE_ACTION,
                                json!({ "Firmware": file, "AcceptLicense": "on" }),
                            )
                            .await?;
                        Record::Upgrade { href, target }
                    }
                }
            };
            self.remember(key, record.clone());
            Ok::<_, CallError>(record)
        }
        .await;
        match started {
            Ok(record) => match record {
                // Just accepted: report it running and let the next poll ask.
                Record::Action { href: Some(_), .. }
                | Record::Reboot { .. }
                | Record::Upgrade { href: Some(_), .. } => OpStatus::Running { retry_after: None },
                record => self.poll_record(key, record).await,
            },
            Err(e) => {
                tracing::warn!(error = %e, "starting the operation failed");
                OpStatus::Failed(e)
            }
        }
    }

    async fn poll_op(&self, op: OpKind, key: &str) -> OpStatus {
        let known = lock(&self.ops).get(key).cloned();
        if let Some(record) = known {
            return self.poll_record(key, record).await;
        }
        // After an operator restart: what the appliance shows decides.
        let observed = match op {
            OpKind::FirstQuiesce | OpKind::SecondQuiesce => self.domains_are(true).await,
            OpKind::Unquiesce => self.domains_are(false).await,
            OpKind::Restart | OpKind::Upload | OpKind::Upgrade => Ok(false),
        };
        match observed {
            Ok(true) => OpStatus::Done,
            Ok(false) => OpStatus::Unknown,
            Err(e) => OpStatus::Failed(e),
        }
    }
}

/// Where an accepted action stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ActionState {
    Running,
    Completed,
    Error(String),
    /// The status resource is gone (the appliance rebooted, or it expired).
    Gone,
}

impl DeviceDriver for DatapowerDriver {
    fn facts<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Facts, CallError>> {
        let span = self.span("facts", caller, None);
        self.read_facts().instrument(span).boxed()
    }

    fn licenses<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Vec<String>, CallError>> {
        let span = self.span("licenses", caller, None);
        self.read_licenses().instrument(span).boxed()
    }

    fn domain_status<'a>(
        &'a self,
        caller: Caller<'a>,
    ) -> BoxFuture<'a, Result<DomainStatus, CallError>> {
        let span = self.span("domain-status", caller, None);
        self.read_domains().instrument(span).boxed()
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
    fn versions_split_into_model_and_firmware() {
        assert_eq!(split_version("IDG.7.5.1.7"), (Some("IDG"), "7.5.1.7"));
        assert_eq!(split_version("XI52.6.0.1.0"), (Some("XI52"), "6.0.1.0"));
        assert_eq!(split_version("IDG.2018.4.1.3"), (Some("IDG"), "2018.4.1.3"));
        assert_eq!(split_version("10.6.0.1"), (None, "10.6.0.1"));
    }

    #[test]
    fn uptimes_read_days_and_clock() {
        assert_eq!(uptime_seconds("2 days 14:27:38"), Some(2 * 86_400 + 52_058));
        assert_eq!(uptime_seconds("1 day 00:00:01"), Some(86_401));
        assert_eq!(uptime_seconds("00:03:12"), Some(192));
        assert_eq!(uptime_seconds("soon"), None);
    }

    #[test]
    fn error_bodies_give_their_messages() {
        assert_eq!(
            error_messages(&json!({"error": ["Resource not found.", "Check the name."]})),
            Some("Resource not found.; Check the name.".into())
        );
        assert_eq!(
            error_messages(&json!({"error": "Authentication failure"})),
            Some("Authentication failure".into())
        );
        assert_eq!(error_messages(&json!({"status": "ok"})), None);
    }
}
