//! `upkeep agent [--host NAME] [--namespace NS] [--root DIR] [--state-dir DIR]`: the host agent
//! (a DaemonSet pod on a node, or a systemd service elsewhere) until SIGTERM or Ctrl-C. It works
//! from the in-cluster configuration, `KUBECONFIG`, or `--kubeconfig`.
//!
//! The Host's name defaults to the Node's (`--node-name`, or the `NODE_NAME` the DaemonSet sets
//! from `spec.nodeName`), else to the machine's host name; the namespace to the client's.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio_util::sync::CancellationToken;

use super::Error;
use super::logging::{self, LogFormat};
use crate::agent::machine::{Machine, RebootMethod};
use crate::agent::package_fetch::PackageRepository;
use crate::agent::run::{AgentConfig, run as run_agent};
use crate::clock::Clock;

/// Arguments of `upkeep agent`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Host's name (default: the node name, else this machine's host name).
    #[arg(long, env = "UPKEEP_HOST")]
    pub host: Option<String>,
    /// The Kubernetes Node this machine is, written into the Host the agent creates; absent for
    /// a machine outside the cluster.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// The Host's namespace (default: the client's namespace, the operator's in a cluster).
    #[arg(long, env = "UPKEEP_NAMESPACE")]
    pub namespace: Option<String>,
    /// Work on this root file system (its package database, sources, products) instead of the
    /// running system's.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Where the agent keeps the journals of tasks under way (must survive a reboot).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/upkeep")]
    pub state_dir: PathBuf,
    /// The package repository a PatchJob's relative maintenance package `source` is in: a
    /// directory, or an http(s) base URL (a download needs the package's sha256 in the job).
    /// Install jobs fetch each package from there into the state directory.
    #[arg(long, value_name = "DIR|URL", env = "UPKEEP_PACKAGE_REPOSITORY")]
    pub package_repository: Option<PackageRepository>,
    /// A kubeconfig file (default: in-cluster, or `KUBECONFIG`).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// How the host is rebooted: logind over D-Bus, `systemctl reboot`, or `systemctl reboot`
    /// in the host's namespaces (`nsenter`, for a pod with hostPID).
    #[arg(long, value_enum, env = "UPKEEP_REBOOT_METHOD", default_value_t = RebootMethod::Logind)]
    pub reboot_method: RebootMethod,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Runs the agent until SIGTERM or Ctrl-C.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    logging::init_as("info", args.log_format);
    logging::runtime()?.block_on(agent(args))
}

async fn client(args: &Args) -> Result<Client, Error> {
    let unreachable = |e: String| Error::Usage(format!("cannot reach the Kubernetes API: {e}"));
    match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| Error::Usage(format!("--kubeconfig {}: {e}", path.display())))?;
            let config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| Error::Usage(format!("--kubeconfig {}: {e}", path.display())))?;
            Client::try_from(config).map_err(|e| unreachable(e.to_string()))
        }
        None => Client::try_default()
            .await
            .map_err(|e| unreachable(e.to_string())),
    }
}

fn host_name(args: &Args) -> Result<String, Error> {
    if let Some(name) = args.host.clone().or_else(|| args.node_name.clone()) {
        return Ok(name);
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            Error::Usage("the host name cannot be read: name the Host with --host".into())
        })
}

async fn agent(args: &Args) -> Result<ExitCode, Error> {
    let client = client(args).await?;
    let host = host_name(args)?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let clock = Clock::system();
    let machine = Machine::real(
        args.root.as_deref(),
        args.reboot_method,
        Arc::new(move || clock.now()),
    )
    .map_err(|e| Error::Usage(e.to_string()))?;
    let mut config = AgentConfig::new(host, namespace, &args.state_dir);
    config.node_name = args.node_name.clone();
    config.package_repository = args.package_repository.clone();
    tracing::info!(host = %config.host, namespace = %config.namespace, state_dir = %args.state_dir.display(), "the agent starts");
    let stop = CancellationToken::new();
    let agent = run_agent(client, config, machine, clock, stop.clone());
    tokio::pin!(agent);
    let ran = tokio::select! {
        ran = &mut agent => ran,
        () = super::run::wait_for_signal() => {
            stop.cancel();
            agent.await
        }
    };
    ran.map_err(|e| Error::Usage(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
