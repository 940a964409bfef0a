//! A tiny axum server that replays recorded DataPower REST exchanges from
//! `tests/fixtures/datapower/*.json`.
//!
//! A fixture names a method, a path (a trailing `*` matches any rest), optionally a text the
//! request body must contain (`match`) and a text an earlier request body must have contained
//! (`after`, for state changes such as the firmware version after `BootImage`), and the
//! responses, one per request (the last one repeats). Among the fixtures that apply, the one
//! whose `after` text was seen most recently wins; then the one loaded last. A request no fixture
//! answers gets a 404 with a DataPower error body naming it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One recorded exchange.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub matches: Option<String>,
    pub after: Option<String>,
    pub responses: Vec<Value>,
    pub served: usize,
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub authorization: Option<String>,
}

/// The replay state.
#[derive(Debug, Default)]
pub struct Replay {
    pub exchanges: Vec<Exchange>,
    pub received: Vec<Received>,
}

pub type Shared = Arc<Mutex<Replay>>;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datapower")
}

fn load(path: &Path) -> Exchange {
    let text = std::fs::read_to_string(path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Exchange {
        method: s("method").unwrap(),
        path: s("path").unwrap(),
        matches: s("match"),
        after: s("after"),
        responses: v["responses"].as_array().unwrap().clone(),
        served: 0,
    }
}

impl Replay {
    /// Every fixture of the directory, then the named extra ones (`faults/…`).
    pub fn new(extra: &[&str]) -> Self {
        let mut files: Vec<_> = std::fs::read_dir(fixtures())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        let mut exchanges: Vec<Exchange> = files.iter().map(|p| load(p)).collect();
        exchanges.extend(extra.iter().map(|name| load(&fixtures().join(name))));
        Self {
            exchanges,
            received: Vec::new(),
        }
    }

    /// The requests received with this method and path prefix.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.received
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    }

    /// Whether any request body contained `text`.
    pub fn saw(&self, text: &str) -> bool {
        self.received
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(text))
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// The router.
pub fn router(replay: Shared) -> Router {
    Router::new().fallback(answer).with_state(replay)
}

async fn answer(
    State(replay): State<Shared>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let mut r = replay.lock().unwrap();
    let path = uri.path().to_string();
    let text = String::from_utf8_lossy(&body).to_string();
    let last_seen = |marker: &str| -> Option<usize> {
        r.received
            .iter()
            .rposition(|q| String::from_utf8_lossy(&q.body).contains(marker))
    };
    let mut best: Option<(i64, usize)> = None;
    for (i, e) in r.exchanges.iter().enumerate() {
        if e.method != method.as_str()
            || !path_matches(&e.path, &path)
            || e.matches
                .as_ref()
                .is_some_and(|m| !text.contains(m.as_str()))
        {
            continue;
        }
        let score = match &e.after {
            None => -1,
            Some(marker) => match last_seen(marker) {
                Some(at) => at as i64,
                None => continue,
            },
        };
        if best.is_none_or(|(s, _)| score >= s) {
            best = Some((score, i));
        }
    }
    r.received.push(Received {
        method: method.to_string(),
        path: path.clone(),
        body: body.to_vec(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    let Some((_, i)) = best else {
        let error = json!({"error": [format!("no fixture for {method} {path}")]});
        return (StatusCode::NOT_FOUND, axum::Json(error)).into_response();
    };
    let e = &mut r.exchanges[i];
    let response = e.responses[e.served.min(e.responses.len() - 1)].clone();
    e.served += 1;
    let status = StatusCode::from_u16(response["status"].as_u64().unwrap_or(200) as u16).unwrap();
    if let Some(raw) = response.get("raw").and_then(Value::as_str) {
        return (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            raw.to_string(),
        )
            .into_response();
    }
    (status, axum::Json(response["body"].clone())).into_response()
}
