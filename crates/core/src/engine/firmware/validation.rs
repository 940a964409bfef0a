//! The validation pipeline of a firmware task, in the contract's order: the first check that
//! applies decides the task's code. It asks for one device reading at a time and never reads
//! more than the next check needs. Step 13 (a patch that is not running) is decided by
//! `engine::devicepatch::not_in_effect`, the one rule for it.

use std::collections::BTreeSet;

use super::image::{ApplianceImage, Feature, ImageFormat, ImageNameError, Model};
use super::observe::{Action, CallError, DeviceFamily, DomainStatus, Facts, FaultKind, ImageEntry};
use super::version::{FirmwareVersion, same_version};
use crate::api::FirmwareUpgradeSpec;
use crate::api::codes::FirmwareCode;
use crate::engine::size::format_bytes;

/// What is known so far about the target, filled in one reading at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readings {
    /// The answer to [`Action::ReadFacts`].
    pub facts: Option<Result<Facts, CallError>>,
    /// The answer to [`Action::ReadLicenses`].
    pub licenses: Option<Result<Vec<String>, CallError>>,
    /// The answer to [`Action::ReadDomainStatus`].
    pub domains: Option<Result<DomainStatus, CallError>>,
}

/// The inputs of validation besides the device readings.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The resource's spec.
    pub spec: &'a FirmwareUpgradeSpec,
    /// How the device is driven.
    pub family: DeviceFamily,
    /// Whether the Device object exists.
    pub device_exists: bool,
    /// The image's entry in the repository, if it is there.
    pub image: Option<&'a ImageEntry>,
}

/// A failed check: the code, a message for the user, and whether it carries an incident id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The task's code.
    pub code: FirmwareCode,
    /// What happened, for this target.
    pub message: String,
}

