//! A test per rule of the PatchJob plan, with no API server: task creation, waves in order (and
//! reversed for Uninstall), slots, released hosts, disabled hosts (2039), offline agents (2060),
//! another job's hold (2057, then 2037 AnotherJobRunning), blackouts (2038), maxWait (2037
//! NotStartedInTime), the error policy (2060 ErrorPolicy), the window deadline of a start, and
//! the job's status.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::*;
use crate::api::common::{ErrorPolicy, TargetSelector};
use crate::api::conditions::{RECONCILING, STALLED, get};
use crate::api::patch_job::{PatchJobSpec, Wave};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn gate(open: bool, blackout: bool) -> Gate {
    Gate {
        open,
        reason: if blackout {
            "blackout window freeze is open".into()
        } else if open {
            "maintenance window nightly is open".into()
        } else {
            "no maintenance window is open (nightly)".into()
        },
        blackout,
        next_change: None,
    }
}

fn job(max: i32) -> PatchJob {
    let mut job = PatchJob::new(
        "job",
        PatchJobSpec {
            hosts: TargetSelector {
                pattern: Some("*".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    job.spec.rollout.max_concurrent =
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(max);
    job.metadata.namespace = Some("default".into());
    job.metadata.generation = Some(1);
    job
}

fn labels(role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("role".to_string(), role.to_string())])
}

struct Fleet {
    names: Vec<String>,
    labels: Vec<BTreeMap<String, String>>,
}

impl Fleet {
    fn new(hosts: &[(&str, &str)]) -> Self {
        Self {
            names: hosts.iter().map(|(n, _)| n.to_string()).collect(),
            labels: hosts.iter().map(|(_, r)| labels(r)).collect(),
        }
    }

    fn infos(&self) -> Vec<HostInfo<'_>> {
        self.names
            .iter()
            .zip(&self.labels)
            .map(|(name, labels)| HostInfo {
                name,
                labels,
                disabled: false,
                online: true,
                held_by: None,
                products: &[],
            })
            .collect()
    }
}

fn pending(target: &str) -> Child<'_> {
    let code = HostCode {
        code: PatchCode::Pending,
        started: false,
    };
    Child {
        target,
        code,
        counted: code,
        created_at: at(0),
        finished_at: None,
        message: "",
        released: false,
    }
}

