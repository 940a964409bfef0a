//! A directory served over loopback HTTP (GET and HEAD), as package repositories are: apt, dnf
//! and zypper download from it into their caches. It can be taken offline (503 for everything) to
//! show that an install after a download needs no network.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

struct Served {
    dir: PathBuf,
    offline: AtomicBool,
    requests: AtomicUsize,
}

/// A served directory.
#[derive(Clone)]
pub struct Repo {
    served: Arc<Served>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Repo {
    /// Serves `dir` on a free loopback port, on the current tokio runtime.
    pub async fn serve(dir: &Path) -> Self {
        let served = Arc::new(Served {
            dir: dir.to_path_buf(),
            offline: AtomicBool::new(false),
            requests: AtomicUsize::new(0),
        });
        let router = axum::Router::new()
            .fallback(file)
            .with_state(served.clone());
        let addr = crate::common::serve(router).await;
        Self {
            served,
            url: format!("http://{addr}"),
        }
    }

    /// Takes the server offline (every request answers 503) or back online.
    pub fn set_offline(&self, offline: bool) {
        self.served.offline.store(offline, Ordering::SeqCst);
    }

    /// How many requests it has answered.
    pub fn requests(&self) -> usize {
        self.served.requests.load(Ordering::SeqCst)
    }
}

async fn file(State(served): State<Arc<Served>>, uri: Uri) -> Response {
    served.requests.fetch_add(1, Ordering::SeqCst);
    if served.offline.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let relative = Path::new(uri.path().trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match tokio::fs::read(served.dir.join(relative)).await {
        Ok(bytes) => bytes.into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
