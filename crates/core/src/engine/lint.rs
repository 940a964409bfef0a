//! Static checks of a resource that need the engine's knowledge rather than the CRD schema:
//! appliance image names, cron expressions, time zones, glob patterns, label selectors and
//! durations that must be positive. `upkeep check` runs them offline; the controllers report the
//! same findings in status.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::firmware::image::{ApplianceImage, ImageNameError};
use super::targets::{glob_pattern, requirement_problem};
use super::updates::{PackageGlobs, SelectionError};
use crate::api::common::{GoDuration, TargetSelector};
use crate::api::host::InstallerKind;
use crate::api::{
    Device, DevicePatch, FirmwareUpgrade, Host, MaintenanceWindow, PatchJob, UpgradeTask,
};
use crate::schedule;

/// One problem with a resource, tied to a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The field, e.g. `spec.image`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it; empty when the message already says.
    pub fix: String,
}

impl Finding {
    fn new(field: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Static checks of a MaintenanceWindow: the cron expression and the time zone.
pub fn maintenance_window(window: &MaintenanceWindow) -> Vec<Finding> {
    let spec = &window.spec;
    let mut findings = Vec::new();
    if let Some(expr) = &spec.schedule
        && let Err(e) = schedule::parse_cron(expr)
    {
        findings.push(Finding::new("spec.schedule", e.to_string(), ""));
    }
    if let Some(zone) = &spec.time_zone
        && let Err(e) = schedule::time_zone(zone)
    {
        findings.push(Finding::new("spec.timeZone", e.to_string(), ""));
    }
    findings
}

/// Static checks of a Device. The CRD schema and CEL rules cover its fields; nothing more to do
/// offline (reachability is checked at run time).
pub fn device(_device: &Device) -> Vec<Finding> {
    Vec::new()
}

/// Static checks of a FirmwareUpgrade: the appliance image name, targets and timeouts.
pub fn firmware_upgrade(upgrade: &FirmwareUpgrade) -> Vec<Finding> {
    let spec = &upgrade.spec;
    let mut findings = Vec::new();
    if ApplianceImage::is_appliance_name(&spec.image) {
        match ApplianceImage::parse(&spec.image) {
            Ok(_) => {}
            Err(e @ ImageNameError::UnknownFormat { .. }) => findings.push(Finding::new(
                "spec.image",
                format!("{e} (the task would end ERROR_UNKNOWN_IMAGE_FILE_FORMAT)"),
                "pick the .scrypt3 image for physical or the .scrypt4 image for virtual appliances",
            )),
            Err(e @ ImageNameError::Unparseable { .. }) => findings.push(Finding::new(
                "spec.image",
                format!("{e} (the task would end ERROR_COULD_NOT_PARSE_IMAGE_FILE_NAME)"),
                "use the image's file name as the vendor ships it",
            )),
        }
    }
    findings.extend(targets("spec.targets", &spec.targets));
    let timeouts = [
        ("spec.quiesceTimeout", spec.quiesce_timeout),
        ("spec.upgradeTimeout", spec.upgrade_timeout),
        ("spec.maxRunDuration", spec.max_run_duration),
        ("spec.maxWait", spec.max_wait),
        ("spec.restart.timeout", spec.restart.timeout),
    ];
    findings.extend(positive(&timeouts));
    findings.extend(unique(
        "spec.maintenanceWindows",
        spec.maintenance_windows.iter(),
    ));
    findings
}

/// Static checks of a DevicePatch: targets, timeouts and window names. A zero
/// `activation.delay` is fine (activate at once); a zero timeout would end its step at once.
pub fn device_patch(patch: &DevicePatch) -> Vec<Finding> {
    let spec = &patch.spec;
    let mut findings = targets("spec.targets", &spec.targets);
    findings.extend(positive(&[
        ("spec.activation.timeout", spec.activation.timeout),
        ("spec.loadTimeout", spec.load_timeout),
        ("spec.confirmTimeout", spec.confirm_timeout),
        ("spec.maxWait", spec.max_wait),
    ]));
    findings.extend(unique(
        "spec.maintenanceWindows",
        spec.maintenance_windows.iter(),
    ));
    findings
}

/// Static checks of a PatchJob: targets, waves, the update globs, packages and their sources,
/// actions and durations.
pub fn patch_job(job: &PatchJob) -> Vec<Finding> {
    let spec = &job.spec;
    let mut findings = targets("spec.hosts", &spec.hosts);
    for (i, wave) in spec.waves.iter().enumerate() {
        findings.extend(selector(
            &format!("spec.waves[{i}].selector"),
            &wave.selector,
        ));
    }
    findings.extend(unique("spec.waves", spec.waves.iter().map(|w| &w.name)));
    if let Some(patch) = &spec.patch {
        for (field, globs) in [
            ("spec.patch.packages", &patch.packages),
            ("spec.patch.exclude", &patch.exclude),
        ] {
            // The agent compiles them the same way; a bad glob fails every host's task.
            if let Err(e) = PackageGlobs::new(field, globs) {
                let SelectionError::Glob { index, .. } = &e;
                findings.push(Finding::new(format!("{field}[{index}]"), e.to_string(), ""));
            }
        }
    }
    findings.extend(unique("spec.packages", spec.packages.iter().map(|p| &p.id)));
    for (i, package) in spec.packages.iter().enumerate() {
        if let Some(source) = &package.source
            && let Some(problem) = source_problem(source)
        {
            findings.push(Finding::new(
                format!("spec.packages[{i}].source"),
                problem,
                "give the package's path inside the package repository, e.g. fixpacks/9.0.5-WS-WAS-FP023.pak, or an http(s) URL without credentials and the package's sha256",
            ));
        }
    }
    if let Some(actions) = &spec.actions {
        let all = actions.pre.iter().chain(&actions.post);
        findings.extend(unique("spec.actions", all.clone().map(|a| &a.name)));
        for (phase, list) in [("pre", &actions.pre), ("post", &actions.post)] {
            for (i, action) in list.iter().enumerate() {
                let field = format!("spec.actions.{phase}[{i}]");
                if action.command.trim().is_empty() {
                    findings.push(Finding::new(
                        format!("{field}.command"),
                        format!(
                            "the command of action {:?} is blank: /bin/sh -c would run nothing",
                            action.name
                        ),
                        "give the command line to run, e.g. systemctl stop myapp",
                    ));
                }
                findings.extend(positive(&[(&format!("{field}.timeout"), action.timeout)]));
            }
        }
    }
    findings.extend(positive(&[
        ("spec.drain.timeout", spec.drain.timeout),
        ("spec.maxWait", spec.max_wait),
        (
            "spec.reboot.deferralInterval",
            spec.reboot.deferral_interval,
        ),
    ]));
    findings.extend(unique(
        "spec.maintenanceWindows",
        spec.maintenance_windows.iter(),
    ));
    findings
}

/// What is wrong with a package source, a path relative to the package repository or an
/// absolute `http(s)://` URL: `None` when nothing is. The sha256 an HTTP source needs is the
/// CRD's CEL rule.
fn source_problem(source: &str) -> Option<String> {
    if let Some(rest) = source
        .strip_prefix("https://")
        .or_else(|| source.strip_prefix("http://"))
    {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            // Not echoed: the message must not repeat the credential.
            return Some("the URL carries credentials (user:password@): everyone who may read the PatchJob would read them; serve the package without them, or give the agent an HTTP package repository (--package-repository URL) and a relative source".into());
        }
        let problem = if authority.is_empty() {
            Some("is a URL without a host")
        } else if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("is a URL with white space or a control character in it")
        } else {
            None
        };
        return problem.map(|p| format!("{source:?} {p}"));
    }
    let problem = if source.contains("://") {
        Some("is a URL of a scheme the agent does not fetch; use http:// or https://")
    } else if source.starts_with('/') {
        Some("is an absolute path; a source is relative to the package repository")
    } else if source.split('/').any(|part| part == "..") {
        Some("leaves the package repository (a '..' segment)")
    } else if source.ends_with('/') {
        Some("names a directory, not a package file")
    } else {
        None
    };
    problem.map(|p| format!("{source:?} {p}"))
}

