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
