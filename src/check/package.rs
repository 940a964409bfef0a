//! `upkeep check PKG.pak`: a maintenance package judged offline by every rule the installer
//! applies before it touches a product: the archive's entries (names, kinds, sizes, the zip
//! bomb ratio), `package.yaml` against its JSON Schema (generated from the Rust types), the
//! manifest's own rules, and the entries against the components. Only the free space of a
//! product location is left to the installer.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;
use zip::ZipArchive;

use super::{DocumentReport, FileReport, KindSchema, Outcome, Problem};
use crate::engine::packages::archive::{self, ArchiveProblem, Limits};
use crate::engine::packages::manifest::PackageManifest;
use crate::pak::{PakError, entries, manifest_of};

/// The schema `check` applies to `package.yaml`: the manifest types' schema in the form the
/// structural checks read (as for the fleet file).
fn schema() -> &'static KindSchema {
    static SCHEMA: OnceLock<KindSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let generator = schemars::generate::SchemaSettings::openapi3()
            .with(|s| {
                s.inline_subschemas = true;
                s.meta_schema = None;
            })
            .with_transform(kube::core::schema::StructuralSchemaRewriter)
            .into_generator();
        let schema = serde_json::to_value(generator.into_root_schema_for::<PackageManifest>())
            .unwrap_or_default();
        KindSchema::new(schema)
    })
}

fn archive_problem(p: &ArchiveProblem) -> Problem {
    let fix = match p {
        ArchiveProblem::UnsafePath { .. } => {
            "store every file under files/ at its path relative to the product location"
        }
        ArchiveProblem::NotARegularFile { .. } => "replace it with the file it stands for",
        ArchiveProblem::Stray(_) => "move it under files/ and name it in a component, or drop it",
        ArchiveProblem::Duplicate(_) => "keep one entry per name",
        ArchiveProblem::NoManifest => "add package.yaml at the archive's root",
        ArchiveProblem::ManifestTooLarge { .. } => "keep package.yaml under 1 MiB",
        ArchiveProblem::Ratio { .. } | ArchiveProblem::TooLarge { .. } => {
            "this archive is refused as a zip bomb; rebuild it with upkeep package build"
        }
        ArchiveProblem::Missing(_) => "add the file under files/, or take it out of the component",
        ArchiveProblem::CarriedRemoval(_) => {
            "drop the file from the archive: remove needs no content"
        }
        ArchiveProblem::Unlisted(_) => "name the file in a component, or drop it from the archive",
        ArchiveProblem::DirectoryForFile(_) => "store a file at that path, not a directory",
    };
    let field = match p {
        ArchiveProblem::UnsafePath { entry, .. }
        | ArchiveProblem::NotARegularFile { entry, .. } => entry.clone(),
        ArchiveProblem::Stray(e) | ArchiveProblem::Duplicate(e) | ArchiveProblem::Unlisted(e) => {
            e.clone()
        }
        ArchiveProblem::Missing(f)
        | ArchiveProblem::CarriedRemoval(f)
        | ArchiveProblem::DirectoryForFile(f) => format!("files/{f}"),
        _ => "package.yaml".into(),
    };
    Problem::new(field, p.to_string(), fix.into())
}

fn pak_problem(e: &PakError) -> Problem {
    match e {
        PakError::Archive { problem, .. } => archive_problem(problem),
        PakError::Entry { entry, why, .. } => Problem::new(
            entry.clone(),
            format!("entry {entry:?} {why}"),
            "rebuild the package with upkeep package build".into(),
        ),
        PakError::Yaml { message, .. } => Problem::new(
            "package.yaml".into(),
            message.clone(),
            "correct the YAML the message names".into(),
        ),
        other => Problem::new("(archive)".into(), other.to_string(), String::new()),
    }
}

/// Checks the package file at `path`.
pub fn check_package(path: &Path) -> FileReport {
    let file = path.display().to_string();
    let problems = problems(path, &file);
    let title = problems
        .0
        .map_or_else(|| "Package".to_string(), |id| format!("Package/{id}"));
    let outcome = if problems.1.is_empty() {
        Outcome::Valid
    } else {
        Outcome::Invalid(problems.1)
    };
    FileReport {
        file,
        syntax_error: None,
        documents: vec![DocumentReport {
            index: 1,
            title,
            outcome,
            warnings: Vec::new(),
        }],
    }
}

/// The package's id (when its manifest could be read) and every problem found.
fn problems(path: &Path, shown: &str) -> (Option<String>, Vec<Problem>) {
    let opened = File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| ZipArchive::new(BufReader::new(f)).map_err(|e| e.to_string()));
    let mut archive = match opened {
        Ok(a) => a,
        Err(e) => {
            return (
                None,
                vec![Problem::new(
                    "(archive)".into(),
                    format!("not a readable zip archive: {e}"),
                    "a package is a zip made by upkeep package build".into(),
                )],
            );
        }
    };
    let list = match entries(&archive, shown) {
        Ok(list) => list,
        Err(e) => return (None, vec![pak_problem(&e)]),
    };
    let limits = Limits {
        max_expanded: u64::MAX,
    };
    if let Err(p) = archive::check_entries(&list, &limits) {
        return (None, vec![archive_problem(&p)]);
    }
    // The schema first, on the YAML as written: its messages name fields and suggest
    // spellings; the typed rules follow only on a sound structure.
    let text = match read_manifest_text(&mut archive) {
        Ok(text) => text,
        Err(p) => return (None, vec![p]),
    };
    let value: Value = match serde_saphyr::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return (
                None,
                vec![Problem::new(
                    "package.yaml".into(),
                    e.without_snippet()
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                    "correct the YAML syntax".into(),
                )],
            );
        }
    };
    let id = value.get("id").and_then(Value::as_str).map(str::to_string);
    let structural: Vec<Problem> = schema()
        .problems(&value)
        .into_iter()
        .map(|p| Problem::new(format!("package.yaml: {}", p.field), p.message, p.fix))
        .collect();
    if !structural.is_empty() {
        return (id, structural);
    }
    let manifest = match manifest_of(&mut archive, shown) {
        Ok(m) => m,
        Err(e) => return (id, vec![pak_problem(&e)]),
    };
    let mut found: Vec<Problem> = manifest
        .validate()
        .into_iter()
        .map(|f| Problem::new(format!("package.yaml: {}", f.field), f.message, f.fix))
        .collect();
    if found.is_empty() {
        found.extend(
            archive::check_contents(&manifest, &list)
                .iter()
                .map(archive_problem),
        );
    }
    (id, found)
}

fn read_manifest_text<R: std::io::Read + std::io::Seek>(
    archive: &mut ZipArchive<R>,
) -> Result<String, Problem> {
    use std::io::Read as _;
    let bad = |message: String| Problem::new("package.yaml".into(), message, String::new());
    let mut file = archive
        .by_name(archive::MANIFEST)
        .map_err(|e| bad(e.to_string()))?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(archive::MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > archive::MAX_MANIFEST_BYTES {
        return Err(archive_problem(&ArchiveProblem::ManifestTooLarge {
            size: bytes.len() as u64,
        }));
    }
    String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))
}
