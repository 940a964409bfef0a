//! Target resolution: which objects of the namespace a resource acts on. The named ones (even if
//! missing, so the user sees a task saying so) plus those matching every given filter.

use std::collections::{BTreeMap, HashSet};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

use crate::api::common::TargetSelector;
use crate::engine::task::incident_id;

/// An object that can be a target: its name and labels.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The object's name.
    pub name: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// One resolved target.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The object's name.
    pub name: String,
    /// Whether an object with the name exists.
    pub exists: bool,
}

/// The outcome of resolving a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The targets, ordered by name.
    Targets(Vec<Target>),
    /// Nothing that exists matched: no task is created.
    NoneMatching,
}

/// Why targets could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The glob does not parse.
    #[error("targets.pattern {pattern:?} is not a valid glob: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The label selector is malformed.
    #[error("targets.selector is invalid: {0}")]
    Selector(String),
}

/// A code for a parent resource as a whole, when its targets cannot become tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceOutcome<C> {
    /// `SKIPPED_NO_DEVICES_MATCHING_PATTERN` or `SKIPPED_INTERNAL_EXCEPTION` of the kind's codes.
    pub code: C,
    /// What happened, with the incident id when there is one.
    pub message: String,
    /// The incident id of an internal failure.
    pub incident_id: Option<String>,
}

/// The whole-resource outcome of resolving a parent's targets, in the parent kind's codes:
/// `none_matching` when nothing matched, `internal` (the code and its name) with an incident id
/// when resolving failed; `None` when tasks are to be created. `resource` identifies the parent
/// for incident ids.
pub fn resource_outcome<C: Copy>(
    resolution: &Result<Resolution, ResolveError>,
    resource: &str,
    now: Timestamp,
    none_matching: C,
    internal: (C, &str),
) -> Option<ResourceOutcome<C>> {
    match resolution {
        Ok(Resolution::Targets(_)) => None,
        Ok(Resolution::NoneMatching) => Some(ResourceOutcome {
            code: none_matching,
            message: "no Device in the namespace matches the names, pattern and selector".into(),
            incident_id: None,
        }),
        Err(error) => {
            let (code, name) = internal;
            let id = incident_id(resource, name, now);
            Some(ResourceOutcome {
                code,
                message: format!("the targets could not be resolved: {error} (incident {id})"),
                incident_id: Some(id),
            })
        }
    }
}

