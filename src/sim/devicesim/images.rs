//! Images on the simulated devices: received in a stream at the device's upload rate, hashed
//! and counted (the bytes themselves are discarded), resumable after a broken transfer.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use super::answers::{self, Breakage};
use super::requests::{bad_request, caller};
use super::{DeviceContext, DeviceSim};
use crate::drivers::ImageRef;
use crate::drivers::upkeep::upload::hex;
use crate::drivers::upkeep::wire::{self, ImageStatusBody};
use crate::sim::fleet::{DeviceKey, Reply};

/// What a device holds of one image.
#[derive(Clone, Debug)]
pub(super) struct HeldImage {
    size: u64,
    sha256: String,
    received: u64,
    /// The hash of the bytes so far, while the image is incomplete.
    partial: Option<Sha256>,
}

impl HeldImage {
    fn body(&self, name: &str) -> ImageStatusBody {
        ImageStatusBody {
            name: name.to_string(),
            size: self.size,
            sha256: self.sha256.clone(),
            received: self.received,
            complete: self.partial.is_none(),
        }
    }
}

impl DeviceSim {
    /// Whether the device holds the whole image (with its checksum, when the request gives one).
    pub(super) fn holds(&self, device: &DeviceKey, image: &ImageRef) -> bool {
        let Ok(images) = self.images.lock() else {
            return false;
        };
        images
            .get(&(device.clone(), image.entry.name.clone()))
            .is_some_and(|held| {
                held.partial.is_none()
                    && held.size == image.entry.size
                    && image
                        .sha256
                        .as_deref()
                        .is_none_or(|sum| sum.eq_ignore_ascii_case(&held.sha256))
            })
    }

    fn held(&self, device: &DeviceKey, name: &str) -> Option<HeldImage> {
        self.images
            .lock()
            .ok()?
            .get(&(device.clone(), name.to_string()))
            .cloned()
    }

    fn keep(&self, device: &DeviceKey, name: &str, held: HeldImage) {
        if let Ok(mut images) = self.images.lock() {
            images.insert((device.clone(), name.to_string()), held);
        }
    }

    fn forget(&self, device: &DeviceKey, name: &str) {
        if let Ok(mut images) = self.images.lock() {
            images.remove(&(device.clone(), name.to_string()));
        }
    }
}

/// `GET images/{name}`: what the device holds of the image.
pub(super) async fn status(
    State(ctx): State<DeviceContext>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let now = ctx.sim.clock.now();
    if let Err(e) = ctx.sim.model.reachable(&ctx.device, caller(&headers), now) {
        return answers::failure(&e, Breakage::Reset);
    }
    match ctx.sim.held(&ctx.device, &name) {
        Some(held) => answers::json(StatusCode::OK, &held.body(&name)),
        None => answers::error(
            StatusCode::NOT_FOUND,
            format!("the device holds no image named {name:?}"),
        ),
    }
}

/// The upload headers.
struct Upload {
    sha256: String,
    size: u64,
    offset: u64,
}

fn upload_headers(headers: &HeaderMap) -> Result<Upload, String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let sha256 = text(wire::SHA256_HEADER)
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("{} must be the image's SHA-256 in hex", wire::SHA256_HEADER))?
        .to_ascii_lowercase();
    let size = text(wire::SIZE_HEADER)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{} must be the image's size in bytes", wire::SIZE_HEADER))?;
    let offset = match text(wire::OFFSET_HEADER) {
        None => 0,
        Some(s) => s
            .parse()
            .map_err(|_| format!("{} must be a byte offset", wire::OFFSET_HEADER))?,
    };
    if offset > size {
        return Err(format!(
            "{} ({offset}) is beyond the image's size ({size})",
            wire::OFFSET_HEADER
        ));
    }
    Ok(Upload {
        sha256,
        size,
        offset,
    })
}

/// Reads and discards a request body.
async fn drain(body: Body) {
    drain_stream(&mut body.into_data_stream()).await;
}

/// Reads and discards the rest of a request body.
async fn drain_stream(stream: &mut axum::body::BodyDataStream) {
    while let Some(Ok(_)) = stream.next().await {}
}

/// `PUT images/{name}`: receives the image (or its remainder, from `Upkeep-Image-Offset`) at the
/// device's upload rate.
pub(super) async fn receive(
    State(ctx): State<DeviceContext>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    let upload = match upload_headers(&headers) {
        Ok(upload) => upload,
        Err(message) => {
            drain(body).await;
            return bad_request(message);
        }
    };
    let now = ctx.sim.clock.now();
    let rate = match ctx
        .sim
        .model
        .admit_upload(&ctx.device, caller(&headers), now)
    {
        Reply::Ready(Ok(rate)) => rate,
        Reply::Ready(Err(e)) => {
            drain(body).await;
            return answers::failure(&e, Breakage::Reset);
        }
        Reply::Hang => {
            drain(body).await;
            return answers::never().await;
        }
    };
    let before = ctx.sim.held(&ctx.device, &name);
    let mut held = if upload.offset == 0 {
        HeldImage {
            size: upload.size,
            sha256: upload.sha256.clone(),
            received: 0,
            partial: Some(Sha256::new()),
        }
    } else {
        match before.clone() {
            Some(held)
                if held.partial.is_some()
                    && held.sha256 == upload.sha256
                    && held.size == upload.size
                    && held.received == upload.offset =>
            {
                held
            }
            other => {
                drain(body).await;
                let holds = other.map_or("nothing of it".to_string(), |h| {
                    format!(
                        "{} of its {} bytes (sha256 {})",
                        h.received, h.size, h.sha256
                    )
                });
                return answers::error(
                    StatusCode::CONFLICT,
                    format!(
                        "cannot resume {name} at byte {}: the device holds {holds}; send the whole image with {} 0",
                        upload.offset,
                        wire::OFFSET_HEADER
                    ),
                );
            }
        }
    };
    let started = Instant::now();
    let mut sent = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            // The sender broke off: keep what arrived, for a resumed transfer.
            ctx.sim.keep(&ctx.device, &name, held);
            return bad_request("the transfer broke off");
        };
        let len = chunk.len() as u64;
        if held.received + len > upload.size {
            drain_stream(&mut stream).await;
            ctx.sim.forget(&ctx.device, &name);
            return bad_request(format!(
                "the body holds more than the {} bytes {} announced",
                upload.size,
                wire::SIZE_HEADER
            ));
        }
        if let Some(hasher) = held.partial.as_mut() {
            hasher.update(&chunk);
        }
        held.received += len;
        sent += len;
        ctx.sim.count_received(&ctx.device, len);
        let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
        tokio::time::sleep_until(due).await;
    }
    if held.received < upload.size {
        let received = held.received;
        ctx.sim.keep(&ctx.device, &name, held);
        return bad_request(format!(
            "the body ended after {received} of {} bytes; resume with {} {received}",
            upload.size,
            wire::OFFSET_HEADER
        ));
    }
    let digest = held.partial.take().map(|h| hex(&h.finalize()));
    if digest.as_deref() != Some(upload.sha256.as_str()) {
        ctx.sim.forget(&ctx.device, &name);
        return answers::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the bytes received hash to {}, not {}; nothing was kept",
                digest.unwrap_or_default(),
                upload.sha256
            ),
        );
    }
    let had = before.is_some_and(|b| b.partial.is_none() && b.sha256 == upload.sha256);
    let body = held.body(&name);
    ctx.sim.keep(&ctx.device, &name, held);
    ctx.sim.model.store_image(&ctx.device, &name, upload.size);
    let status = if had {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    answers::json(status, &body)
}
