//! Serves the image repository read-only over HTTP, so that devices that pull their firmware
//! (Redfish `SimpleUpdate` with an `ImageURI`) can download it from upkeep.
//!
//! One route: `GET`/`HEAD /images/{name}`. A name is a plain file name of the repository: no
//! directory listing, no path separators, no `..`, not the catalog. Answers carry
//! `Content-Length`, `Content-Type: application/octet-stream` and, when the repository knows it,
//! the image's SHA-256 in `X-Checksum-Sha256`. The operator mounts [`router`] on its HTTP port;
//! the drivers' tests start it on loopback.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::io::ReaderStream;

use crate::images::repository::{CATALOG_FILE, ImageRepository};

/// The path prefix images are served under; an image's URL is
/// `{operator base URL}{IMAGES_PATH}/{name}`.
pub const IMAGES_PATH: &str = "/images";

/// The router serving `repo` at `/images/{name}`.
pub fn router(repo: Arc<dyn ImageRepository>) -> Router {
    Router::new()
        .route("/images/{name}", get(serve))
        .with_state(repo)
}

/// Whether `name` may be served: a plain file name, never a path or the catalog.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name != CATALOG_FILE
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}

async fn serve(State(repo): State<Arc<dyn ImageRepository>>, Path(name): Path<String>) -> Response {
    if !plain(&name) {
        return (StatusCode::NOT_FOUND, "no such image\n").into_response();
    }
    let lookup = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || repo.lookup(&name)).await
    };
    let image = match lookup {
        Ok(Ok(Some(image))) => image,
        Ok(Ok(None)) => return (StatusCode::NOT_FOUND, "no such image\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(image = %name, error = %e, "the image repository failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the repository failed\n").into_response();
        }
        Err(e) => {
            tracing::warn!(image = %name, error = %e, "the image lookup panicked");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the repository failed\n").into_response();
        }
    };
    let Some(path) = image.path else {
        // A repository that knows the image but holds no bytes (a fleet file's images).
        return (StatusCode::NOT_FOUND, "the image has no file to serve\n").into_response();
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(image = %name, error = %e, "opening the image failed");
            return (StatusCode::NOT_FOUND, "no such image\n").into_response();
        }
    };
    let length = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return (StatusCode::NOT_FOUND, "no such image\n").into_response(),
    };
    tracing::debug!(image = %name, bytes = length, "serving an image");
    let mut response = Response::new(Body::from_stream(ReaderStream::new(file)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(sum) = image.sha256.and_then(|s| HeaderValue::from_str(&s).ok()) {
        headers.insert("x-checksum-sha256", sum);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_served() {
        for good in ["bios-1.1.0.bin", "idg7519.oradco.scrypt4"] {
            assert!(plain(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "a\\b",
            ".hidden",
            CATALOG_FILE,
        ] {
            assert!(!plain(bad), "{bad}");
        }
    }
}
