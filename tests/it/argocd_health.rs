//! The chart's Argo CD health script (`charts/upkeep/files/argocd-health.lua`) in a real Lua 5.1
//! runtime (Argo CD runs gopher-lua, a Lua 5.1), fed objects the real controllers rendered in the
//! in-memory API, handed over as Argo CD hands `obj` to the script (JSON turned into tables, null
//! into nil).
//!
//! The cases are a table: a [`Setting`] is one simulated world (fleet devices and manifests) run
//! for a while, and each [`Case`] names an object of it, the [`Moment`] it is looked at, and what
//! the script must say. A new kind (PatchJob, Host, DevicePatch) gets a setting of its own and a
//! `#[test]` that runs it; [`CONTRACT_KINDS`] already lists it, so the chart README's argocd-cm
//! lines are checked for it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::on_virtual_clock;
use futures::{StreamExt as _, TryStreamExt as _};
use jiff::SignedDuration;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt as _, Table};
use serde_json::{Value, json};
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::runner::{Scenario, World};

const SCRIPT: &str = include_str!("../../charts/upkeep/files/argocd-health.lua");
const CHART_README: &str = include_str!("../../charts/upkeep/README.md");
const START: &str = "2026-11-23T09:00:00Z";

/// Every kind of the contract, implemented or not: the script is generic, and the chart README
/// gives each its argocd-cm line.
const CONTRACT_KINDS: &[&str] = &[
    "MaintenanceWindow",
    "Device",
    "FirmwareUpgrade",
    "PatchJob",
    "Host",
    "DevicePatch",
    "UpgradeTask",
];

/// When an object is looked at.
#[derive(Clone, Debug)]
enum Moment {
    /// As first stored (for what a user applies: before the operator ran; for tasks: as their
    /// parent's controller created them): no status.
    Created,
    /// The first stored version in which this condition is `True`, with this reason (any when
    /// empty): a state on the way.
    WhenTrue(&'static str, &'static str),
    /// When the run is over.
    End,
    /// After the run, with this merge patch applied to it while no operator runs: its
    /// `observedGeneration` lags `generation`.
    Changed(Value),
}

/// What the script must say of one object at one moment.
#[derive(Clone, Debug)]
struct Case {
    kind: &'static str,
    name: &'static str,
    moment: Moment,
    /// The Argo CD health status.
    status: &'static str,
    /// The condition whose message the script must give, when one decides.
    decided_by: Option<&'static str>,
    /// A part of the message.
    message: &'static str,
}

/// One simulated world and the cases looked at in it.
struct Setting {
    /// Fleet device entries (flow YAML).
    devices: &'static [&'static str],
    /// The manifests applied.
    manifests: &'static str,
    /// How long the controllers run at most (virtual time).
    run_for: SignedDuration,
    cases: Vec<Case>,
}

fn case(
    kind: &'static str,
    name: &'static str,
    moment: Moment,
    status: &'static str,
    decided_by: Option<&'static str>,
    message: &'static str,
) -> Case {
    Case {
        kind,
        name,
        moment,
        status,
        decided_by,
        message,
    }
}

const FIRMWARE: &str = r#"
apiVersion: upkeep.dev/v1alpha1
kind: FirmwareUpgrade
metadata: { name: fw-ok }
spec: { image: idg7519.oradco.scrypt4, targets: { names: [dp-1] } }
---
apiVersion: upkeep.dev/v1alpha1
kind: FirmwareUpgrade
metadata: { name: fw-bad }
spec: { image: idg7519.oradco.scrypt4, targets: { names: [dp-2] } }
---
apiVersion: upkeep.dev/v1alpha1
kind: FirmwareUpgrade
metadata: { name: fw-none }
spec: { image: idg7519.oradco.scrypt4, targets: { pattern: "nothing-*" } }
---
apiVersion: upkeep.dev/v1alpha1
kind: FirmwareUpgrade
metadata: { name: fw-held }
spec: { image: idg7519.oradco.scrypt4, targets: { names: [dp-3] }, suspend: true }
"#;

