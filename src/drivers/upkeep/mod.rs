//! The `upkeep` driver: the upkeep device API (`docs/device-api.yaml`) over HTTP and JSON, spoken
//! by `upkeep devicesim` and by vendor adapters in front of real devices.
//!
//! Every call carries the credentials (HTTP basic auth) and the advisory `Upkeep-Task` and
//! `Upkeep-Phase` headers, and is bounded by the configured timeout. Reads and keyed operation
//! starts are retried when the connection fails or breaks (not after a timeout); the image upload
//! is never re-sent blindly: a later start asks the device what it holds and resumes from there.
//! Credentials never reach a log line or a message.

mod failure;
pub mod upload;
pub mod wire;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use jiff::SignedDuration;
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use tracing::{Instrument as _, debug, info_span, warn};

use super::credentials::Credentials;
use super::{Caller, DeviceDriver, DeviceOp, ImageRef, Inventory};
use super::{ConnectError, DriverConfig};
use crate::engine::devicepatch::observe::{PatchOp, PatchStart};
use crate::engine::firmware::observe::{
    CallError, DomainStatus, Facts, FaultKind, OpKind, OpStatus, Patch, Start,
};
use wire::{
    DomainStatusBody, FactsBody, ImageBody, LicensesBody, OperationBody, OperationRequest,
    OperationState, PatchRequest, PatchesBody,
};

/// How often an idempotent call is tried when the connection fails or breaks.
pub const ATTEMPTS: u32 = 3;
/// The pause before the first retry; it doubles for each further one.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// The largest JSON answer accepted.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// An answer read in full.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

/// A device behind the upkeep device API.
#[derive(Debug)]
pub struct UpkeepDriver {
    client: reqwest::Client,
    base: Url,
    /// The address as given (without credentials), for messages and logs.
    address: String,
    credentials: Option<Credentials>,
    timeout: Duration,
}

impl UpkeepDriver {
    /// A driver for the device at `config.address`, the base URL of its device API.
    pub fn new(config: DriverConfig) -> Result<Self, ConnectError> {
        let base = base_url(&config.address)?;
        if base.scheme() == "http" && config.credentials.is_some() {
            warn!(
                device = %config.address,
                "the device is reached over plain HTTP: its credentials travel unencrypted"
            );
        }
        let client = super::http::client(&config.tls, config.timeout)?;
        Ok(Self {
            client,
            base,
            address: config.address,
            credentials: config.credentials,
            timeout: config.timeout,
        })
    }

    /// The device's base URL.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The URL of a resource below the base, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A request with the credentials and the advisory headers.
    fn request(&self, method: Method, segments: &[&str], caller: Caller<'_>) -> RequestBuilder {
        let mut request = self
            .client
            .request(method, self.url(segments))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(wire::PHASE_HEADER, caller.phase.as_str());
        if let Some(task) = caller.task {
            request = request.header(wire::TASK_HEADER, task);
        }
        if let Some(credentials) = &self.credentials {
            request = request.basic_auth(&credentials.username, Some(credentials.password()));
        }
        request
    }

