//! `upkeep host facts [--root DIR] [--product ID=DIR…] [-o text|json]`: what the agent would
//! report about this machine (or a root file system), with no cluster. The scan refreshes the
//! package manager's metadata first, as the agent does, so it needs the rights the package
//! manager needs (root). Products are read from the locations given, as the agent reads those of
//! its Host's spec.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::agent::backends::Update;
use crate::agent::facts::{self, HostFacts};
use crate::agent::installers::ProductTarget;
use crate::agent::products;
use crate::api::host::{OsStatus, ProductStatus, RebootRequired};
use crate::cli::{Error, logging};

/// Output formats of `upkeep host facts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned lines for a terminal.
    Text,
    /// `{"os", "rebootRequired", "rebootRequiredBy", "updates", "products"}`.
    Json,
}

/// Arguments of `upkeep host facts`.
#[derive(Debug, clap::Args)]
pub struct FactsArgs {
    /// Work on this root file system (its etc/os-release, package sources and package database)
    /// instead of the running system's.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// An installed product and its location, `ID=DIR`; repeat for several.
    #[arg(long = "product", value_name = "ID=DIR", value_parser = super::packages::parse_product)]
    pub products: Vec<ProductTarget>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// What `-o json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    os: &'a OsStatus,
    reboot_required: RebootRequired,
    reboot_required_by: &'a [String],
    updates: &'a [Update],
    products: &'a [ProductStatus],
}

/// Runs `upkeep host facts`.
pub fn run(args: &FactsArgs) -> Result<ExitCode, Error> {
    logging::init("warn");
    let gathered = logging::runtime()?.block_on(facts::gather(args.root.as_deref()));
    let facts = match gathered {
        Ok(facts) => facts,
        Err(e) => {
            eprintln!("upkeep host facts: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut products = Vec::new();
    for target in &args.products {
        match products::read_product(&target.id, &target.location) {
            Ok(product) => products.push(product),
            Err(e) => {
                eprintln!("upkeep host facts: {e}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    match args.output {
        Format::Json => {
            let report = Report {
                os: &facts.os,
                reboot_required: facts.reboot.required,
                reboot_required_by: &facts.reboot.by,
                updates: &facts.updates,
                products: &products,
            };
            let json =
                serde_json::to_string_pretty(&report).map_err(|e| Error::Render(e.to_string()))?;
            println!("{json}");
        }
        Format::Text => print!("{}", text(&facts, &products)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The facts as aligned lines.
fn text(facts: &HostFacts, products: &[ProductStatus]) -> String {
    let os = &facts.os;
    let mut out = String::new();
    let manager = os.package_manager.map_or(
        "none (upkeep drives no package manager on this OS)".to_string(),
        |k| format!("{k:?}").to_lowercase(),
    );
    let _ = writeln!(
        out,
        "OS              {} ({} {})",
        os.pretty_name, os.id, os.version_id
    );
    let _ = writeln!(out, "Kernel          {} {}", os.kernel, os.arch);
    let _ = writeln!(out, "Package manager {manager}");
    let reboot = match facts.reboot.by.as_slice() {
        [] => format!("{:?}", facts.reboot.required),
        by => format!("{:?} (by {})", facts.reboot.required, by.join(", ")),
    };
    let _ = writeln!(out, "Reboot required {reboot}");
    let status = facts.updates_status();
    let _ = writeln!(
        out,
        "Updates         {} ({} security)",
        status.available, status.security
    );
    let width = facts
        .updates
        .iter()
        .map(|u| u.name.len())
        .max()
        .unwrap_or(0);
    for u in &facts.updates {
        let _ = writeln!(
            out,
            "  {:<width$}  {} -> {}{}",
            u.name,
            u.from.as_deref().unwrap_or("(new)"),
            u.to,
            if u.security { "  security" } else { "" }
        );
    }
    for p in products {
        let _ = writeln!(
            out,
            "Product         {} {} at {}",
            p.id, p.version, p.location
        );
        for pkg in &p.packages {
            let backup = if pkg.backup { "backup" } else { "no backup" };
            let _ = writeln!(out, "  {}  {:?}  {backup}", pkg.id, pkg.type_);
        }
    }
    out
}
