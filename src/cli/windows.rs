//! `upkeep windows FILE…`: the next openings of the MaintenanceWindows in manifest files, merged
//! and ordered by start. Exit 0 when every window is valid, 1 when any is invalid (then nothing is
//! listed), 2 on usage or I/O errors.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::Error;
use super::check::read_sources;
use crate::api::MaintenanceWindow;
use crate::api::maintenance_window::WindowType;
use crate::check::{DocumentReport, FileReport, Outcome, Problem, check_document, check_text};
use crate::schedule::ScheduleError;
use crate::schedule::window::Window;

/// How many occurrences are listed per window when `--count` is not given.
pub const DEFAULT_COUNT: u32 = 5;

/// Output formats of `upkeep windows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal: NAME, TYPE, START, END.
    Table,
    /// One JSON array: `[{"name", "type", "start", "end"}]`.
    Json,
}

/// Arguments of `upkeep windows`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories (searched recursively for .yaml and .yml files); `-` reads
    /// standard input. Documents of other kinds are ignored.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// List from this instant (RFC 3339, e.g. 2026-12-01T00:00:00Z) instead of the current time.
    /// An occurrence open at this instant is listed first.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<Timestamp>,
    /// How many occurrences to list per window, counting the one open at --from (if any).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_COUNT,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|e| {
        format!("{text:?} is not an RFC 3339 time with an offset, e.g. 2026-12-01T00:00:00Z ({e})")
    })
}

/// One opening of one window, as printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Opening {
    /// The window's name.
    pub name: String,
    /// `Maintenance` or `Blackout`.
    #[serde(rename = "type")]
    pub kind: WindowType,
    /// When the occurrence opens (RFC 3339, UTC, seconds).
    pub start: String,
    /// When it closes.
    pub end: String,
}

