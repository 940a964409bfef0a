//! `upkeep report version|history [--host NAME… | --product-dir DIR] [--product ID]
//! [--package ID] [-o text|html|json]`: the products and their maintenance packages (version),
//! or the install and uninstall events (history), from Host objects in a cluster (the
//! kubeconfig's) or, offline, from a product location on disk.
//!
//! JSON is the contract's shape, every key always present (`null` where there is no value):
//! version `{"products": [{"host", "id", "name", "version", "location", "packages": [{"id",
//! "type", "installedAt", "fixes", "backup"}]}]}`, history `{"events": [{"host", "product",
//! "eventType", "id", "action", "updateType", "primaryContent", "logName", "backupName",
//! "startTime", "endTime", "result"}]}`. HTML is one self-contained page (no scripts, no
//! network) with a print style sheet.

use std::path::PathBuf;
use std::process::ExitCode;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use serde::Serialize;

use super::Error;
use crate::agent::products;
use crate::api::Host;
use crate::api::host::{EventType, HistoryAction, HistoryEvent, ProductStatus, UpdateType};
use crate::api::patch_job::PackageType;

/// Which report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportKind {
    /// Installed products and their maintenance packages.
    Version,
    /// Install and uninstall events.
    History,
}

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Plain text.
    #[default]
    Text,
    /// One self-contained HTML page.
    Html,
    /// JSON.
    Json,
}

/// Arguments of `upkeep report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `version` or `history`.
    pub kind: ReportKind,
    /// Hosts to report on (Host objects); none means every Host in the namespace.
    #[arg(long = "host", value_name = "NAME", conflicts_with = "product_dir")]
    pub hosts: Vec<String>,
    /// Report on the product installed in this directory instead, without a cluster.
    #[arg(long, value_name = "DIR")]
    pub product_dir: Option<PathBuf>,
    /// Only this product.
    #[arg(long, value_name = "ID")]
    pub product: Option<String>,
    /// History: only the events of this package.
    #[arg(long, value_name = "ID")]
    pub package: Option<String>,
    /// The namespace of the Hosts (default: the kubeconfig's).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// One product on one host, as the version report shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionProduct {
    /// The host's name (offline: this machine's host name).
    pub host: Option<String>,
    /// The product id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its location.
    pub location: String,
    /// Its installed packages, oldest first.
    pub packages: Vec<VersionPackage>,
}

/// One installed package in the version report.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionPackage {
    /// The package id.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub type_: PackageType,
    /// When it was installed.
    pub installed_at: Option<Time>,
    /// The defects it fixes.
    pub fixes: Vec<String>,
    /// Whether its backup is present.
    pub backup: bool,
}

/// The version report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VersionReport {
    /// Every product on every host reported.
    pub products: Vec<VersionProduct>,
}

/// One event in the history report.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportEvent {
    /// The host's name.
    pub host: Option<String>,
    /// The product id.
    pub product: Option<String>,
    /// `ptf` or `component`.
    pub event_type: EventType,
    /// The package or component id.
    pub id: String,
    /// `install` or `uninstall`.
    pub action: HistoryAction,
    /// `add`, `replace`, `remove` or `patch`.
    pub update_type: Option<UpdateType>,
    /// The package file.
    pub primary_content: Option<String>,
    /// The update log.
    pub log_name: Option<String>,
    /// The backup.
    pub backup_name: Option<String>,
    /// When it began.
    pub start_time: Option<Time>,
    /// When it ended.
    pub end_time: Option<Time>,
    /// `success`, `partialSuccess`, `failure` or `cancelled`.
    pub result: String,
}

/// The history report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HistoryReport {
    /// The events, per host oldest first.
    pub events: Vec<ReportEvent>,
}

/// What a report is made from: each host's name and its products and history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Source {
    /// The host.
    pub host: Option<String>,
    /// Its products.
    pub products: Vec<ProductStatus>,
    /// Its events, oldest first (a package's event, then its components').
    pub history: Vec<HistoryEvent>,
}

