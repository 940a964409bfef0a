//! The CRDs' CEL rules, evaluated offline with kube's client-side validator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::cel::ValidationErrors;

use super::common::{GoDuration, Rollout, TargetSelector};
use super::device::{DriverKind, RedfishTarget, TlsConfig};
use super::maintenance_window::WindowType;
use super::patch_job::{MaintenancePackage, Operation, PackageType};
use super::upgrade_task::ParentKind;
use super::*;

fn messages(result: Result<(), ValidationErrors>) -> Vec<String> {
    match result {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn fwu(targets: TargetSelector, rollout: Rollout) -> FirmwareUpgrade {
    FirmwareUpgrade::new(
        "fw",
        FirmwareUpgradeSpec {
            image: "idg7519.oradco.scrypt4".into(),
            targets,
            rollout,
            ..Default::default()
        },
    )
}

fn named(names: &[&str]) -> TargetSelector {
    TargetSelector {
        names: names.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    }
}

fn at(text: &str) -> Time {
    Time(text.parse().unwrap())
}

#[test]
fn targets_need_names_pattern_or_selector() {
    let empty = messages(fwu(TargetSelector::default(), Rollout::default()).validate_cel());
    assert_eq!(empty.len(), 1, "{empty:?}");
    assert!(empty[0].contains("spec.targets"), "{empty:?}");
    assert!(
        empty[0].contains("set names, pattern or selector"),
        "{empty:?}"
    );

    let by_pattern = TargetSelector {
        pattern: Some("dp-*".into()),
        ..Default::default()
    };
    let by_selector = TargetSelector {
        selector: Some(LabelSelector::default()),
        ..Default::default()
    };
    for ok in [named(&["dp-1"]), by_pattern, by_selector] {
        assert_eq!(
            messages(fwu(ok, Rollout::default()).validate_cel()),
            Vec::<String>::new()
        );
    }
}

#[test]
fn max_concurrent_is_a_positive_integer_or_a_percent_up_to_100() {
    let with = |value: IntOrString| {
        let rollout = Rollout {
            max_concurrent: value,
            ..Default::default()
        };
        messages(fwu(named(&["dp-1"]), rollout).validate_cel())
    };
    for ok in [
        IntOrString::Int(1),
        IntOrString::Int(500),
        IntOrString::String("1%".into()),
        IntOrString::String("25%".into()),
        IntOrString::String("100%".into()),
    ] {
        assert_eq!(with(ok.clone()), Vec::<String>::new(), "{ok:?}");
    }
    for bad in [
        IntOrString::Int(0),
        IntOrString::Int(-3),
        IntOrString::String("0%".into()),
        IntOrString::String("101%".into()),
        IntOrString::String("ten".into()),
        IntOrString::String("05".into()),
        IntOrString::String("25 %".into()),
    ] {
        let errors = with(bad.clone());
        assert_eq!(errors.len(), 1, "{bad:?}: {errors:?}");
        assert!(
            errors[0].contains("spec.rollout.maxConcurrent"),
            "{errors:?}"
        );
        assert!(
            errors[0].contains("percentage from 1% to 100%"),
            "{errors:?}"
        );
    }
}

fn window(spec: MaintenanceWindowSpec) -> Vec<String> {
    messages(MaintenanceWindow::new("w", spec).validate_cel())
}

fn recurring() -> MaintenanceWindowSpec {
    MaintenanceWindowSpec {
        type_: WindowType::Maintenance,
        schedule: Some("0 22 * * SAT".into()),
        time_zone: Some("Europe/Berlin".into()),
        duration: Some(GoDuration::from_hours(6)),
        ..Default::default()
    }
}

fn one_time() -> MaintenanceWindowSpec {
    MaintenanceWindowSpec {
        type_: WindowType::Blackout,
        start: Some(at("2026-12-24T00:00:00+01:00")),
        end: Some(at("2026-12-27T00:00:00+01:00")),
        ..Default::default()
    }
}

#[test]
fn a_window_is_recurring_or_one_time() {
    assert_eq!(window(recurring()), Vec::<String>::new());
    assert_eq!(window(one_time()), Vec::<String>::new());

    let both = MaintenanceWindowSpec {
        start: Some(at("2026-12-24T00:00:00Z")),
        end: Some(at("2026-12-25T00:00:00Z")),
        ..recurring()
    };
    let neither = MaintenanceWindowSpec::default();
    let half = MaintenanceWindowSpec {
        schedule: Some("0 22 * * SAT".into()),
        ..Default::default()
    };
    for bad in [both, neither, half] {
        let errors = window(bad);
        assert!(
            errors
                .iter()
                .any(|e| e.contains("either recurring") && e.contains("spec")),
            "{errors:?}"
        );
    }
}

#[test]
fn a_one_time_window_ends_after_it_starts() {
    let backwards = MaintenanceWindowSpec {
        start: Some(at("2026-12-27T00:00:00Z")),
        end: Some(at("2026-12-24T00:00:00Z")),
        ..one_time()
    };
    let errors = window(backwards);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("spec.end") && errors[0].contains("after start"),
        "{errors:?}"
    );

    let empty = MaintenanceWindowSpec {
        end: Some(at("2026-12-24T00:00:00+01:00")),
        ..one_time()
    };
    assert!(!window(empty).is_empty(), "an empty window is rejected");
}

#[test]
fn a_time_zone_needs_a_schedule_and_a_duration_must_be_positive() {
    let zoned = MaintenanceWindowSpec {
        time_zone: Some("UTC".into()),
        ..one_time()
    };
    let errors = window(zoned);
    assert!(
        errors.iter().any(|e| e.contains("spec.timeZone")),
        "{errors:?}"
    );

    let zero = MaintenanceWindowSpec {
        duration: Some(GoDuration::default()),
        ..recurring()
    };
    let errors = window(zero);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("spec.duration") && e.contains("longer than zero")),
        "{errors:?}"
    );
}

