use proptest::prelude::*;
use serde_json::json;

use super::*;

const VALID: &str = include_str!("../../examples/firmware-upgrade.yaml");

#[test]
fn other_api_groups_are_skipped_not_failed() {
    let report = check_text(
        "x.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
    );
    assert!(report.is_valid());
    assert!(matches!(report.documents[0].outcome, Outcome::Skipped(_)));
}

#[test]
fn empty_documents_are_ignored() {
    let report = check_text("x.yaml", &format!("---\n---\n{VALID}\n---\n"));
    assert_eq!(report.documents.len(), 1);
    assert!(report.is_valid(), "{report}");
}

#[test]
fn structural_problems_come_alone_semantic_ones_together() {
    let doc = json!({
        "apiVersion": "upkeep.dev/v1alpha1", "kind": "FirmwareUpgrade",
        "metadata": {"name": "fw"},
        "spec": {"image": "idg75.scrypt4", "targets": {}, "rollout": {"maxConcurrent": "0%"}}
    });
    let Outcome::Invalid(problems) = check_document(1, &doc).outcome else {
        panic!("invalid expected")
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"spec.targets"), "{fields:?}");
    assert!(fields.contains(&"spec.rollout.maxConcurrent"), "{fields:?}");
    assert!(fields.contains(&"spec.image"), "{fields:?}");
}

/// Replaces the value at a path chosen by `seed` with an odd value.
fn mutate(value: &mut serde_json::Value, seed: &[u8]) {
    let mut pointer = String::new();
    let mut node = &*value;
    for byte in seed.iter().filter(|b| *b % 5 != 0) {
        let step = match node {
            serde_json::Value::Object(map) if !map.is_empty() => {
                map.keys().nth(usize::from(*byte) % map.len()).cloned()
            }
            serde_json::Value::Array(items) if !items.is_empty() => {
                Some((usize::from(*byte) % items.len()).to_string())
            }
            _ => None,
        };
        let Some(step) = step else { break };
        pointer.push('/');
        pointer.push_str(&step);
        node = value.pointer(&pointer).unwrap();
    }
    let replacement = match seed.last().copied().unwrap_or(0) % 6 {
        0 => json!(null),
        1 => json!(-1),
        2 => json!("0%"),
        3 => json!({"x": [1, 2]}),
        4 => json!([]),
        _ => json!("idg7519.scrypt9"),
    };
    *value.pointer_mut(&pointer).unwrap() = replacement;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = check_text("fuzz.yaml", &text);
    }

    #[test]
    fn never_panics_on_yaml_like_text(text in "[a-zA-Z:{}\\[\\], \\n\\-'\"#&*!|>%@0-9.]{0,300}") {
        let _ = check_text("fuzz.yaml", &text);
    }

    #[test]
    fn never_panics_on_mutated_valid_manifests(seed in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut doc: serde_json::Value = serde_saphyr::from_str(VALID).unwrap();
        mutate(&mut doc, &seed);
        let report = check_document(1, &doc);
        // A mutated manifest is either still valid or explains itself field by field.
        if let Outcome::Invalid(problems) = report.outcome {
            prop_assert!(problems.iter().all(|p| !p.field.is_empty() && !p.message.is_empty()));
        }
    }
}

/// A new kind is not done until `upkeep check` knows it: every CRD the operator installs has a
/// checker, and every checker of a CRD runs the kind's lint (`crd_checker` takes it).
#[test]
fn every_crd_has_a_checker_with_its_lint() {
    for crd in crate::api::crds() {
        let kind = crd.spec.names.kind.as_str();
        assert!(
            kinds().contains_key(kind),
            "{kind} is in api::crds() but `upkeep check` has no checker for it: add one in \
             check::kinds() with crd_checker::<api::{kind}>(lint::<its lint>)"
        );
    }
}

const NOW: &str = "2026-12-01T00:00:00Z";

/// `check_files` over `(file, text)` pairs at [`NOW`].
pub(super) fn check_all(files: &[(&str, &str)]) -> Vec<FileReport> {
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    check_files(&sources, NOW.parse().unwrap())
}

fn window(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: {{ name: {name} }}\nspec: {spec}\n---\n"
    )
}

