//! `upkeep package build DIR -o FILE.pak` (a maintenance package from a directory with
//! `package.yaml` and `files/`, refused when the installer would refuse it) and
//! `upkeep package schema` (the JSON Schema of `package.yaml`).

use std::path::PathBuf;
use std::process::ExitCode;

use super::Error;
use crate::engine::packages::manifest::PackageManifest;
use crate::pak::build::build;

/// Maintenance package commands.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: PackageCommand,
}

/// The package subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PackageCommand {
    /// Build a .pak from a directory holding package.yaml and files/.
    Build {
        /// The directory.
        dir: PathBuf,
        /// The package file to write.
        #[arg(short, long, value_name = "FILE.pak")]
        output: PathBuf,
    },
    /// Print the JSON Schema of package.yaml.
    Schema,
}

/// Runs a package subcommand.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    match &args.command {
        PackageCommand::Build { dir, output } => match build(dir, output) {
            Ok(built) => {
                println!(
                    "built {} ({}): {} files, {} bytes",
                    output.display(),
                    built.id,
                    built.files,
                    built.bytes
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("upkeep package build: {e}");
                Ok(ExitCode::from(1))
            }
        },
        PackageCommand::Schema => {
            let text = serde_json::to_string_pretty(&PackageManifest::json_schema())
                .map_err(|e| Error::Render(e.to_string()))?;
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