impl Source {
    /// The source of a Host object (its status).
    pub fn from_host(host: &Host) -> Self {
        let status = host.status.clone().unwrap_or_default();
        Self {
            host: host.metadata.name.clone(),
            products: status.products,
            history: status.history,
        }
    }

    /// The source of a product location on disk; `id` defaults to the product file's.
    pub fn from_dir(dir: &std::path::Path, id: Option<&str>) -> Result<Self, Error> {
        let usage = |e: products::ProductError| Error::Usage(e.to_string());
        let dir = &std::path::absolute(dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        let id = match id {
            Some(id) => id.to_string(),
            None => products::read_product_file(dir).map_err(usage)?.id,
        };
        let product = products::read_product(&id, dir).map_err(usage)?;
        let history = products::read_history(dir)
            .map_err(usage)?
            .into_iter()
            .flat_map(|e| e.events)
            .map(|mut e| {
                if e.product.is_empty() {
                    e.product = id.clone();
                }
                e
            })
            .collect();
        Ok(Self {
            host: host_name(),
            products: vec![product],
            history,
        })
    }
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The version report of `sources`, optionally of one product.
pub fn version_report(sources: &[Source], product: Option<&str>) -> VersionReport {
    let products = sources
        .iter()
        .flat_map(|s| {
            s.products
                .iter()
                .filter(move |p| product.is_none_or(|id| p.id == id))
                .map(move |p| VersionProduct {
                    host: s.host.clone(),
                    id: p.id.clone(),
                    name: p.name.clone(),
                    version: p.version.clone(),
                    location: p.location.clone(),
                    packages: p
                        .packages
                        .iter()
                        .map(|i| VersionPackage {
                            id: i.id.clone(),
                            type_: i.type_,
                            installed_at: i.installed_at.clone(),
                            fixes: i.fixes.clone(),
                            backup: i.backup,
                        })
                        .collect(),
                })
        })
        .collect();
    VersionReport { products }
}

fn some(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// The history report of `sources`, optionally of one product and one package (a package's
/// own events and its components').
pub fn history_report(
    sources: &[Source],
    product: Option<&str>,
    package: Option<&str>,
) -> HistoryReport {
    let mut events = Vec::new();
    for source in sources {
        let mut parent = String::new();
        for e in &source.history {
            if e.event_type == EventType::Ptf {
                parent = e.id.clone();
            }
            if product.is_some_and(|p| p != e.product) || package.is_some_and(|p| p != parent) {
                continue;
            }
            events.push(ReportEvent {
                host: source.host.clone(),
                product: some(&e.product),
                event_type: e.event_type,
                id: e.id.clone(),
                action: e.action,
                update_type: e.update_type,
                primary_content: some(&e.primary_content),
                log_name: some(&e.log_name),
                backup_name: some(&e.backup_name),
                start_time: e.start_time.clone(),
                end_time: e.end_time.clone(),
                result: e.result.clone(),
            });
        }
    }
    HistoryReport { events }
}

/// The Hosts of `namespace` (all of them, or the named ones), through `client`.
pub async fn hosts_from_cluster(
    client: kube::Client,
    namespace: Option<&str>,
    names: &[String],
) -> Result<Vec<Host>, Error> {
    let api: Api<Host> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::default_namespaced(client),
    };
    let failed = |e: kube::Error| Error::Usage(format!("reading Hosts: {e}"));
    if names.is_empty() {
        let mut hosts = api.list(&Default::default()).await.map_err(failed)?.items;
        hosts.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        return Ok(hosts);
    }
    let mut hosts = Vec::new();
    for name in names {
        hosts.push(api.get(name).await.map_err(|e| match e {
            kube::Error::Api(s) if s.code == 404 => Error::Usage(format!(
                "--host {name}: there is no Host {name:?} in the namespace"
            )),
            other => failed(other),
        })?);
    }
    Ok(hosts)
}

fn time(t: &Option<Time>) -> String {
    t.as_ref()
        .map(|t| t.0.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

fn type_name(t: PackageType) -> &'static str {
    match t {
        PackageType::InterimFix => "InterimFix",
        PackageType::FixPack => "FixPack",
        PackageType::RefreshPack => "RefreshPack",
    }
}

fn action_name(a: HistoryAction) -> &'static str {
    match a {
        HistoryAction::Install => "install",
        HistoryAction::Uninstall => "uninstall",
    }
}

fn update_name(u: Option<UpdateType>) -> &'static str {
    match u {
        Some(UpdateType::Add) => "add",
        Some(UpdateType::Replace) => "replace",
        Some(UpdateType::Remove) => "remove",
        Some(UpdateType::Patch) => "patch",
        None => "-",
    }
}

/// The version report as text.
pub fn version_text(report: &VersionReport) -> String {
    let mut out = String::new();
    for p in &report.products {
        let host = p.host.as_deref().unwrap_or("-");
        out.push_str(&format!(
            "{host}: {} {} {} at {}\n",
            p.id,
            if p.name.is_empty() { "-" } else { &p.name },
            p.version,
            p.location
        ));
        if p.packages.is_empty() {
            out.push_str("  no maintenance packages\n");
        }
        for i in &p.packages {
            let fixes = if i.fixes.is_empty() {
                "-".to_string()
            } else {
                i.fixes.join(", ")
            };
            out.push_str(&format!(
                "  {}  {}  installed {}  backup {}  fixes {fixes}\n",
                i.id,
                type_name(i.type_),
                time(&i.installed_at),
                if i.backup { "yes" } else { "MISSING" }
            ));
        }
    }
    if report.products.is_empty() {
        out.push_str("no products\n");
    }
    out
}

/// The history report as text.
pub fn history_text(report: &HistoryReport) -> String {
    let mut out = String::new();
    for e in &report.events {
        let indent = if e.event_type == EventType::Component {
            "    "
        } else {
            ""
        };
        out.push_str(&format!(
            "{indent}{} {} {}: {} {} {} ({}) {} .. {}: {}\n",
            e.host.as_deref().unwrap_or("-"),
            e.product.as_deref().unwrap_or("-"),
            if e.event_type == EventType::Ptf {
                "package"
            } else {
                "component"
            },
            e.id,
            action_name(e.action),
            update_name(e.update_type),
            e.primary_content.as_deref().unwrap_or("-"),
            time(&e.start_time),
            time(&e.end_time),
            e.result
        ));
        if e.event_type == EventType::Ptf {
            out.push_str(&format!(
                "    log {}  backup {}\n",
                e.log_name.as_deref().unwrap_or("-"),
                e.backup_name.as_deref().unwrap_or("-")
            ));
        }
    }
    if report.events.is_empty() {
        out.push_str("no events\n");
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#111}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}\
table{border-collapse:collapse;width:100%;margin:.5em 0}\
th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;font-size:.9em;vertical-align:top}\
td.path,tr.component td.path{font-family:ui-monospace,monospace;font-size:.75em;overflow-wrap:anywhere}td.id{font-weight:600}\
th{background:#eee}tr.component td{color:#444;font-size:.85em}tr.component td:first-child{padding-left:1.5em}\
.failure,.missing{color:#a00;font-weight:bold}.success{color:#060}.partialSuccess,.cancelled{color:#a60}\
@media print{body{margin:0;font-size:10pt}th{background:#ddd !important;-webkit-print-color-adjust:exact;print-color-adjust:exact}\
tr{page-break-inside:avoid}h2{page-break-after:avoid}a{color:inherit;text-decoration:none}}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head>\n<body><h1>{t}</h1>\n{body}</body></html>\n",
        t = escape(title)
    )
}

/// The version report as one HTML page.
pub fn version_html(report: &VersionReport) -> String {
    let mut body = String::new();
    for p in &report.products {
        body.push_str(&format!(
            "<h2>{} — {} {} {}</h2>\n<p>Location: <code>{}</code></p>\n",
            escape(p.host.as_deref().unwrap_or("-")),
            escape(&p.id),
            escape(&p.name),
            escape(&p.version),
            escape(&p.location)
        ));
        body.push_str("<table><thead><tr><th>Package</th><th>Type</th><th>Installed</th><th>Fixes</th><th>Backup</th></tr></thead><tbody>\n");
        for i in &p.packages {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>\n",
                escape(&i.id),
                type_name(i.type_),
                time(&i.installed_at),
                escape(&i.fixes.join(", ")),
                if i.backup { "present" } else { "missing" },
                if i.backup { "present" } else { "missing" }
            ));
        }
        if p.packages.is_empty() {
            body.push_str("<tr><td colspan=\"5\">No maintenance packages</td></tr>\n");
        }
        body.push_str("</tbody></table>\n");
    }
    if report.products.is_empty() {
        body.push_str("<p>No products.</p>\n");
    }
    page("Product version report", &body)
}

/// The history report as one HTML page.
pub fn history_html(report: &HistoryReport) -> String {
    let mut body = String::from(
        "<table><thead><tr><th>Event</th><th>Host</th><th>Product</th><th>Action</th><th>Update type</th><th>Package file</th><th>Log</th><th>Backup</th><th>Start</th><th>End</th><th>Result</th></tr></thead><tbody>\n",
    );
    for e in &report.events {
        let class = if e.event_type == EventType::Component {
            "component"
        } else {
            "ptf"
        };
        let cell = |v: &Option<String>| escape(v.as_deref().unwrap_or("-"));
        body.push_str(&format!(
            "<tr class=\"{class}\"><td class=\"id\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"path\">{}</td><td class=\"path\">{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>\n",
            escape(&e.id),
            cell(&e.host),
            cell(&e.product),
            action_name(e.action),
            update_name(e.update_type),
            cell(&e.primary_content),
            cell(&e.log_name),
            cell(&e.backup_name),
            time(&e.start_time),
            time(&e.end_time),
            escape(&e.result),
            escape(&e.result)
        ));
    }
    if report.events.is_empty() {
        body.push_str("<tr><td colspan=\"11\">No events</td></tr>\n");
    }
    body.push_str("</tbody></table>\n");
    page("Product history report", &body)
}

/// The report of `sources` in `format`.
pub fn render(args: &Args, sources: &[Source]) -> Result<String, Error> {
    let product = args.product.as_deref();
    Ok(match args.kind {
        ReportKind::Version => {
            let report = version_report(sources, product);
            match args.output {
                Format::Text => version_text(&report),
                Format::Html => version_html(&report),
                Format::Json => json(&report)?,
            }
        }
        ReportKind::History => {
            let report = history_report(sources, product, args.package.as_deref());
            match args.output {
                Format::Text => history_text(&report),
                Format::Html => history_html(&report),
                Format::Json => json(&report)?,
            }
        }
    })
}

fn json<T: Serialize>(report: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(report)
        .map(|s| s + "\n")
        .map_err(|e| Error::Render(e.to_string()))
}

/// Runs `upkeep report`.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    let sources = match &args.product_dir {
        Some(dir) => vec![Source::from_dir(dir, args.product.as_deref())?],
        None => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Usage(format!("cannot start a runtime: {e}")))?;
            runtime.block_on(async {
                let client = kube::Client::try_default().await.map_err(|e| {
                    Error::Usage(format!(
                        "no cluster to read Hosts from ({e}); give --product-dir DIR to report on a product location offline"
                    ))
                })?;
                let hosts = hosts_from_cluster(client, args.namespace.as_deref(), &args.hosts).await?;
                Ok::<_, Error>(hosts.iter().map(Source::from_host).collect::<Vec<_>>())
            })?
        }
    };
    print!("{}", render(args, &sources)?);
    Ok(ExitCode::SUCCESS)
}
