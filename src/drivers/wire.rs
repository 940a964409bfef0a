//! Pieces the HTTP drivers share: how a transport failure maps onto a [`FaultKind`], how to read
//! a `Retry-After` header, how to resolve a link against the device's address, and a streaming
//! base64 encoder for uploads that carry the image inside a JSON document.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reqwest::Url;

use crate::engine::firmware::observe::{CallError, FaultKind};

/// How a failed HTTP exchange maps onto the engine's fault kinds: no connection or no answer in
/// time is [`FaultKind::Unreachable`]; anything that broke once the device had accepted the
/// connection (a reset, a truncated body, a redirect loop) is [`FaultKind::Exception`].
pub fn transport_fault(error: &reqwest::Error) -> CallError {
    let kind = if error.is_timeout() || error.is_connect() {
        FaultKind::Unreachable
    } else {
        FaultKind::Exception
    };
    // reqwest's messages name the URL but never the credentials (they travel in a header).
    CallError::new(kind, describe(error))
}

/// The error with its sources, on one line (reqwest's own message is often just "error sending
/// request").
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// An answer that could not be read: [`FaultKind::Exception`].
pub fn malformed(what: impl std::fmt::Display) -> CallError {
    CallError::new(FaultKind::Exception, format!("malformed answer: {what}"))
}

/// The delay a `Retry-After` header asks for: delta-seconds or an HTTP date (relative to `now`).
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: Timestamp) -> Option<SignedDuration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return SignedDuration::try_from(Duration::from_secs(seconds)).ok();
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = at.duration_since(now);
    Some(wait.max(SignedDuration::ZERO))
}

/// Resolves `link` (absolute, or a path such as `/redfish/v1/TaskService/Tasks/1`) against the
/// device's base URL.
pub fn resolve(base: &Url, link: &str) -> Result<Url, CallError> {
    base.join(link)
        .map_err(|e| malformed(format!("the link {link:?} is not a URL: {e}")))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, with padding). Encoding consecutive chunks whose lengths are
/// multiples of 3 and concatenating the results gives the encoding of the whole, which is how
/// uploads stream a file through it.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let digit = |shift: u32| char::from(ALPHABET[((n >> shift) & 0x3f) as usize]);
        out.push(digit(18));
        out.push(digit(12));
        out.push(if chunk.len() > 1 { digit(6) } else { '=' });
        out.push(if chunk.len() > 2 { digit(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_and_streams_in_chunks_of_three() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let streamed: String = data.chunks(300).map(base64).collect();
        assert_eq!(streamed, base64(&data));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            retry_after(&headers, now),
            Some(SignedDuration::from_secs(7))
        );
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Thu, 01 Jan 2026 00:00:30 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&headers, now),
            Some(SignedDuration::from_secs(30))
        );
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn links_resolve_against_the_address() {
        let base = Url::parse("https://bmc.example:8443/").unwrap();
        assert_eq!(
            resolve(&base, "/redfish/v1/Systems/1").unwrap().as_str(),
            "https://bmc.example:8443/redfish/v1/Systems/1"
        );
        assert_eq!(
            resolve(&base, "http://other:80/x").unwrap().as_str(),
            "http://other/x"
        );
    }
}