/// FirmwareUpgrades and their UpgradeTasks: a rollout that succeeds, one whose target fails,
/// one that matches no device, and a suspended one.
fn firmware() -> Setting {
    use Moment::*;
    let changed = Changed(json!({"spec": {"allowDowngrade": true}}));
    Setting {
        devices: &[
            "{ name: dp-1 }",
            "{ name: dp-2, unsavedChanges: true }",
            "{ name: dp-3 }",
        ],
        manifests: FIRMWARE,
        run_for: SignedDuration::from_hours(2),
        cases: vec![
            case(
                "FirmwareUpgrade",
                "fw-ok",
                Created,
                "Progressing",
                None,
                "no status yet",
            ),
            case(
                "FirmwareUpgrade",
                "fw-held",
                Created,
                "Suspended",
                None,
                "spec.suspend",
            ),
            case(
                "FirmwareUpgrade",
                "fw-ok",
                WhenTrue("Reconciling", "Resolving"),
                "Progressing",
                Some("Reconciling"),
                "resolving the targets",
            ),
            case(
                "FirmwareUpgrade",
                "fw-ok",
                WhenTrue("Reconciling", "RollingOut"),
                "Progressing",
                Some("Reconciling"),
                "0 of 1 targets done",
            ),
            case(
                "FirmwareUpgrade",
                "fw-ok",
                End,
                "Healthy",
                Some("Ready"),
                "all 1 targets done",
            ),
            case(
                "FirmwareUpgrade",
                "fw-bad",
                End,
                "Degraded",
                Some("Stalled"),
                "1 of 1 targets failed",
            ),
            case(
                "FirmwareUpgrade",
                "fw-none",
                End,
                "Degraded",
                Some("Stalled"),
                "no Device",
            ),
            case(
                "FirmwareUpgrade",
                "fw-held",
                End,
                "Suspended",
                None,
                "spec.suspend",
            ),
            case(
                "FirmwareUpgrade",
                "fw-ok",
                changed,
                "Progressing",
                None,
                "observe generation 2",
            ),
            // Tasks are created by the controller, without status; their spec is immutable, so
            // their observedGeneration never lags.
            case(
                "UpgradeTask",
                "fw-ok-dp-1",
                Created,
                "Progressing",
                None,
                "no status yet",
            ),
            case(
                "UpgradeTask",
                "fw-ok-dp-1",
                WhenTrue("Reconciling", "ExecutionUpgradeWaitingForUpgrade"),
                "Progressing",
                Some("Reconciling"),
                "",
            ),
            case(
                "UpgradeTask",
                "fw-ok-dp-1",
                End,
                "Healthy",
                Some("Ready"),
                "7.5.1.9",
            ),
            case(
                "UpgradeTask",
                "fw-bad-dp-2",
                End,
                "Degraded",
                Some("Stalled"),
                "unsaved",
            ),
            case(
                "UpgradeTask",
                "fw-held-dp-3",
                End,
                "Progressing",
                Some("Reconciling"),
                "",
            ),
        ],
    }
}

const WINDOWS: &str = r#"
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceWindow
metadata: { name: nightly }
spec: { schedule: "0 22 * * *", duration: 2h }
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceWindow
metadata: { name: bad-zone }
spec: { schedule: "0 22 * * *", timeZone: Mars/Olympus, duration: 2h }
"#;

/// Devices (one answering, one not) and MaintenanceWindows (one valid, one in no real time
/// zone). Neither kind has `Reconciling` or `spec.suspend`.
fn inventory() -> Setting {
    use Moment::*;
    Setting {
        devices: &["{ name: dp-1 }", "{ name: dp-2, available: false }"],
        manifests: WINDOWS,
        run_for: SignedDuration::from_mins(10),
        cases: vec![
            case(
                "Device",
                "dp-1",
                Created,
                "Progressing",
                None,
                "no status yet",
            ),
            case(
                "Device",
                "dp-1",
                End,
                "Healthy",
                Some("Ready"),
                "firmware 7.5.1.7",
            ),
            case("Device", "dp-2", End, "Degraded", Some("Stalled"), ""),
            case(
                "Device",
                "dp-1",
                Changed(json!({"spec": {"tls": {"insecureSkipVerify": true}}})),
                "Progressing",
                None,
                "observe generation 2",
            ),
            case(
                "MaintenanceWindow",
                "nightly",
                Created,
                "Progressing",
                None,
                "no status yet",
            ),
            case(
                "MaintenanceWindow",
                "nightly",
                End,
                "Healthy",
                Some("Ready"),
                "opens at",
            ),
            case(
                "MaintenanceWindow",
                "bad-zone",
                End,
                "Degraded",
                Some("Stalled"),
                "Mars/Olympus",
            ),
            case(
                "MaintenanceWindow",
                "nightly",
                Changed(json!({"spec": {"duration": "3h"}})),
                "Progressing",
                None,
                "observe generation 2",
            ),
        ],
    }
}

#[test]
fn firmware_upgrades_and_their_tasks() {
    check(firmware());
}

#[test]
fn devices_and_windows() {
    check(inventory());
}

