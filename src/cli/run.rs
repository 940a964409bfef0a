//! `upkeep run`: the operator, in a cluster (in-cluster config) or from a kubeconfig.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;

use super::Error;
use super::logging::{self, LogFormat};
use crate::api::common::GoDuration;
use crate::clock::Clock;
use crate::controller::connections::ClusterConnections;
use crate::controller::endpoints::Health;
use crate::controller::kit::context::Settings;
use crate::controller::kit::metrics::Metrics;
use crate::controller::operator::{self, Parts};
use crate::images::repository::DirRepository;
use crate::images::server;

/// Arguments of `upkeep run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address of the HTTP endpoints: /metrics, /healthz, /readyz, and /images/{name} (the image
    /// repository, read-only, for devices that download images).
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Run only while holding the leader Lease, so several replicas run with one active.
    #[arg(long)]
    pub leader_elect: bool,
    /// The leader Lease's name.
    #[arg(long, default_value = "upkeep-leader")]
    pub lease_name: String,
    /// The leader Lease's namespace (default: the client's namespace).
    #[arg(long, env = "UPKEEP_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The directory holding firmware images (and an optional catalog.yaml).
    #[arg(long, default_value = "/var/lib/upkeep/images")]
    pub image_repository: PathBuf,
    /// Where devices download images upkeep serves (Redfish ImageURI), e.g.
    /// http://upkeep.upkeep-system.svc:8080/images.
    #[arg(long)]
    pub image_base_url: Option<String>,
    /// Watch only this namespace (repeat for several); default: every namespace.
    #[arg(long = "namespace")]
    pub namespaces: Vec<String>,
    /// How often Device facts are read again.
    #[arg(long, default_value = "10m")]
    pub device_refresh: GoDuration,
    /// How many Devices are read at once (the rest wait their turn).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub device_concurrency: u16,
    /// The bound on one call to a device.
    #[arg(long, default_value = "30s")]
    pub device_timeout: GoDuration,
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    logging::init_as("info", args.log_format);
    logging::runtime()?.block_on(operate(args))
}

async fn operate(args: &Args) -> Result<ExitCode, Error> {
    let client = Client::try_default()
        .await
        .map_err(|e| Error::Usage(format!("cannot reach the Kubernetes API: {e}")))?;
    let metrics = Metrics::new();
    let health = Health::new(metrics.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| Error::Io {
            path: args.listen.to_string(),
            source,
        })?;
    let shutdown = CancellationToken::new();
    let repository: Arc<DirRepository> = Arc::new(DirRepository::new(&args.image_repository));
    let server = {
        // Devices that download images (Redfish ImageURI) fetch them from /images/{name}.
        let router = health.router().merge(server::router(repository.clone()));
        let stop = shutdown.clone();
        async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        }
    };
    let signals = {
        let stop = shutdown.clone();
        async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            stop.cancel();
        }
    };
    let work = work(
        args,
        client,
        repository,
        metrics,
        health.clone(),
        shutdown.clone(),
    );
    let (served, (), worked) = tokio::join!(server, signals, work);
    served.map_err(|source| Error::Io {
        path: args.listen.to_string(),
        source,
    })?;
    worked?;
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGTERM or Ctrl-C.
pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The operators (one per watched namespace, or one for all), run while this replica leads.
async fn work(
    args: &Args,
    client: Client,
    repository: Arc<DirRepository>,
    metrics: Arc<Metrics>,
    health: Health,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let scopes: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.iter().cloned().map(Some).collect()
    };
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "upkeep".into());
    let settings = Settings {
        device_refresh: args.device_refresh.get(),
        device_concurrency: args.device_concurrency,
        ..Settings::default()
    };
    let connections = Arc::new(ClusterConnections::new(
        client.clone(),
        args.image_base_url.clone(),
        args.device_timeout.get(),
    ));
    let run_all = |token: CancellationToken| {
        let runs = scopes.iter().map(|scope| {
            operator::run(
                Parts {
                    client: client.clone(),
                    clock: Clock::system(),
                    repository: repository.clone(),
                    connections: connections.clone(),
                    settings: settings.clone(),
                    instance: identity.clone(),
                    namespace: scope.clone(),
                    metrics: metrics.clone(),
                },
                token.clone(),
            )
        });
        futures::future::join_all(runs)
    };
    if !args.leader_elect {
        health.set_ready(true);
        run_all(shutdown).await;
        return Ok(());
    }
    let namespace = args
        .lease_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(namespace)
        .with_identity(identity.clone())
        .build()
        .await
        .map_err(|e| Error::Usage(format!("leader election cannot start: {e}")))?;
    let (mut leading, lease_task) = manager.watch().await;
    health.set_ready(true);
    loop {
        if *leading.borrow_and_update() {
            tracing::info!(%identity, "leading: starting the controllers");
            let term = shutdown.child_token();
            let lost = {
                let term = term.clone();
                let mut leading = leading.clone();
                async move {
                    let _ = leading.wait_for(|l| !*l).await;
                    tracing::warn!("leadership lost: stopping the controllers");
                    term.cancel();
                }
            };
            tokio::select! {
                _ = run_all(term.clone()) => {}
                () = lost => {}
            }
            term.cancel();
        }
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { break },
            () = shutdown.cancelled() => break,
        }
    }
    drop(leading);
    let _ = lease_task.await;
    Ok(())
}
