//! Checks of PatchJobs that need more than their own document: their action commands as the
//! agent's shell parses them, and their hosts and waves against the Hosts the files define.
//!
//! - An action's `command` is run by the agent with `/bin/sh -c`; `/bin/sh -n -c COMMAND` parses it
//!   without running anything, and a syntax error is an error the cluster accepts (the task would
//!   end `2046 Job Failed` at that action). Where no `/bin/sh` can be started nothing is reported.
//! - Hosts are usually created by their agents, so the files know them only when they define
//!   Host documents; in a namespace where they define none, nothing below is checked. Where they
//!   do: a job whose `spec.hosts` selects none of them, or names one they do not define, is a
//!   warning (the Host may exist in the cluster); so is a wave that selects none of the job's
//!   hosts the files define (its selector is wrong, the wave is superfluous, or its Hosts live
//!   only in the cluster), and a job's host in no wave (it runs after the last wave).
//!
//! Documents the per-document checks found structurally broken are left to them.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use kube::core::{Selector, SelectorExt};
use serde_json::Value;

use super::{FileReport, Outcome, Problem, namespace_of, namespaces_meet};
use crate::api::{Host, PatchJob};
use crate::engine::targets::{Candidate, Resolution, resolve};

/// A Host the files define: its namespace (`None`: left to where it is applied), name, labels.
struct KnownHost {
    namespace: Option<String>,
    name: String,
    labels: BTreeMap<String, String>,
}

/// Adds the PatchJob findings to `reports`; `documents[i]` are the non-null documents of the
/// file of `reports[i]`, in order (empty when it could not be read).
pub fn check(reports: &mut [FileReport], documents: &[Vec<Value>]) {
    let hosts: Vec<KnownHost> = reports
        .iter()
        .zip(documents)
        .flat_map(|(report, docs)| report.documents.iter().zip(docs))
        .filter(|(report, _)| {
            !matches!(report.outcome, Outcome::Skipped(_)) && report.accepted_by_api()
        })
        .filter_map(|(_, doc)| typed::<Host>(doc, "Host").map(|host| (doc, host)))
        .map(|(doc, host)| KnownHost {
            namespace: namespace_of(doc),
            name: host.metadata.name.unwrap_or_default(),
            labels: host.metadata.labels.unwrap_or_default(),
        })
        .collect();
    for (report, docs) in reports.iter_mut().zip(documents) {
        for (doc_report, doc) in report.documents.iter_mut().zip(docs) {
            if matches!(doc_report.outcome, Outcome::Skipped(_)) || !doc_report.accepted_by_api() {
                continue;
            }
            let Some(job) = typed::<PatchJob>(doc, "PatchJob") else {
                continue;
            };
            for problem in command_problems(&job) {
                doc_report.add_finding(problem);
            }
            let namespace = namespace_of(doc);
            let known: Vec<&KnownHost> = hosts
                .iter()
                .filter(|h| namespaces_meet(&h.namespace, &namespace))
                .collect();
            if known.is_empty() {
                continue;
            }
            doc_report.warnings.extend(host_problems(&job, &known));
        }
    }
}

fn typed<K: serde::de::DeserializeOwned>(doc: &Value, kind: &str) -> Option<K> {
    (doc.get("kind").and_then(Value::as_str) == Some(kind))
        .then(|| serde_json::from_value(doc.clone()).ok())
        .flatten()
}

/// Every action command that `/bin/sh` cannot parse.
fn command_problems(job: &PatchJob) -> Vec<Problem> {
    let Some(actions) = &job.spec.actions else {
        return Vec::new();
    };
    [("pre", &actions.pre), ("post", &actions.post)]
        .into_iter()
        .flat_map(|(phase, list)| list.iter().enumerate().map(move |(i, a)| (phase, i, a)))
        .filter_map(|(phase, i, action)| {
            let error = shell_syntax_error(&action.command)?;
            Some(Problem {
                accepted_by_api: true,
                ..Problem::new(
                    format!("spec.actions.{phase}[{i}].command"),
                    format!(
                        "/bin/sh cannot parse the command of action {:?} ({error}); the task would end 2046 Job Failed at it",
                        action.name
                    ),
                    "correct the command's quoting or syntax (check it with sh -n -c 'COMMAND')"
                        .into(),
                )
            })
        })
        .collect()
}

