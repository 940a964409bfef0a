//! `upkeep host install|uninstall --product ID=DIR PACKAGE…`: maintenance packages through the
//! builtin installer in the foreground, in the order and with the rules a PatchJob uses
//! (`engine::packages::plan`). Prints each package's result (and, when it did not succeed, its
//! reason and message), then the host task's code. Exit 0 only when every result is `success`;
//! 1 otherwise; 2 on usage errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use jiff::Timestamp;

use crate::agent::installers::{
    BuiltinInstaller, Faults, InstallOutcome, Installer, ProductTarget,
};
use crate::agent::products;
use crate::api::codes::PackageResult;
use crate::api::host::ProductStatus;
use crate::cli::Error;
use crate::engine::packages::archive::Limits;
use crate::engine::packages::plan::{self, Next, PackageInfo, PackageRun, Reason, Removal, Step};
use crate::pak::Package;

/// Arguments of `upkeep host install` and `upkeep host uninstall`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// A product and its location, `ID=DIR` (e.g. `was=/opt/IBM/WebSphere/AppServer`); repeat
    /// for several products.
    #[arg(long = "product", value_name = "ID=DIR", required = true, value_parser = parse_product)]
    pub products: Vec<ProductTarget>,
    /// Package files (.pak); uninstall also takes package ids.
    #[arg(required = true, value_name = "PACKAGE")]
    pub packages: Vec<String>,
    /// The time the installer records instead of the clock's (tests).
    #[arg(long, hide = true)]
    pub at: Option<Timestamp>,
    /// Kill the installer at this step (tests of crash safety).
    #[arg(long, hide = true)]
    pub kill_at: Option<u64>,
    /// Fail the installer at this step (tests of the roll back).
    #[arg(long, hide = true)]
    pub fail_at: Option<u64>,
}

/// Parses `--product ID=DIR`.
pub fn parse_product(text: &str) -> Result<ProductTarget, String> {
    let (id, dir) = text
        .split_once('=')
        .filter(|(id, dir)| !id.is_empty() && !dir.is_empty())
        .ok_or_else(|| format!("{text:?} is not ID=DIR, e.g. was=/opt/IBM/WebSphere/AppServer"))?;
    let location = std::path::absolute(dir).map_err(|e| format!("{dir}: {e}"))?;
    Ok(ProductTarget {
        id: id.to_string(),
        location,
    })
}

fn installer(args: &InstallArgs) -> BuiltinInstaller {
    let installer = match args.at {
        Some(at) => BuiltinInstaller::new(Arc::new(move || at)),
        None => BuiltinInstaller::default(),
    };
    installer.with_faults(Faults::new(args.kill_at, args.fail_at))
}

/// Finishes interrupted operations (their outcomes go into `recovered`), then reads every
/// product.
fn prepare(
    installer: &dyn Installer,
    args: &InstallArgs,
    recovered: &mut Vec<InstallOutcome>,
) -> Result<Vec<ProductStatus>, Error> {
    let mut found = Vec::new();
    for target in &args.products {
        match installer.recover(target) {
            Ok(Some(outcome)) => {
                println!("recovered an interrupted operation on {}:", target.id);
                print_run(&outcome.run);
                recovered.push(outcome);
            }
            Ok(None) => {}
            Err(e) => return Err(Error::Usage(format!("{}: {e}", target.location.display()))),
        }
        let product = products::read_product(&target.id, &target.location)
            .map_err(|e| Error::Usage(e.to_string()))?;
        found.push(product);
    }
    Ok(found)
}

fn print_run(run: &PackageRun) {
    match (run.result, run.reason) {
        (Some(PackageResult::Success), _) => println!("{}: success ({})", run.id, run.message),
        (Some(result), Some(reason)) => {
            println!("{}: {result}: {reason}: {}", run.id, run.message)
        }
        (Some(result), None) => println!("{}: {result}: {}", run.id, run.message),
        (None, reason) => println!(
            "{}: not applicable: {}: {}",
            run.id,
            reason.unwrap_or(Reason::NotApplicable),
            run.message
        ),
    }
}

