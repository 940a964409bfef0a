//! The device simulator: every device of a fleet file served over HTTP (or HTTPS) as the upkeep
//! device API, in real time, with the fleet file's timings and faults.
//!
//! Paths: a device of namespace `default` is served at `/devices/<name>`; a device of another
//! namespace at `/devices/<namespace>/<name>`, and also at `/devices/<name>` when no other device
//! of the fleet has that name. Faults, as the API sees them:
//!
//! | fleet fault | readings (facts and patches, licenses, domainStatus) | upload (the `PUT` of the image) | operations (patch steps: patchLoad, patchActivate for the delay and the activation, patchConfirm) |
//! |---|---|---|---|
//! | `error` | `500` with `{"message"}` | `500` with `{"message"}` | the start answers `500` with `{"message"}` |
//! | `exception` | `200` with a truncated JSON body | the connection breaks mid-answer | the connection breaks mid-answer |
//! | `hang` | no answer, ever | the body is read, then no answer, ever | the operation never completes (`running`) |
//!
//! A device that is unavailable (`available: false`, `unavailableFrom`) or restarting answers
//! `503` with `{"message"}`, as an adapter in front of an unreachable device would.

mod answers;
mod images;
mod operations;
mod readings;
mod requests;
pub mod tls;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::drivers::credentials::Credentials;
use crate::drivers::upkeep::wire;
use crate::sim::fleet::{DeviceKey, FleetModel};
use crate::sim::fleet_file::{DEFAULT_NAMESPACE, Fleet};
use images::HeldImage;
pub use tls::{GeneratedCa, TlsError, TlsIdentity};

/// How the simulator serves.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Require these credentials (HTTP basic auth) on every call.
    pub credentials: Option<Credentials>,
    /// Serve HTTPS with this certificate and key; plain HTTP without.
    pub tls: Option<TlsIdentity>,
}

