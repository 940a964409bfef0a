//! `upkeep host …`: what the host agent does, in the foreground on this machine (or on a root
//! file system given with `--root`), with no cluster: its facts, a Patch operation, and maintenance packages
//! installed or uninstalled with the builtin installer.

pub mod facts;
pub mod packages;
pub mod patch;

use std::process::ExitCode;

use super::Error;

/// Arguments of `upkeep host`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do on this host.
    #[command(subcommand)]
    pub command: HostCommand,
}

/// The subcommands of `upkeep host`.
#[derive(Debug, clap::Subcommand)]
pub enum HostCommand {
    /// Print what the agent would report: OS, package manager, updates (security or not),
    /// whether a reboot is required, the products given. Refreshes the package manager's
    /// metadata.
    Facts(facts::FactsArgs),
    /// Run a Patch operation's host steps in the foreground (scan, select, download, install,
    /// the reboot signal), printing each code; never reboots.
    Patch(patch::PatchArgs),
    /// Install maintenance packages (.pak) into a product location with the builtin installer.
    Install(packages::InstallArgs),
    /// Uninstall maintenance packages (by id, or by package file) from a product location.
    Uninstall(packages::InstallArgs),
}

/// Runs `upkeep host …`.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    match &args.command {
        HostCommand::Facts(a) => facts::run(a),
        HostCommand::Patch(a) => patch::run(a),
        HostCommand::Install(a) => packages::install(a),
        HostCommand::Uninstall(a) => packages::uninstall(a),
    }
}
