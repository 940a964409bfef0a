//! `upkeep device upgrade DEVICE.yaml --image NAME --repository DIR`: one firmware upgrade in the
//! foreground, in real time, through the operator's engine (validation, then every execution
//! step), printing each status code as it passes.
//!
//! Devices that download their image (Redfish SimpleUpdate) need it served: `--serve-images`
//! does, and a Redfish device at a loopback address gets it served on loopback without being
//! asked.
//!
//! The task's state lives in this process only: an interrupted run is not resumed (start it
//! again; an image the device already holds is not sent twice). Hooks need a cluster and are not
//! offered here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use jiff::{Timestamp, Unit};

use super::Connection;
use super::target::{self, Target};
use crate::api::FirmwareUpgradeSpec;
use crate::api::codes::FirmwareCode;
use crate::api::common::{GoDuration, TargetSelector};
use crate::api::device::DriverKind;
use crate::api::firmware_upgrade::RestartSpec;
use crate::cli::{Error, logging};
use crate::clock::Clock;
use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::drivers::{Caller, Hooks, ImageRef, perform};
use crate::engine::firmware::machine::Context;
use crate::engine::firmware::observe::{HookKind, HookStatus, Observation};
use crate::engine::firmware::state::TaskState;
use crate::engine::firmware::validation::Readings;
use crate::images::repository::{DirRepository, ImageRepository as _};
use crate::images::server;

/// Arguments of `upkeep device upgrade`. The spec options are those of a FirmwareUpgrade, with
/// its defaults.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How to reach the device.
    #[command(flatten)]
    pub connection: Connection,
    /// The image's file name in the repository, e.g. idg7519.oradco.scrypt4.
    #[arg(long, value_name = "NAME")]
    pub image: String,
    /// The image repository: a directory of image files, with an optional catalog.yaml.
    #[arg(long, value_name = "DIR")]
    pub repository: PathBuf,
    /// Stop after validation: exit 0 when the device is ready for the upgrade, 1 when not.
    #[arg(long)]
    pub dry_run: bool,
    /// Approve a downgrade within the same release (a.b.c).
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Approve an image that lacks licensed features the device has.
    #[arg(long)]
    pub allow_missing_device_features: bool,
    /// Quiesce before the optional restart and the upload.
    #[arg(long)]
    pub first_quiesce: bool,
    /// Timeout of every quiesce and unquiesce (a grace of 3m is added) [default: 60s].
    #[arg(long, value_name = "DURATION")]
    pub quiesce_timeout: Option<GoDuration>,
    /// Restart the device before the upload.
    #[arg(long)]
    pub restart: bool,
    /// How long to wait for the device to come back from the restart [default: 10m].
    #[arg(long, value_name = "DURATION", requires = "restart")]
    pub restart_timeout: Option<GoDuration>,
    /// How long to wait after the restart before the upload [default: 0s].
    #[arg(long, value_name = "DURATION", requires = "restart")]
    pub restart_wait_after: Option<GoDuration>,
    /// How long the device may take to upgrade and report the new version [default: 30m].
    #[arg(long, value_name = "DURATION")]
    pub upgrade_timeout: Option<GoDuration>,
    /// Give up an execution running longer than this [default: 60m].
    #[arg(long, value_name = "DURATION")]
    pub max_run_duration: Option<GoDuration>,
    /// Serve the repository's images over HTTP at this address while the upgrade runs
    /// (`/images/{name}`), for devices that download their image themselves (Redfish
    /// SimpleUpdate), e.g. 0.0.0.0:8081 [default for a Redfish device at a loopback address:
    /// 127.0.0.1:0]
    #[arg(long, value_name = "ADDR")]
    pub serve_images: Option<SocketAddr>,
    /// Where the device downloads images from, e.g. http://10.0.0.5:8081/images (default with
    /// --serve-images: the served address)
    #[arg(long, value_name = "URL")]
    pub image_base_url: Option<String>,
}

impl Args {
    /// The FirmwareUpgrade spec these options describe, for the device `name`.
    pub fn spec(&self, name: &str) -> FirmwareUpgradeSpec {
        let defaults = FirmwareUpgradeSpec::default();
        FirmwareUpgradeSpec {
            image: self.image.clone(),
            targets: TargetSelector {
                names: vec![name.to_string()],
                ..TargetSelector::default()
            },
            allow_downgrade: self.allow_downgrade,
            allow_missing_device_features: self.allow_missing_device_features,
            first_quiesce: self.first_quiesce,
            quiesce_timeout: self.quiesce_timeout.unwrap_or(defaults.quiesce_timeout),
            restart: RestartSpec {
                enabled: self.restart,
                timeout: self.restart_timeout.unwrap_or(defaults.restart.timeout),
                wait_after: self
                    .restart_wait_after
                    .unwrap_or(defaults.restart.wait_after),
            },
            upgrade_timeout: self.upgrade_timeout.unwrap_or(defaults.upgrade_timeout),
            max_run_duration: self.max_run_duration.unwrap_or(defaults.max_run_duration),
            ..defaults
        }
    }
}

