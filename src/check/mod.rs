//! Offline validation of manifests, as `upkeep check` runs it: per YAML document, the kind, the
//! CRD schema, the CEL rules, then the engine's static checks; across the documents of every
//! file given, the windows (see [`windows`]) and the PatchJobs' action commands, hosts and waves
//! (see [`hosts`]). Every problem names its field and says how to fix
//! it. A problem either is one the API server would reject (schema, CEL: nothing runs) or one the
//! cluster accepts and the engine would turn into a status code ([`Problem::accepted_by_api`]):
//! `upkeep check` fails on both, `upkeep simulate` only on the first. Warnings never fail.

pub mod windows;

mod hosts;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use kube::core::cel::Validator;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{self, API_VERSION, GROUP};
use crate::engine::lint::{self, Finding};
use crate::sim::fleet_file::Fleet;
pub use package::check_package;
pub use upkeep_core::schema::{self, KindSchema, Problem, short};

mod package;

/// What was found in one YAML document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentReport {
    /// 1-based position of the document in its file.
    pub index: usize,
    /// `Kind/name` when known, e.g. `FirmwareUpgrade/fw-1`.
    pub title: String,
    /// What happened to it.
    pub outcome: Outcome,
    /// What may be wrong but is not an error (e.g. a window no file defines).
    pub warnings: Vec<Problem>,
}

impl DocumentReport {
    /// Whether the API server would accept the document: valid, skipped, or invalid only in
    /// ways the engine reports as status codes.
    pub fn accepted_by_api(&self) -> bool {
        match &self.outcome {
            Outcome::Valid | Outcome::Skipped(_) => true,
            Outcome::Invalid(problems) => problems.iter().all(|p| p.accepted_by_api),
        }
    }

    /// Adds an error the API server accepts (an engine finding) to the outcome.
    fn add_finding(&mut self, problem: Problem) {
        match &mut self.outcome {
            Outcome::Invalid(problems) => problems.push(problem),
            Outcome::Valid => self.outcome = Outcome::Invalid(vec![problem]),
            Outcome::Skipped(_) => {}
        }
    }
}

/// The verdict on one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Valid.
    Valid,
    /// Not an upkeep resource (another API group): not checked.
    Skipped(String),
    /// Invalid, with every problem found.
    Invalid(Vec<Problem>),
}

/// What was found in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// The file's name as given.
    pub file: String,
    /// The file as a whole could not be read as YAML: the message gives line and column.
    pub syntax_error: Option<String>,
    /// One report per non-empty document.
    pub documents: Vec<DocumentReport>,
}

impl FileReport {
    /// Whether the file is free of errors.
    pub fn is_valid(&self) -> bool {
        self.syntax_error.is_none()
            && self
                .documents
                .iter()
                .all(|d| !matches!(d.outcome, Outcome::Invalid(_)))
    }

    /// Whether the API server would accept every document of the file.
    pub fn accepted_by_api(&self) -> bool {
        self.syntax_error.is_none() && self.documents.iter().all(DocumentReport::accepted_by_api)
    }

    /// The number of warnings in the file.
    pub fn warnings(&self) -> usize {
        self.documents.iter().map(|d| d.warnings.len()).sum()
    }

    /// The file's engine findings and warnings, as `simulate` prints them: one line per finding,
    /// each `warning: FILE: KIND/NAME (document N): FIELD: PROBLEM; fix: FIX`.
    pub fn warning_lines(&self) -> String {
        let mut out = String::new();
        for doc in &self.documents {
            let findings = match &doc.outcome {
                Outcome::Invalid(problems) => problems.as_slice(),
                Outcome::Valid | Outcome::Skipped(_) => &[],
            };
            for p in findings.iter().chain(&doc.warnings) {
                out.push_str("warning: ");
                out.push_str(&self.problem_line(doc, p));
            }
        }
        out
    }

    fn problem_line(&self, doc: &DocumentReport, p: &Problem) -> String {
        let mut line = format!(
            "{}: {} (document {}): {}: {}",
            self.file, doc.title, doc.index, p.field, p.message
        );
        if !p.fix.is_empty() {
            line.push_str("; fix: ");
            line.push_str(&p.fix);
        }
        line.push('\n');
        line
    }
}

impl fmt::Display for FileReport {
    /// One line per problem: `FILE: KIND/NAME: FIELD: PROBLEM; fix: FIX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error) = &self.syntax_error {
            writeln!(f, "{}: {error}", self.file)?;
        }
        for doc in &self.documents {
            match &doc.outcome {
                Outcome::Valid => {}
                Outcome::Skipped(why) => writeln!(
                    f,
                    "{}: {} (document {}): skipped: {why}",
                    self.file, doc.title, doc.index
                )?,
                Outcome::Invalid(problems) => {
                    for p in problems {
                        f.write_str(&self.problem_line(doc, p))?;
                    }
                }
            }
            for p in &doc.warnings {
                write!(f, "warning: {}", self.problem_line(doc, p))?;
            }
        }
        Ok(())
    }
}

