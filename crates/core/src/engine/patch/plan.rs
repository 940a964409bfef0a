//! What the PatchJob controller does in one round, decided without a client: which hosts get a
//! task, which queued tasks start (waves in order, slots from `maxConcurrent`), which end or
//! wait before they start (patch management disabled, the agent offline, another job holding
//! the host, a blackout, `maxWait`, the error policy), and the job's own status.
//!
//! Rules here, beyond the rollout's: a host whose `patchManagement` is `Disabled` ends `2039 Not
//! Licensed` before it starts; a host whose agent is offline when its start comes ends `2060
//! Skipped` (`AgentOffline`); a host another job holds waits `2057 Execution Blocked` naming that
//! job, keeps its place and takes no slot, and ends `2037 Timed Out` (`AnotherJobRunning`) when
//! the window closes first; a Blackout cancels every host not yet started (`2038`); waves run in
//! order (Uninstall in reverse order), a host in no wave runs after the last; a start carries
//! the instant the window gate closes, after which no step starts; a host left pending a reboot
//! upkeep will not do (`reboot.policy: Never`) holds neither its slot nor its wave.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use rustc_hash::{FxHashMap, FxHashSet};

use super::HostCode;
use super::state::HostTask;
use crate::api::codes::{CatalogueCode, PatchCode, PatchReason, TaskResult};
use crate::api::conditions::Phase;
use crate::api::firmware_upgrade::OutsideWindow;
use crate::api::host::ProductStatus;
use crate::api::patch_job::{Operation, PatchJob, PatchJobStatus};
use crate::engine::packages::consistency;
use crate::engine::parent::{self, ChildTask, Progress};
use crate::engine::rollout::{
    self, BlackoutRule, Decision, EndReason, Policy, Queued, RolloutCode,
};
use crate::engine::targets::{Candidate, Resolution, resolve};
use crate::schedule::gate::Gate;

/// How often an unfinished PatchJob looks for new Hosts.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(300);

impl CatalogueCode for HostCode {
    fn name(self) -> &'static str {
        self.code.name()
    }

    fn result(self) -> TaskResult {
        self.code.result()
    }
}

/// A Host as the plan sees it.
#[derive(Clone, Copy, Debug)]
pub struct HostInfo<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Its spec says `patchManagement: Disabled`.
    pub disabled: bool,
    /// Its agent's Lease is fresh.
    pub online: bool,
    /// The other job that holds it now (`PatchJob/<namespace>/<name>`), if any.
    pub held_by: Option<&'a str>,
    /// The products its agent reports (`status.products`), for the job's consistency.
    pub products: &'a [ProductStatus],
}

/// A task of the PatchJob, as the plan sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child<'a> {
    /// Its host's name.
    pub target: &'a str,
    /// Its current code and whether it started.
    pub code: HostCode,
    /// The code the rollout counts: the one the controller last wrote while its cache may not
    /// show it yet, else `code`.
    pub counted: HostCode,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// Its message.
    pub message: &'a str,
    /// The host is left pending a reboot upkeep will not do.
    pub released: bool,
}

/// A whole-job code: why the job could not become tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOutcome {
    /// `NoHostsMatching`, `InvalidHosts` or `InvalidRollout`.
    pub code: &'static str,
    /// What happened.
    pub message: String,
}

/// What one round needs.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The PatchJob.
    pub job: &'a PatchJob,
    /// `PatchJob/<namespace>/<name>`: how other jobs' messages name this one.
    pub holder: &'a str,
    /// Its tasks.
    pub tasks: &'a [Child<'a>],
    /// The Hosts of its namespace.
    pub hosts: &'a [HostInfo<'a>],
    /// The window gate now.
    pub gate: &'a Gate,
    /// When the gate closes next (`None`: no window bounds the job).
    pub closes_at: Option<Timestamp>,
    /// Now.
    pub now: Timestamp,
}

