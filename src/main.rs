//! The `upkeep` binary: parses the command line and hands it to `upkeep::cli`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the controllers and the in-memory API allocate
/// many small, short-lived objects, and the fleet benchmark runs in about 60% of the time with it.
/// It is built without transparent huge pages (see Cargo.toml), which would raise resident memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
