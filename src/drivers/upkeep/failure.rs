//! How a failed call to the upkeep device API becomes a [`CallError`]:
//!
//! | what happened | kind |
//! |---|---|
//! | no connection (refused, DNS, TLS handshake, untrusted certificate), no answer in time | `Unreachable` |
//! | `502`, `503`, `504` (an adapter or gateway cannot reach the device) | `Unreachable` |
//! | `401`, `403` (credentials rejected) | `Error` |
//! | another 4xx/5xx with a JSON body `{"message": …}` | `Error` |
//! | connection reset or closed mid-answer, a malformed or oversized body, an unexpected status | `Exception` |
//!
//! A certificate that does not verify is `Unreachable`: no request reached the device, and the
//! message says which certificate check failed and how to trust the device.

use std::error::Error as StdError;
use std::time::Duration;

use reqwest::StatusCode;

use super::wire::ErrorBody;
use crate::engine::firmware::observe::{CallError, FaultKind};

/// What the fix is when the device rejects the credentials.
const CREDENTIALS_FIX: &str = "check the credentials (the Device's credentialsSecretRef; for `upkeep device`: --credentials FILE or UPKEEP_USERNAME and UPKEEP_PASSWORD)";

/// What the fix is when the device's certificate is not trusted.
const CERTIFICATE_FIX: &str = "trust the CA that signed it (the Device's tls.caBundleSecretRef; for `upkeep device`: --ca FILE), or set tls.insecureSkipVerify for a lab device";

/// A failed call: `call` names it (e.g. `GET facts`), `device` the device's address.
pub(super) fn transport(
    device: &str,
    call: &str,
    timeout: Duration,
    error: &reqwest::Error,
) -> CallError {
    let cause = root_cause(error);
    if error.is_timeout() {
        return CallError::new(
            FaultKind::Unreachable,
            format!("{call} at {device}: no answer within {timeout:?}"),
        );
    }
    if let Some(tls) = rustls_error(error) {
        let message = match tls {
            rustls::Error::InvalidCertificate(why) => format!(
                "{call} at {device}: the device's TLS certificate was rejected ({why:?}); {CERTIFICATE_FIX}"
            ),
            other => format!(
                "{call} at {device}: the TLS handshake failed ({other}); check that the device speaks HTTPS on this address, or use http:// if it does not"
            ),
        };
        return CallError::new(FaultKind::Unreachable, message);
    }
    if error.is_connect() {
        return CallError::new(
            FaultKind::Unreachable,
            format!("{call} at {device}: cannot connect: {cause}"),
        );
    }
    CallError::new(
        FaultKind::Exception,
        format!("{call} at {device}: the connection broke: {cause}"),
    )
}

/// Whether retrying an idempotent call may help: the connection failed or broke, but not by a
/// timeout (which already waited the whole bound) and not by an untrusted certificate.
pub(super) fn is_transient(error: &reqwest::Error) -> bool {
    !error.is_timeout() && !error.is_builder() && rustls_error(error).is_none()
}

/// An answer with an error status and its body.
pub(super) fn status(device: &str, call: &str, status: StatusCode, body: &[u8]) -> CallError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.message);
    let said = message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CallError::new(
            FaultKind::Error,
            format!(
                "{call} at {device}: the device rejected the credentials (HTTP {status}){said}; {CREDENTIALS_FIX}"
            ),
        ),
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            CallError::new(
                FaultKind::Unreachable,
                format!("{call} at {device}: the device is not available (HTTP {status}){said}"),
            )
        }
        _ if (status.is_client_error() || status.is_server_error()) && message.is_some() => {
            CallError::new(
                FaultKind::Error,
                format!("{call} at {device}: HTTP {status}{said}"),
            )
        }
        _ => unexpected(device, call, status, body),
    }
}

/// An answer that does not follow the API: a status it does not use, or an error without the
/// `{"message": …}` body.
pub(super) fn unexpected(device: &str, call: &str, status: StatusCode, body: &[u8]) -> CallError {
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text.chars().take(200).collect();
    let excerpt = excerpt.trim();
    let shown = if excerpt.is_empty() {
        "an empty body".to_string()
    } else {
        format!("{excerpt:?}")
    };
    CallError::new(
        FaultKind::Exception,
        format!(
            "{call} at {device}: unexpected answer HTTP {status} with {shown}; is the address the base URL of an upkeep device API?"
        ),
    )
}

/// A body that is not the JSON the API promises.
pub(super) fn malformed(device: &str, call: &str, error: &serde_json::Error) -> CallError {
    CallError::new(
        FaultKind::Exception,
        format!("{call} at {device}: the answer is not the expected JSON: {error}"),
    )
}

/// The innermost error's text (the one that says what actually happened).
fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The rustls error somewhere in the chain, if TLS failed. `io::Error` hides its payload from
/// `source()`, so it is looked into explicitly.
fn rustls_error<'e>(error: &'e (dyn StdError + 'static)) -> Option<&'e rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = rustls_error(inner)
        {
            return Some(tls);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: &str = "https://dp-1:5554";

    #[test]
    fn statuses_map_to_fault_kinds() {
        let json = br#"{"message": "licenses: the device returned an error"}"#;
        let cases = [
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                &json[..],
                FaultKind::Error,
            ),
            (StatusCode::CONFLICT, &json[..], FaultKind::Error),
            (StatusCode::UNAUTHORIZED, b"", FaultKind::Error),
            (StatusCode::FORBIDDEN, b"<html>no</html>", FaultKind::Error),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                &json[..],
                FaultKind::Unreachable,
            ),
            (StatusCode::BAD_GATEWAY, b"", FaultKind::Unreachable),
            (StatusCode::GATEWAY_TIMEOUT, b"", FaultKind::Unreachable),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                b"oops",
                FaultKind::Exception,
            ),
            (StatusCode::NOT_FOUND, b"", FaultKind::Exception),
            (StatusCode::MOVED_PERMANENTLY, b"", FaultKind::Exception),
        ];
        for (code, body, kind) in cases {
            let error = status(DEVICE, "GET licenses", code, body);
            assert_eq!(error.kind, kind, "{code}: {error}");
            assert!(
                error
                    .message
                    .starts_with("GET licenses at https://dp-1:5554")
            );
        }
        let error = status(DEVICE, "GET licenses", StatusCode::UNAUTHORIZED, b"");
        assert!(error.message.contains("--credentials"), "{error}");
        let error = status(
            DEVICE,
            "GET licenses",
            StatusCode::INTERNAL_SERVER_ERROR,
            json,
        );
        assert!(error.message.ends_with("the device returned an error"));
    }
}
