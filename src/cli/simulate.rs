//! `upkeep simulate --fleet FLEET.yaml [--start TIME] [--horizon 7d] [-o json|text|html] MANIFEST…`:
//! the real controllers, the in-memory API and the simulated fleet on a virtual clock.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use serde_json::Value;

use super::Error;
use super::check::read_sources;
use crate::check::{check_files, parse_documents};
use crate::sim::fleet_file::Fleet;
use crate::sim::runner::{Options, Scenario, resource_of, simulate};

/// Output formats of `upkeep simulate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A timeline of every code change, then a summary.
    Text,
    /// One JSON document.
    Json,
    /// One self-contained HTML page: the rollout timeline, grouped by resource, with the
    /// windows shaded, and the summary per resource.
    Html,
}

/// Arguments of `upkeep simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fleet file: the image repository and the simulated devices.
    #[arg(long, value_name = "FLEET.yaml")]
    pub fleet: PathBuf,
    /// When the virtual clock starts (RFC 3339); default: now.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// How long the simulation may run at most, e.g. 7d, 36h, 90m.
    #[arg(long, default_value = "7d")]
    pub horizon: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Serve the in-memory API over HTTP at this address while the simulation runs (and after,
    /// until interrupted), so `kubectl --server http://ADDR get ut -w` can watch it.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<SocketAddr>,
    /// With --serve: virtual seconds per real second.
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Manifests to apply (files, directories, or - for standard input): FirmwareUpgrades,
    /// MaintenanceWindows, Secrets. Devices come from the fleet file.
    #[arg(required = true, value_name = "MANIFEST")]
    pub manifests: Vec<PathBuf>,
}

fn parse_horizon(text: &str) -> Result<SignedDuration, Error> {
    let span: Span = text.parse().map_err(|e| {
        Error::Usage(format!(
            "--horizon {text:?} is not a duration such as 7d, 36h or 90m: {e}"
        ))
    })?;
    span.to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| Error::Usage(format!("--horizon {text:?}: {e}")))
}

/// The documents of the manifests that the simulation applies, checked as `upkeep check` does
/// (with `start` as the time): what the API server would reject stops the simulation; the
/// engine's findings and the warnings are printed to standard error, and the documents run, so
/// their tasks end in the codes the cluster would give them.
fn manifests(paths: &[PathBuf], start: Timestamp) -> Result<Vec<Value>, Error> {
    let sources = read_sources(paths)?;
    let mut manifests = Vec::new();
    let mut rejected = false;
    for ((name, text), report) in sources.iter().zip(check_files(&sources, start)) {
        if !report.accepted_by_api() {
            eprint!("{report}");
            rejected = true;
            continue;
        }
        eprint!("{}", report.warning_lines());
        let documents = parse_documents(text).unwrap_or_default();
        for (doc, checked) in documents
            .into_iter()
            .filter(|d| !d.is_null())
            .zip(&report.documents)
        {
            if checked.accepted_by_api() && resource_of(&doc).is_some() {
                manifests.push(doc);
            } else if let Some(kind @ ("Device" | "Host")) = doc.get("kind").and_then(Value::as_str)
            {
                eprintln!(
                    "{name}: {}: left out; the fleet file provides the {}s",
                    checked.title,
                    kind.to_lowercase()
                );
            }
        }
    }
    if rejected {
        return Err(Error::Usage(
            "fix the manifests above first: the API server would reject them (upkeep check shows the same)".into(),
        ));
    }
    Ok(manifests)
}

/// Runs the simulation and prints its report.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    let fleet_text = std::fs::read_to_string(&args.fleet).map_err(|source| Error::Io {
        path: args.fleet.display().to_string(),
        source,
    })?;
    let fleet = Fleet::from_yaml(&fleet_text)
        .map_err(|e| Error::Usage(format!("{}: {e}", args.fleet.display())))?;
    let start = match &args.start {
        Some(text) => text
            .parse::<Timestamp>()
            .map_err(|e| Error::Usage(format!("--start {text:?} is not an RFC 3339 time: {e}")))?,
        None => {
            Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH)
        }
    };
    let horizon = parse_horizon(&args.horizon)?;

    let manifests = manifests(&args.manifests, start)?;
    let scenario = Scenario {
        fleet,
        manifests,
        start,
        horizon,
    };
    let options = Options {
        serve: args.serve,
        speed: args.speed,
    };
    let report = simulate(scenario, options)
        .map_err(|e| Error::Usage(format!("the simulation failed: {e}")))?;
    match args.output {
        Format::Json => {
            let json =
                serde_json::to_string_pretty(&report).map_err(|e| Error::Render(e.to_string()))?;
            println!("{json}");
        }
        Format::Text => print!("{}", report.text()),
        Format::Html => print!("{}", report.html()),
    }
    Ok(ExitCode::SUCCESS)
}