/// Lists the openings, or the invalid windows.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    let from = args.from.unwrap_or_else(Timestamp::now);
    let sources = read_sources(&args.files)?;
    let mut windows = Vec::new();
    let mut invalid = Vec::new();
    for (file, text) in &sources {
        let report = load(file, text, &mut windows);
        if !report.is_valid() {
            invalid.push(report);
        }
    }
    if !invalid.is_empty() {
        let count: usize = invalid
            .iter()
            .map(|r| r.documents.len() + usize::from(r.syntax_error.is_some()))
            .sum();
        for report in &invalid {
            eprint!("{report}");
        }
        eprintln!("{count} invalid: no openings listed");
        return Ok(ExitCode::from(1));
    }
    if windows.is_empty() {
        eprintln!("no MaintenanceWindow documents in the given files");
    }
    let openings = openings(&windows, from, args.count as usize);
    let text = match args.output {
        Format::Table if openings.is_empty() => String::new(),
        Format::Table => table(&openings),
        Format::Json => {
            serde_json::to_string_pretty(&openings).map_err(|e| Error::Render(e.to_string()))?
                + "\n"
        }
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Reads the MaintenanceWindows of one file into `windows`. The report lists only what is wrong
/// with them (or with the file as YAML); other kinds are not looked at.
pub fn load(file: &str, text: &str, windows: &mut Vec<Window>) -> FileReport {
    let Ok(documents) = crate::check::parse_documents(text) else {
        // `check` words syntax errors with line and column.
        return check_text(file, text);
    };
    let mut report = FileReport {
        file: file.to_string(),
        syntax_error: None,
        documents: Vec::new(),
    };
    for (i, doc) in documents.iter().enumerate() {
        if doc.get("kind").and_then(Value::as_str) != Some("MaintenanceWindow") {
            continue;
        }
        let checked = check_document(i + 1, doc);
        match checked.outcome {
            Outcome::Skipped(_) => {}
            Outcome::Invalid(_) => report.documents.push(checked),
            Outcome::Valid => match window(doc) {
                Ok(window) => windows.push(window),
                Err(problem) => report.documents.push(DocumentReport {
                    outcome: Outcome::Invalid(vec![problem]),
                    ..checked
                }),
            },
        }
    }
    report
}

/// The window of a document that passed `check`.
fn window(doc: &Value) -> Result<Window, Problem> {
    let object: MaintenanceWindow = serde_json::from_value(doc.clone())
        .map_err(|e| Problem::new("spec".into(), e.to_string(), String::new()))?;
    let name = object.metadata.name.as_deref().unwrap_or_default();
    Window::from_spec(name, &object.spec).map_err(|e| {
        let field = match e {
            ScheduleError::Cron { .. } => "spec.schedule",
            ScheduleError::TimeZone { .. } => "spec.timeZone",
            ScheduleError::Shape(_) => "spec",
        };
        Problem::new(field.into(), e.to_string(), String::new())
    })
}

/// The first `count` occurrences of every window from `from` (the one open at `from` first),
/// merged and ordered by start, then name.
pub fn openings(windows: &[Window], from: Timestamp, count: usize) -> Vec<Opening> {
    let mut found: Vec<(Timestamp, &Window, Timestamp)> = windows
        .iter()
        .flat_map(|w| {
            w.occurrences_from(from)
                .take(count)
                .map(move |o| (o.start, w, o.end))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    found
        .into_iter()
        .map(|(start, w, end)| Opening {
            name: w.name.clone(),
            kind: w.kind,
            start: utc(start),
            end: utc(end),
        })
        .collect()
}

/// RFC 3339 in UTC with `Z`, to the second.
fn utc(t: Timestamp) -> String {
    format!("{t:.0}")
}

/// The openings as aligned columns.
pub fn table(openings: &[Opening]) -> String {
    let width = openings
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!("{:<width$} {:<11} {:<20} END\n", "NAME", "TYPE", "START");
    for o in openings {
        let kind = format!("{:?}", o.kind);
        let _ = writeln!(
            out,
            "{:<width$} {kind:<11} {:<20} {}",
            o.name, o.start, o.end
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../examples/maintenance-windows.yaml");

    #[test]
    fn other_kinds_are_ignored_and_windows_are_read() {
        let text =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{EXAMPLE}");
        let mut windows = Vec::new();
        let report = load("x.yaml", &text, &mut windows);
        assert!(report.is_valid(), "{report}");
        let names: Vec<&str> = windows.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["saturday-night", "christmas-freeze"]);
    }

    #[test]
    fn an_invalid_window_names_file_window_and_field() {
        let text = "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: {name: w}\n\
                    spec: {type: Maintenance, schedule: '0 22 * * SAT', timeZone: Mars/Olympus, duration: 1h}\n";
        let mut windows = Vec::new();
        let report = load("bad.yaml", text, &mut windows);
        let shown = report.to_string();
        assert!(!report.is_valid());
        assert!(
            shown.starts_with("bad.yaml: MaintenanceWindow/w (document 1): spec.timeZone: "),
            "{shown}"
        );
        assert!(windows.is_empty());
    }

    #[test]
    fn ties_are_ordered_by_name_and_times_are_utc_seconds() {
        let text = "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: {name: b}\n\
                    spec: {start: '2026-01-01T01:00:00.75+01:00', end: '2026-01-02T00:00:00Z'}\n---\n\
                    apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: {name: a}\n\
                    spec: {type: Blackout, start: '2026-01-01T00:00:00.75Z', end: '2026-01-01T06:00:00Z'}\n";
        let mut windows = Vec::new();
        assert!(load("t.yaml", text, &mut windows).is_valid());
        let from = "2025-12-31T00:00:00Z".parse().unwrap();
        let listed = openings(&windows, from, 5);
        let rows: Vec<(&str, &str, &str)> = listed
            .iter()
            .map(|o| (o.name.as_str(), o.start.as_str(), o.end.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("a", "2026-01-01T00:00:00Z", "2026-01-01T06:00:00Z"),
                ("b", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
            ]
        );
        assert_eq!(listed[0].kind, WindowType::Blackout);
    }
}