/// Resolves `selector` over the objects of the namespace.
pub fn resolve(
    selector: &TargetSelector,
    objects: &[Candidate<'_>],
) -> Result<Resolution, ResolveError> {
    let pattern = selector.pattern.as_deref().map(glob_pattern).transpose()?;
    let labels = selector.selector.clone().map(label_selector).transpose()?;
    // Sorted by name, each once: an object matched by the pattern or the labels exists; a
    // listed name exists when an object has it. (A sorted vector, not a map: a fleet's pattern
    // matches thousands of Devices, and rounds resolve often.)
    let mut targets: Vec<(&str, bool)> = Vec::new();
    if !selector.names.is_empty() {
        let existing: HashSet<&str> = objects.iter().map(|o| o.name).collect();
        targets.extend(
            selector
                .names
                .iter()
                .map(|n| (n.as_str(), existing.contains(n.as_str()))),
        );
    }
    if pattern.is_some() || labels.is_some() {
        targets.extend(
            objects
                .iter()
                .filter(|object| {
                    pattern.as_ref().is_none_or(|p| p.matches(object.name))
                        && labels.as_ref().is_none_or(|s| s.matches(object.labels))
                })
                .map(|object| (object.name, true)),
        );
    }
    // By name, an existing entry first, so that `dedup` keeps it.
    targets.sort_unstable_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
    targets.dedup_by_key(|t| t.0);
    if !targets.iter().any(|(_, exists)| *exists) {
        return Ok(Resolution::NoneMatching);
    }
    Ok(Resolution::Targets(
        targets
            .into_iter()
            .map(|(name, exists)| Target {
                name: name.to_string(),
                exists,
            })
            .collect(),
    ))
}

/// Compiles a target glob.
pub fn glob_pattern(pattern: &str) -> Result<glob::Pattern, ResolveError> {
    glob::Pattern::new(pattern).map_err(|e| ResolveError::Pattern {
        pattern: pattern.to_string(),
        reason: e.to_string(),
    })
}

/// Why one requirement of a label selector is malformed, if it is: the field that is wrong
/// (`operator` or `values`) and what is wrong with it.
pub fn requirement_problem(operator: &str, values: &[String]) -> Option<(&'static str, String)> {
    match operator {
        "In" | "NotIn" if values.is_empty() => Some((
            "values",
            format!("operator {operator} needs at least one value"),
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => {
            Some(("values", format!("operator {operator} takes no values")))
        }
        "In" | "NotIn" | "Exists" | "DoesNotExist" => None,
        other => Some((
            "operator",
            format!("{other:?} is not a selector operator (In, NotIn, Exists, DoesNotExist)"),
        )),
    }
}

fn label_selector(selector: LabelSelector) -> Result<Selector, ResolveError> {
    for req in selector.match_expressions.iter().flatten() {
        if let Some((_, problem)) =
            requirement_problem(&req.operator, req.values.as_deref().unwrap_or_default())
        {
            return Err(ResolveError::Selector(format!(
                "key {:?}: {problem}",
                req.key
            )));
        }
    }
    Selector::try_from(selector).map_err(|e| ResolveError::Selector(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects() -> Vec<(String, BTreeMap<String, String>)> {
        [("dp-1", "a"), ("dp-2", "a"), ("dp-3", "b"), ("web-1", "a")]
            .iter()
            .map(|(n, site)| {
                (
                    n.to_string(),
                    BTreeMap::from([("site".to_string(), site.to_string())]),
                )
            })
            .collect()
    }

    fn run(selector: TargetSelector) -> Result<Resolution, ResolveError> {
        let objects = objects();
        let candidates: Vec<Candidate<'_>> = objects
            .iter()
            .map(|(n, l)| Candidate { name: n, labels: l })
            .collect();
        resolve(&selector, &candidates)
    }

    fn names(resolution: Resolution) -> Vec<(String, bool)> {
        match resolution {
            Resolution::Targets(t) => t.into_iter().map(|t| (t.name, t.exists)).collect(),
            Resolution::NoneMatching => vec![],
        }
    }

    #[test]
    fn names_plus_devices_matching_every_filter() {
        let selector = TargetSelector {
            names: vec!["dp-3".into(), "gone".into()],
            pattern: Some("dp-*".into()),
            selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("site".into(), "a".into())])),
                ..Default::default()
            }),
        };
        assert_eq!(
            names(run(selector).unwrap()),
            [
                ("dp-1".into(), true),
                ("dp-2".into(), true),
                ("dp-3".into(), true),
                ("gone".into(), false)
            ]
        );
    }

    #[test]
    fn nothing_existing_matched_means_no_tasks() {
        let missing = TargetSelector {
            names: vec!["gone".into()],
            pattern: Some("db-*".into()),
            ..Default::default()
        };
        assert_eq!(run(missing), Ok(Resolution::NoneMatching));
    }

    #[test]
    fn malformed_filters_are_errors() {
        let glob = TargetSelector {
            pattern: Some("dp-[".into()),
            ..Default::default()
        };
        assert!(matches!(run(glob), Err(ResolveError::Pattern { .. })));
        let selector = TargetSelector {
            selector: Some(LabelSelector {
                match_expressions: Some(vec![
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                        key: "site".into(),
                        operator: "Near".into(),
                        values: None,
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(run(selector), Err(ResolveError::Selector(_))));
    }
}
