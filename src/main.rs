//! The `upkeep` binary: parses the command line and hands it to `upkeep::cli`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = upkeep::cli::Cli::parse();
    match upkeep::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            let error = anyhow::Error::from(error);
            eprintln!("upkeep: {error:#}");
            ExitCode::from(2)
        }
    }
}
