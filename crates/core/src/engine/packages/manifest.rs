//! `package.yaml`: what a maintenance package is (id, type, product, the versions it applies to,
//! the version it leads to, the defects it fixes) and which files each of its components adds,
//! replaces, removes or patches; and every rule about it that needs no archive and no disk.
//!
//! Invariants: a manifest that [`PackageManifest::validate`] accepts names only relative paths
//! that stay inside the product location and avoid the installer's own files, names every path
//! once, and carries a `version` exactly when it is a fix or refresh pack. The JSON Schema that
//! `upkeep check` applies is generated from these types ([`PackageManifest::json_schema`]).

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::version::{AppliesTo, DottedVersion};
use crate::api::host::UpdateType;
use crate::api::patch_job::PackageType;
use crate::engine::lint::Finding;

/// The pattern of package ids: they name files (`<id>.zip`, `<id>.yaml`, logs).
pub const ID_PATTERN: &str = r"^[A-Za-z0-9][-A-Za-z0-9_.]*$";

/// The most files one package may name.
pub const MAX_FILES: usize = 100_000;

/// The longest relative path a package may name, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// Paths inside a product location that belong to the installer: a package may not write them.
pub const RESERVED_PATHS: &[&str] = &[
    "properties/version/product.yaml",
    "properties/version/installed",
    "properties/version/history",
    "properties/version/update",
    "logs/update",
];

/// A maintenance package's `package.yaml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageManifest {
    /// The package id, e.g. `9.0.5-WS-WAS-IFPH12345`: letters, digits, `-`, `_` and `.`.
    #[schemars(length(min = 1, max = 128), regex(pattern = ID_PATTERN))]
    pub id: String,
    /// `InterimFix`, `FixPack` or `RefreshPack`.
    #[serde(rename = "type")]
    pub type_: PackageType,
    /// The id of the product it applies to, e.g. `was`.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9][-A-Za-z0-9_.]*$")
    )]
    pub product: String,
    /// The product versions it installs on: comparators separated by spaces, all of which must
    /// hold, e.g. `">=9.0.5.0 <9.0.6.0"`.
    #[schemars(length(min = 1, max = 256))]
    pub applies_to: String,
    /// Fix and refresh packs (required for them, refused for interim fixes): the product version
    /// after the install, e.g. `9.0.5.23`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[0-9]+(\.[0-9]+)*$"))]
    pub version: Option<String>,
    /// A one-line description for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// The defects it fixes, e.g. `PH12345`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000), inner(length(min = 1, max = 64)))]
    pub fixes: Vec<String>,
    /// The components it changes, with their files.
    #[schemars(length(min = 1, max = 10000))]
    pub components: Vec<Component>,
}

/// One component of a package and the files it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    /// The component's name, e.g. `com.ibm.ws.runtime`.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// `add` (new files; none may exist), `replace` (new versions of files; files that do not
    /// exist yet are added), `remove` (files that must exist are deleted) or `patch` (files that
    /// must exist are replaced byte for byte, the component keeping its version).
    pub update_type: UpdateType,
    /// Paths relative to the product location, e.g. `lib/runtime.jar`. For every type but
    /// `remove` the archive carries each as `files/<path>`.
    #[schemars(length(min = 1, max = 100000), inner(length(min = 1, max = 4096)))]
    pub files: Vec<String>,
}

/// Why a path is not one a package may name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// The empty path.
    #[error("the path is empty")]
    Empty,
    /// Starts with `/`.
    #[error("{0:?} is absolute; paths are relative to the product location")]
    Absolute(String),
    /// Has a `..` part.
    #[error("{0:?} climbs out with '..'")]
    ParentDir(String),
    /// Has a `.` or empty part, or ends with `/`.
    #[error("{0:?} is not in normal form (a '.' or empty part, or a trailing '/')")]
    NotNormal(String),
    /// Has a backslash, a NUL or another control character.
    #[error("{0:?} has a backslash or a control character")]
    BadCharacter(String),
    /// Longer than [`MAX_PATH_BYTES`].
    #[error("the path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    /// Inside the installer's own files.
    #[error("{path:?} is inside {reserved}, which belongs to the installer")]
    Reserved {
        /// The path.
        path: String,
        /// The reserved path it falls in.
        reserved: &'static str,
    },
}

/// Checks that `path` is relative, in normal form and stays inside the directory it is
/// relative to (no `..`, no absolute path, no backslash or control character).
pub fn check_relative_path(path: &str) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(PathProblem::TooLong);
    }
    if path.starts_with('/') {
        return Err(PathProblem::Absolute(path.to_string()));
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(PathProblem::BadCharacter(path.to_string()));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(PathProblem::ParentDir(path.to_string()));
    }
    if path.split('/').any(|part| part.is_empty() || part == ".") {
        return Err(PathProblem::NotNormal(path.to_string()));
    }
    Ok(())
}