/// Static checks of a Host: each product's location is a plain absolute path of its own, and a
/// `command` installer is given the package it installs.
pub fn host(host: &Host) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut locations = BTreeSet::new();
    for (i, product) in host.spec.products.iter().enumerate() {
        let location = product.location.trim_end_matches('/');
        if location.split('/').any(|part| part == ".." || part == ".") {
            findings.push(Finding::new(
                format!("spec.products[{i}].location"),
                format!("{:?} has a '.' or '..' segment; the installer works inside the location and nowhere else", product.location),
                "give the product's installation directory as a plain absolute path, e.g. /opt/IBM/WebSphere/AppServer",
            ));
        } else if location.is_empty() {
            findings.push(Finding::new(
                format!("spec.products[{i}].location"),
                "the location is the root directory: a package would write anywhere on the host",
                "give the product's installation directory, e.g. /opt/IBM/WebSphere/AppServer",
            ));
        } else if !locations.insert(location) {
            findings.push(Finding::new(
                format!("spec.products[{i}].location"),
                format!("{:?} is the location of another product too; each product's packages, backups and history live in its own location", product.location),
                "give each product its own installation directory",
            ));
        }
        let Some(command) = product
            .command
            .as_ref()
            .filter(|_| product.installer == InstallerKind::Command)
        else {
            continue;
        };
        if !command.install.contains("{package}") {
            findings.push(Finding::new(
                format!("spec.products[{i}].command.install"),
                "the install command line never names the package to install",
                "put {package} where the vendor tool takes the package file",
            ));
        }
        if !command.uninstall.contains("{id}") && !command.uninstall.contains("{package}") {
            findings.push(Finding::new(
                format!("spec.products[{i}].command.uninstall"),
                "the uninstall command line never names the package to remove",
                "put {id} (the package id) or {package} where the vendor tool takes it",
            ));
        }
    }
    findings
}

