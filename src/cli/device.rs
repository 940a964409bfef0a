//! `upkeep device facts|upgrade DEVICE.yaml …`: talk to one device from the command line, with
//! the same drivers and the same engine as the operator, without a cluster.

mod facts;
mod target;
mod upgrade;

use std::path::PathBuf;
use std::process::ExitCode;

use super::Error;
use crate::api::common::GoDuration;

pub use facts::Args as FactsArgs;
pub use upgrade::Args as UpgradeArgs;

/// Arguments of `upkeep device`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do with the device.
    #[command(subcommand)]
    pub command: DeviceCommand,
}

/// The subcommands of `upkeep device`.
#[derive(Debug, clap::Subcommand)]
pub enum DeviceCommand {
    /// Read the device's facts (model, firmware, free space, features, domains, patches).
    Facts(FactsArgs),
    /// Upgrade the device's firmware in the foreground, printing each status code as it passes;
    /// exit 0 on SUCCESS, 1 otherwise.
    Upgrade(UpgradeArgs),
}

/// How to reach the device (both subcommands).
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// A file holding one Device manifest (other documents in it are ignored).
    #[arg(value_name = "DEVICE.yaml")]
    pub device: PathBuf,
    /// A file with one line `username:password`; without it, UPKEEP_USERNAME and
    /// UPKEEP_PASSWORD are used when set.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// A PEM bundle of the CAs that sign the device's certificate (in place of the Device's
    /// tls.caBundleSecretRef, which cannot be read without a cluster).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The bound on each call to the device.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: GoDuration,
}

/// Runs `upkeep device …`.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    match &args.command {
        DeviceCommand::Facts(args) => facts::run(args),
        DeviceCommand::Upgrade(args) => upgrade::run(args),
    }
}