/// What the script says of `object`: its health status and message.
fn health(object: &Value) -> (String, String) {
    let lua = Lua::new();
    // As Argo CD hands objects over: maps and lists become tables, null becomes nil.
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
        .set_array_metatable(false);
    let obj = lua.to_value_with(object, options).unwrap();
    lua.globals().set("obj", obj).unwrap();
    let verdict: Table = lua
        .load(SCRIPT)
        .set_name("argocd-health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("the script failed on {object}: {e}"));
    (
        verdict.get("status").unwrap(),
        verdict.get("message").unwrap(),
    )
}

fn resource(kind: &str) -> ApiResource {
    let crd = upkeep::api::crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD of kind {kind}"));
    ApiResource {
        group: crd.spec.group.clone(),
        version: upkeep::api::VERSION.into(),
        api_version: upkeep::api::API_VERSION.into(),
        kind: kind.into(),
        plural: crd.spec.names.plural.clone(),
    }
}

fn api(client: &Client, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), "default", &resource(kind))
}

fn is_true(object: &Value, condition: &str, reason: &str) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter().any(|c| {
                c["type"] == condition
                    && c["status"] == "True"
                    && (reason.is_empty() || c["reason"] == reason)
            })
        })
}

fn message_of(object: &Value, condition: &str) -> String {
    object["status"]["conditions"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["type"] == condition))
        .and_then(|c| c["message"].as_str())
        .unwrap_or_else(|| panic!("no {condition} condition in {object}"))
        .to_string()
}

/// Every version of the objects of `kinds`, as watches saw them, by (kind, name), oldest first,
/// while the controllers ran; then the world after the run.
async fn run(
    setting: &Setting,
    kinds: &[&'static str],
) -> (World, BTreeMap<(String, String), Vec<Value>>) {
    let fleet = format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\nimages:\n  - {{ name: idg7519.oradco.scrypt4, size: 600Mi }}\ndevices:\n{}",
        setting
            .devices
            .iter()
            .map(|d| format!("  - {d}\n"))
            .collect::<String>()
    );
    let scenario = Scenario {
        fleet: Fleet::from_yaml(&fleet).unwrap(),
        manifests: serde_saphyr::from_multiple::<Value>(setting.manifests)
            .unwrap()
            .into_iter()
            .filter(|v| !v.is_null())
            .collect(),
        start: START.parse().unwrap(),
        horizon: setting.run_for,
    };
    let world = World::new(&scenario).await.unwrap();
    let client = world.server.client();
    let mut events = futures::stream::select_all(kinds.iter().map(|kind| {
        watcher(api(&client, kind), watcher::Config::default())
            .map_ok(move |event| (*kind, event))
            .boxed()
    }));
    let mut versions: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    let mut keep = |kind: &str, object: DynamicObject| {
        let name = object.metadata.name.clone().unwrap_or_default();
        versions
            .entry((kind.to_string(), name))
            .or_default()
            .push(serde_json::to_value(object).unwrap());
    };
    // The first listings, before any controller writes.
    let mut listed = 0;
    while listed < kinds.len() {
        match events.next().await.unwrap().unwrap() {
            (_, watcher::Event::InitDone) => listed += 1,
            (kind, watcher::Event::InitApply(object)) => keep(kind, object),
            _ => {}
        }
    }
    let end = world.clock.now() + setting.run_for;
    let record = async {
        while let Some(event) = events.next().await {
            if let Ok((kind, watcher::Event::Apply(object) | watcher::Event::InitApply(object))) =
                event
            {
                keep(kind, object);
            }
        }
    };
    let timeout = Duration::from_secs(setting.run_for.as_secs().unsigned_abs() + 3600);
    let finished = tokio::time::timeout(timeout, world.run_until_finished(end, None));
    tokio::select! {
        done = finished => done.expect("the run ends"),
        () = record => panic!("the watches ended"),
    }
    drop(events);
    (world, versions)
}