/// The most YAML documents one file may hold: room for a rendered Helm release of a large
/// fleet (a Device per device), well above the YAML parser's default of 1,024.
pub const MAX_DOCUMENTS: usize = 10_000;

/// The documents of a YAML text (null ones included), read with a budget that holds
/// [`MAX_DOCUMENTS`] documents of ordinary size.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, serde_saphyr::Error> {
    let defaults = serde_saphyr::Budget::default();
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: MAX_DOCUMENTS,
            // The per-stream bounds grow with the number of documents.
            max_nodes: defaults.max_nodes * 10,
            max_events: defaults.max_events * 10,
        },
    };
    serde_saphyr::from_multiple_with_options(text, options)
}

/// The message of a file that cannot be read as YAML: where, and what.
fn syntax_error(e: &serde_saphyr::Error) -> String {
    if let serde_saphyr::Error::Budget {
        breach: serde_saphyr::budget::BudgetBreach::Documents { .. },
        ..
    } = e.without_snippet()
    {
        return format!(
            "holds more than {MAX_DOCUMENTS} YAML documents, the most one file may hold; split it into several files (e.g. one per kind, or `helm template --output-dir DIR` for a chart) and give them all, or their directory"
        );
    }
    let bare = e.without_snippet().to_string();
    let detail = bare.lines().next().unwrap_or_default();
    let detail = detail.trim_start_matches("error: ");
    let at = e
        .location()
        .map(|l| format!("line {}, column {}", l.line(), l.column()))
        .unwrap_or_else(|| "unknown position".into());
    format!("YAML syntax error at {at}: {detail}")
}

/// Checks every document of every file, then what needs them all together and the time `now`
/// (the windows' next openings and the references to them).
pub fn check_files(sources: &[(String, String)], now: jiff::Timestamp) -> Vec<FileReport> {
    let mut reports: Vec<FileReport> = sources
        .iter()
        .map(|(file, text)| check_text(file, text))
        .collect();
    let documents: Vec<Vec<Value>> = sources
        .iter()
        .zip(&reports)
        .map(|((_, text), report)| {
            if report.syntax_error.is_some() {
                Vec::new()
            } else {
                parse_documents(text)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|d| !d.is_null())
                    .collect()
            }
        })
        .collect();
    windows::check(&mut reports, &documents, now);
    hosts::check(&mut reports, &documents);
    reports
}