fn upgrade_with_windows(windows: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: FirmwareUpgrade\nmetadata: {{ name: fw }}\nspec:\n  image: idg7519.oradco.scrypt4\n  targets: {{ pattern: \"dp-*\" }}\n  maintenanceWindows: {windows}\n"
    )
}

#[test]
fn a_window_that_never_opens_is_an_error_the_cluster_accepts() {
    let text = window("feb-31", "{ schedule: \"0 0 31 2 *\", duration: 2h }")
        + &window("yearly", "{ schedule: \"0 0 1 1 *\", duration: 2h }");
    let reports = check_all(&[("w.yaml", &text)]);
    let report = &reports[0];
    assert!(!report.is_valid(), "{report}");
    assert!(report.accepted_by_api(), "the API server takes any cron");
    let Outcome::Invalid(problems) = &report.documents[0].outcome else {
        panic!("{report}")
    };
    assert_eq!(problems[0].field, "spec.schedule");
    assert!(problems[0].message.contains("400 days"), "{problems:?}");
    assert!(
        problems[0].message.contains("2026-12-01T00:00:00Z"),
        "{problems:?}"
    );
    assert_eq!(
        report.documents[1].outcome,
        Outcome::Valid,
        "once a year is enough"
    );
}

#[test]
fn a_one_time_window_that_is_over_is_a_warning() {
    let text = window(
        "past",
        "{ start: \"2026-01-01T00:00:00Z\", end: \"2026-01-02T00:00:00Z\" }",
    ) + &window(
        "far",
        "{ start: \"2028-06-01T00:00:00Z\", end: \"2028-06-02T00:00:00Z\" }",
    );
    let reports = check_all(&[("w.yaml", &text)]);
    assert!(reports[0].is_valid(), "{}", reports[0]);
    assert_eq!(reports[0].documents[0].warnings[0].field, "spec.end");
    assert!(reports[0].documents[1].warnings.is_empty());
    assert!(
        reports[0]
            .to_string()
            .starts_with("warning: w.yaml: MaintenanceWindow/past")
    );
}

#[test]
fn a_reference_to_a_window_no_file_defines_is_a_warning() {
    let windows = window("nightly", "{ schedule: \"0 22 * * *\", duration: 2h }");
    let reports = check_all(&[
        ("windows.yaml", &windows),
        ("fw.yaml", &upgrade_with_windows("[nightly, elsewhere]")),
    ]);
    assert!(reports.iter().all(FileReport::is_valid));
    let warnings = &reports[1].documents[0].warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].field, "spec.maintenanceWindows[1]");
    assert!(
        warnings[0].message.contains("\"elsewhere\""),
        "{warnings:?}"
    );
    assert!(
        warnings[0].fix.contains("lives in the cluster"),
        "{warnings:?}"
    );

    // Another namespace's window of that name is not the one referenced.
    let namespaced = "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: { name: nightly, namespace: other }\nspec: { schedule: \"0 22 * * *\", duration: 2h }\n";
    let fw = upgrade_with_windows("[nightly]").replace("name: fw }", "name: fw, namespace: prod }");
    let reports = check_all(&[("w.yaml", namespaced), ("fw.yaml", &fw)]);
    assert_eq!(reports[1].warnings(), 1, "{}", reports[1]);
}

#[test]
fn more_documents_than_the_parser_default_are_read_and_too_many_say_how_to_split() {
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n";
    let report = check_text("release.yaml", &doc.repeat(2_000));
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.documents.len(), 2_000);

    let report = check_text("release.yaml", &doc.repeat(MAX_DOCUMENTS + 1));
    let error = report.syntax_error.as_deref().unwrap();
    assert!(error.contains("more than 10000 YAML documents"), "{error}");
    assert!(error.contains("split it"), "{error}");
    assert!(!error.contains("budget"), "{error}");
}

fn install_job(package: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: PatchJob\nmetadata: {{ name: pj }}\nspec:\n  hosts: {{ names: [web-1] }}\n  operation: Install\n  packages:\n    - {{ id: 9.0.5-WS-WAS-FP023, type: FixPack, product: was, {package} }}\n"
    )
}

fn problems_of(text: &str) -> Vec<Problem> {
    let report = check_text("pj.yaml", text);
    match &report.documents[0].outcome {
        Outcome::Invalid(problems) => problems.clone(),
        _ => Vec::new(),
    }
}

#[test]
fn an_http_package_source_needs_its_sha256_and_no_credentials() {
    let sha = "0123456789abcdef".repeat(4);
    let problems = problems_of(&install_job("source: \"https://repo.example/fp23.pak\""));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "spec.packages[0].sha256");
    assert!(!problems[0].accepted_by_api, "the CEL rule rejects it");
    assert!(problems[0].message.contains("sha256sum"), "{problems:?}");

    let valid = install_job(&format!(
        "source: \"https://repo.example/fp23.pak\", sha256: {sha}"
    ));
    assert!(problems_of(&valid).is_empty(), "{:?}", problems_of(&valid));

    let short = problems_of(&install_job("source: fp23.pak, sha256: abc123"));
    assert!(
        short.iter().any(|p| p.field.contains("sha256")),
        "the schema pattern: {short:?}"
    );

    let secret = problems_of(&install_job(&format!(
        "source: \"https://user:pw@repo.example/fp23.pak\", sha256: {sha}"
    )));
    assert_eq!(secret.len(), 1, "{secret:?}");
    assert_eq!(secret[0].field, "spec.packages[0].source");
    assert!(secret[0].message.contains("credentials"), "{secret:?}");

    let ftp = problems_of(&install_job("source: \"ftp://repo.example/fp23.pak\""));
    assert!(ftp.iter().any(|p| p.message.contains("http://")), "{ftp:?}");
}