/// Runs the setting and checks every case.
fn check(setting: Setting) {
    on_virtual_clock(move || async move {
        let mut kinds: Vec<&'static str> = setting.cases.iter().map(|c| c.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let (world, versions) = run(&setting, &kinds).await;
        let client = world.server.client();
        // The end first: the changes come after it.
        let mut order: Vec<&Case> = setting.cases.iter().collect();
        order.sort_by_key(|c| matches!(c.moment, Moment::Changed(_)));
        let mut failures = Vec::new();
        for case in order {
            let seen = versions
                .get(&(case.kind.to_string(), case.name.to_string()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let object = match &case.moment {
                Moment::Created => seen.first().cloned(),
                Moment::WhenTrue(condition, reason) => {
                    seen.iter().find(|o| is_true(o, condition, reason)).cloned()
                }
                Moment::End => world.server.get(case.kind, "default", case.name),
                Moment::Changed(patch) => {
                    api(&client, case.kind)
                        .patch(case.name, &PatchParams::default(), &Patch::Merge(patch))
                        .await
                        .unwrap();
                    world.server.get(case.kind, "default", case.name)
                }
            };
            let Some(object) = object else {
                failures.push(format!(
                    "{case:?}: the controllers never rendered this state"
                ));
                continue;
            };
            if case.moment.is_created() {
                assert!(object.get("status").is_none(), "{case:?}: {object}");
            }
            let (status, message) = health(&object);
            let expected_message = case.decided_by.map(|c| message_of(&object, c));
            let right = status == case.status
                && message.contains(case.message)
                && expected_message.as_ref().is_none_or(|m| *m == message);
            if !right {
                failures.push(format!(
                    "{} {} at {:?}: the script says {status} {message:?}; expected {} with a message containing {:?}{}\n  object: {object}",
                    case.kind,
                    case.name,
                    case.moment,
                    case.status,
                    case.message,
                    expected_message.map(|m| format!(" (the {} condition's: {m:?})", case.decided_by.unwrap_or_default())).unwrap_or_default(),
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    });
}

impl Moment {
    fn is_created(&self) -> bool {
        matches!(self, Self::Created)
    }
}

/// The rules' order where the controllers never produce the conflict (they set exactly one of
/// Ready, Reconciling and Stalled): these objects are written by hand, on purpose.
#[test]
fn the_rules_apply_in_the_contract_s_order() {
    let conditions = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(t, s)| json!({"type": t, "status": s, "message": format!("{t} says so")}))
            .collect::<Vec<_>>()
    };
    let object = |spec: Value, generation: i64, status: Value| {
        json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "PatchJob",
               "metadata": {"name": "x", "generation": generation}, "spec": spec, "status": status})
    };
    let cases = [
        // Suspended before everything, even a stalled or outdated status.
        (
            object(
                json!({"suspend": true}),
                3,
                json!({"observedGeneration": 1, "conditions": conditions(&[("Stalled", "True")])}),
            ),
            "Suspended",
            "suspend",
        ),
        // An outdated status before the conditions it carries.
        (
            object(
                json!({}),
                3,
                json!({"observedGeneration": 2, "conditions": conditions(&[("Stalled", "True")])}),
            ),
            "Progressing",
            "generation 3",
        ),
        (
            object(
                json!({}),
                3,
                json!({"conditions": conditions(&[("Ready", "True")])}),
            ),
            "Progressing",
            "generation 3",
        ),
        // Stalled before Reconciling before Ready.
        (
            object(
                json!({"suspend": false}),
                1,
                json!({"observedGeneration": 1, "conditions": conditions(&[("Ready", "True"), ("Reconciling", "True"), ("Stalled", "True")])}),
            ),
            "Degraded",
            "Stalled says so",
        ),
        (
            object(
                json!({}),
                1,
                json!({"observedGeneration": 1, "conditions": conditions(&[("Ready", "True"), ("Reconciling", "True"), ("Stalled", "False")])}),
            ),
            "Progressing",
            "Reconciling says so",
        ),
        (
            object(
                json!({}),
                1,
                json!({"observedGeneration": 1, "conditions": conditions(&[("Ready", "True")])}),
            ),
            "Healthy",
            "Ready says so",
        ),
        // Anything else: still progressing, with what Ready says.
        (
            object(
                json!({}),
                1,
                json!({"observedGeneration": 1, "conditions": conditions(&[("Ready", "False")])}),
            ),
            "Progressing",
            "Ready says so",
        ),
        (
            object(json!({}), 1, json!({"observedGeneration": 1})),
            "Progressing",
            "waiting for the Ready condition",
        ),
    ];
    for (object, status, message) in cases {
        let (got, said) = health(&object);
        assert_eq!(got, status, "{object}");
        assert!(said.contains(message), "{said:?} for {object}");
    }
}

/// The chart README gives the argocd-cm key of every kind, each holding this script.
#[test]
fn the_chart_readme_configures_every_kind() {
    for crd in upkeep::api::crds() {
        assert!(
            CONTRACT_KINDS.contains(&crd.spec.names.kind.as_str()),
            "{} is missing from CONTRACT_KINDS",
            crd.spec.names.kind
        );
    }
    for kind in CONTRACT_KINDS {
        let key = format!("resource.customizations.health.upkeep.dev_{kind}");
        assert!(CHART_README.contains(&key), "the chart README lacks {key}");
    }
}