/// Checks a path a package writes or removes in the product: [`check_relative_path`], and not
/// inside [`RESERVED_PATHS`].
pub fn check_product_path(path: &str) -> Result<(), PathProblem> {
    check_relative_path(path)?;
    let reserved = RESERVED_PATHS.iter().find(|r| {
        path == **r
            || path
                .strip_prefix(**r)
                .is_some_and(|rest| rest.starts_with('/'))
    });
    match reserved {
        Some(reserved) => Err(PathProblem::Reserved {
            path: path.to_string(),
            reserved,
        }),
        None => Ok(()),
    }
}

impl PackageManifest {
    /// The JSON Schema of `package.yaml` (draft 2020-12), generated from these types.
    pub fn json_schema() -> serde_json::Value {
        let generator = schemars::generate::SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator();
        serde_json::to_value(generator.into_root_schema_for::<PackageManifest>())
            .unwrap_or_default()
    }

    /// The version range, parsed.
    pub fn applies_to(&self) -> Result<AppliesTo, super::version::VersionError> {
        self.applies_to.parse()
    }

    /// Every file of every component with its update type, in component order.
    pub fn files(&self) -> impl Iterator<Item = (&str, UpdateType)> {
        self.components
            .iter()
            .flat_map(|c| c.files.iter().map(move |f| (f.as_str(), c.update_type)))
    }

    /// The files the archive must carry under `files/` (every type but `remove`).
    pub fn carried_files(&self) -> impl Iterator<Item = &str> {
        self.files()
            .filter(|(_, t)| *t != UpdateType::Remove)
            .map(|(f, _)| f)
    }

    /// Every rule `package.yaml` must follow on its own; empty when valid. Fields are named as
    /// in the file, e.g. `components[1].files[0]`.
    pub fn validate(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut push = |field: String, message: String, fix: &str| {
            findings.push(Finding {
                field,
                message,
                fix: fix.to_string(),
            });
        };
        if !matches_id(&self.id) {
            push(
                "id".into(),
                format!("{:?} is not a package id", self.id),
                "use letters, digits, '-', '_' and '.', starting with a letter or digit, at most 128 characters",
            );
        }
        if !matches_id(&self.product) {
            push(
                "product".into(),
                format!("{:?} is not a product id", self.product),
                "use the id the Host's spec.products gives the product, e.g. was",
            );
        }
        if let Err(e) = self.applies_to() {
            push("appliesTo".into(), e.to_string(), "");
        }
        match (self.type_, &self.version) {
            (PackageType::InterimFix, Some(_)) => push(
                "version".into(),
                "an interim fix does not change the product's version".into(),
                "remove version, or make the package a FixPack or RefreshPack",
            ),
            (PackageType::FixPack | PackageType::RefreshPack, None) => push(
                "version".into(),
                format!("a {:?} needs the product version it leads to", self.type_),
                "add version, e.g. version: 9.0.5.23",
            ),
            (_, Some(version)) => {
                if let Err(e) = version.parse::<DottedVersion>() {
                    push("version".into(), e.to_string(), "");
                }
            }
            (PackageType::InterimFix, None) => {}
        }
        let mut fixes = BTreeSet::new();
        for (i, fix) in self.fixes.iter().enumerate() {
            if fix.trim().is_empty() || fix.len() > 64 {
                push(
                    format!("fixes[{i}]"),
                    format!("{fix:?} is not a defect id"),
                    "write the defect id, e.g. PH12345",
                );
            } else if !fixes.insert(fix) {
                push(
                    format!("fixes[{i}]"),
                    format!("{fix:?} is listed twice"),
                    "list each defect once",
                );
            }
        }
        if self.components.is_empty() {
            push(
                "components".into(),
                "the package changes nothing".into(),
                "add at least one component with its files",
            );
        }
        let mut names = BTreeSet::new();
        let mut paths: BTreeMap<&str, String> = BTreeMap::new();
        let mut count = 0usize;
        for (c, component) in self.components.iter().enumerate() {
            if component.name.trim().is_empty() {
                push(
                    format!("components[{c}].name"),
                    "the component has no name".into(),
                    "name the component, e.g. com.ibm.ws.runtime",
                );
            } else if !names.insert(component.name.as_str()) {
                push(
                    format!("components[{c}].name"),
                    format!("component {:?} is listed twice", component.name),
                    "list each component once, with all its files",
                );
            }
            if component.files.is_empty() {
                push(
                    format!("components[{c}].files"),
                    format!("component {:?} names no file", component.name),
                    "list the files the component changes",
                );
            }
            for (f, file) in component.files.iter().enumerate() {
                count += 1;
                let field = format!("components[{c}].files[{f}]");
                if let Err(e) = check_product_path(file) {
                    push(
                        field,
                        e.to_string(),
                        "name a path relative to the product location, inside it",
                    );
                } else if let Some(first) = paths.get(file.as_str()) {
                    push(
                        field,
                        format!("{file:?} is also named at {first}"),
                        "name each file once, in one component",
                    );
                } else {
                    paths.insert(file, field);
                }
            }
        }
        if count > MAX_FILES {
            push(
                "components".into(),
                format!("the package names {count} files, more than {MAX_FILES}"),
                "split it into several packages",
            );
        }
        // A path that is a directory of another (`lib` and `lib/a.jar`) cannot be both a file
        // and a directory.
        let mut previous: Option<&str> = None;
        for path in paths.keys() {
            if let Some(prev) = previous
                && path
                    .strip_prefix(prev)
                    .is_some_and(|rest| rest.starts_with('/'))
            {
                push(
                    paths[path].clone(),
                    format!("{path:?} lies inside {prev:?}, which the package names as a file"),
                    "name files only, never a directory of another file",
                );
                continue;
            }
            previous = Some(path);
        }
        findings
    }
}