/// A document's namespace; `None` when it leaves it to the namespace it is applied to.
fn namespace_of(doc: &Value) -> Option<String> {
    doc.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Whether two documents' namespaces may be one: the same, or either left open.
fn namespaces_meet(a: &Option<String>, b: &Option<String>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// Checks every document of a YAML text. `file` names it in messages.
pub fn check_text(file: &str, text: &str) -> FileReport {
    let documents = match parse_documents(text) {
        Ok(docs) => docs,
        Err(e) => {
            return FileReport {
                file: file.to_string(),
                syntax_error: Some(syntax_error(&e)),
                documents: Vec::new(),
            };
        }
    };
    let documents = documents
        .iter()
        .enumerate()
        .filter(|(_, doc)| !doc.is_null())
        .map(|(i, doc)| check_document(i + 1, doc))
        .collect();
    FileReport {
        file: file.to_string(),
        syntax_error: None,
        documents,
    }
}

/// Checks one parsed document.
pub fn check_document(index: usize, doc: &Value) -> DocumentReport {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let title = if kind.is_empty() {
        format!("document {index}")
    } else {
        format!("{kind}/{name}")
    };
    let report = |outcome| DocumentReport {
        index,
        title: title.clone(),
        outcome,
        warnings: Vec::new(),
    };
    let problem = |field: &str, message: String, fix: &str| {
        Outcome::Invalid(vec![Problem::new(field.into(), message, fix.into())])
    };

    if !doc.is_object() {
        return report(problem(
            "(document)",
            format!("{} is not a mapping", short(doc)),
            "write a Kubernetes object with apiVersion, kind, metadata and spec",
        ));
    }
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version.is_empty() {
        return report(problem(
            "apiVersion",
            "apiVersion is missing".into(),
            &format!("add apiVersion: {API_VERSION}"),
        ));
    }
    let group = api_version
        .split_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default();
    if group != GROUP {
        return report(Outcome::Skipped(format!(
            "{api_version} is not an upkeep API"
        )));
    }
    if api_version != API_VERSION {
        return report(problem(
            "apiVersion",
            format!("{api_version:?} is not served"),
            &format!("use apiVersion: {API_VERSION}"),
        ));
    }
    let Some(checker) = kinds().get(kind) else {
        let known = kinds().keys().copied().collect::<Vec<_>>().join(", ");
        let message = if kind.is_empty() {
            "kind is missing".to_string()
        } else {
            format!("{kind:?} is not a kind of {API_VERSION}")
        };
        return report(problem("kind", message, &format!("use one of: {known}")));
    };
    let problems = checker(doc);
    if problems.is_empty() {
        report(Outcome::Valid)
    } else {
        report(Outcome::Invalid(problems))
    }
}

fn metadata_problems(doc: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let fix = "use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters";
    match doc.pointer("/metadata/name") {
        None => problems.push(Problem::new(
            "metadata.name".into(),
            "metadata.name is missing".into(),
            "give the object a name".into(),
        )),
        Some(Value::String(name)) if is_dns_subdomain(name) => {}
        Some(other) => problems.push(Problem::new(
            "metadata.name".into(),
            format!("{} is not a valid object name", short(other)),
            fix.into(),
        )),
    }
    if let Some(ns) = doc.pointer("/metadata/namespace") {
        let ok = ns
            .as_str()
            .is_some_and(|n| n.len() <= 63 && is_dns_subdomain(n) && !n.contains('.'));
        if !ok {
            problems.push(Problem::new(
                "metadata.namespace".into(),
                format!("{} is not a valid namespace name", short(ns)),
                "use lower-case letters, digits and '-', at most 63 characters".into(),
            ));
        }
    }
    problems
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

type Checker = Box<dyn Fn(&Value) -> Vec<Problem> + Send + Sync>;

/// The checker of every kind `check` knows, by kind name.
fn kinds() -> &'static BTreeMap<&'static str, Checker> {
    static KINDS: OnceLock<BTreeMap<&'static str, Checker>> = OnceLock::new();
    KINDS.get_or_init(|| {
        let mut map: BTreeMap<&'static str, Checker> = BTreeMap::new();
        map.insert(
            "MaintenanceWindow",
            crd_checker::<api::MaintenanceWindow>(lint::maintenance_window),
        );
        map.insert("Device", crd_checker::<api::Device>(lint::device));
        map.insert(
            "FirmwareUpgrade",
            crd_checker::<api::FirmwareUpgrade>(lint::firmware_upgrade),
        );
        map.insert(
            "DevicePatch",
            crd_checker::<api::DevicePatch>(lint::device_patch),
        );
        map.insert("PatchJob", crd_checker::<api::PatchJob>(lint::patch_job));
        map.insert("Host", crd_checker::<api::Host>(lint::host));
        map.insert(
            "UpgradeTask",
            crd_checker::<api::UpgradeTask>(lint::upgrade_task),
        );
        map.insert("Fleet", fleet_checker());
        map
    })
}

/// The simulator's fleet file: its schema (from the Rust types), then what only code can check
/// (sizes, unique names).
fn fleet_checker() -> Checker {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .into_generator();
    let schema =
        serde_json::to_value(generator.into_root_schema_for::<Fleet>()).unwrap_or_default();
    let schema = KindSchema::new(schema);
    Box::new(move |doc: &Value| {
        let structural = schema.problems(doc);
        if !structural.is_empty() {
            return structural;
        }
        let fix = "correct the value the message names";
        let fleet = serde_json::from_value::<Fleet>(doc.clone())
            .map_err(|e| Problem::new("(document)".into(), one_line(&e.to_string()), fix.into()));
        match fleet.and_then(|f| {
            f.validate()
                .map_err(|e| Problem::new(e.field, e.message, String::new()))
        }) {
            Ok(()) => Vec::new(),
            Err(problem) => vec![problem],
        }
    })
}

/// Schema first; when the structure is sound, the CEL rules and the engine's static checks (on
/// the typed object). A broken structure is reported alone, at its root, since the later stages
/// would only repeat it in vaguer words.
fn crd_checker<K>(lint: fn(&K) -> Vec<Finding>) -> Checker
where
    K: kube::CustomResourceExt + DeserializeOwned + 'static,
{
    let crd = K::crd();
    let openapi = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .unwrap_or_default();
    let schema = KindSchema::new(openapi);
    Box::new(move |doc: &Value| {
        let mut structural = metadata_problems(doc);
        structural.extend(schema.problems(doc));
        if !structural.is_empty() {
            return structural;
        }
        // Every rule's message says what to change, so it carries the fix itself.
        let mut problems: Vec<Problem> = match Validator::new().validate(&schema.openapi, doc, None)
        {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .iter()
                .map(|e| Problem::new(e.field_path.clone(), e.message.clone(), String::new()))
                .collect(),
        };
        match serde_json::from_value::<K>(doc.clone()) {
            Ok(object) => problems.extend(lint(&object).into_iter().map(Problem::from)),
            Err(e) => problems.push(Problem::new(
                "spec".into(),
                one_line(&e.to_string()),
                "correct the value the message names".into(),
            )),
        }
        problems
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
