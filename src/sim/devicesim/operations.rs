//! Operations: started with an idempotency key, then polled.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use jiff::SignedDuration;

use super::DeviceContext;
use super::answers::{self, Breakage};
use super::requests::{bad_request, caller};
use crate::drivers::upkeep::wire::{
    OperationBody, OperationKind, OperationRequest, OperationState, seconds,
};
use crate::drivers::{DeviceOp, ImageRef};
use crate::engine::devicepatch::observe::{PatchOp, PatchStart};
use crate::engine::firmware::observe::{CallError, FaultKind, ImageEntry, OpKind, OpStatus};

/// The longest idempotency key accepted.
pub const MAX_KEY_LENGTH: usize = 512;

/// `POST operations`: starts an operation, or reports the one already started with the key.
pub(super) async fn start(
    State(ctx): State<DeviceContext>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: OperationRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad_request(format!("the body is not an operation request: {e}")),
    };
    if request.key.is_empty() || request.key.len() > MAX_KEY_LENGTH {
        return bad_request(format!("key must be 1 to {MAX_KEY_LENGTH} characters long"));
    }
    let op = request.kind.op();
    let image = request.image.as_ref().map(|image| ImageRef {
        entry: ImageEntry {
            name: image.name.clone(),
            size: image.size,
            catalog_version: ctx.sim.versions.get(&image.name).cloned(),
        },
        sha256: image.sha256.clone(),
        path: None,
    });
    let needs_image = matches!(
        op,
        DeviceOp::Firmware(OpKind::Upload | OpKind::Upgrade) | DeviceOp::Patch(PatchOp::Load)
    );
    if needs_image && image.is_none() {
        return bad_request(format!("a {:?} operation needs the image", request.kind));
    }
    let known = ctx.sim.model.operation(&ctx.device, &request.key);
    if let Some(kind) = known
        && kind != op
    {
        return answers::error(
            StatusCode::CONFLICT,
            format!(
                "key {:?} belongs to a {} operation, not {}",
                request.key,
                kind.as_str(),
                op.as_str()
            ),
        );
    }
    let transferred = matches!(
        op,
        DeviceOp::Firmware(OpKind::Upload) | DeviceOp::Patch(PatchOp::Load)
    );
    if let Some(image) = &image
        && transferred
        && known.is_none()
        && !ctx.sim.holds(&ctx.device, image)
    {
        return answers::error(
            StatusCode::CONFLICT,
            format!(
                "the device does not hold image {} ({} bytes{}); PUT it to images/{} first",
                image.entry.name,
                image.entry.size,
                image
                    .sha256
                    .as_deref()
                    .map(|s| format!(", sha256 {s}"))
                    .unwrap_or_default(),
                image.entry.name
            ),
        );
    }
    let now = ctx.sim.clock.now();
    let caller = caller(&headers);
    let status = match op {
        DeviceOp::Firmware(op) => {
            let image = image.unwrap_or_else(|| ImageRef {
                entry: ImageEntry {
                    name: String::new(),
                    size: 0,
                    catalog_version: None,
                },
                sha256: None,
                path: None,
            });
            ctx.sim
                .model
                .start(&ctx.device, caller, op, &request.key, &image, now)
        }
        DeviceOp::Patch(op) => {
            let Some(patch) = &request.patch else {
                return bad_request(format!(
                    "a {:?} operation needs the patch: {{\"patch\": {{\"id\": …}}}}",
                    request.kind
                ));
            };
            let delay = match (op, patch.activation_delay_seconds) {
                (PatchOp::SetDelay, None) => {
                    return bad_request(
                        "a patchSetDelay operation needs patch.activationDelaySeconds".to_string(),
                    );
                }
                (PatchOp::SetDelay, Some(secs)) => match SignedDuration::try_from_secs_f64(secs) {
                    Ok(delay) if !delay.is_negative() => Some(delay),
                    _ => {
                        return bad_request(format!(
                            "patch.activationDelaySeconds {secs} is not a duration of zero or more seconds"
                        ));
                    }
                },
                _ => None,
            };
            let start = PatchStart {
                op,
                key: request.key.clone(),
                patch: patch.id.clone(),
                delay,
            };
            ctx.sim
                .model
                .start_patch(&ctx.device, caller, &start, image.as_ref(), now)
        }
    };
    let created = if known.is_none() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    answer(&request.key, request.kind, status, created, Call::Start)
}

/// `GET operations/{key}`.
pub(super) async fn poll(
    State(ctx): State<DeviceContext>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    let Some(kind) = ctx.sim.model.operation(&ctx.device, &key) else {
        return answers::error(
            StatusCode::NOT_FOUND,
            format!("the device knows no operation with key {key:?}"),
        );
    };
    let now = ctx.sim.clock.now();
    let status = ctx.sim.model.poll(&ctx.device, caller(&headers), &key, now);
    answer(&key, kind.into(), status, StatusCode::OK, Call::Poll)
}

/// Which call answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    /// A start: a refusal is an error answer.
    Start,
    /// A poll: a failure is the operation's state.
    Poll,
}

/// The answer for an operation's status.
fn answer(
    key: &str,
    kind: OperationKind,
    status: OpStatus,
    ok: StatusCode,
    call: Call,
) -> Response {
    let body = |state, retry_after: Option<SignedDuration>, error: Option<String>| OperationBody {
        key: key.to_string(),
        kind,
        state,
        retry_after_seconds: retry_after.map(seconds),
        error,
    };
    match status {
        OpStatus::Running { retry_after } => {
            answers::json(ok, &body(OperationState::Running, retry_after, None))
        }
        OpStatus::Done => answers::json(ok, &body(OperationState::Done, None, None)),
        OpStatus::Unknown => answers::error(
            StatusCode::NOT_FOUND,
            format!("the device knows no operation with key {key:?}"),
        ),
        OpStatus::Failed(CallError {
            kind: FaultKind::Error,
            message,
        }) if call == Call::Poll => {
            answers::json(ok, &body(OperationState::Failed, None, Some(message)))
        }
        OpStatus::Failed(error) => answers::failure(&error, Breakage::Reset),
    }
}
