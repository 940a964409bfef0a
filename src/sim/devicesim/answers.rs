//! The simulator's answers: JSON bodies, error bodies, and the three ways a simulated call goes
//! wrong (an error answer, a broken answer, no answer at all).

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use crate::drivers::upkeep::wire::ErrorBody;
use crate::engine::firmware::observe::{CallError, FaultKind};
use crate::sim::fleet::Reply;

/// How a broken call ("exception") shows on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Breakage {
    /// `200` with a JSON body cut short.
    Malformed,
    /// The answer starts, then the connection is dropped mid-body.
    Reset,
}

/// A JSON answer.
pub(super) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::from(bytes),
        )
            .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the simulator could not render its answer: {e}"),
        ),
    }
}

/// An error answer with the API's `{"message": …}` body.
pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        message: message.into(),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(bytes),
    )
        .into_response()
}

/// A body that is not valid JSON: the answer of a device whose call breaks ("exception").
pub(super) fn malformed() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from_static(br#"{"model": "IDG", "firmware": "#),
    )
        .into_response()
}

/// An answer whose connection breaks after the first bytes of the body.
pub(super) fn reset() -> Response {
    let chunks: [Result<Bytes, std::io::Error>; 2] = [
        Ok(Bytes::from_static(br#"{"key": "#)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        )),
    ];
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures::stream::iter(chunks)),
    )
        .into_response()
}

/// Never answers: the caller's timeout decides.
pub(super) async fn never() -> Response {
    futures::future::pending::<()>().await;
    StatusCode::GATEWAY_TIMEOUT.into_response()
}

/// The answer to a failed call: an error answer (`500`), a broken answer, or `503` when the
/// device does not answer at all.
pub(super) fn failure(failed: &CallError, breakage: Breakage) -> Response {
    match failed.kind {
        FaultKind::Error => error(StatusCode::INTERNAL_SERVER_ERROR, failed.message.clone()),
        FaultKind::Exception => match breakage {
            Breakage::Malformed => malformed(),
            Breakage::Reset => reset(),
        },
        FaultKind::Unreachable => error(StatusCode::SERVICE_UNAVAILABLE, failed.message.clone()),
    }
}

/// The answer to a reading of the fleet model.
pub(super) async fn reading<T, B: Serialize>(
    reply: Reply<T>,
    body: impl FnOnce(T) -> B,
) -> Response {
    match reply {
        Reply::Ready(Ok(value)) => json(StatusCode::OK, &body(value)),
        Reply::Ready(Err(e)) => failure(&e, Breakage::Malformed),
        Reply::Hang => never().await,
    }
}

/// No device or resource at this path.
pub(super) fn no_such_resource(path: &str, devices: &[String]) -> Response {
    let listed = if devices.is_empty() {
        "the fleet has no devices".to_string()
    } else {
        format!("devices are served at {}", devices.join(", "))
    };
    error(
        StatusCode::NOT_FOUND,
        format!(
            "nothing is served at {path}; {listed}, each with facts, licenses, domains, patches, images/{{name}} and operations"
        ),
    )
}

/// A method the resource does not support.
pub(super) async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "this resource does not support the method; see docs/device-api.yaml",
    )
}
