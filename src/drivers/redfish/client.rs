//! The Redfish exchange: JSON requests with basic auth, answers classified into success (with
//! the task monitor a `202 Accepted` names), Redfish error bodies, and broken calls.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::drivers::credentials::Credentials;
use crate::drivers::wire::{self, malformed, transport_fault};
use crate::engine::firmware::observe::{CallError, FaultKind};

/// A successful answer.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    /// The HTTP status (2xx).
    pub status: StatusCode,
    /// The `Location` header (a task monitor after `202 Accepted`).
    pub location: Option<String>,
    /// The `Retry-After` hint.
    pub retry_after: Option<SignedDuration>,
    /// The JSON body, when there is one.
    pub body: Option<Value>,
}

/// One Redfish service: its base URL, HTTP client and credentials.
#[derive(Clone)]
pub(crate) struct Client {
    base: Url,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(
        base: Url,
        http: reqwest::Client,
        credentials: Option<Credentials>,
        timeout: Duration,
    ) -> Self {
        Self {
            base,
            http,
            credentials,
            timeout,
        }
    }

    /// The bound on one ordinary call.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A request to `link` (a path or an absolute URL).
    pub(crate) fn request(
        &self,
        method: Method,
        link: &str,
    ) -> Result<reqwest::RequestBuilder, CallError> {
        let url = wire::resolve(&self.base, link)?;
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header("OData-Version", "4.0");
        if let Some(c) = &self.credentials {
            request = request.basic_auth(&c.username, Some(c.password()));
        }
        Ok(request)
    }

    /// GETs a resource that must answer with a JSON object.
    pub(crate) async fn get(&self, link: &str) -> Result<Value, CallError> {
        let answer = self.send(self.request(Method::GET, link)?).await?;
        match answer.body {
            Some(body @ Value::Object(_)) => Ok(body),
            Some(_) => Err(malformed(format!(
                "GET {link} did not return a JSON object"
            ))),
            None => Err(malformed(format!("GET {link} returned no body"))),
        }
    }

    /// POSTs a JSON body.
    pub(crate) async fn post(&self, link: &str, body: &Value) -> Result<Answer, CallError> {
        self.send(self.request(Method::POST, link)?.json(body))
            .await
    }

    /// Sends a request and classifies the answer.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, CallError> {
        let response = request.send().await.map_err(|e| transport_fault(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| transport_fault(&e))?;
        if !status.is_success() {
            return Err(error_answer(status, &bytes));
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(
                serde_json::from_slice::<Value>(&bytes)
                    .map_err(|e| malformed(format!("the body is not JSON ({e})")))?,
            )
        };
        let location = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Answer {
            status,
            location,
            retry_after: wire::retry_after(&headers, Timestamp::now()),
            body,
        })
    }
}

/// An error status: [`FaultKind::Error`], with the Redfish error's messages when the body has
/// them.
pub(crate) fn error_answer(status: StatusCode, body: &[u8]) -> CallError {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| redfish_error_message(&v));
    let message = match detail {
        Some(detail) => format!("HTTP {status}: {detail}"),
        None => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {}", truncate(&text, 200))
            }
        }
    };
    CallError::new(FaultKind::Error, message)
}

/// The messages of a Redfish error body: the `Message` texts of `error.@Message.ExtendedInfo`,
/// else `error.message`, else the extended infos' `MessageId`s.
pub(crate) fn redfish_error_message(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    let infos = error.get("@Message.ExtendedInfo");
    let texts = field_texts(infos, "Message");
    if !texts.is_empty() {
        return Some(texts);
    }
    if let Some(message) = text(error, "message") {
        return Some(message.to_string());
    }
    Some(field_texts(infos, "MessageId")).filter(|s| !s.is_empty())
}

/// Joins the `Message` texts (or, lacking any, the `MessageId`s) of a Redfish message array.
pub(crate) fn messages(list: Option<&Value>) -> String {
    let texts = field_texts(list, "Message");
    if texts.is_empty() {
        field_texts(list, "MessageId")
    } else {
        texts
    }
}

fn field_texts(list: Option<&Value>, field: &str) -> String {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|m| text(m, field))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The `@odata.id` of a reference object.
pub(crate) fn odata_id(value: Option<&Value>) -> Option<&str> {
    value?.get("@odata.id")?.as_str()
}

/// The `@odata.id`s of a collection's members.
pub(crate) fn members(collection: &Value) -> Vec<String> {
    collection
        .get("Members")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|r| odata_id(Some(r)).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A string property.
pub(crate) fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str().filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn error_bodies_give_their_extended_messages() {
        let body = json!({"error": {"code": "Base.1.8.GeneralError", "message": "A general error",
            "@Message.ExtendedInfo": [
                {"MessageId": "Base.1.8.ActionParameterMissing", "Message": "ImageURI is missing."},
                {"MessageId": "Base.1.8.PropertyValueNotInList"}]}});
        let e = error_answer(StatusCode::BAD_REQUEST, body.to_string().as_bytes());
        assert_eq!(e.kind, FaultKind::Error);
        assert_eq!(e.message, "HTTP 400 Bad Request: ImageURI is missing.");
        let plain = json!({"error": {"code": "Base.1.0.GeneralError", "message": "404 Not Found",
            "@Message.ExtendedInfo": [{"MessageId": "Base.1.0.GeneralError"}]}});
        assert_eq!(
            error_answer(StatusCode::NOT_FOUND, plain.to_string().as_bytes()).message,
            "HTTP 404 Not Found: 404 Not Found"
        );
        assert_eq!(
            error_answer(StatusCode::BAD_GATEWAY, b"<html>\n bad  gateway</html>").message,
            "HTTP 502 Bad Gateway: <html> bad gateway</html>"
        );
        assert_eq!(
            error_answer(StatusCode::UNAUTHORIZED, b"").message,
            "HTTP 401 Unauthorized"
        );
    }
}
