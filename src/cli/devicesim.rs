//! `upkeep devicesim --fleet FLEET.yaml [--listen ADDR] [--tls-self-signed]`: serve every device
//! of a fleet file over the upkeep device API, in real time, until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use super::Error;
use super::logging;
use crate::drivers::credentials::Credentials;
use crate::sim::devicesim::{self, Options, tls};
use crate::sim::fleet_file::Fleet;

/// Arguments of `upkeep devicesim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fleet file whose devices to serve.
    #[arg(long, value_name = "FLEET.yaml")]
    pub fleet: PathBuf,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Serve HTTPS with a certificate signed by a CA generated at startup.
    #[arg(long)]
    pub tls_self_signed: bool,
    /// Write the generated CA certificate (PEM) here, for clients to trust; by default it goes
    /// to a file in the temporary directory, whose path is printed.
    #[arg(long, value_name = "FILE", requires = "tls_self_signed")]
    pub ca_out: Option<PathBuf>,
    /// Another DNS name or IP address for the generated certificate (besides localhost,
    /// 127.0.0.1, ::1 and the listening address); repeatable.
    #[arg(long = "tls-name", value_name = "NAME", requires = "tls_self_signed")]
    pub tls_names: Vec<String>,
    /// Require HTTP basic authentication with the credentials in FILE (one line
    /// `username:password`).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
}

/// Serves the fleet until Ctrl-C.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    logging::init("info");
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let fleet = Fleet::from_yaml(&read(&args.fleet)?)
        .map_err(|e| Error::Usage(format!("{}: {e}", args.fleet.display())))?;
    let credentials = match &args.credentials {
        Some(path) => Some(
            Credentials::from_line(&read(path)?)
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let mut ca_file = None;
    let tls = if args.tls_self_signed {
        let ca = tls::generate("upkeep devicesim CA", &certificate_names(args))
            .map_err(|e| Error::Usage(e.to_string()))?;
        let path = args.ca_out.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("upkeep-devicesim-ca-{}.pem", std::process::id()))
        });
        std::fs::write(&path, &ca.ca_pem).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        ca_file = Some(path);
        Some(ca.server)
    } else {
        None
    };
    let listener = std::net::TcpListener::bind(args.listen).map_err(|source| Error::Io {
        path: format!("listening on {}", args.listen),
        source,
    })?;
    let runtime = logging::runtime()?;
    let authenticated = credentials.is_some();
    runtime.block_on(async move {
        let running = devicesim::start(
            &fleet,
            listener,
            Options { credentials, tls },
        )
        .map_err(|e| Error::Usage(e.to_string()))?;
        let devices = running.device_urls();
        println!(
            "upkeep devicesim: {} devices from {} on {}",
            devices.len(),
            args.fleet.display(),
            running.base_url()
        );
        let width = devices
            .iter()
            .map(|((ns, name), _)| ns.len() + name.len() + 1)
            .max()
            .unwrap_or(0);
        for ((namespace, name), urls) in &devices {
            let key = format!("{namespace}/{name}");
            let (canonical, others) = urls.split_first().map_or(("", &[][..]), |(c, o)| (c.as_str(), o));
            let also = others
                .iter()
                .map(|url| format!(" (also {url})"))
                .collect::<String>();
            println!("  {key:<width$}  {canonical}{also}");
        }
        if let Some(path) = &ca_file {
            println!(
                "TLS: a CA generated for this run signed the server certificate; trust it with --ca {}",
                path.display()
            );
        }
        if authenticated {
            println!(
                "every call needs HTTP basic authentication with the credentials of {}",
                args.credentials
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        println!("Ctrl-C stops.");
        tokio::select! {
            served = running.wait() => served.map_err(|source| Error::Io {
                path: format!("serving on {}", args.listen),
                source,
            })?,
            _ = tokio::signal::ctrl_c() => println!("stopped"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The names the generated certificate is valid for.
fn certificate_names(args: &Args) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let ip = args.listen.ip();
    if !ip.is_unspecified() && ip != IpAddr::from([127, 0, 0, 1]) && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    for name in &args.tls_names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}