/// Runs the steps in order through `work`, printing each run, then the host task's code. A
/// step that no longer applies because recovery finished it takes the recovered outcome.
fn drive(
    steps: &[Step],
    recovered: &[InstallOutcome],
    mut work: impl FnMut(&Step) -> InstallOutcome,
) -> ExitCode {
    let mut runs: Vec<PackageRun> = Vec::new();
    let outcome = loop {
        match plan::next(steps, &runs) {
            Next::Run(step) => {
                let mut run = work(step).run;
                if run.result == Some(PackageResult::Success)
                    && let (Some(before), Some(after)) = (&step.version_before, &step.version_after)
                    && before != after
                {
                    run.message = format!("{}; {} {before} -> {after}", run.message, step.product);
                }
                print_run(&run);
                runs.push(run);
            }
            Next::Record(run) => {
                let finished = recovered.iter().find(|o| {
                    run.result.is_none()
                        && o.run.id == run.id
                        && o.run.result == Some(PackageResult::Success)
                        && o.events
                            .first()
                            .is_some_and(|e| e.action == steps[runs.len()].action)
                });
                let run = finished.map_or(run, |o| o.run.clone());
                print_run(&run);
                runs.push(run);
            }
            Next::Done(outcome) => break outcome,
        }
    };
    let reason = outcome
        .reason
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    println!(
        "host task: {} {}{reason}: {}",
        outcome.code.number(),
        outcome.code.name(),
        outcome.message
    );
    let all_success = runs
        .iter()
        .all(|r| r.result == Some(PackageResult::Success));
    if all_success && !runs.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn target_of<'a>(args: &'a InstallArgs, product: &str) -> Option<&'a ProductTarget> {
    args.products.iter().find(|p| p.id == product)
}

/// Runs `upkeep host install`.
pub fn install(args: &InstallArgs) -> Result<ExitCode, Error> {
    let installer = installer(args);
    let mut recovered = Vec::new();
    let products = prepare(&installer, args, &mut recovered)?;
    let mut infos = Vec::new();
    let mut invalid = Vec::new();
    for file in &args.packages {
        match Package::open(
            Path::new(file),
            &Limits {
                max_expanded: u64::MAX,
            },
        ) {
            Ok(p) => infos.push((PackageInfo::from(p.manifest()), PathBuf::from(file))),
            Err(e) => invalid.push(PackageRun::ended(
                file,
                PackageResult::Failure,
                Reason::InvalidPackage,
                e.to_string(),
            )),
        }
    }
    if !invalid.is_empty() {
        // Nothing is installed when any package is invalid: the job is refused as a whole.
        for run in &invalid {
            print_run(run);
        }
        println!("nothing was installed: fix or leave out the invalid packages");
        return Ok(ExitCode::from(1));
    }
    let (packages, files): (Vec<PackageInfo>, Vec<PathBuf>) = infos.into_iter().unzip();
    let steps = plan::plan_install(&products, &packages, args.at.unwrap_or_else(Timestamp::now));
    Ok(drive(&steps, &recovered, |step| {
        match target_of(args, &step.product) {
            Some(target) => installer.install(target, &files[step.index], Some(&step.id)),
            None => unreachable_product(step),
        }
    }))
}

/// A step's product is always one of `--product` (others are skipped as not applicable).
fn unreachable_product(step: &Step) -> InstallOutcome {
    InstallOutcome {
        run: PackageRun::ended(
            &step.id,
            PackageResult::Failure,
            Reason::NotApplicable,
            format!("product {:?} was not given with --product", step.product),
        ),
        events: Vec::new(),
        log: None,
    }
}

/// Runs `upkeep host uninstall`.
pub fn uninstall(args: &InstallArgs) -> Result<ExitCode, Error> {
    let installer = installer(args);
    let mut recovered = Vec::new();
    let products = prepare(&installer, args, &mut recovered)?;
    let mut removals = Vec::new();
    for given in &args.packages {
        let path = Path::new(given);
        let (id, product) = if given.ends_with(".pak") || path.is_file() {
            let package = Package::open(
                path,
                &Limits {
                    max_expanded: u64::MAX,
                },
            )
            .map_err(|e| Error::Usage(e.to_string()))?;
            let m = package.manifest();
            (m.id.clone(), m.product.clone())
        } else {
            // An id: the product that has it installed, else the first one given.
            let product = products
                .iter()
                .find(|p| p.packages.iter().any(|i| i.id == *given))
                .map_or_else(|| args.products[0].id.clone(), |p| p.id.clone());
            (given.clone(), product)
        };
        removals.push(Removal { id, product });
    }
    let steps = plan::plan_uninstall(&products, &removals);
    Ok(drive(&steps, &recovered, |step| {
        match target_of(args, &step.product) {
            Some(target) => installer.uninstall(target, &step.id),
            None => unreachable_product(step),
        }
    }))
}