fn device(spec: DeviceSpec) -> Vec<String> {
    messages(Device::new("dp-1", spec).validate_cel())
}

#[test]
fn the_redfish_block_is_for_the_redfish_driver() {
    let redfish = RedfishTarget {
        system: Some("1".into()),
        component: Some("BIOS".into()),
    };
    let ok = DeviceSpec {
        driver: DriverKind::Redfish,
        address: "https://10.0.0.9".into(),
        redfish: Some(redfish.clone()),
        ..Default::default()
    };
    assert_eq!(device(ok.clone()), Vec::<String>::new());
    let errors = device(DeviceSpec {
        driver: DriverKind::Upkeep,
        ..ok
    });
    assert!(
        errors.iter().any(|e| e.contains("spec.redfish")),
        "{errors:?}"
    );
}

#[test]
fn tls_is_verified_by_a_ca_or_skipped_not_both() {
    let errors = device(DeviceSpec {
        address: "https://10.0.0.5:5554".into(),
        tls: Some(TlsConfig {
            ca_bundle_secret_ref: Some(common::SecretKeyRef {
                name: "ca".into(),
                key: "ca.crt".into(),
            }),
            insecure_skip_verify: true,
        }),
        ..Default::default()
    });
    assert!(
        errors
            .iter()
            .any(|e| e.contains("spec.tls") && e.contains("not both")),
        "{errors:?}"
    );
}

fn patch_job(operation: Operation, packages: Vec<MaintenancePackage>) -> Vec<String> {
    let spec = PatchJobSpec {
        hosts: named(&["web-1"]),
        operation,
        packages,
        ..Default::default()
    };
    messages(PatchJob::new("pj", spec).validate_cel())
}

fn package(source: Option<&str>) -> MaintenancePackage {
    MaintenancePackage {
        id: "9.0.5-WS-WAS-FP023".into(),
        type_: PackageType::FixPack,
        product: "was".into(),
        source: source.map(str::to_string),
        sha256: None,
    }
}

#[test]
fn package_operations_need_packages_and_install_needs_sources() {
    assert_eq!(patch_job(Operation::Patch, vec![]), Vec::<String>::new());
    assert_eq!(
        patch_job(Operation::Install, vec![package(Some("fixpacks/fp23.pak"))]),
        Vec::<String>::new()
    );
    assert_eq!(
        patch_job(Operation::Uninstall, vec![package(None)]),
        Vec::<String>::new()
    );

    let errors = patch_job(Operation::Install, vec![]);
    assert!(
        errors.iter().any(|e| e.contains("need at least one entry")),
        "{errors:?}"
    );
    let errors = patch_job(Operation::Install, vec![package(None)]);
    assert!(
        errors.iter().any(|e| e.contains("needs a source")),
        "{errors:?}"
    );
    let errors = patch_job(Operation::Patch, vec![package(Some("x.pak"))]);
    assert!(
        errors.iter().any(|e| e.contains("patch.packages")),
        "{errors:?}"
    );
}

#[test]
fn an_http_source_needs_a_sha256_of_64_hex_digits() {
    let with = |source: &str, sha256: Option<&str>| {
        let mut p = package(Some(source));
        p.sha256 = sha256.map(str::to_string);
        patch_job(Operation::Install, vec![p])
    };
    let sha = "ab".repeat(32);
    for source in ["https://repo.example/fp23.pak", "http://10.0.0.5/fp23.pak"] {
        let errors = with(source, None);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("spec.packages[0].sha256")
                && errors[0].contains("needs the package's sha256")
                && errors[0].contains("sha256sum"),
            "{errors:?}"
        );
        assert_eq!(with(source, Some(&sha)), Vec::<String>::new());
    }
    // A relative source may carry one (then it is verified) or not.
    assert_eq!(with("fixpacks/fp23.pak", None), Vec::<String>::new());
    assert_eq!(with("fixpacks/fp23.pak", Some(&sha)), Vec::<String>::new());
}

