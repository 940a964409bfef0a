//! How the operator reaches a Device: a driver built from its spec, its credentials Secret and
//! its CA bundle Secret. Failures to build one (a missing Secret, a bad CA bundle) come back as a
//! driver whose every call fails as unreachable with the reason, so the task ends with a clear
//! "device not available" code instead of an internal error.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt as _};

use crate::api::Device;
use crate::drivers::credentials::Credentials;
use crate::drivers::http::TlsSettings;
use crate::drivers::{Caller, DeviceDriver, ImageRef};
use crate::drivers::{DriverConfig, connect};
use crate::engine::firmware::observe::{
    CallError, DomainStatus, Facts, FaultKind, OpKind, OpStatus, Start,
};

/// Gives the driver for a Device.
pub trait Connections: Send + Sync {
    /// The driver for `device` (never fails: see [`Unavailable`]).
    fn driver<'a>(&'a self, device: &'a Device) -> BoxFuture<'a, Arc<dyn DeviceDriver>>;
}

/// A driver for a device that cannot be reached for a known reason: every call fails as
/// unreachable, with that reason.
#[derive(Clone, Debug)]
pub struct Unavailable(pub String);

impl Unavailable {
    fn error(&self) -> CallError {
        CallError::new(FaultKind::Unreachable, self.0.clone())
    }
}

impl DeviceDriver for Unavailable {
    fn facts<'a>(&'a self, _: Caller<'a>) -> BoxFuture<'a, Result<Facts, CallError>> {
        futures::future::ready(Err(self.error())).boxed()
    }

    fn licenses<'a>(&'a self, _: Caller<'a>) -> BoxFuture<'a, Result<Vec<String>, CallError>> {
        futures::future::ready(Err(self.error())).boxed()
    }

    fn domain_status<'a>(
        &'a self,
        _: Caller<'a>,
    ) -> BoxFuture<'a, Result<DomainStatus, CallError>> {
        futures::future::ready(Err(self.error())).boxed()
    }

    fn start<'a>(
        &'a self,
        _: Caller<'a>,
        _: &'a Start,
        _: &'a ImageRef,
    ) -> BoxFuture<'a, OpStatus> {
        futures::future::ready(OpStatus::Failed(self.error())).boxed()
    }

    fn poll<'a>(&'a self, _: Caller<'a>, _: OpKind, _: &'a str) -> BoxFuture<'a, OpStatus> {
        futures::future::ready(OpStatus::Failed(self.error())).boxed()
    }
}

/// Connections to real devices: Secrets are read from the Device's namespace by name.
#[derive(Clone)]
pub struct ClusterConnections {
    client: Client,
    image_base_url: Option<String>,
    timeout: Duration,
}

impl ClusterConnections {
    /// Connections reading Secrets with `client`; `image_base_url` is where devices download
    /// images that upkeep serves (Redfish).
    pub fn new(client: Client, image_base_url: Option<String>, timeout: Duration) -> Self {
        Self {
            client,
            image_base_url,
            timeout,
        }
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Secret, String> {
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await
            .map_err(|e| format!("Secret {namespace}/{name} cannot be read: {e}"))
    }

    async fn build(&self, device: &Device) -> Result<Arc<dyn DeviceDriver>, String> {
        let namespace = device.namespace().unwrap_or_default();
        let spec = &device.spec;
        let credentials = match &spec.credentials_secret_ref {
            Some(reference) => {
                let secret = self.secret(&namespace, &reference.name).await?;
                Some(Credentials::from_secret(&secret).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let tls = spec.tls.clone().unwrap_or_default();
        let ca_bundle_pem = match &tls.ca_bundle_secret_ref {
            Some(reference) => {
                let secret = self.secret(&namespace, &reference.name).await?;
                let bytes = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&reference.key))
                    .map(|b| b.0.clone())
                    .or_else(|| {
                        secret
                            .string_data
                            .as_ref()
                            .and_then(|d| d.get(&reference.key))
                            .map(|s| s.clone().into_bytes())
                    });
                Some(bytes.ok_or_else(|| {
                    format!(
                        "Secret {namespace}/{} has no key {:?}",
                        reference.name, reference.key
                    )
                })?)
            }
            None => None,
        };
        let config = DriverConfig {
            address: spec.address.clone(),
            credentials,
            tls: TlsSettings {
                ca_bundle_pem,
                insecure_skip_verify: tls.insecure_skip_verify,
            },
            redfish: spec.redfish.clone(),
            image_base_url: self.image_base_url.clone(),
            timeout: self.timeout,
        };
        connect(spec.driver, config)
            .map(Arc::from)
            .map_err(|e| e.to_string())
    }
}

impl Connections for ClusterConnections {
    fn driver<'a>(&'a self, device: &'a Device) -> BoxFuture<'a, Arc<dyn DeviceDriver>> {
        async move {
            match self.build(device).await {
                Ok(driver) => driver,
                Err(reason) => Arc::new(Unavailable(format!(
                    "device {}: {reason}",
                    device.name_any()
                ))) as Arc<dyn DeviceDriver>,
            }
        }
        .boxed()
    }
}
