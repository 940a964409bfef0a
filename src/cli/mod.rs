//! The command line: one module per subcommand; `main` only parses and dispatches.

pub mod agent;
pub mod check;
pub mod codes;
pub mod crds;
pub mod device;
pub mod devicesim;
pub mod host;
pub mod logging;
pub mod package;
pub mod report;
pub mod run;
pub mod simulate;
pub mod windows;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// upkeep: firmware upgrades, OS patch jobs and maintenance packages as Kubernetes resources.
#[derive(Debug, Parser)]
#[command(name = "upkeep", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CRD YAML of every kind, or write one file per CRD into a directory.
    Crds(crds::Args),
    /// Validate manifests offline: schema, CEL rules and the engine's static checks.
    Check(check::Args),
    /// List every status code: kind, name, numeric code, terminal, result and meaning.
    Codes(codes::Args),
    /// Run the operator (in a cluster, or from a kubeconfig).
    Run(run::Args),
    /// Run the controllers on a simulated fleet and an in-memory API, on a virtual clock.
    Simulate(simulate::Args),
    /// List the next openings of the MaintenanceWindows in manifest files, ordered by start.
    Windows(windows::Args),
    /// Read a device's facts or upgrade its firmware from the command line, without a cluster.
    Device(device::Args),
    /// Serve the devices of a fleet file over the upkeep device API (HTTP or HTTPS), in real
    /// time, until Ctrl-C.
    Devicesim(devicesim::Args),
    /// What the host agent does, in the foreground on this machine, without a cluster: its
    /// facts, and maintenance packages installed or uninstalled.
    Host(host::Args),
    /// The host agent: registers this machine's Host, renews its Lease and runs its PatchJob
    /// tasks (a DaemonSet on nodes, a systemd service elsewhere).
    Agent(agent::Args),
    /// Build maintenance packages (.pak) and print the schema of package.yaml.
    Package(package::Args),
    /// Version and history reports of products and their maintenance packages.
    Report(report::Args),
}

/// A failure that stops a command (exit status 2): bad usage or I/O.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Serializing output failed.
    #[error("could not render output: {0}")]
    Render(String),
    /// The arguments cannot be acted on.
    #[error("{0}")]
    Usage(String),
}

/// Runs a parsed command line and returns the process exit status.
pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Crds(args) => crds::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Codes(args) => codes::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Windows(args) => windows::run(&args),
        Command::Device(args) => device::run(&args),
        Command::Devicesim(args) => devicesim::run(&args),
        Command::Host(args) => host::run(&args),
        Command::Agent(args) => agent::run(&args),
        Command::Package(args) => package::run(&args),
        Command::Report(args) => report::run(&args),
    }
}