#[test]
fn an_upgrade_task_spec_is_immutable() {
    let task = |target: &str| {
        UpgradeTask::new(
            "fw-dp-1",
            UpgradeTaskSpec {
                parent_kind: ParentKind::FirmwareUpgrade,
                parent: "fw".into(),
                target: target.into(),
            },
        )
    };
    assert!(task("dp-1").validate_cel_update(&task("dp-1")).is_ok());
    let errors = messages(task("dp-2").validate_cel_update(&task("dp-1")));
    assert!(errors.iter().any(|e| e.contains("immutable")), "{errors:?}");
}

#[test]
fn every_crd_is_namespaced_in_the_upkeep_category_with_status() {
    let crds = crds();
    assert_eq!(crds.len(), 7);
    for crd in &crds {
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["upkeep".to_string()][..])
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, VERSION);
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        assert!(
            !version
                .additional_printer_columns
                .as_deref()
                .unwrap_or_default()
                .is_empty()
        );
    }
    let short: Vec<_> = crds
        .iter()
        .map(|c| {
            c.spec
                .names
                .short_names
                .clone()
                .unwrap_or_default()
                .join(",")
        })
        .collect();
    assert_eq!(short, ["mw", "dev", "fwu", "dpatch", "pj", "host", "ut"]);
}

#[test]
fn a_host_product_has_a_command_block_exactly_when_its_installer_is_command() {
    use crate::api::host::{CommandInstaller, HostProduct, InstallerKind};
    let host = |installer, command: Option<CommandInstaller>| {
        crate::api::Host::new(
            "web-1",
            crate::api::HostSpec {
                products: vec![HostProduct {
                    id: "was".into(),
                    location: "/opt/was".into(),
                    installer,
                    command,
                }],
                ..Default::default()
            },
        )
    };
    let command = CommandInstaller {
        install: "tool -i {package}".into(),
        uninstall: "tool -u {id}".into(),
        response_file: None,
        timeout: crate::api::common::GoDuration::from_mins(5),
    };
    assert!(host(InstallerKind::Builtin, None).validate_cel().is_ok());
    assert!(
        host(InstallerKind::Command, Some(command.clone()))
            .validate_cel()
            .is_ok()
    );
    let missing = messages(host(InstallerKind::Command, None).validate_cel());
    assert!(
        missing.iter().any(|e| e.contains("needs a command block")),
        "{missing:?}"
    );
    let stray = messages(host(InstallerKind::Builtin, Some(command)).validate_cel());
    assert!(
        stray.iter().any(|e| e.contains("installer: command only")),
        "{stray:?}"
    );
}

#[test]
fn a_device_patch_gets_the_contract_defaults_and_needs_targets() {
    let manifest = serde_json::json!({
        "apiVersion": "upkeep.dev/v1alpha1",
        "kind": "DevicePatch",
        "metadata": {"name": "sph106"},
        "spec": {
            "patch": "V100R004C01SPH106",
            "package": "V100R004C01SPH106.pkg",
            "targets": {"pattern": "ne-*"}
        }
    });
    let patch: DevicePatch = serde_json::from_value(manifest).unwrap();
    let spec = &patch.spec;
    assert_eq!(
        spec.activation.delay, None,
        "unset: the element keeps its own"
    );
    assert_eq!(spec.activation.timeout, GoDuration::from_mins(30));
    assert!(spec.confirm);
    assert_eq!(spec.max_wait, GoDuration::from_hours(24));
    assert_eq!(spec.rollout, Rollout::default());
    assert!(!spec.suspend);
    assert_eq!(messages(patch.validate_cel()), Vec::<String>::new());

    let untargeted = DevicePatch::new(
        "sph106",
        DevicePatchSpec {
            targets: TargetSelector::default(),
            ..patch.spec.clone()
        },
    );
    let errors = messages(untargeted.validate_cel());
    assert!(
        errors.iter().any(|e| e.contains("spec.targets")),
        "{errors:?}"
    );
    let zero: DevicePatch = serde_json::from_value(serde_json::json!({
        "apiVersion": "upkeep.dev/v1alpha1", "kind": "DevicePatch", "metadata": {"name": "p"},
        "spec": {"patch": "P", "package": "p.pkg", "targets": {"names": ["ne-1"]},
                 "activation": {"delay": "0s"}}
    }))
    .unwrap();
    assert_eq!(zero.spec.activation.delay, Some(GoDuration::default()));
}

#[test]
fn the_device_patch_crd_shows_the_patch_and_the_outcome() {
    let crd = DevicePatch::crd();
    let columns: Vec<String> = crd.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        columns,
        [
            "Patch",
            "Targets",
            "Succeeded",
            "Failed",
            "Running",
            "Package",
            "Code",
            "Ready",
            "Age"
        ]
    );
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["dpatch".to_string()][..])
    );
}
