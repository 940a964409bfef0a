//! Log output of the long-running subcommands: tracing to standard error, filtered by `RUST_LOG`
//! (e.g. `RUST_LOG=upkeep=debug`), or at the subcommand's default level, as text or JSON.

use tracing_subscriber::EnvFilter;

/// Log output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Sends tracing output to standard error as text, at `RUST_LOG` or else at `default` (e.g.
/// `info`).
pub fn init(default: &str) {
    init_as(default, LogFormat::Text);
}

/// Sends tracing output to standard error in `format`, at `RUST_LOG` or else at `default`.
pub fn init_as(default: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// A tokio runtime for a subcommand. Worker threads get 8 MiB stacks: reconciles poll deep
/// futures (the kube client, the controllers' pipelines), which need more than the default 2 MiB
/// in unoptimized builds.
pub fn runtime() -> Result<tokio::runtime::Runtime, super::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(8 << 20)
        .enable_all()
        .build()
        .map_err(|source| super::Error::Io {
            path: "(tokio runtime)".into(),
            source,
        })
}