    /// Sends a request built by `build` and reads the whole answer, trying again when the
    /// connection fails or breaks: only for reads and keyed operation starts, whose repetition
    /// has the effect of sending them once.
    async fn call(
        &self,
        what: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Answer, CallError> {
        let mut attempt = 1;
        loop {
            let error = match self.exchange(what, build()).await {
                Ok(answer) => return Ok(answer),
                Err(Failed::Final(e)) => return Err(e),
                Err(Failed::Transport(e)) => e,
            };
            let failed = failure::transport(&self.address, what, self.timeout, &error);
            if attempt >= ATTEMPTS || !failure::is_transient(&error) {
                return Err(failed);
            }
            let pause = RETRY_BACKOFF * 2u32.pow(attempt - 1);
            debug!(attempt, ?pause, error = %failed, "{what}: trying again");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// Sends a request once, bounded by `timeout`, and reads the whole answer.
    async fn call_once(
        &self,
        what: &str,
        request: RequestBuilder,
        timeout: Duration,
    ) -> Result<Answer, CallError> {
        let request = request.timeout(timeout);
        self.exchange(what, request).await.map_err(|e| match e {
            Failed::Final(e) => e,
            Failed::Transport(e) => failure::transport(&self.address, what, timeout, &e),
        })
    }

    /// One round trip.
    async fn exchange(&self, what: &str, request: RequestBuilder) -> Result<Answer, Failed> {
        let mut response = request.send().await.map_err(Failed::Transport)?;
        let status = response.status();
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(Failed::Transport)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Failed::Final(CallError::new(
                    FaultKind::Exception,
                    format!(
                        "{what} at {}: the answer is larger than {MAX_ANSWER_BYTES} bytes",
                        self.address
                    ),
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            body: body.freeze(),
        })
    }

    /// The JSON body of an answer with one of the `expected` statuses; an error answer otherwise.
    fn json<T: DeserializeOwned>(
        &self,
        what: &str,
        answer: &Answer,
        expected: &[StatusCode],
    ) -> Result<T, CallError> {
        if expected.contains(&answer.status) {
            return serde_json::from_slice(&answer.body)
                .map_err(|e| failure::malformed(&self.address, what, &e));
        }
        if answer.status.is_success() {
            return Err(failure::unexpected(
                &self.address,
                what,
                answer.status,
                &answer.body,
            ));
        }
        Err(failure::status(
            &self.address,
            what,
            answer.status,
            &answer.body,
        ))
    }

    /// Reads a resource.
    async fn get<T: DeserializeOwned>(
        &self,
        caller: Caller<'_>,
        resource: &str,
    ) -> Result<T, CallError> {
        let what = format!("GET {resource}");
        let answer = self
            .call(&what, || self.request(Method::GET, &[resource], caller))
            .await?;
        self.json(&what, &answer, &[StatusCode::OK])
    }

    async fn read_facts(&self, caller: Caller<'_>) -> Result<FactsBody, CallError> {
        self.get(caller, wire::FACTS)
            .instrument(self.span("facts", caller))
            .await
    }

    async fn read_licenses(&self, caller: Caller<'_>) -> Result<Vec<String>, CallError> {
        let body: LicensesBody = self
            .get(caller, wire::LICENSES)
            .instrument(self.span("licenses", caller))
            .await?;
        Ok(body.features)
    }

    async fn read_domains(&self, caller: Caller<'_>) -> Result<DomainStatus, CallError> {
        let body: DomainStatusBody = self
            .get(caller, wire::DOMAINS)
            .instrument(self.span("domain-status", caller))
            .await?;
        Ok(DomainStatus::from(&body))
    }

    /// A span for one driver call: the device, the call, the task and phase; never credentials.
    fn span(&self, call: &'static str, caller: Caller<'_>) -> tracing::Span {
        info_span!(
            "upkeep_device",
            device = %self.address,
            call,
            phase = caller.phase.as_str(),
            task = caller.task.unwrap_or(""),
        )
    }

    async fn read_patches(&self, caller: Caller<'_>) -> Result<Vec<Patch>, CallError> {
        let body: PatchesBody = self
            .get(caller, wire::PATCHES)
            .instrument(self.span("patches", caller))
            .await?;
        Ok(body.patches.iter().map(Patch::from).collect())
    }

    /// A span for one operation call, with its kind and key.
    fn op_span(
        &self,
        call: &'static str,
        caller: Caller<'_>,
        op: DeviceOp,
        key: &str,
    ) -> tracing::Span {
        info_span!(
            "upkeep_device",
            device = %self.address,
            call,
            op = op.as_str(),
            key,
            phase = caller.phase.as_str(),
            task = caller.task.unwrap_or(""),
        )
    }

    /// The image part of an operation request, transferring the image first for an upload.
    async fn image_body(
        &self,
        caller: Caller<'_>,
        image: &ImageRef,
        transfer: bool,
    ) -> Result<ImageBody, CallError> {
        let sha256 = if transfer {
            Some(self.upload(caller, image).await?)
        } else {
            image.sha256.clone()
        };
        Ok(ImageBody {
            name: image.entry.name.clone(),
            size: image.entry.size,
            sha256,
        })
    }

    async fn start_op(
        &self,
        caller: Caller<'_>,
        op: OpKind,
        key: &str,
        image: &ImageRef,
    ) -> OpStatus {
        let image_body = match op {
            OpKind::Upload | OpKind::Upgrade => {
                match self.image_body(caller, image, op == OpKind::Upload).await {
                    Ok(body) => Some(body),
                    Err(e) => return OpStatus::Failed(e),
                }
            }
            _ => None,
        };
        let request = OperationRequest {
            kind: op.into(),
            key: key.to_string(),
            image: image_body,
            patch: None,
        };
        self.post_operation(caller, DeviceOp::Firmware(op), &request)
            .await
    }

    async fn start_patch_op(
        &self,
        caller: Caller<'_>,
        start: &PatchStart,
        package: Option<&ImageRef>,
    ) -> OpStatus {
        let image = match (start.op, package) {
            (PatchOp::Load, Some(package)) => match self.image_body(caller, package, true).await {
                Ok(body) => Some(body),
                Err(e) => return OpStatus::Failed(e),
            },
            (PatchOp::Load, None) => {
                return OpStatus::Failed(CallError::new(
                    FaultKind::Exception,
                    format!(
                        "{} at {}: no package to transfer",
                        start.op.doing(),
                        self.address
                    ),
                ));
            }
            _ => None,
        };
        let request = OperationRequest {
            kind: start.op.into(),
            key: start.key.clone(),
            image,
            patch: Some(PatchRequest {
                id: start.patch.clone(),
                activation_delay_seconds: start.delay.map(wire::seconds),
            }),
        };
        self.post_operation(caller, DeviceOp::Patch(start.op), &request)
            .await
    }

    /// `POST operations`: starts the operation of `request` (or reports it, for a known key).
    async fn post_operation(
        &self,
        caller: Caller<'_>,
        op: DeviceOp,
        request: &OperationRequest,
    ) -> OpStatus {
        let what = format!("POST {} ({})", wire::OPERATIONS, op.as_str());
        let answer = self
            .call(&what, || {
                self.request(Method::POST, &[wire::OPERATIONS], caller)
                    .json(request)
            })
            .await;
        let status = answer.and_then(|answer| {
            let body: OperationBody =
                self.json(&what, &answer, &[StatusCode::OK, StatusCode::CREATED])?;
            self.op_status(&what, op, &request.key, &body)
        });
        status.unwrap_or_else(OpStatus::Failed)
    }

    async fn poll_op(&self, caller: Caller<'_>, op: DeviceOp, key: &str) -> OpStatus {
        let what = format!("GET {}/{{key}} ({})", wire::OPERATIONS, op.as_str());
        let answer = match self
            .call(&what, || {
                self.request(Method::GET, &[wire::OPERATIONS, key], caller)
            })
            .await
        {
            Ok(answer) => answer,
            Err(e) => return OpStatus::Failed(e),
        };
        if answer.status == StatusCode::NOT_FOUND
            && serde_json::from_slice::<wire::ErrorBody>(&answer.body).is_ok()
        {
            debug!("the device knows no operation with this key");
            return OpStatus::Unknown;
        }
        self.json(&what, &answer, &[StatusCode::OK])
            .and_then(|body: OperationBody| self.op_status(&what, op, key, &body))
            .unwrap_or_else(OpStatus::Failed)
    }

    /// What an operation body means for the engine.
    fn op_status(
        &self,
        what: &str,
        op: DeviceOp,
        key: &str,
        body: &OperationBody,
    ) -> Result<OpStatus, CallError> {
        let mismatch = |detail: String| {
            CallError::new(
                FaultKind::Exception,
                format!("{what} at {}: {detail}", self.address),
            )
        };
        if body.key != key {
            return Err(mismatch(format!(
                "the device answered for operation {:?}, not {key:?}",
                body.key
            )));
        }
        if body.kind.op() != op {
            return Err(mismatch(format!(
                "operation {key:?} is a {:?} operation on the device, not {}",
                body.kind,
                op.as_str()
            )));
        }
        Ok(match body.state {
            OperationState::Running => OpStatus::Running {
                retry_after: body
                    .retry_after_seconds
                    .and_then(|s| SignedDuration::try_from_secs_f64(s).ok())
                    .filter(|d| d.is_positive()),
            },
            OperationState::Done => OpStatus::Done,
            OperationState::Failed => OpStatus::Failed(CallError::new(
                FaultKind::Error,
                format!(
                    "{} at {}: the device reports the operation failed: {}",
                    op.as_str(),
                    self.address,
                    body.error.as_deref().unwrap_or("(no reason given)")
                ),
            )),
        })
    }
}

impl DeviceDriver for UpkeepDriver {
    fn facts<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Facts, CallError>> {
        async move { self.read_facts(caller).await.map(|b| b.facts()) }.boxed()
    }

    fn licenses<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Vec<String>, CallError>> {
        self.read_licenses(caller).boxed()
    }

    fn domain_status<'a>(
        &'a self,
        caller: Caller<'a>,
    ) -> BoxFuture<'a, Result<DomainStatus, CallError>> {
        self.read_domains(caller).boxed()
    }

    fn start<'a>(
        &'a self,
        caller: Caller<'a>,
        start: &'a Start,
        image: &'a ImageRef,
    ) -> BoxFuture<'a, OpStatus> {
        self.start_op(caller, start.op, &start.key, image)
            .instrument(self.op_span("start", caller, DeviceOp::Firmware(start.op), &start.key))
            .boxed()
    }

    fn poll<'a>(&'a self, caller: Caller<'a>, op: OpKind, key: &'a str) -> BoxFuture<'a, OpStatus> {
        let op = DeviceOp::Firmware(op);
        self.poll_op(caller, op, key)
            .instrument(self.op_span("poll", caller, op, key))
            .boxed()
    }

    fn patches<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Vec<Patch>, CallError>> {
        self.read_patches(caller).boxed()
    }

    fn start_patch<'a>(
        &'a self,
        caller: Caller<'a>,
        start: &'a PatchStart,
        package: Option<&'a ImageRef>,
    ) -> BoxFuture<'a, OpStatus> {
        self.start_patch_op(caller, start, package)
            .instrument(self.op_span("start", caller, DeviceOp::Patch(start.op), &start.key))
            .boxed()
    }

    fn poll_patch<'a>(
        &'a self,
        caller: Caller<'a>,
        op: PatchOp,
        key: &'a str,
    ) -> BoxFuture<'a, OpStatus> {
        let op = DeviceOp::Patch(op);
        self.poll_op(caller, op, key)
            .instrument(self.op_span("poll", caller, op, key))
            .boxed()
    }

    fn inventory<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Inventory, CallError>> {
        async move { self.read_facts(caller).await.map(|b| b.inventory()) }.boxed()
    }
}

