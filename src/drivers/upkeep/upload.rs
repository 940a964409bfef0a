//! The image transfer of the upload operation: ask the device what it holds of the image, skip
//! the transfer when it holds all of it with the same checksum, resume when it holds a prefix,
//! and otherwise stream the whole file.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Body, Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tracing::{Instrument as _, info, info_span};

use super::UpkeepDriver;
use super::wire::{self, ImageStatusBody};
use crate::drivers::{Caller, ImageRef};
use crate::engine::firmware::observe::{CallError, FaultKind};

/// The slowest transfer an upload is given time for: the call timeout plus one second per MiB.
pub const MIN_UPLOAD_RATE: u64 = 1 << 20;

/// The size of the chunks the file is streamed in.
const CHUNK: usize = 64 << 10;

impl UpkeepDriver {
    /// Makes sure the device holds `image`; returns the image's SHA-256.
    pub(super) async fn upload(
        &self,
        caller: Caller<'_>,
        image: &ImageRef,
    ) -> Result<String, CallError> {
        let name = image.entry.name.as_str();
        let span = info_span!("upload", image = name, size = image.entry.size);
        async move {
            let local = |message: String| {
                CallError::new(
                    FaultKind::Exception,
                    format!("uploading {name} to {}: {message}", self.address),
                )
            };
            let Some(path) = image.path.as_deref() else {
                return Err(local(
                    "the image repository holds no file for it; upload needs the image as a file".into(),
                ));
            };
            let size = tokio::fs::metadata(path)
                .await
                .map_err(|e| local(format!("reading {}: {e}", path.display())))?
                .len();
            if size != image.entry.size {
                return Err(local(format!(
                    "{} is {size} bytes, not the {} bytes the repository reported: it changed; try again",
                    path.display(),
                    image.entry.size
                )));
            }
            let sha256 = match &image.sha256 {
                Some(sum) => sum.to_ascii_lowercase(),
                None => checksum(path)
                    .await
                    .map_err(|e| local(format!("reading {}: {e}", path.display())))?,
            };
            let offset = match self.image_status(caller, name).await? {
                Some(held) if held.sha256.eq_ignore_ascii_case(&sha256) && held.size == size => {
                    if held.complete {
                        info!("the device already holds the image with this checksum; nothing to send");
                        return Ok(sha256);
                    }
                    if held.received < size { held.received } else { 0 }
                }
                _ => 0,
            };
            self.send_image(caller, name, path, size, offset, &sha256)
                .await?;
            Ok(sha256)
        }
        .instrument(span)
        .await
    }

    /// What the device holds of the image `name`; `None` when nothing.
    async fn image_status(
        &self,
        caller: Caller<'_>,
        name: &str,
    ) -> Result<Option<ImageStatusBody>, CallError> {
        let what = format!("GET {}/{name}", wire::IMAGES);
        let answer = self
            .call(&what, || {
                self.request(Method::GET, &[wire::IMAGES, name], caller)
            })
            .await?;
        if answer.status == StatusCode::NOT_FOUND
            && serde_json::from_slice::<wire::ErrorBody>(&answer.body).is_ok()
        {
            return Ok(None);
        }
        self.json(&what, &answer, &[StatusCode::OK]).map(Some)
    }

    /// Streams the file from `offset` to the device. Sent once: a broken transfer is resumed by a
    /// later start, after asking the device how much arrived.
    async fn send_image(
        &self,
        caller: Caller<'_>,
        name: &str,
        path: &Path,
        size: u64,
        offset: u64,
        sha256: &str,
    ) -> Result<(), CallError> {
        let what = format!("PUT {}/{name}", wire::IMAGES);
        let unreadable = |e: std::io::Error| {
            CallError::new(
                FaultKind::Exception,
                format!(
                    "uploading {name} to {}: reading {}: {e}",
                    self.address,
                    path.display()
                ),
            )
        };
        let mut file = tokio::fs::File::open(path).await.map_err(unreadable)?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(unreadable)?;
        let remaining = size - offset;
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(remaining), CHUNK);
        if offset > 0 {
            info!(
                offset,
                "the device holds the first bytes of the image; resuming"
            );
        }
        let started = Instant::now();
        let request = self
            .request(Method::PUT, &[wire::IMAGES, name], caller)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, remaining)
            .header(wire::SHA256_HEADER, sha256)
            .header(wire::SIZE_HEADER, size)
            .header(wire::OFFSET_HEADER, offset)
            .body(Body::wrap_stream(stream));
        let answer = self
            .call_once(&what, request, upload_timeout(self.timeout, remaining))
            .await?;
        let held: ImageStatusBody =
            self.json(&what, &answer, &[StatusCode::OK, StatusCode::CREATED])?;
        if !held.complete || !held.sha256.eq_ignore_ascii_case(sha256) {
            return Err(CallError::new(
                FaultKind::Exception,
                format!(
                    "{what} at {}: after the transfer the device holds {} of {} bytes (checksum {}), not the whole image",
                    self.address, held.received, held.size, held.sha256
                ),
            ));
        }
        info!(
            bytes = remaining,
            seconds = started.elapsed().as_secs_f64(),
            "image sent"
        );
        Ok(())
    }
}

/// The time an upload of `bytes` may take.
pub fn upload_timeout(call_timeout: Duration, bytes: u64) -> Duration {
    call_timeout + Duration::from_secs(bytes.div_ceil(MIN_UPLOAD_RATE))
}

/// The SHA-256 of a file, lower-case hex.
async fn checksum(path: &Path) -> std::io::Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                return Ok(hex(&hasher.finalize()));
            }
            hasher.update(&buffer[..n]);
        }
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_get_time_for_one_mib_per_second() {
        assert_eq!(
            upload_timeout(Duration::from_secs(30), 600 << 20),
            Duration::from_secs(630)
        );
        assert_eq!(
            upload_timeout(Duration::from_millis(500), 1),
            Duration::from_millis(1500)
        );
    }

    #[tokio::test]
    async fn checksums_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        std::fs::write(&path, b"firmware").unwrap();
        assert_eq!(
            checksum(&path).await.unwrap(),
            "c3bf47ea1f4a4a605470313cacb3a44f4a461f68c6faeab07e737610cb5ac835"
        );
    }
}