fn with(mut child: Child<'_>, code: PatchCode, started: bool) -> Child<'_> {
    child.code = HostCode { code, started };
    child.counted = child.code;
    child
}

fn run(job: &PatchJob, tasks: &[Child<'_>], hosts: &[HostInfo<'_>], gate: &Gate) -> Plan {
    plan(&Input {
        job,
        holder: "PatchJob/default/job",
        tasks,
        hosts,
        gate,
        closes_at: Some(at(3600)),
        now: at(10),
    })
}

fn granted(plan: &Plan, tasks: &[Child<'_>]) -> Vec<String> {
    plan.decisions
        .iter()
        .filter(|(_, d)| matches!(d, HostDecision::Grant { .. }))
        .map(|(i, _)| tasks[*i].target.to_string())
        .collect()
}

#[test]
fn every_matching_host_gets_a_task() {
    let fleet = Fleet::new(&[("web-1", "web"), ("web-2", "web")]);
    let plan = run(&job(1), &[], &fleet.infos(), &gate(true, false));
    assert_eq!(plan.create, ["web-1", "web-2"]);
    let mut none = job(1);
    none.spec.hosts.pattern = Some("db-*".into());
    let plan = run(&none, &[], &fleet.infos(), &gate(true, false));
    assert_eq!(plan.outcome.map(|o| o.code), Some("NoHostsMatching"));
}

#[test]
fn a_host_that_matches_after_the_tasks_exist_gets_one_and_covered_hosts_get_none() {
    let mut web = job(1);
    web.spec.hosts.pattern = Some("web-*".into());
    let tasks = [with(pending("web-1"), PatchCode::Patching, true)];
    let joined = Fleet::new(&[("web-1", "web"), ("db-1", "db"), ("web-2", "web")]);
    let plan = run(&web, &tasks, &joined.infos(), &gate(true, false));
    assert_eq!(plan.create, ["web-2"], "only the new matching host");
    let covered = Fleet::new(&[("web-1", "web")]);
    let plan = run(&web, &tasks, &covered.infos(), &gate(true, false));
    assert!(plan.create.is_empty());
    assert_eq!(plan.outcome, None);
}

#[test]
fn starts_carry_the_window_deadline_and_fill_the_slots_in_name_order() {
    let fleet = Fleet::new(&[("web-1", "web"), ("web-2", "web"), ("web-3", "web")]);
    let tasks = [pending("web-3"), pending("web-1"), pending("web-2")];
    let plan = run(&job(2), &tasks, &fleet.infos(), &gate(true, false));
    assert_eq!(granted(&plan, &tasks), ["web-1", "web-2"]);
    assert!(plan.decisions.iter().all(|(_, d)| *d
        == HostDecision::Grant {
            until: Some(at(3600))
        }));
}

#[test]
fn waves_run_in_order_and_uninstall_reverses_them() {
    let fleet = Fleet::new(&[("dmgr", "dmgr"), ("node-1", "node"), ("node-2", "node")]);
    let mut j = job(5);
    j.spec.waves = vec![
        Wave {
            name: "dmgr".into(),
            selector: LabelSelector {
                match_labels: Some(labels("dmgr")),
                ..Default::default()
            },
        },
        Wave {
            name: "nodes".into(),
            selector: LabelSelector {
                match_labels: Some(labels("node")),
                ..Default::default()
            },
        },
    ];
    let tasks = [pending("dmgr"), pending("node-1"), pending("node-2")];
    let plan1 = run(&j, &tasks, &fleet.infos(), &gate(true, false));
    assert_eq!(granted(&plan1, &tasks), ["dmgr"], "the first wave alone");
    let after = [
        with(pending("dmgr"), PatchCode::Completed, true),
        pending("node-1"),
        pending("node-2"),
    ];
    assert_eq!(
        granted(&run(&j, &after, &fleet.infos(), &gate(true, false)), &after),
        ["node-1", "node-2"]
    );
    j.spec.operation = Operation::Uninstall;
    j.spec.packages = vec![];
    let plan2 = run(&j, &tasks, &fleet.infos(), &gate(true, false));
    assert_eq!(
        granted(&plan2, &tasks),
        ["node-1", "node-2"],
        "nodes before the dmgr"
    );
}

#[test]
fn a_released_host_holds_neither_its_slot_nor_its_wave() {
    let fleet = Fleet::new(&[("web-1", "web"), ("web-2", "web")]);
    let mut released = with(pending("web-1"), PatchCode::PendingReboot, true);
    released.released = true;
    let tasks = [released, pending("web-2")];
    assert_eq!(
        granted(
            &run(&job(1), &tasks, &fleet.infos(), &gate(true, false)),
            &tasks
        ),
        ["web-2"]
    );
}

#[test]
fn not_licensed_when_patch_management_is_disabled() {
    let fleet = Fleet::new(&[("web-1", "web")]);
    let mut hosts = fleet.infos();
    hosts[0].disabled = true;
    let tasks = [pending("web-1")];
    let plan = run(&job(1), &tasks, &hosts, &gate(true, false));
    assert!(matches!(
        &plan.decisions[..],
        [(
            0,
            HostDecision::End(
                PatchCode::NotLicensed,
                Some(PatchReason::PatchManagementDisabled),
                _
            )
        )]
    ));
}

#[test]
fn skipped_when_the_agent_is_offline_at_the_start() {
    let fleet = Fleet::new(&[("web-1", "web")]);
    let mut hosts = fleet.infos();
    hosts[0].online = false;
    let tasks = [pending("web-1")];
    let plan = run(&job(1), &tasks, &hosts, &gate(true, false));
    assert!(matches!(
        &plan.decisions[..],
        [(
            0,
            HostDecision::End(PatchCode::Skipped, Some(PatchReason::AgentOffline), _)
        )]
    ));
}

#[test]
fn another_jobs_hold_blocks_then_times_out_with_the_window() {
    let fleet = Fleet::new(&[("web-1", "web"), ("web-2", "web")]);
    let mut hosts = fleet.infos();
    hosts[0].held_by = Some("PatchJob/default/other");
    let tasks = [pending("web-1"), pending("web-2")];
    let plan = run(&job(1), &tasks, &hosts, &gate(true, false));
    assert_eq!(
        granted(&plan, &tasks),
        ["web-2"],
        "the blocked host takes no slot"
    );
    let block = plan
        .decisions
        .iter()
        .find(|(i, _)| *i == 0)
        .map(|(_, d)| d.clone());
    assert!(matches!(block, Some(HostDecision::Block(m)) if m.contains("PatchJob/default/other")));

    let mut j = job(1);
    j.spec.maintenance_windows = vec!["nightly".into()];
    let blocked = [with(pending("web-1"), PatchCode::ExecutionBlocked, false)];
    let plan = run(&j, &blocked, &hosts, &gate(false, false));
    assert!(matches!(
        &plan.decisions[..],
        [(0, HostDecision::End(PatchCode::TimedOut, Some(PatchReason::AnotherJobRunning), m))] if m.contains("PatchJob/default/other")
    ));
    // Held before its window ever opened: it waits for the window, it does not time out.
    let waiting = [with(pending("web-1"), PatchCode::JobReceived, false)];
    let plan = run(&j, &waiting, &hosts, &gate(false, false));
    assert!(plan.decisions.is_empty(), "{:?}", plan.decisions);
    // Its own hold is no block.
    let mut own = fleet.infos();
    own[0].held_by = Some("PatchJob/default/job");
    assert_eq!(
        granted(&run(&job(1), &tasks, &own, &gate(true, false)), &tasks),
        ["web-1"]
    );
}

#[test]
fn a_blackout_cancels_every_host_not_yet_started() {
    let fleet = Fleet::new(&[("web-1", "web"), ("web-2", "web")]);
    let tasks = [
        with(pending("web-1"), PatchCode::Patching, true),
        with(pending("web-2"), PatchCode::JobReceived, false),
    ];
    let plan = run(&job(2), &tasks, &fleet.infos(), &gate(false, true));
    assert!(matches!(
        &plan.decisions[..],
        [(1, HostDecision::End(PatchCode::CanceledBlackout, None, _))]
    ));
}

#[test]
fn timed_out_when_not_started_within_max_wait() {
    let fleet = Fleet::new(&[("web-1", "web")]);
    let tasks = [pending("web-1")];
    let mut j = job(1);
    j.spec.max_wait = crate::api::common::GoDuration::from_secs(5);
    let plan = run(&j, &tasks, &fleet.infos(), &gate(false, false));
    assert!(matches!(
        &plan.decisions[..],
        [(
            0,
            HostDecision::End(PatchCode::TimedOut, Some(PatchReason::NotStartedInTime), _)
        )]
    ));
}

#[test]
fn error_policy_fail_skips_the_hosts_not_started() {
    let fleet = Fleet::new(&[("web-1", "web"), ("web-2", "web"), ("web-3", "web")]);
    let tasks = [
        with(pending("web-1"), PatchCode::JobFailed, true),
        with(pending("web-2"), PatchCode::Patching, true),
        pending("web-3"),
    ];
    let mut j = job(3);
    j.spec.rollout.error_policy = ErrorPolicy::Fail;
    let plan = run(&j, &tasks, &fleet.infos(), &gate(true, false));
    assert!(matches!(
        &plan.decisions[..],
        [(
            2,
            HostDecision::End(PatchCode::Skipped, Some(PatchReason::ErrorPolicy), _)
        )]
    ));
}

#[test]
fn decisions_apply_to_hosts_not_started_only() {
    let mut task = HostTask::new(at(0), 3);
    assert!(decide(
        &mut task,
        &HostDecision::Grant {
            until: Some(at(60))
        },
        at(5)
    ));
    assert_eq!(task.started_at, Some(at(5)));
    assert_eq!(task.progress.until.as_ref().map(|t| t.0), Some(at(60)));
    let end = HostDecision::End(PatchCode::CanceledBlackout, None, "freeze".into());
    assert!(
        !decide(&mut task, &end, at(6)),
        "a started host is never canceled by the plan"
    );
}

#[test]
fn the_status_counts_hosts_and_stalls_on_failures() {
    let j = job(1);
    let tasks = [
        with(pending("web-1"), PatchCode::Completed, true),
        with(pending("web-2"), PatchCode::JobFailed, true),
        with(pending("web-3"), PatchCode::PendingReboot, true),
        pending("web-4"),
    ];
    let s = status(&j, &tasks, &[], None, &gate(true, false), at(10));
    assert_eq!(
        (
            s.summary.total,
            s.summary.succeeded,
            s.summary.failed,
            s.summary.running,
            s.summary.waiting
        ),
        (4, 1, 1, 1, 1)
    );
    assert_eq!(s.summary.by_code["Pending Reboot"], 1);
    assert_eq!(s.first_failures[0].code, "Job Failed");
    assert_eq!(get(&s.conditions, RECONCILING).unwrap().status, "True");
    let done = [
        with(pending("web-1"), PatchCode::Completed, true),
        with(pending("web-2"), PatchCode::JobFailed, true),
    ];
    let s = status(&j, &done, &[], None, &gate(true, false), at(10));
    assert_eq!(get(&s.conditions, STALLED).unwrap().reason, "TargetsFailed");
}

fn product(version: &str, fixes: &[&str]) -> Vec<ProductStatus> {
    vec![ProductStatus {
        id: "was".into(),
        version: version.into(),
        location: "/opt/was".into(),
        packages: fixes
            .iter()
            .map(|id| crate::api::host::InstalledPackage {
                id: id.to_string(),
                type_: crate::api::patch_job::PackageType::InterimFix,
                installed_at: None,
                backup: true,
                fixes: Vec::new(),
                previous_version: None,
            })
            .collect(),
        ..Default::default()
    }]
}

#[test]
fn an_install_job_reports_the_levels_of_its_targets_and_whether_they_are_one() {
    use crate::api::patch_job::{MaintenancePackage, PackageType};
    use crate::engine::packages::consistency::CONSISTENT;
    let mut j = job(1);
    j.spec.operation = Operation::Install;
    j.spec.packages = vec![MaintenancePackage {
        id: "9.0.5-WS-WAS-IFPH12345".into(),
        type_: PackageType::InterimFix,
        product: "was".into(),
        source: None,
        sha256: None,
    }];
    let fixed = product("9.0.5.23", &["9.0.5-WS-WAS-IFPH12345"]);
    let plain = product("9.0.5.23", &[]);
    let fleet = Fleet::new(&[("web-1", "web"), ("web-2", "web"), ("db-1", "db")]);
    let mut hosts = fleet.infos();
    hosts[0].products = &fixed;
    hosts[1].products = &plain;
    // db-1 is no target of this job: its level is not the job's business.
    hosts[2].products = &fixed;
    let tasks = [
        with(pending("web-1"), PatchCode::Completed, true),
        pending("web-2"),
    ];
    let s = status(&j, &tasks, &hosts, None, &gate(true, false), at(10));
    assert_eq!(s.consistency.len(), 1);
    assert_eq!(s.consistency[0].product, "was");
    assert_eq!(
        s.consistency[0].levels,
        BTreeMap::from([
            ("9.0.5.23".to_string(), vec!["web-2".to_string()]),
            ("9.0.5.23+PH12345".to_string(), vec!["web-1".to_string()]),
        ])
    );
    let c = get(&s.conditions, CONSISTENT).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "MixedLevels")
    );

    hosts[1].products = &fixed;
    let s = status(&j, &tasks, &hosts, None, &gate(true, false), at(10));
    let c = get(&s.conditions, CONSISTENT).unwrap();
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "OneLevel"));
    assert_eq!(c.message, "was at 9.0.5.23+PH12345");

    // A Patch job has no consistency and no such condition.
    j.spec.operation = Operation::Patch;
    let s = status(&j, &tasks, &hosts, None, &gate(true, false), at(10));
    assert!(s.consistency.is_empty() && get(&s.conditions, CONSISTENT).is_none());
}