/// The base URL of a device API, checked: http or https, a host, no credentials, query or
/// fragment.
fn base_url(address: &str) -> Result<Url, ConnectError> {
    let invalid = |address: &str, reason: &str| ConnectError::Address {
        address: address.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(address).map_err(|e| invalid(address, &e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(invalid(
            shown.as_str(),
            "the address carries credentials; put them in the Device's credentialsSecretRef instead",
        ));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(address, "the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(address, "the address has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            address,
            "the address must not have a query or fragment: give the base URL of the device API",
        ));
    }
    Ok(url)
}

/// A round trip that failed.
enum Failed {
    /// The connection failed or broke: maybe worth another try.
    Transport(reqwest::Error),
    /// Not worth another try.
    Final(CallError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert!(base_url("https://10.0.0.5:5554").is_ok());
        assert!(base_url("http://127.0.0.1:8443/devices/dp-1").is_ok());
        for (bad, why) in [
            ("ftp://dp-1", "scheme"),
            ("https://dp-1/?x=1", "query"),
            ("not a url", "relative URL"),
        ] {
            let error = base_url(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
        let error = base_url("https://admin:s3cr3t@dp-1:5554")
            .unwrap_err()
            .to_string();
        assert!(error.contains("credentialsSecretRef"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
    }

    #[test]
    fn resource_urls_encode_keys_as_one_segment() {
        let driver = UpkeepDriver::new(DriverConfig {
            address: "http://127.0.0.1:8443/devices/dp-1/".into(),
            credentials: None,
            tls: Default::default(),
            redfish: None,
            image_base_url: None,
            timeout: Duration::from_secs(1),
        })
        .unwrap();
        assert_eq!(
            driver
                .url(&[wire::OPERATIONS, "default/fw/uid/upgrade"])
                .as_str(),
            "http://127.0.0.1:8443/devices/dp-1/operations/default%2Ffw%2Fuid%2Fupgrade"
        );
        assert_eq!(
            driver.url(&[wire::FACTS]).as_str(),
            "http://127.0.0.1:8443/devices/dp-1/facts"
        );
    }
}