/// What happens to one task this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostDecision {
    /// It starts; no step starts at or after `until`.
    Grant {
        /// The window gate's close.
        until: Option<Timestamp>,
    },
    /// It ends without starting.
    End(PatchCode, Option<PatchReason>, String),
    /// It waits `2057 Execution Blocked`: another job holds its host.
    Block(String),
}

/// What the controller does this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Hosts that get a task (none of them has one).
    pub create: Vec<String>,
    /// Decisions, by index into the tasks.
    pub decisions: Vec<(usize, HostDecision)>,
    /// A code for the job as a whole, when it has one.
    pub outcome: Option<JobOutcome>,
    /// When the plan may change with time alone.
    pub wake_at: Option<Timestamp>,
}

/// Whether this round must resolve the hosts: not once every task ended for the spec as it is.
pub fn resolves_targets(job: &PatchJob, tasks: &[Child<'_>]) -> bool {
    let observed = job.status.as_ref().and_then(|s| s.observed_generation);
    let frozen = !tasks.is_empty()
        && tasks.iter().all(|t| t.code.is_terminal())
        && observed == job.metadata.generation;
    !frozen
}

/// The wave of a host with `labels`: the first wave whose selector matches, after the last
/// when none does, in reverse order for Uninstall.
pub fn wave_of(job: &PatchJob, labels: &BTreeMap<String, String>) -> u32 {
    let waves = &job.spec.waves;
    let index = waves
        .iter()
        .position(|w| selects(&w.selector, labels))
        .unwrap_or(waves.len());
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    let last = u32::try_from(waves.len()).unwrap_or(u32::MAX);
    if job.spec.operation == Operation::Uninstall {
        last - index
    } else {
        index
    }
}

fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    Selector::try_from(selector.clone()).is_ok_and(|s| s.matches(labels))
}

