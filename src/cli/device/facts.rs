//! `upkeep device facts DEVICE.yaml [-o json]`: what the device reports about itself, with a
//! warning when a patch on it does not take effect (the rule the firmware engine's validation
//! step 13 applies: `engine::devicepatch::not_in_effect`).

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;

use super::{Connection, target};
use crate::api::codes::FirmwareCode;
use crate::api::device::DeviceFacts;
use crate::cli::{Error, logging};
use crate::drivers::{Caller, Phase};
use crate::engine::devicepatch::not_in_effect;
use crate::engine::firmware::observe::FaultKind;

/// Output formats of `upkeep device facts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned lines for a terminal.
    Text,
    /// `{"reachable": bool, "facts": {…}, "warnings": [...]}`, the facts in the Device status
    /// shape.
    Json,
}

/// Arguments of `upkeep device facts`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How to reach the device.
    #[command(flatten)]
    pub connection: Connection,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// What `-o json` prints.
#[derive(Debug, Serialize)]
struct Report {
    /// Whether the device answered (an error answer counts).
    reachable: bool,
    /// The facts, when they could be read.
    facts: Option<DeviceFacts>,
    /// Why they could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// What the facts show is wrong: patches that do not take effect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// Reads and prints the facts; exit 0 when they were read, 1 when not.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    logging::init("warn");
    let device = target::device(&args.connection)?;
    let target = target::open(&args.connection, &device, None)?;
    let caller = Caller {
        task: None,
        phase: Phase::Inventory,
    };
    let result = logging::runtime()?.block_on(target.driver.inventory(caller));
    let report = match &result {
        Ok(inventory) => Report {
            reachable: true,
            facts: Some(inventory.to_device_facts()),
            error: None,
            warnings: not_in_effect(&inventory.facts.patches)
                .map(|refusal| {
                    format!(
                        "{}; until then a firmware upgrade of this device ends {}",
                        refusal.message(),
                        FirmwareCode::ErrorDevicePatchNotRunning
                    )
                })
                .into_iter()
                .collect(),
        },
        Err(e) => Report {
            reachable: e.kind != FaultKind::Unreachable,
            facts: None,
            error: Some(e.to_string()),
            warnings: Vec::new(),
        },
    };
    match args.output {
        Format::Json => {
            let json =
                serde_json::to_string_pretty(&report).map_err(|e| Error::Render(e.to_string()))?;
            println!("{json}");
        }
        Format::Text => print!("{}", text(&target.id, &target.address, &report)),
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn text(id: &str, address: &str, report: &Report) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<12} {value}");
    };
    line("device", format!("{id} ({address})"));
    line("reachable", yes_no(report.reachable).into());
    if let Some(error) = &report.error {
        line("error", error.clone());
    }
    let Some(facts) = &report.facts else {
        return out;
    };
    let virtual_ = if facts.r#virtual == Some(true) {
        " (virtual)"
    } else {
        ""
    };
    line(
        "model",
        format!("{}{virtual_}", facts.model.as_deref().unwrap_or("?")),
    );
    line(
        "firmware",
        facts.firmware.clone().unwrap_or_else(|| "?".into()),
    );
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    line("features", list(facts.features.clone()));
    let space = facts.free_space.as_ref().map(|f| {
        let show = |q: &Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
            q.as_ref().map_or("?".to_string(), |q| q.0.clone())
        };
        let board = f
            .board
            .as_ref()
            .map(|b| format!(", board {}", b.0))
            .unwrap_or_default();
        format!(
            "encrypted {}, temporary {}{board}",
            show(&f.encrypted),
            show(&f.temporary)
        )
    });
    line("free space", space.unwrap_or_else(|| "unknown".into()));
    line(
        "unsaved",
        facts.unsaved_changes.map_or("?", yes_no).to_string(),
    );
    line(
        "domains",
        list(
            facts
                .domains
                .iter()
                .map(|d| {
                    let state = if d.quiesced { "quiesced" } else { "active" };
                    format!("{} ({state})", d.name)
                })
                .collect(),
        ),
    );
    line(
        "patches",
        list(
            facts
                .patches
                .iter()
                .map(|p| format!("{} ({})", p.id, p.state))
                .collect(),
        ),
    );
    for warning in &report.warnings {
        line("warning", warning.clone());
    }
    out
}