/// Static checks of an UpgradeTask: none beyond its schema. Tasks are written by their parent's
/// controller, and a manifest of one is only ever a reference example.
pub fn upgrade_task(_task: &UpgradeTask) -> Vec<Finding> {
    Vec::new()
}

fn targets(field: &str, targets: &TargetSelector) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(pattern) = &targets.pattern
        && let Err(e) = glob_pattern(pattern)
    {
        findings.push(Finding::new(
            format!("{field}.pattern"),
            e.to_string(),
            "use *, ? and [abc] only, e.g. dp-*",
        ));
    }
    if let Some(sel) = &targets.selector {
        findings.extend(selector(&format!("{field}.selector"), sel));
    }
    findings.extend(unique(&format!("{field}.names"), targets.names.iter()));
    findings
}

fn selector(field: &str, selector: &LabelSelector) -> Vec<Finding> {
    selector
        .match_expressions
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, req)| {
            let (part, problem) =
                requirement_problem(&req.operator, req.values.as_deref().unwrap_or_default())?;
            let fix = if part == "operator" {
                "use one of: In, NotIn, Exists, DoesNotExist"
            } else {
                "give values for In and NotIn, none for Exists and DoesNotExist"
            };
            Some(Finding::new(
                format!("{field}.matchExpressions[{i}].{part}"),
                problem,
                fix,
            ))
        })
        .collect()
}

fn positive(durations: &[(&str, GoDuration)]) -> Vec<Finding> {
    durations
        .iter()
        .filter(|(_, d)| d.get() == Duration::ZERO)
        .map(|(field, _)| {
            Finding::new(
                *field,
                "a zero duration would end the step at once",
                "give a positive duration, e.g. 10m",
            )
        })
        .collect()
}

fn unique<'a>(field: &str, names: impl Iterator<Item = &'a String>) -> Vec<Finding> {
    let mut seen = BTreeSet::new();
    names
        .filter(|n| !seen.insert(n.as_str()))
        .map(|n| {
            Finding::new(
                field,
                format!("{n:?} is listed twice"),
                "list each entry once",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FirmwareUpgradeSpec;

    fn upgrade(image: &str) -> FirmwareUpgrade {
        FirmwareUpgrade::new(
            "fw",
            FirmwareUpgradeSpec {
                image: image.into(),
                targets: TargetSelector {
                    names: vec!["dp-1".into()],
                    ..Default::default()
                },
                ..Default::default()
            },
        )
    }

    #[test]
    fn appliance_images_must_parse_other_images_wait_for_run_time() {
        assert!(firmware_upgrade(&upgrade("idg7519.oradco.scrypt4")).is_empty());
        assert!(firmware_upgrade(&upgrade("bios-2.4.1.bin")).is_empty());
        let format = firmware_upgrade(&upgrade("idg7519.oradco.zip"));
        assert!(
            format[0]
                .message
                .contains("ERROR_UNKNOWN_IMAGE_FILE_FORMAT"),
            "{format:?}"
        );
        let version = firmware_upgrade(&upgrade("idg75.scrypt4"));
        assert!(
            version[0]
                .message
                .contains("ERROR_COULD_NOT_PARSE_IMAGE_FILE_NAME"),
            "{version:?}"
        );
    }

    #[test]
    fn device_patches_flag_zero_timeouts_but_not_a_zero_delay() {
        use crate::api::DevicePatchSpec;
        let mut patch = DevicePatch::new(
            "sph106",
            DevicePatchSpec {
                patch: "V100R004C01SPH106".into(),
                package: "V100R004C01SPH106.pkg".into(),
                targets: TargetSelector {
                    pattern: Some("ne-[".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        patch.spec.activation.delay = Some(GoDuration::default());
        patch.spec.activation.timeout = GoDuration::default();
        let fields: Vec<String> = device_patch(&patch).into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["spec.targets.pattern", "spec.activation.timeout"]);
    }

    #[test]
    fn zero_timeouts_and_duplicate_names_are_flagged() {
        let mut fw = upgrade("idg7519.scrypt4");
        fw.spec.upgrade_timeout = GoDuration::default();
        fw.spec.targets.names.push("dp-1".into());
        let findings = firmware_upgrade(&fw);
        let fields: Vec<_> = findings.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["spec.targets.names", "spec.upgradeTimeout"]);
    }
}