/// Decides one round of the PatchJob controller.
pub fn plan(input: &Input<'_>) -> Plan {
    let Input {
        job,
        holder,
        tasks,
        hosts,
        gate,
        closes_at,
        now,
    } = *input;
    let mut plan = Plan {
        create: Vec::new(),
        decisions: Vec::new(),
        outcome: None,
        wake_at: None,
    };
    let by_name: FxHashMap<&str, &HostInfo<'_>> = hosts.iter().map(|h| (h.name, h)).collect();
    let existing: FxHashSet<&str> = tasks.iter().map(|t| t.target).collect();
    // Once every Host has a task, resolving the hosts again can create none.
    let uncovered = tasks.is_empty() || hosts.iter().any(|h| !existing.contains(h.name));
    if uncovered && resolves_targets(job, tasks) {
        let candidates: Vec<Candidate<'_>> = hosts
            .iter()
            .map(|h| Candidate {
                name: h.name,
                labels: h.labels,
            })
            .collect();
        match resolve(&job.spec.hosts, &candidates) {
            Ok(Resolution::Targets(targets)) => {
                plan.create = targets
                    .iter()
                    .filter(|t| !existing.contains(t.name.as_str()))
                    .map(|t| t.name.clone())
                    .collect();
            }
            Ok(Resolution::NoneMatching) if tasks.is_empty() => {
                plan.outcome = Some(JobOutcome {
                    code: "NoHostsMatching",
                    message: "no Host in the namespace matches the names, pattern and selector"
                        .into(),
                });
            }
            Err(error) if tasks.is_empty() => {
                plan.outcome = Some(JobOutcome {
                    code: "InvalidHosts",
                    message: format!("the hosts could not be resolved: {error}"),
                });
            }
            _ => {}
        }
    }
    if tasks.is_empty() {
        return plan;
    }
    let policy = match policy(job, tasks.len()) {
        Ok(policy) => policy,
        Err(problem) => {
            plan.outcome = Some(problem);
            return plan;
        }
    };

    let mut decided = BTreeSet::new();
    // A disabled host never starts; another job's hold makes a host wait.
    for (i, task) in tasks.iter().enumerate() {
        if !task.code.is_unstarted() {
            continue;
        }
        let Some(host) = by_name.get(task.target) else {
            continue;
        };
        if host.disabled {
            plan.decisions.push((
                i,
                HostDecision::End(
                    PatchCode::NotLicensed,
                    Some(PatchReason::PatchManagementDisabled),
                    "the Host's spec sets patchManagement: Disabled, so the job was not handed to it"
                        .into(),
                ),
            ));
            decided.insert(i);
        }
    }
    let blocked: Vec<Option<&str>> = tasks
        .iter()
        .map(|t| {
            by_name
                .get(t.target)
                .and_then(|h| h.held_by)
                .filter(|other| *other != holder && !t.code.started)
        })
        .collect();
    let queued: Vec<Queued<'_, HostCode>> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| Queued {
            target: t.target,
            code: t.counted,
            created_at: t.created_at,
            wave: by_name
                .get(t.target)
                .map_or(u32::MAX, |h| wave_of(job, h.labels)),
            released: t.released,
            blocked: blocked[i].is_some() || decided.contains(&i),
        })
        .collect();
    let rollout = rollout::plan(&policy, &queued, gate, now);
    plan.wake_at = rollout.wake_at;
    for (i, decision) in rollout.decisions {
        if decided.contains(&i) {
            continue;
        }
        let decision = match decision {
            Decision::Grant => match by_name.get(tasks[i].target) {
                Some(host) if host.online => HostDecision::Grant { until: closes_at },
                Some(_) => HostDecision::End(
                    PatchCode::Skipped,
                    Some(PatchReason::AgentOffline),
                    "the host's agent was not online when its start came (its Lease is not renewed)"
                        .into(),
                ),
                None => HostDecision::End(
                    PatchCode::Skipped,
                    Some(PatchReason::AgentOffline),
                    format!(
                        "there is no Host {} in the namespace: no agent runs the job there",
                        tasks[i].target
                    ),
                ),
            },
            Decision::End(code, why, message) => HostDecision::End(code.code, reason(why), message),
        };
        decided.insert(i);
        plan.decisions.push((i, decision));
    }
    // What is left of the blocked hosts: wait, or time out with the window.
    for (i, other) in blocked.iter().enumerate() {
        let Some(other) = other else { continue };
        if decided.contains(&i) || tasks[i].code.is_terminal() {
            continue;
        }
        let window_closed = !gate.open && !job.spec.maintenance_windows.is_empty();
        if window_closed && tasks[i].code.code != PatchCode::ExecutionBlocked {
            // Held before its window opened: it waits for the window like any other host.
            continue;
        }
        let decision = if window_closed {
            HostDecision::End(
                PatchCode::TimedOut,
                Some(PatchReason::AnotherJobRunning),
                format!("the window closed while {other} held the host; the job did not run on it"),
            )
        } else {
            HostDecision::Block(format!(
                "the job could not start on the host because {other} is running there; it runs if {other} completes while the window is open, else it times out"
            ))
        };
        if decision != HostDecision::Block(tasks[i].message.to_string())
            || tasks[i].code.code != PatchCode::ExecutionBlocked
        {
            plan.decisions.push((i, decision));
        }
    }
    plan
}

fn reason(why: EndReason) -> Option<PatchReason> {
    match why {
        EndReason::ErrorPolicy => Some(PatchReason::ErrorPolicy),
        EndReason::NotStartedInTime => Some(PatchReason::NotStartedInTime),
        EndReason::Blackout | EndReason::OutsideWindow => None,
    }
}

