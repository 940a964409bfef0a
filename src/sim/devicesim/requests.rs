//! What every request goes through: basic authentication when credentials are required, the
//! advisory caller headers, and one log line per answer (never with credentials).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use tracing::{debug, info};

use super::DeviceSim;
use super::answers;
use crate::drivers::upkeep::wire;
use crate::drivers::{Caller, Phase};

/// Who calls, from the advisory `Upkeep-Task` and `Upkeep-Phase` headers; a missing or unknown
/// phase counts as `inventory`.
pub(super) fn caller(headers: &HeaderMap) -> Caller<'_> {
    let phase = match headers
        .get(wire::PHASE_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some("validation") => Phase::Validation,
        Some("execution") => Phase::Execution,
        _ => Phase::Inventory,
    };
    Caller {
        task: headers.get(wire::TASK_HEADER).and_then(|v| v.to_str().ok()),
        phase,
    }
}

/// Requires the configured credentials on every request.
pub(super) async fn authenticate(
    State(sim): State<Arc<DeviceSim>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &sim.credentials else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let verdict = match given.as_deref().and_then(|text| text.split_once(':')) {
        None => Some("this device requires HTTP basic authentication"),
        Some((user, password)) if user == expected.username && password == expected.password() => {
            None
        }
        Some(_) => Some("the user name or password is not accepted"),
    };
    match verdict {
        None => next.run(request).await,
        Some(message) => {
            let mut response = answers::error(StatusCode::UNAUTHORIZED, message);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"upkeep devicesim\""),
            );
            response
        }
    }
}

/// Logs each request when it is answered: method, path, caller, status and time taken.
pub(super) async fn log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let (task, phase) = {
        let caller = caller(request.headers());
        (caller.task.unwrap_or("").to_string(), caller.phase.as_str())
    };
    debug!(%method, %path, task, phase, "request");
    let started = Instant::now();
    let response = next.run(request).await;
    info!(
        %method,
        %path,
        task,
        phase,
        status = response.status().as_u16(),
        millis = started.elapsed().as_millis() as u64,
        "answered"
    );
    response
}

/// An answer for a request that cannot be understood.
pub(super) fn bad_request(message: impl Into<String>) -> Response {
    answers::error(StatusCode::BAD_REQUEST, message).into_response()
}
