//! The device a command line names: its manifest checked and read, credentials and CA bundle
//! from files or the environment (Secrets cannot be read without a cluster), and its driver.

use std::path::Path;

use serde_json::Value;

use super::Connection;
use crate::api::device::Device;
use crate::check::check_text;
use crate::cli::Error;
use crate::drivers::DeviceDriver;
use crate::drivers::credentials::Credentials;
use crate::drivers::http::TlsSettings;
use crate::drivers::{DriverConfig, connect};
use crate::engine::firmware::observe::DeviceFamily;
use crate::sim::fleet_file::DEFAULT_NAMESPACE;

/// The environment variable with the user name, when no credentials file is given.
pub const USERNAME_ENV: &str = "UPKEEP_USERNAME";
/// The environment variable with the password, when no credentials file is given.
pub const PASSWORD_ENV: &str = "UPKEEP_PASSWORD";

/// A device ready to be driven.
pub struct Target {
    /// `namespace/name`.
    pub id: String,
    /// The Device's address.
    pub address: String,
    /// How the engine drives it.
    pub family: DeviceFamily,
    /// Its driver.
    pub driver: Box<dyn DeviceDriver>,
}

/// The Device the connection names, checked as `upkeep check` does.
pub fn device(connection: &Connection) -> Result<Device, Error> {
    read_device(&connection.device)
}

/// Reads the Device manifest and builds its driver; devices that download images (Redfish
/// SimpleUpdate) fetch them under `image_base_url`.
pub fn open(
    connection: &Connection,
    device: &Device,
    image_base_url: Option<String>,
) -> Result<Target, Error> {
    let namespace = device
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let name = device.metadata.name.clone().unwrap_or_default();
    let id = format!("{namespace}/{name}");
    let spec = &device.spec;
    let credentials = credentials(
        connection,
        &id,
        spec.credentials_secret_ref
            .as_ref()
            .map(|r| r.name.as_str()),
    )?;
    let tls = tls(connection, &id, spec.tls.as_ref())?;
    let config = DriverConfig {
        address: spec.address.clone(),
        credentials,
        tls,
        redfish: spec.redfish.clone(),
        image_base_url,
        timeout: connection.timeout.get(),
    };
    let driver =
        connect(spec.driver, config).map_err(|e| Error::Usage(format!("Device {id}: {e}")))?;
    let family = spec.family();
    Ok(Target {
        id,
        address: spec.address.clone(),
        family,
        driver,
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The one Device of the file, after `upkeep check`'s validation.
fn read_device(path: &Path) -> Result<Device, Error> {
    let file = path.display().to_string();
    let text = String::from_utf8(read_file(path)?)
        .map_err(|_| Error::Usage(format!("{file} is not UTF-8 text")))?;
    let report = check_text(&file, &text);
    if !report.is_valid() {
        return Err(Error::Usage(format!(
            "{file} is not a valid manifest (as `upkeep check` sees it):\n{}",
            report.to_string().trim_end()
        )));
    }
    let documents =
        crate::check::parse_documents(&text).map_err(|e| Error::Usage(format!("{file}: {e}")))?;
    let devices: Vec<&Value> = documents
        .iter()
        .filter(|d| {
            d.get("kind").and_then(Value::as_str) == Some("Device")
                && d.get("apiVersion").and_then(Value::as_str) == Some(crate::api::API_VERSION)
        })
        .collect();
    let [document] = devices.as_slice() else {
        return Err(Error::Usage(format!(
            "{file} holds {} Device manifests; give a file with exactly one",
            devices.len()
        )));
    };
    serde_json::from_value((*document).clone())
        .map_err(|e| Error::Usage(format!("{file}: the Device cannot be read: {e}")))
}

/// Credentials from `--credentials` or the environment. A Device that names a Secret needs one
/// of them: the Secret cannot be read here.
fn credentials(
    connection: &Connection,
    id: &str,
    secret: Option<&str>,
) -> Result<Option<Credentials>, Error> {
    if let Some(path) = &connection.credentials {
        let text = String::from_utf8(read_file(path)?)
            .map_err(|_| Error::Usage(format!("{} is not UTF-8 text", path.display())))?;
        return Credentials::from_line(&text)
            .map(Some)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())));
    }
    let username = std::env::var(USERNAME_ENV).ok();
    let password = std::env::var(PASSWORD_ENV).ok();
    match (username, password) {
        (Some(user), Some(password)) if !user.is_empty() => {
            Ok(Some(Credentials::new(user, password)))
        }
        (None, None) => match secret {
            Some(secret) => Err(Error::Usage(format!(
                "Device {id} takes its credentials from Secret {secret} (credentialsSecretRef), which cannot be read without a cluster; give --credentials FILE (one line username:password) or set {USERNAME_ENV} and {PASSWORD_ENV}"
            ))),
            None => Ok(None),
        },
        _ => Err(Error::Usage(format!(
            "set both {USERNAME_ENV} and {PASSWORD_ENV} (a non-empty user name), or neither"
        ))),
    }
}

/// TLS settings from the Device and `--ca`.
fn tls(
    connection: &Connection,
    id: &str,
    config: Option<&crate::api::device::TlsConfig>,
) -> Result<TlsSettings, Error> {
    let insecure = config.is_some_and(|t| t.insecure_skip_verify);
    let secret = config.and_then(|t| t.ca_bundle_secret_ref.as_ref());
    let ca_bundle_pem = match (&connection.ca, secret) {
        (Some(_), _) if insecure => {
            return Err(Error::Usage(format!(
                "Device {id} sets tls.insecureSkipVerify, so --ca would not be used; drop one of the two"
            )));
        }
        (Some(path), _) => Some(read_file(path)?),
        (None, Some(secret)) => {
            return Err(Error::Usage(format!(
                "Device {id} verifies its certificate with the CA bundle in Secret {} key {} (tls.caBundleSecretRef), which cannot be read without a cluster; give the bundle with --ca FILE",
                secret.name, secret.key
            )));
        }
        (None, None) => None,
    };
    Ok(TlsSettings {
        ca_bundle_pem,
        insecure_skip_verify: insecure,
    })
}
