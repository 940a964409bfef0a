//! Helpers shared by the tests: a virtual-clock runner for the controller tests, an engine loop that drives one firmware task against a
//! real driver, an image repository served on loopback, and driver configurations.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use jiff::Timestamp;
use upkeep::api::FirmwareUpgradeSpec;
use upkeep::api::codes::FirmwareCode;
use upkeep::drivers::DriverConfig;
use upkeep::drivers::credentials::Credentials;
use upkeep::drivers::http::TlsSettings;
use upkeep::drivers::{Caller, DeviceDriver, Hooks, ImageRef, Phase, perform};
use upkeep::engine::firmware::machine::Context;
use upkeep::engine::firmware::observe::{Action, DeviceFamily, HookKind, HookStatus};
use upkeep::engine::firmware::state::TaskState;
use upkeep::engine::firmware::validation::Readings;
use upkeep::images::repository::{DirRepository, ImageRepository};

pub mod sushy;

/// The task identity the tests use.
pub const TASK: &str = "default/fw-test/dev-1";

/// A caller in the execution phase.
pub fn caller() -> Caller<'static> {
    Caller {
        task: Some(TASK),
        phase: Phase::Execution,
    }
}

/// A driver configuration for `address`.
pub fn config(address: &str) -> DriverConfig {
    DriverConfig {
        address: address.to_string(),
        credentials: Some(Credentials::new("admin", "s3cr3t-pw")),
        tls: TlsSettings::default(),
        redfish: None,
        image_base_url: None,
        timeout: Duration::from_secs(5),
    }
}

/// Runs `test` on a paused-time runtime on a thread with an 8 MiB stack (the default 2 MiB of a
/// test thread is too small for the operator's futures in an unoptimized build).
pub fn on_virtual_clock<F: std::future::Future<Output = ()>>(
    test: impl FnOnce() -> F + Send + 'static,
) {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            runtime.block_on(test());
        })
        .unwrap()
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

/// Binds an axum router on a free loopback port and serves it in the background.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

/// A directory repository with the given images and catalog, served over HTTP with the image
/// server; returns the repository, the base URL of `/images`, and the directory guard.
pub async fn image_repository(
    images: &[(&str, &[u8])],
    catalog: &str,
) -> (Arc<DirRepository>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in images {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    std::fs::write(dir.path().join("catalog.yaml"), catalog).unwrap();
    let repo = Arc::new(DirRepository::new(dir.path()));
    let addr = serve(upkeep::images::server::router(repo.clone())).await;
    (repo, format!("http://{addr}/images"), dir)
}

/// The image `name` of `repo`.
pub fn image(repo: &dyn ImageRepository, name: &str) -> ImageRef {
    repo.lookup(name).unwrap().unwrap()
}

/// What one engine run did.
#[derive(Debug)]
pub struct Run {
    /// The task at the end.
    pub state: TaskState,
    /// The driver calls made, in order (`facts`, `start upload`, `poll upgrade`, …).
    pub calls: Vec<String>,
}

impl Run {
    /// The codes the task passed.
    pub fn codes(&self) -> Vec<FirmwareCode> {
        self.state.history.iter().map(|(c, _)| *c).collect()
    }
}

/// Hook Jobs as the driver tests see them: every hook exits zero.
pub struct PassingHooks;

impl Hooks for PassingHooks {
    fn status(&self, _: HookKind) -> BoxFuture<'_, Result<HookStatus, String>> {
        futures::future::ready(Ok(HookStatus::Succeeded)).boxed()
    }
}

/// The name [`Run::calls`] records for a driver call (hooks are not driver calls).
fn call_name(action: &Action) -> Option<String> {
    match action {
        Action::ReadFacts => Some("facts".into()),
        Action::ReadLicenses => Some("licenses".into()),
        Action::ReadDomainStatus => Some("domain-status".into()),
        Action::Hook(_) => None,
        Action::Start(start) => Some(format!("start {}", start.op.as_str())),
        Action::Poll(op, _) => Some(format!("poll {}", op.as_str())),
    }
}

/// Drives one firmware task of `spec.image` through validation and execution against `driver`,
/// the way the controller does: every action the engine asks for is performed on the driver;
/// waits are skipped on a virtual clock (with a short real pause so that real devices move).
pub async fn run_task(
    driver: &dyn DeviceDriver,
    family: DeviceFamily,
    spec: &FirmwareUpgradeSpec,
    image: &ImageRef,
) -> Run {
    let mut now: Timestamp = "2026-06-01T22:00:00Z".parse().unwrap();
    let mut state = TaskState::new(now);
    let mut readings = Readings::default();
    let mut input = None;
    let mut calls = Vec::new();
    let ctx = Context {
        spec,
        task: TASK,
        family,
        device_exists: true,
        image: Some(&image.entry),
    };
    for _ in 0..2_000 {
        let step = state.step(&ctx, &mut readings, input.take(), now);
        if let Some(action) = step.action {
            let caller = Caller {
                task: Some(TASK),
                phase: state.call_phase(),
            };
            if let Some(call) = call_name(&action) {
                calls.push(call);
            }
            input = Some(perform(driver, caller, Some(image), &PassingHooks, action).await);
            now += jiff::SignedDuration::from_millis(100);
            continue;
        }
        if state.is_terminal() {
            return Run { state, calls };
        }
        if state.code == FirmwareCode::ReadyForExecution {
            state.grant(now);
            continue;
        }
        match step.wake_at {
            Some(at) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                now = now.max(at);
            }
            None => panic!("the task stopped at {} without a wake-up", state.code),
        }
    }
    panic!(
        "the task did not end within 2000 steps: {} ({})",
        state.code, state.message
    );
}

/// Reads a file's bytes (for comparing what a device received).
pub fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}