fn matches_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    !id.is_empty()
        && id.len() <= 128
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn manifest() -> PackageManifest {
        PackageManifest {
            id: "9.0.5-WS-WAS-IFPH12345".into(),
            type_: PackageType::InterimFix,
            product: "was".into(),
            applies_to: ">=9.0.5.0 <9.0.6.0".into(),
            version: None,
            description: None,
            fixes: vec!["PH12345".into()],
            components: vec![Component {
                name: "runtime".into(),
                update_type: UpdateType::Replace,
                files: vec!["lib/runtime.jar".into()],
            }],
        }
    }

    fn fields(m: &PackageManifest) -> Vec<String> {
        m.validate().into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_sound_manifest_is_valid() {
        assert!(manifest().validate().is_empty());
    }

    #[test]
    fn paths_must_be_relative_and_stay_inside() {
        for (path, want) in [
            ("/etc/passwd", "absolute"),
            ("../x", "'..'"),
            ("lib/../../x", "'..'"),
            ("lib//x", "normal form"),
            ("./x", "normal form"),
            ("lib/", "normal form"),
            ("lib\\x", "backslash"),
            ("a\0b", "control"),
            ("", "empty"),
        ] {
            let err = check_relative_path(path).unwrap_err().to_string();
            assert!(err.contains(want), "{path:?}: {err}");
        }
        assert!(check_relative_path("lib/a..b/c.jar").is_ok());
        assert!(check_relative_path(&"a/".repeat(3000)).is_err());
    }

    #[test]
    fn the_installers_own_files_are_reserved() {
        for path in [
            "properties/version/product.yaml",
            "properties/version/history/x.yaml",
            "logs/update/a.log",
            "properties/version/update/backup/x.zip",
        ] {
            assert!(
                matches!(check_product_path(path), Err(PathProblem::Reserved { .. })),
                "{path}"
            );
        }
        assert!(check_product_path("properties/version/WAS.component").is_ok());
        assert!(check_product_path("logs/updates.txt").is_ok());
    }

    #[test]
    fn version_is_required_for_packs_and_refused_for_interim_fixes() {
        let mut m = manifest();
        m.version = Some("9.0.5.23".into());
        assert_eq!(fields(&m), ["version"]);
        m.type_ = PackageType::FixPack;
        assert!(m.validate().is_empty());
        m.version = None;
        assert_eq!(fields(&m), ["version"]);
        m.version = Some("9.0.x".into());
        assert_eq!(fields(&m), ["version"]);
    }

    #[test]
    fn every_file_once_and_never_a_directory_of_another() {
        let mut m = manifest();
        m.components.push(Component {
            name: "more".into(),
            update_type: UpdateType::Add,
            files: vec![
                "lib/runtime.jar".into(),
                "lib/runtime.jar/inner".into(),
                "../escape".into(),
            ],
        });
        let findings = m.validate();
        let fields: Vec<&str> = findings.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "components[1].files[0]",
                "components[1].files[2]",
                "components[1].files[1]"
            ],
            "{findings:?}"
        );
        assert!(findings[0].message.contains("components[0].files[0]"));
    }

    #[test]
    fn ids_ranges_components_and_fixes_are_checked() {
        let mut m = manifest();
        m.id = "../evil".into();
        m.applies_to = "~9".into();
        m.fixes = vec!["PH1".into(), "PH1".into()];
        m.components.push(m.components[0].clone());
        m.components[1].files = vec![];
        assert_eq!(
            fields(&m),
            [
                "id",
                "appliesTo",
                "fixes[1]",
                "components[1].name",
                "components[1].files"
            ]
        );
        m.components.clear();
        assert!(fields(&m).contains(&"components".to_string()));
    }

    #[test]
    fn the_json_schema_is_generated_from_the_types() {
        let schema = PackageManifest::json_schema();
        let props = &schema["properties"];
        for key in [
            "id",
            "type",
            "product",
            "appliesTo",
            "version",
            "fixes",
            "components",
        ] {
            assert!(props.get(key).is_some(), "{key} missing from {schema}");
        }
        let required = schema["required"].as_array().unwrap();
        assert!(required.iter().any(|r| r == "appliesTo"));
        assert_eq!(schema["additionalProperties"], false);
    }
}
