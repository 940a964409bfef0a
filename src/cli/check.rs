//! `upkeep check FILE…`: validate manifests offline. Exit 0 when every document is valid (warnings
//! do not count), 1 when any is invalid, 2 on usage or I/O errors.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Error;
use crate::check::{FileReport, Outcome, check_files, check_package};

/// Arguments of `upkeep check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories (searched recursively for .yaml and .yml files), and
    /// maintenance packages (.pak); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Checks every document of every file and prints one line per problem.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    let (packages, manifests): (Vec<PathBuf>, Vec<PathBuf>) = args
        .files
        .iter()
        .cloned()
        .partition(|f| f.extension().is_some_and(|e| e == "pak"));
    let mut reports: Vec<FileReport> = packages.iter().map(|p| check_package(p)).collect();
    if !manifests.is_empty() {
        let sources = read_sources(&manifests)?;
        reports.extend(check_files(&sources, jiff::Timestamp::now()));
    }
    let (mut documents, mut invalid, mut skipped, mut warnings) = (0, 0, 0, 0);
    let mut all_valid = true;
    for report in reports {
        print!("{report}");
        all_valid &= report.is_valid();
        warnings += report.warnings();
        invalid += usize::from(report.syntax_error.is_some());
        for doc in &report.documents {
            documents += 1;
            match doc.outcome {
                Outcome::Valid => {}
                Outcome::Skipped(_) => skipped += 1,
                Outcome::Invalid(_) => invalid += 1,
            }
        }
    }
    let verdict = if all_valid { "all valid" } else { "invalid" };
    let warnings = match warnings {
        0 => String::new(),
        1 => ", 1 warning".to_string(),
        n => format!(", {n} warnings"),
    };
    println!(
        "checked {documents} documents: {invalid} invalid, {skipped} skipped{warnings}: {verdict}"
    );
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reads every named file, standard input (`-`) and every YAML file under the named directories
/// (recursively, in name order), as `(name, text)` pairs. No file at all is a usage error.
pub(crate) fn read_sources(paths: &[PathBuf]) -> Result<Vec<(String, String)>, Error> {
    let mut sources = Vec::new();
    for path in paths {
        collect(path, &mut sources)?;
    }
    if sources.is_empty() {
        return Err(Error::Usage(
            "no .yaml or .yml files found in the given directories".into(),
        ));
    }
    Ok(sources)
}

/// Reads a file, standard input (`-`) or every YAML file under a directory, in name order.
fn collect(path: &Path, out: &mut Vec<(String, String)>) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(io)?;
        out.push(("<stdin>".into(), text));
        return Ok(());
    }
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort();
        for entry in entries {
            let yaml = entry.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if entry.is_dir() || yaml {
                collect(&entry, out)?;
            }
        }
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })?;
    out.push((path.display().to_string(), text));
    Ok(())
}