/// The syntax error `/bin/sh -n` reports for `command`, which it parses but never runs.
fn shell_syntax_error(command: &str) -> Option<String> {
    let out = Command::new("/bin/sh")
        .args(["-n", "-c", command])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if out.status.success() {
        return None;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("a syntax error");
    // dash: "/bin/sh: 1: Syntax error: …"; bash: "/bin/sh: -c: line 1: syntax error …".
    let message = line
        .trim_start_matches("/bin/sh:")
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ' || c == ':')
        .trim();
    Some(message.to_string())
}

/// The warnings about the job's hosts and waves against the Hosts `known` in its namespace
/// (warnings only: the cluster may hold Hosts the files do not define).
fn host_problems(job: &PatchJob, known: &[&KnownHost]) -> Vec<Problem> {
    let mut warnings = Vec::new();
    let candidates: Vec<Candidate<'_>> = known
        .iter()
        .map(|h| Candidate {
            name: &h.name,
            labels: &h.labels,
        })
        .collect();
    let defined = || {
        known
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let targets = match resolve(&job.spec.hosts, &candidates) {
        Ok(Resolution::Targets(targets)) => targets,
        Ok(Resolution::NoneMatching) => {
            warnings.push(Problem::new(
                "spec.hosts".into(),
                format!(
                    "selects none of the Hosts the files define ({}); unless matching Hosts exist in the cluster, the job creates no task",
                    defined()
                ),
                "correct the names, pattern or selector".into(),
            ));
            return warnings;
        }
        // A bad glob or selector: the per-document checks report it.
        Err(_) => return warnings,
    };
    for (i, name) in job.spec.hosts.names.iter().enumerate() {
        if !known.iter().any(|h| h.name == *name) {
            warnings.push(Problem::new(
                format!("spec.hosts.names[{i}]"),
                format!(
                    "no file given defines the Host {name:?} (they define {}); unless it exists in the cluster, its task says the host is missing",
                    defined()
                ),
                "correct the name, or ignore this if the Host lives in the cluster".into(),
            ));
        }
    }
    let members: Vec<&KnownHost> = known
        .iter()
        .copied()
        .filter(|h| targets.iter().any(|t| t.exists && t.name == h.name))
        .collect();
    let selectors: Vec<Option<Selector>> = job
        .spec
        .waves
        .iter()
        .map(|w| Selector::try_from(w.selector.clone()).ok())
        .collect();
    let job_hosts = || {
        members
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, (wave, selector)) in job.spec.waves.iter().zip(&selectors).enumerate() {
        let Some(selector) = selector else {
            continue;
        };
        if !members.iter().any(|h| selector.matches(&h.labels)) {
            warnings.push(Problem::new(
                format!("spec.waves[{i}].selector"),
                format!(
                    "wave {:?} selects none of the job's hosts the files define ({}): unless matching Hosts exist in the cluster, it patches nothing",
                    wave.name,
                    job_hosts()
                ),
                "correct the selector to the labels of the wave's Hosts, or remove the wave".into(),
            ));
        }
    }
    if !selectors.is_empty() && selectors.iter().all(Option::is_some) {
        for host in &members {
            if !selectors.iter().flatten().any(|s| s.matches(&host.labels)) {
                warnings.push(Problem::new(
                    "spec.waves".into(),
                    format!(
                        "the job's Host {:?} is in no wave: it is patched after the last wave",
                        host.name
                    ),
                    "add a wave that selects it, or ignore this if that order is meant".into(),
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests;
