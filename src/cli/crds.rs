//! `upkeep crds`: the CRD YAML generated from the Rust types.

use std::path::PathBuf;
use std::process::ExitCode;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::Error;
use crate::api;

/// Arguments of `upkeep crds`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one file per CRD into this directory (created if missing) instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints every CRD as one multi-document YAML stream, or writes one file per CRD.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    let render = |crd: &CustomResourceDefinition| {
        api::crd_yaml(crd).map_err(|e| Error::Render(e.to_string()))
    };
    match &args.dir {
        None => {
            for crd in api::crds() {
                print!("{}", render(&crd)?);
            }
        }
        Some(dir) => {
            let io = |path: &std::path::Path| {
                let path = path.display().to_string();
                move |source| Error::Io { path, source }
            };
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            for crd in api::crds() {
                let path = dir.join(api::crd_file_name(&crd));
                std::fs::write(&path, render(&crd)?).map_err(io(&path))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