impl Failure {
    fn new(code: FirmwareCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Every device check passed: the versions the execution works with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passed {
    /// The firmware the device ran at validation (pre-checks compare against it).
    pub device_firmware: String,
    /// The version the image installs (success means the device reports it).
    pub target_version: String,
}

/// The verdict of one pass over the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The next check needs this reading.
    Need(Action),
    /// A check failed.
    Fail(Failure),
    /// Every device check passed.
    Pass(Passed),
}

/// Runs the checks in order on what is known, and says what is needed next or how it ended.
pub fn validate(subject: Subject<'_>, readings: &Readings) -> Verdict {
    match run(subject, readings) {
        Ok(passed) => Verdict::Pass(passed),
        Err(Step::Need(action)) => Verdict::Need(action),
        Err(Step::Fail(failure)) => Verdict::Fail(failure),
    }
}

enum Step {
    Need(Action),
    Fail(Failure),
}

fn fail<T>(code: FirmwareCode, message: impl Into<String>) -> Result<T, Step> {
    Err(Step::Fail(Failure::new(code, message)))
}

fn need<T>(
    reading: &Option<Result<T, CallError>>,
    action: Action,
) -> Result<&Result<T, CallError>, Step> {
    reading.as_ref().ok_or(Step::Need(action))
}

fn run(subject: Subject<'_>, readings: &Readings) -> Result<Passed, Step> {
    use FirmwareCode::*;
    let spec = subject.spec;
    let appliance = subject.family == DeviceFamily::Appliance;

    // 1. The target exists.
    if !subject.device_exists {
        return fail(
            SkippedDeviceDoesNotExist,
            "no Device with this name in the namespace",
        );
    }
    // 2. The device answers.
    let facts = match need(&readings.facts, Action::ReadFacts)? {
        Ok(facts) => facts,
        Err(e) if e.kind == FaultKind::Unreachable => {
            return fail(
                SkippedDeviceNotAvailable,
                format!("reading the device's facts failed: {e}"),
            );
        }
        Err(e) => {
            return fail(
                ErrorExceptionInPreValidations,
                format!("reading the device's facts failed: {e}"),
            );
        }
    };
    // 3. The device is of the appliance family.
    let model = if appliance {
        let Some(model) = Model::from_device_type(&facts.model) else {
            return fail(
                ErrorUnsupportedDeviceType,
                format!(
                    "device type {:?} is not supported; supported: IDG, XB62, XI52, XG45",
                    facts.model
                ),
            );
        };
        Some(model)
    } else {
        None
    };
    // 4. The image is in the repository.
    let Some(image) = subject.image else {
        return fail(
            ErrorImageFileDoesNotExist,
            format!("image {:?} is not in the image repository", spec.image),
        );
    };
    // 5–8. The image name: format, version, model group, physical or virtual.
    let (target, image_features) = if let Some(model) = model {
        let parsed = match ApplianceImage::parse(&image.name) {
            Ok(parsed) => parsed,
            Err(e @ ImageNameError::UnknownFormat { .. }) => {
                return fail(ErrorUnknownImageFileFormat, e.to_string());
            }
            Err(e @ ImageNameError::Unparseable { .. }) => {
                return fail(ErrorCouldNotParseImageFileName, e.to_string());
            }
        };
        if parsed.model != model {
            return fail(
                ErrorDeviceAndImageModelGroupsAreDifferent,
                format!(
                    "the image is for {} but the device is {}",
                    parsed.model, model
                ),
            );
        }
        match (parsed.format, facts.r#virtual) {
            (ImageFormat::Scrypt3, true) => {
                return fail(
                    ErrorImageNotDesignedForVirtualDevices,
                    "a scrypt3 image is for physical appliances; this device is virtual",
                );
            }
            (ImageFormat::Scrypt4, false) => {
                return fail(
                    ErrorImageNotDesignedForPhysicalDevices,
                    "a scrypt4 image is for virtual appliances; this device is physical",
                );
            }
            _ => {}
        }
        (parsed.version.to_string(), parsed.features)
    } else {
        let Some(version) = image.catalog_version.as_deref() else {
            return fail(
                ErrorCouldNotParseImageFileName,
                format!(
                    "image {:?} has no version: give it one in the repository's catalog.yaml",
                    image.name
                ),
            );
        };
        // Servers' versions are not always numbers ("U46 v2.90"): see `same_version`.
        (version.trim().to_string(), Vec::new())
    };
    // 9. Versions.
    if same_version(&facts.firmware, &target) {
        return fail(
            ErrorDeviceAndImageVersionsAreIdentical,
            format!("the device already runs {}", facts.firmware.trim()),
        );
    }
    match (
        facts.firmware.parse::<FirmwareVersion>(),
        target.parse::<FirmwareVersion>(),
    ) {
        (Ok(current), Ok(target)) if target < current => {
            if target.release() != current.release() {
                return fail(
                    ErrorDowngradeNotSupported,
                    format!(
                        "the image's {target} is older than the device's {current} and from another release"
                    ),
                );
            }
            if !spec.allow_downgrade {
                return fail(
                    ErrorDowngradeMajorReleaseNotApproved,
                    format!(
                        "the image's {target} is older than the device's {current}; set allowDowngrade: true to approve"
                    ),
                );
            }
        }
        (Err(_), _) if appliance => {
            return fail(
                ErrorExceptionInPreValidations,
                format!(
                    "the device reports firmware {:?}, which is not a version",
                    facts.firmware
                ),
            );
        }
        // A newer version, or (servers) versions that are not both numbers: no order to judge
        // a downgrade by.
        _ => {}
    }
    if appliance {
        // 10. Licensed features.
        let licenses = match need(&readings.licenses, Action::ReadLicenses)? {
            Ok(licenses) => licenses,
            Err(e) => {
                return fail(
                    ErrorWhileGettingDeviceLicenses,
                    format!("reading the device's licenses failed: {e}"),
                );
            }
        };
        let device_features: BTreeSet<Feature> = licenses
            .iter()
            .filter_map(|l| Feature::from_license_name(l))
            .collect();
        let image_features: BTreeSet<Feature> = image_features.into_iter().collect();
        let missing_in_image = names(device_features.difference(&image_features));
        if !missing_in_image.is_empty() && !spec.allow_missing_device_features {
            return fail(
                ErrorDeviceFeaturesNotFoundInImage,
                format!(
                    "the image lacks {missing_in_image}, which the device has; set allowMissingDeviceFeatures: true to approve"
                ),
            );
        }
        let missing_on_device = names(image_features.difference(&device_features));
        if !missing_on_device.is_empty() {
            return fail(
                ErrorImageFeaturesNotFoundInDevice,
                format!(
                    "the image carries {missing_on_device}, which the device is not licensed for"
                ),
            );
        }
        // 11. Free space.
        let short = |free: Option<u64>| free.filter(|f| *f < image.size);
        if let Some(free) = short(facts.free_encrypted) {
            return fail(
                ErrorNotEnoughFreeEncryptedSpaceOnDevice,
                format!(
                    "the image needs {} but the encrypted file system has {} free",
                    format_bytes(image.size),
                    format_bytes(free)
                ),
            );
        }
        if let Some(free) = short(facts.free_temporary) {
            return fail(
                ErrorNotEnoughFreeTempSpaceOnDevice,
                format!(
                    "the image needs {} but the temporary file system has {} free",
                    format_bytes(image.size),
                    format_bytes(free)
                ),
            );
        }
        // 12. Domains and unsaved changes.
        let domains = match need(&readings.domains, Action::ReadDomainStatus)? {
            Ok(domains) => domains,
            Err(e) if e.kind == FaultKind::Error => {
                return fail(
                    ErrorGettingSourceDomainStatus,
                    format!("reading the domain status failed: {e}"),
                );
            }
            Err(e) => {
                return fail(
                    ErrorExceptionWhileGettingSourceDomainStatus,
                    format!("reading the domain status failed: {e}"),
                );
            }
        };
        if domains.unsaved_changes {
            return fail(
                ErrorFoundUnsavedChangesOnDevice,
                "the running configuration has unsaved changes: save them, then retry",
            );
        }
    }
    // 13. Every patch on the device takes effect (every family).
    if let Some(refusal) = crate::engine::devicepatch::not_in_effect(&facts.patches) {
        return fail(ErrorDevicePatchNotRunning, refusal.message());
    }
    Ok(Passed {
        device_firmware: facts.firmware.clone(),
        target_version: target,
    })
}

fn names<'a>(features: impl Iterator<Item = &'a Feature>) -> String {
    features
        .map(|f| f.license_name())
        .collect::<Vec<_>>()
        .join(", ")
}