/// Runs the upgrade; exit 0 on SUCCESS (or READY_FOR_EXECUTION with `--dry-run`), 1 otherwise.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    logging::init("warn");
    if !args.repository.is_dir() {
        return Err(Error::Usage(format!(
            "--repository {} is not a directory of images",
            args.repository.display()
        )));
    }
    let runtime = logging::runtime()?;
    let repository = Arc::new(DirRepository::new(&args.repository));
    if let Some(addr) = args.serve_images
        && addr.ip().is_unspecified()
        && args.image_base_url.is_none()
    {
        return Err(Error::Usage(format!(
            "--serve-images {addr} listens on every interface: add --image-base-url with an address the device can reach, e.g. http://10.0.0.5:{}/images",
            addr.port()
        )));
    }
    let device = target::device(&args.connection)?;
    let downloads = device.spec.driver == DriverKind::Redfish;
    let serve_at = args.serve_images.or_else(|| {
        let loopback = downloads
            && args.image_base_url.is_none()
            && is_loopback(&device.spec.address);
        loopback.then(|| {
            eprintln!(
                "the device is at a loopback address: serving the images to it on loopback (as --serve-images 127.0.0.1:0 would)"
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    });
    let served = match serve_at {
        Some(addr) => Some(serve_images(&runtime, addr, repository.clone())?),
        None => None,
    };
    let image_base_url = args.image_base_url.clone().or(served);
    let target = target::open(&args.connection, &device, image_base_url)?;
    let name = target.id.rsplit('/').next().unwrap_or_default().to_string();
    let spec = args.spec(&name);
    let image = repository.lookup(&args.image).map_err(|e| {
        Error::Usage(format!(
            "reading the repository {}: {e}",
            args.repository.display()
        ))
    })?;
    let code = runtime.block_on(execute(&target, &spec, image, args.dry_run));
    let passed =
        code == FirmwareCode::Success || (args.dry_run && code == FirmwareCode::ReadyForExecution);
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Whether a device address (a URL or a bare host) names this machine: `localhost` or a loopback
/// IP.
fn is_loopback(address: &str) -> bool {
    let host = reqwest::Url::parse(address)
        .ok()
        .and_then(|url| url.host_str().map(str::to_string))
        .unwrap_or_else(|| address.to_string());
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Serves the repository's images at `addr` on `runtime` until it is dropped; returns their
/// base URL.
fn serve_images(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    repository: Arc<DirRepository>,
) -> Result<String, Error> {
    let io = |source| Error::Io {
        path: format!("--serve-images {addr}"),
        source,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    let local = listener.local_addr().map_err(io)?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(io)?
    };
    runtime.spawn(async move { axum::serve(listener, server::router(repository)).await });
    Ok(format!("http://{local}/images"))
}

/// Drives one task through the engine until it ends (or is ready, for a dry run); returns its
/// last code.
async fn execute(
    target: &Target,
    spec: &FirmwareUpgradeSpec,
    image: Option<ImageRef>,
    dry_run: bool,
) -> FirmwareCode {
    let clock = Clock::system();
    let started = clock.now();
    // Operation keys derive from the task identity: unique per run.
    let task = format!("upkeep-cli/{}/{}", target.id, started.as_nanosecond());
    let entry = image.as_ref().map(|i| i.entry.clone());
    let ctx = Context {
        spec,
        task: &task,
        family: target.family,
        device_exists: true,
        image: entry.as_ref(),
    };
    let mut state = TaskState::new(started);
    let mut readings = Readings::default();
    let mut printer = Printer::default();
    let mut input = None;
    loop {
        let step = state.step(&ctx, &mut readings, input.take(), clock.now());
        printer.print(&state);
        if state.is_terminal() {
            break;
        }
        if state.code == FirmwareCode::ReadyForExecution {
            if dry_run {
                break;
            }
            // One target, no rollout: the slot is granted at once.
            state.grant(clock.now());
            printer.print(&state);
            continue;
        }
        let caller = Caller {
            task: Some(&task),
            phase: state.call_phase(),
        };
        input = match (step.action, step.wake_at) {
            (Some(action), _) => Some(
                perform(
                    target.driver.as_ref(),
                    caller,
                    image.as_ref(),
                    &NoHooks,
                    action,
                )
                .await,
            ),
            (None, Some(at)) => {
                tokio::time::sleep(clock.until(at)).await;
                None
            }
            (None, None) => Some(Observation::Internal(
                "the engine neither acts nor waits on a task that is not done".into(),
            )),
        };
    }
    let result = state.code.result();
    let incident = state
        .incident_id
        .as_deref()
        .map(|id| format!(", incident {id}"))
        .unwrap_or_default();
    println!("{}: {} ({result:?}{incident})", target.id, state.code);
    state.code
}

/// A command line has no cluster, so no hook Jobs.
struct NoHooks;

impl Hooks for NoHooks {
    fn status(&self, kind: HookKind) -> BoxFuture<'_, Result<HookStatus, String>> {
        futures::future::ready(Err(format!(
            "the {} hook needs a cluster; hooks are not supported by `upkeep device upgrade`",
            kind.as_str()
        )))
        .boxed()
    }
}

/// Prints each code a task passes, once: `TIME  CODE  MESSAGE`.
#[derive(Debug, Default)]
struct Printer {
    last: Option<(FirmwareCode, Timestamp)>,
}

impl Printer {
    fn print(&mut self, state: &TaskState) {
        let history = &state.history;
        let from = self
            .last
            .and_then(|last| history.iter().rposition(|e| *e == last))
            .map_or(0, |i| i + 1);
        let fresh = &history[from.min(history.len())..];
        for (i, (code, at)) in fresh.iter().enumerate() {
            let message = if from + i + 1 == history.len() {
                state.message.as_str()
            } else {
                code.description()
            };
            let at = at.round(Unit::Second).unwrap_or(*at);
            println!("{at}  {code}  {message}");
        }
        if let Some(last) = history.last() {
            self.last = Some(*last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_addresses_are_recognised() {
        for address in [
            "http://127.0.0.1:8000",
            "https://localhost/redfish/v1",
            "http://[::1]:8443",
            "127.0.0.2",
        ] {
            assert!(is_loopback(address), "{address}");
        }
        for address in [
            "https://10.0.0.5",
            "http://bmc.example.com",
            "http://[fe80::1]",
        ] {
            assert!(!is_loopback(address), "{address}");
        }
    }
}