/// The simulator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DevicesimError {
    /// The listening socket cannot be used.
    #[error("cannot serve on the listening socket: {0}")]
    Listen(#[from] std::io::Error),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The state behind every simulated device: the fleet model, the images the devices hold, and
/// what the simulator needs to answer like a device.
#[derive(Debug)]
pub struct DeviceSim {
    model: Arc<FleetModel>,
    clock: Clock,
    credentials: Option<Credentials>,
    /// Versions the fleet's image list gives images whose names carry none.
    versions: HashMap<String, String>,
    images: Mutex<HashMap<(DeviceKey, String), HeldImage>>,
    received: Mutex<HashMap<DeviceKey, u64>>,
}

impl DeviceSim {
    /// The simulated devices of `fleet`, answering in real time.
    pub fn new(fleet: &Fleet, credentials: Option<Credentials>) -> Self {
        Self {
            model: Arc::new(FleetModel::new(fleet)),
            clock: Clock::system(),
            credentials,
            versions: fleet
                .images
                .iter()
                .filter_map(|i| Some((i.name.clone(), i.version.clone()?)))
                .collect(),
            images: Mutex::new(HashMap::new()),
            received: Mutex::new(HashMap::new()),
        }
    }

    /// The fleet model the simulator plays.
    pub fn model(&self) -> &Arc<FleetModel> {
        &self.model
    }

    /// How many image bytes the device received so far.
    pub fn bytes_received(&self, device: &DeviceKey) -> u64 {
        self.received
            .lock()
            .map(|r| r.get(device).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn count_received(&self, device: &DeviceKey, bytes: u64) {
        if let Ok(mut received) = self.received.lock() {
            *received.entry(device.clone()).or_default() += bytes;
        }
    }
}

/// One device's routes share this state.
#[derive(Clone, Debug)]
struct DeviceContext {
    sim: Arc<DeviceSim>,
    device: DeviceKey,
}

/// The paths a device is served at: its canonical path first.
pub fn device_paths(keys: &[DeviceKey]) -> BTreeMap<DeviceKey, Vec<String>> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (_, name) in keys {
        *names.entry(name.as_str()).or_default() += 1;
    }
    keys.iter()
        .map(|key| {
            let (namespace, name) = key;
            let mut paths = Vec::new();
            if namespace == DEFAULT_NAMESPACE {
                paths.push(format!("/devices/{name}"));
            } else {
                paths.push(format!("/devices/{namespace}/{name}"));
                if names.get(name.as_str()) == Some(&1) {
                    paths.push(format!("/devices/{name}"));
                }
            }
            (key.clone(), paths)
        })
        .collect()
}

/// The HTTP routes of every device of `sim`.
pub fn router(sim: Arc<DeviceSim>) -> Router {
    let keys = sim.model.keys();
    let paths = device_paths(&keys);
    let known: Vec<String> = paths.values().filter_map(|p| p.first().cloned()).collect();
    let mut router = Router::new();
    for (device, paths) in paths {
        let context = DeviceContext {
            sim: sim.clone(),
            device,
        };
        let routes = Router::new()
            .route(&format!("/{}", wire::FACTS), get(readings::facts))
            .route(&format!("/{}", wire::LICENSES), get(readings::licenses))
            .route(&format!("/{}", wire::DOMAINS), get(readings::domains))
            .route(&format!("/{}", wire::PATCHES), get(readings::patches))
            .route(
                &format!("/{}/{{name}}", wire::IMAGES),
                get(images::status).put(images::receive),
            )
            .route(
                &format!("/{}", wire::OPERATIONS),
                axum::routing::post(operations::start),
            )
            .route(
                &format!("/{}/{{key}}", wire::OPERATIONS),
                get(operations::poll),
            )
            .with_state(context);
        for path in paths {
            router = router.nest(&path, routes.clone());
        }
    }
    router
        .fallback(move |uri: axum::http::Uri| {
            let known = known.clone();
            async move { answers::no_such_resource(uri.path(), &known) }
        })
        .method_not_allowed_fallback(answers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            requests::authenticate,
        ))
        .layer(axum::middleware::from_fn(requests::log))
}

/// A running simulator.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    scheme: &'static str,
    sim: Arc<DeviceSim>,
    handle: axum_server::Handle<SocketAddr>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Serves every device of `fleet` on `listener` until stopped.
pub fn start(
    fleet: &Fleet,
    listener: std::net::TcpListener,
    options: Options,
) -> Result<Running, DevicesimError> {
    let addr = listener.local_addr()?;
    let sim = Arc::new(DeviceSim::new(fleet, options.credentials));
    let app = router(sim.clone()).into_make_service();
    let handle = axum_server::Handle::new();
    let (scheme, task) = match options.tls {
        Some(identity) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(
                tls::server_config(&identity)?,
            ));
            let server = axum_server::from_tcp_rustls(listener, config)?.handle(handle.clone());
            ("https", tokio::spawn(server.serve(app)))
        }
        None => {
            let server = axum_server::from_tcp(listener)?.handle(handle.clone());
            ("http", tokio::spawn(server.serve(app)))
        }
    };
    Ok(Running {
        addr,
        scheme,
        sim,
        handle,
        task: Some(task),
    })
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Every device with the URL of its canonical path, in order.
    pub fn devices(&self) -> Vec<(DeviceKey, String)> {
        self.device_urls()
            .into_iter()
            .filter_map(|(key, urls)| Some((key, urls.into_iter().next()?)))
            .collect()
    }

    /// Every device with all the URLs it is served at, the canonical one first.
    pub fn device_urls(&self) -> Vec<(DeviceKey, Vec<String>)> {
        device_paths(&self.sim.model.keys())
            .into_iter()
            .map(|(key, paths)| {
                let urls = paths
                    .iter()
                    .map(|path| format!("{}{path}", self.base_url()))
                    .collect();
                (key, urls)
            })
            .collect()
    }

    /// The URL of a device (the base URL of its device API).
    pub fn device_url(&self, namespace: &str, name: &str) -> Option<String> {
        let key = (namespace.to_string(), name.to_string());
        self.devices()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, url)| url)
    }

    /// The simulator's state.
    pub fn sim(&self) -> &Arc<DeviceSim> {
        &self.sim
    }

    /// Waits until the server ends (it ends only when stopped, or when serving fails).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Stops serving at once; requests held open are dropped.
    pub fn stop(&self) {
        self.handle.shutdown();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_of_other_namespaces_get_both_paths_when_unambiguous() {
        let key = |ns: &str, n: &str| (ns.to_string(), n.to_string());
        let paths = device_paths(&[
            key("default", "dp-1"),
            key("lab", "dp-1"),
            key("lab", "dp-9"),
        ]);
        assert_eq!(paths[&key("default", "dp-1")], ["/devices/dp-1"]);
        assert_eq!(paths[&key("lab", "dp-1")], ["/devices/lab/dp-1"]);
        assert_eq!(
            paths[&key("lab", "dp-9")],
            ["/devices/lab/dp-9", "/devices/dp-9"]
        );
    }
}
