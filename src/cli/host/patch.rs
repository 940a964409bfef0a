//! `upkeep host patch [--root DIR] [--classification Security|All] [--package GLOB…]
//! [--exclude GLOB…] [--dry-run] [-o json]`: a Patch operation's host steps in the foreground,
//! through the agent's own driver, engine and package-manager backend, with the task kept in
//! memory instead of an UpgradeTask. Each code is printed as the task passes it. It never
//! reboots: a due reboot ends it at `2034 Pending Reboot` (no controller grants one). Exit 0 on
//! `2036`, `2059` or `2034` (and on a dry run that selected its updates), 1 otherwise.
//!
//! `--dry-run` stops before the first step that changes the host (a pre action, the download)
//! and prints the exact versions the job would install.

use std::process::ExitCode;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::json;

use crate::agent::driver::{DriveError, Driven, Driver, Saved, TaskStore};
use crate::agent::machine::{Machine, RebootMethod};
use crate::agent::state_dir::StateDir;
use crate::api::codes::PatchCode;
use crate::api::patch_job::PatchJobSpec;
use crate::cli::{Error, logging};
use crate::clock::Clock;
use crate::engine::patch::state::HostTask;
use crate::engine::updates::Pin;

/// Which updates a Patch selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Classification {
    /// Security updates only.
    #[value(name = "Security")]
    Security,
    /// Every available update.
    #[value(name = "All")]
    All,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A line per code as it passes.
    Text,
    /// One document at the end: the final code, the history and the selected updates.
    Json,
}

/// Arguments of `upkeep host patch`.
#[derive(Debug, clap::Args)]
pub struct PatchArgs {
    /// Work on this root file system instead of the running system.
    #[arg(long, value_name = "DIR")]
    pub root: Option<std::path::PathBuf>,
    /// `Security` (default) or `All`.
    #[arg(long, value_enum, default_value_t = Classification::Security)]
    pub classification: Classification,
    /// Only these packages (globs); repeat for several.
    #[arg(long = "package", value_name = "GLOB")]
    pub packages: Vec<String>,
    /// Never these packages (globs); repeat for several.
    #[arg(long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Select the updates and print them; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// The task in memory, printing each code as it is written.
struct Printing {
    task: HostTask,
    printed: usize,
    text: bool,
}

impl TaskStore for Printing {
    fn load(&mut self) -> BoxFuture<'_, Result<Option<HostTask>, DriveError>> {
        let task = self.task.clone();
        Box::pin(async move { Ok(Some(task)) })
    }

    fn save<'a>(&'a mut self, task: &'a HostTask) -> BoxFuture<'a, Result<Saved, DriveError>> {
        Box::pin(async move {
            if self.text {
                for (code, _) in task.history.iter().skip(self.printed) {
                    let message = if *code == task.code {
                        task.message.as_str()
                    } else {
                        ""
                    };
                    println!(
                        "{} {code}{}{message}",
                        code.number(),
                        if message.is_empty() { "" } else { ": " }
                    );
                }
            }
            self.printed = task.history.len();
            self.task = task.clone();
            Ok(Saved::Done)
        })
    }
}

/// What `-o json` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    code: String,
    status_code: u16,
    message: String,
    reason: Option<String>,
    dry_run: bool,
    selected: Option<Vec<Pin>>,
    history: Vec<serde_json::Value>,
}

/// Runs `upkeep host patch`.
pub fn run(args: &PatchArgs) -> Result<ExitCode, Error> {
    logging::init("warn");
    logging::runtime()?.block_on(patch(args))
}

async fn patch(args: &PatchArgs) -> Result<ExitCode, Error> {
    let clock = Clock::system();
    let machine = match Machine::real(
        args.root.as_deref(),
        // Never used: a due reboot ends the command.
        RebootMethod::Systemctl,
        Arc::new(move || clock.now()),
    ) {
        Ok(machine) => machine,
        Err(e) => {
            eprintln!("upkeep host patch: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let classification = match args.classification {
        Classification::Security => "Security",
        Classification::All => "All",
    };
    let spec: PatchJobSpec = serde_json::from_value(json!({
        "hosts": {"names": ["localhost"]},
        "patch": {"classification": classification, "packages": args.packages, "exclude": args.exclude},
    }))
    .map_err(|e| Error::Usage(e.to_string()))?;
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        path: "(temporary state directory)".into(),
        source,
    })?;
    let state = StateDir::open(dir.path()).map_err(|e| Error::Usage(e.to_string()))?;
    let mut driver = Driver::new(machine, state.clone(), clock);
    driver.dry_run = args.dry_run;
    let now = clock.now();
    let mut task = HostTask::new(now, 0);
    task.started_at = Some(now);
    let mut store = Printing {
        task,
        printed: 0,
        text: args.output == Format::Text,
    };
    let key = "local/host-patch";
    let driven = loop {
        match driver.drive(key, &spec, &mut store).await {
            Ok(Driven::WakeAt(at)) => tokio::time::sleep(clock.until(at)).await,
            Ok(other) => break other,
            Err(e) => {
                eprintln!("upkeep host patch: {e}");
                return Ok(ExitCode::from(1));
            }
        }
    };
    let task = &store.task;
    let selected = state.journal(key).ok().and_then(|j| j.pins);
    let ok = matches!(
        task.code,
        PatchCode::Completed | PatchCode::NoPatchAvailable | PatchCode::PendingReboot
    ) || (driven == Driven::Halted && !task.is_terminal());
    match args.output {
        Format::Json => {
            let report = Report {
                code: task.code.name().to_string(),
                status_code: task.code.number(),
                message: task.message.clone(),
                reason: task.reason.map(|r| r.as_str().to_string()),
                dry_run: args.dry_run,
                selected,
                history: task
                    .history
                    .iter()
                    .map(|(c, at)| json!({"code": c.name(), "statusCode": c.number(), "at": at}))
                    .collect(),
            };
            let text =
                serde_json::to_string_pretty(&report).map_err(|e| Error::Render(e.to_string()))?;
            println!("{text}");
        }
        Format::Text if args.dry_run => match &selected {
            Some(pins) if pins.is_empty() => println!("nothing to install"),
            Some(pins) => {
                println!("would install:");
                for pin in pins {
                    println!("  {}={}", pin.name, pin.version);
                }
            }
            None => {}
        },
        Format::Text => {}
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