/// Applies a decision to a task that has not started; returns whether it changed.
pub fn decide(task: &mut HostTask, decision: &HostDecision, now: Timestamp) -> bool {
    if task.is_terminal() || task.is_started() {
        return false;
    }
    let before = (task.code, task.message.clone(), task.started_at);
    match decision {
        HostDecision::Grant { until } => {
            task.started_at = Some(now);
            task.progress.until = until.map(super::state::time);
        }
        HostDecision::End(code, reason, message) => task.end(*code, *reason, message.clone(), now),
        HostDecision::Block(message) => {
            task.enter(PatchCode::ExecutionBlocked, message.clone(), now)
        }
    }
    (task.code, task.message.clone(), task.started_at) != before
}

/// When to look at the PatchJob again, its tasks standing as they do after the round.
pub fn next_look(
    tasks: &[Child<'_>],
    wake_at: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let ended = !tasks.is_empty() && tasks.iter().all(|t| t.code.is_terminal());
    let recheck = (!ended).then(|| {
        now.checked_add(SignedDuration::try_from(RESOLVE_INTERVAL).unwrap_or(SignedDuration::ZERO))
            .unwrap_or(now)
    });
    match (recheck, wake_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn policy(job: &PatchJob, total: usize) -> Result<Policy, JobOutcome> {
    let spec = &job.spec;
    let max_concurrent =
        rollout::max_concurrent(&spec.rollout.max_concurrent, total).map_err(|e| JobOutcome {
            code: "InvalidRollout",
            message: e.to_string(),
        })?;
    Ok(Policy {
        max_concurrent,
        error_policy: spec.rollout.error_policy,
        outside_window: OutsideWindow::Wait,
        blackout: BlackoutRule::Cancel,
        max_wait: SignedDuration::try_from(spec.max_wait.get()).unwrap_or(SignedDuration::MAX),
        suspend: spec.suspend,
    })
}

/// The PatchJob's status with its tasks as they stand and the round's `outcome`. An Install or
/// Uninstall job also reports, for every product its packages name, the level each of its
/// targets is at (`consistency`) and the `Consistent` condition.
pub fn status(
    job: &PatchJob,
    tasks: &[Child<'_>],
    hosts: &[HostInfo<'_>],
    outcome: Option<&JobOutcome>,
    gate: &Gate,
    now: Timestamp,
) -> PatchJobStatus {
    let generation = job.metadata.generation;
    let previous = job.status.clone().unwrap_or_default();
    let children: Vec<ChildTask<'_, HostCode>> = tasks
        .iter()
        .map(|t| ChildTask {
            target: t.target,
            code: t.code,
            result: CatalogueCode::result(t.code),
            finished_at: t.finished_at,
            message: t.message,
        })
        .collect();
    let mut status = PatchJobStatus {
        observed_generation: generation,
        summary: parent::summarize(&children),
        first_failures: parent::first_failures(&children),
        consistency: Vec::new(),
        code: None,
        message: None,
        conditions: previous.conditions,
    };
    let progress = match outcome {
        Some(o) if tasks.is_empty() => {
            status.code = Some(o.code.to_string());
            status.message = Some(o.message.clone());
            Progress::new(Phase::Stalled, o.code, o.message.clone())
        }
        Some(o) => Progress::new(Phase::Stalled, o.code, o.message.clone()),
        None => parent::progress(&status.summary, job.spec.suspend, gate),
    };
    parent::set_conditions(
        &mut status.conditions,
        &progress,
        job.spec.suspend,
        generation,
        now,
    );
    if job.spec.operation != Operation::Patch {
        let mut products: Vec<&str> = Vec::new();
        for package in &job.spec.packages {
            if !products.contains(&package.product.as_str()) {
                products.push(&package.product);
            }
        }
        let targets: BTreeSet<&str> = tasks.iter().map(|t| t.target).collect();
        status.consistency = consistency::consistency(
            &products,
            hosts
                .iter()
                .filter(|h| targets.contains(h.name))
                .map(|h| (h.name, h.products)),
        );
        crate::api::conditions::set(
            &mut status.conditions,
            consistency::consistent_condition(&status.consistency),
            generation,
            now,
        );
    }
    status
}

#[cfg(test)]
mod tests;
