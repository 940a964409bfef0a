//! Log output of the long-running subcommands: tracing to standard error, filtered by `RUST_LOG`
//! (e.g. `RUST_LOG=upkeep=debug`), or at the subcommand's default level.

use tracing_subscriber::EnvFilter;

/// Sends tracing output to standard error, at `RUST_LOG` or else at `default` (e.g. `info`).
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A tokio runtime for a subcommand.
pub fn runtime() -> Result<tokio::runtime::Runtime, super::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| super::Error::Io {
            path: "(tokio runtime)".into(),
            source,
        })
}
