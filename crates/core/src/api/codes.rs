//! The catalogue of status codes: every code a task or resource can show, what it means, whether
//! it ends the task, and how it counts. The single source of truth for `upkeep codes`,
//! `docs/status-codes.md` and the engines.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::api::upgrade_task::TaskResult;

/// The resource family a code belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum CodeKind {
    /// Codes of FirmwareUpgrade tasks (and the one whole-resource code).
    FirmwareUpgrade,
    /// Per-host codes of PatchJob tasks.
    PatchJob,
    /// Results of one maintenance package's install or uninstall on a host.
    MaintenancePackage,
}

/// Where in a firmware upgrade a code occurs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Stage {
    /// Resolving the resource's targets.
    Resolution,
    /// Checking a target before it may run.
    Validation,
    /// Validated, waiting for a slot and an open window.
    Queue,
    /// Running on the device.
    Execution,
}

macro_rules! firmware_codes {
    ($( $variant:ident = $name:literal, $stage:ident, $result:ident, $desc:literal; )*) => {
        /// A FirmwareUpgrade code, spelled exactly as the contract spells it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FirmwareCode {
            $(
                #[doc = $desc]
                $variant,
            )*
        }

        impl FirmwareCode {
            /// Every code, in catalogue order.
            pub const ALL: &'static [FirmwareCode] = &[$(FirmwareCode::$variant),*];

            /// The code's name, e.g. `READY_FOR_EXECUTION`.
            pub const fn name(self) -> &'static str {
                match self { $(FirmwareCode::$variant => $name),* }
            }

            /// Where in the upgrade the code occurs.
            pub const fn stage(self) -> Stage {
                match self { $(FirmwareCode::$variant => Stage::$stage),* }
            }

            /// How a task with this code counts; `InProgress` for codes that do not end it.
            pub const fn result(self) -> TaskResult {
                match self { $(FirmwareCode::$variant => TaskResult::$result),* }
            }

            /// What the code means, in a sentence.
            pub const fn description(self) -> &'static str {
                match self { $(FirmwareCode::$variant => $desc),* }
            }
        }

        impl FromStr for FirmwareCode {
            type Err = UnknownCode;

            /// Looks the name up in a table sorted by name: stored statuses are read often.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                static BY_NAME: std::sync::LazyLock<Vec<(&'static str, FirmwareCode)>> = std::sync::LazyLock::new(|| {
                    let mut table: Vec<(&'static str, FirmwareCode)> = vec![$(($name, FirmwareCode::$variant)),*];
                    table.sort_unstable_by_key(|(name, _)| *name);
                    table
                });
                BY_NAME
                    .binary_search_by_key(&s, |(name, _)| *name)
                    .map(|i| BY_NAME[i].1)
                    .map_err(|_| UnknownCode(s.to_string()))
            }
        }
    };
}

firmware_codes! {
    WaitingForPreValidation = "WAITING_FOR_PRE_VALIDATION", Validation, InProgress,
        "The task exists and its checks have not finished yet; it may still end without running.";
    SkippedDeviceDoesNotExist = "SKIPPED_DEVICE_DOES_NOT_EXIST", Validation, Skipped,
        "A target name has no Device object in the namespace, so nothing was done for it.";
    SkippedDeviceNotAvailable = "SKIPPED_DEVICE_NOT_AVAILABLE", Validation, Skipped,
        "The device did not answer when its facts were read, so it was left alone.";
    SkippedNoDevicesMatchingPattern = "SKIPPED_NO_DEVICES_MATCHING_PATTERN", Resolution, Skipped,
        "Whole-resource code: the names, pattern and selector matched no Device, so no task was created.";
    ValidationInternalException = "VALIDATION_INTERNAL_EXCEPTION", Validation, Failed,
        "upkeep itself failed while checking the target; the incident id leads to the log line with the details.";
    SkippedInternalException = "SKIPPED_INTERNAL_EXCEPTION", Resolution, Skipped,
        "upkeep could not work out the targets (for example the Device list could not be read); see the incident id in the log.";
    ErrorExceptionInPreValidations = "ERROR_EXCEPTION_IN_PRE_VALIDATIONS", Validation, Failed,
        "An answer from the device during the checks could not be used; the incident id leads to the details in the log.";
    ErrorImageFileDoesNotExist = "ERROR_IMAGE_FILE_DOES_NOT_EXIST", Validation, Failed,
        "The image named in the resource is not in the image repository.";
    ErrorUnsupportedDeviceType = "ERROR_UNSUPPORTED_DEVICE_TYPE", Validation, Failed,
        "The device's model is not one of the appliance family (IDG, XB62, XI52, XG45).";
    ErrorCouldNotParseImageFileName = "ERROR_COULD_NOT_PARSE_IMAGE_FILE_NAME", Validation, Failed,
        "The image file name does not follow <model><version>.<features>.<format>, e.g. idg7519.oradco.scrypt4.";
    ErrorDeviceAndImageModelGroupsAreDifferent = "ERROR_DEVICE_AND_IMAGE_MODEL_GROUPS_ARE_DIFFERENT", Validation, Failed,
        "The image is built for another model than the device (its name prefix names a different model).";
    ErrorDowngradeNotSupported = "ERROR_DOWNGRADE_NOT_SUPPORTED", Validation, Failed,
        "The image is older than the device's firmware and from an earlier release; downgrades across releases are refused.";
    ErrorDowngradeMajorReleaseNotApproved = "ERROR_DOWNGRADE_MAJOR_RELEASE_NOT_APPROVED", Validation, Failed,
        "The image is older than the device's firmware within the same release; set allowDowngrade: true to approve it.";
    ErrorDeviceAndImageVersionsAreIdentical = "ERROR_DEVICE_AND_IMAGE_VERSIONS_ARE_IDENTICAL", Validation, Failed,
        "The device already runs the image's version; there is nothing to upgrade.";
    ErrorDeviceFeaturesNotFoundInImage = "ERROR_DEVICE_FEATURES_NOT_FOUND_IN_IMAGE", Validation, Failed,
        "The device has licensed features the image lacks; set allowMissingDeviceFeatures: true to go ahead anyway.";
    ErrorImageFeaturesNotFoundInDevice = "ERROR_IMAGE_FEATURES_NOT_FOUND_IN_DEVICE", Validation, Failed,
        "The image carries features the device has no license for; pick an image without them.";
    ErrorUnknownImageFileFormat = "ERROR_UNKNOWN_IMAGE_FILE_FORMAT", Validation, Failed,
        "The image file name ends in a format other than scrypt3 (physical) or scrypt4 (virtual).";
    ErrorImageNotDesignedForVirtualDevices = "ERROR_IMAGE_NOT_DESIGNED_FOR_VIRTUAL_DEVICES", Validation, Failed,
        "A scrypt3 image (for physical appliances) was chosen for a virtual appliance.";
    ErrorImageNotDesignedForPhysicalDevices = "ERROR_IMAGE_NOT_DESIGNED_FOR_PHYSICAL_DEVICES", Validation, Failed,
        "A scrypt4 image (for virtual appliances) was chosen for a physical appliance.";
    ErrorNotEnoughFreeEncryptedSpaceOnDevice = "ERROR_NOT_ENOUGH_FREE_ENCRYPTED_SPACE_ON_DEVICE", Validation, Failed,
        "The device's encrypted file system has less free space than the image needs.";
    ErrorNotEnoughFreeTempSpaceOnDevice = "ERROR_NOT_ENOUGH_FREE_TEMP_SPACE_ON_DEVICE", Validation, Failed,
        "The device's temporary file system has less free space than the image needs.";
    ErrorFoundUnsavedChangesOnDevice = "ERROR_FOUND_UNSAVED_CHANGES_ON_DEVICE", Validation, Failed,
        "The device's running configuration has unsaved changes; save or discard them, then try again.";
    SkippedBecauseErrorPolicy = "SKIPPED_BECAUSE_ERROR_POLICY", Validation, Skipped,
        "Another target failed under errorPolicy: Fail while this one was still being checked, so it was dropped.";
    ExecutionCanceledBecauseErrorPolicy = "EXECUTION_CANCELED_BECAUSE_ERROR_POLICY", Queue, Canceled,
        "Another target failed under errorPolicy: Fail while this one was queued, so it never started.";
    ErrorWhileGettingDeviceLicenses = "ERROR_WHILE_GETTING_DEVICE_LICENSES", Validation, Failed,
        "Reading the device's licensed features failed.";
    ErrorGettingSourceDomainStatus = "ERROR_GETTING_SOURCE_DOMAIN_STATUS", Validation, Failed,
        "The device returned an error when asked for the state of its domains.";
    ErrorExceptionWhileGettingSourceDomainStatus = "ERROR_EXCEPTION_WHILE_GETTING_SOURCE_DOMAIN_STATUS", Validation, Failed,
        "Asking the device for the state of its domains broke off (connection reset or an unreadable answer).";
    PlanFailedPreScript = "PLAN_FAILED_PRE_SCRIPT", Validation, Failed,
        "The prePlan hook Job failed, so the target was not planned.";
    ExecutionCanceledBecauseADayPassed = "EXECUTION_CANCELED_BECAUSE_A_DAY_PASSED", Queue, Canceled,
        "The task waited longer than maxWait (default 24h) after its creation without starting, so it was dropped.";
    ExecutionCanceledBecauseMaintenanceWindow = "EXECUTION_CANCELED_BECAUSE_MAINTENANCE_WINDOW", Queue, Canceled,
        "The task was ready while no allowed window was open (or a blackout was), and outsideWindow is Cancel.";
    ReadyForExecution = "READY_FOR_EXECUTION", Queue, InProgress,
        "Every check passed; the task waits for a rollout slot and an open window.";
    SentToMdb = "SENT_TO_MDB", Execution, InProgress,
        "The task got a rollout slot and was handed to the executor.";
    ExecutionStarted = "EXECUTION_STARTED", Execution, InProgress,
        "The executor took the task and started working on the device.";
    ExecutionPreChecksStarted = "EXECUTION_PRE_CHECKS_STARTED", Execution, InProgress,
        "The device is checked once more right before it is changed.";
    ExecutionPreChecksFoundQuiescedDomainInDevice = "EXECUTION_PRE_CHECKS_FOUND_QUIESCED_DOMAIN_IN_DEVICE", Execution, Failed,
        "A domain on the device is already quiesced; unquiesce every domain before upgrading.";
    ExecutionPreChecksDeviceFirmwareLevelChanged = "EXECUTION_PRE_CHECKS_DEVICE_FIRMWARE_LEVEL_CHANGED", Execution, Failed,
        "The device's firmware changed after validation, so someone else is probably upgrading it; the task stopped.";
    ExecutionPreChecksDeviceNotFound = "EXECUTION_PRE_CHECKS_DEVICE_NOT_FOUND", Execution, Failed,
        "The Device object was deleted before the execution started.";
    ExecutionPreChecksDeviceNotAvailable = "EXECUTION_PRE_CHECKS_DEVICE_NOT_AVAILABLE", Execution, Failed,
        "The device stopped answering before the execution changed anything.";
    ExecutionWaitingForPreScript = "EXECUTION_WAITING_FOR_PRE_SCRIPT", Execution, InProgress,
        "The pre hook Job is running.";
    ExecutionPreScriptError = "EXECUTION_PRE_SCRIPT_ERROR", Execution, Failed,
        "The pre hook Job failed; the device was not changed (the post hook still runs).";
    ExecutionFirstQuiesceStarted = "EXECUTION_FIRST_QUIESCE_STARTED", Execution, InProgress,
        "The optional first quiesce (firstQuiesce: true) was requested from the device.";
    ExecutionSecondQuiesceStarted = "EXECUTION_SECOND_QUIESCE_STARTED", Execution, InProgress,
        "The quiesce that always precedes the upgrade was requested from the device.";
    ExecutionFirstQuiesceWaitingForQuiesce = "EXECUTION_FIRST_QUIESCE_WAITING_FOR_QUIESCE", Execution, InProgress,
        "Waiting for the device to finish the first quiesce.";
    ExecutionSecondQuiesceWaitingForQuiesce = "EXECUTION_SECOND_QUIESCE_WAITING_FOR_QUIESCE", Execution, InProgress,
        "Waiting for the device to finish the quiesce before the upgrade.";
    ExecutionFirstQuiesceTimeoutOccurred = "EXECUTION_FIRST_QUIESCE_TIMEOUT_OCCURRED", Execution, Failed,
        "The first quiesce did not finish within quiesceTimeout plus 3 minutes of grace.";
    ExecutionSecondQuiesceTimeoutOccurred = "EXECUTION_SECOND_QUIESCE_TIMEOUT_OCCURRED", Execution, Failed,
        "The quiesce before the upgrade did not finish within quiesceTimeout plus 3 minutes of grace.";
    ExecutionRestartTimeoutOccurred = "EXECUTION_RESTART_TIMEOUT_OCCURRED", Execution, Failed,
        "The device did not come back within restart.timeout after the optional restart; it was not upgraded.";
    ExecutionRestartWaitingForRestart = "EXECUTION_RESTART_WAITING_FOR_RESTART", Execution, InProgress,
        "The device was told to restart and upkeep waits for it to come back.";
    ExecutionWaitAfterRestartStarted = "EXECUTION_WAIT_AFTER_RESTART_STARTED", Execution, InProgress,
        "The device is back from its restart; upkeep waits restart.waitAfter before going on.";
    ExecutionUploadImageStarted = "EXECUTION_UPLOAD_IMAGE_STARTED", Execution, InProgress,
        "The image upload to the device began.";
    ExecutionWaitingForUploadImage = "EXECUTION_WAITING_FOR_UPLOAD_IMAGE", Execution, InProgress,
        "The image is being transferred to the device.";
    ExecutionUploadImageError = "EXECUTION_UPLOAD_IMAGE_ERROR", Execution, Failed,
        "The device rejected the image upload; the message carries its answer.";
    ExecutionUpgradeStarted = "EXECUTION_UPGRADE_STARTED", Execution, InProgress,
        "The device was told to install the uploaded image.";
    ExecutionUpgradeWaitingForUpgrade = "EXECUTION_UPGRADE_WAITING_FOR_UPGRADE", Execution, InProgress,
        "The device installs the image and restarts; upkeep waits for it to report the new version.";
    ExecutionUpgradeTimeoutOccurred = "EXECUTION_UPGRADE_TIMEOUT_OCCURRED", Execution, Failed,
        "The device did not report the new version within upgradeTimeout; check by hand whether it upgraded.";
    ExecutionUnquiesceOnErrorStarted = "EXECUTION_UNQUIESCE_ON_ERROR_STARTED", Execution, InProgress,
        "A step failed while the device was quiesced; upkeep asked the device to unquiesce before ending the task.";
    ExecutionUnquiesceOnErrorWaitingForUnquiesce = "EXECUTION_UNQUIESCE_ON_ERROR_WAITING_FOR_UNQUIESCE", Execution, InProgress,
        "Waiting for the device to unquiesce after a failed step.";
    ExecutionUnquiesceOnErrorTimeoutOccurred = "EXECUTION_UNQUIESCE_ON_ERROR_TIMEOUT_OCCURRED", Execution, Failed,
        "After a failed step, the device did not unquiesce within quiesceTimeout plus 3 minutes; the message names the first failure.";
    ExecutionUploadImageException = "EXECUTION_UPLOAD_IMAGE_EXCEPTION", Execution, Failed,
        "The image upload broke off (connection reset or an unreadable answer).";
    ExecutionUpgradeExceptionOccurred = "EXECUTION_UPGRADE_EXCEPTION_OCCURRED", Execution, Failed,
        "Starting or following the upgrade broke off (connection reset or an unreadable answer).";
    ExecutionSecondQuiesceExceptionOccurred = "EXECUTION_SECOND_QUIESCE_EXCEPTION_OCCURRED", Execution, Failed,
        "The quiesce before the upgrade broke off (connection reset or an unreadable answer).";
    ExecutionUnquiesceOnErrorExceptionOccurred = "EXECUTION_UNQUIESCE_ON_ERROR_EXCEPTION_OCCURRED", Execution, Failed,
        "After a failed step, the unquiesce request broke off; the message names the first failure.";
    ExecutionFailedWithInternalException = "EXECUTION_FAILED_WITH_INTERNAL_EXCEPTION", Execution, Failed,
        "upkeep itself failed during the execution; the incident id leads to the log line with the details.";
    ExecutionFailedLongRunning = "EXECUTION_FAILED_LONG_RUNNING", Execution, Failed,
        "The execution ran longer than maxRunDuration (default 60m) and was given up; the device may still be busy, check it.";
    Success = "SUCCESS", Execution, Succeeded,
        "The device reports the image's version: the upgrade is done.";
}

impl FirmwareCode {
    /// Whether a task with this code has ended for good.
    pub const fn is_terminal(self) -> bool {
        !matches!(self.result(), TaskResult::InProgress)
    }

    /// Whether the code is a failure under the error policy: every terminal code but `SUCCESS`
    /// and the `SKIPPED_*` codes.
    pub fn is_failure(self) -> bool {
        self.is_terminal() && self != Self::Success && !self.name().starts_with("SKIPPED_")
    }
}

impl FirmwareCode {
    /// Whether a task ending with this code carries an incident id: the codes of unexpected
    /// failures, whose details are in the operator's log under that id.
    pub fn has_incident(self) -> bool {
        self.name().contains("EXCEPTION")
    }
}

impl Serialize for FirmwareCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for FirmwareCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for FirmwareCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FirmwareCode".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
        schemars::json_schema!({ "type": "string", "enum": names })
    }
}

impl fmt::Display for FirmwareCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A text that is not a known code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a known status code (see `upkeep codes`)")]
pub struct UnknownCode(pub String);

/// Whether a patch job code applies on an operating system, as the source list marks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Applicability {
    /// Marked for Windows (`None`: not marked either way).
    pub windows: Option<bool>,
    /// Marked for Linux.
    pub linux: Option<bool>,
    /// Marked for macOS.
    pub mac: Option<bool>,
}

const fn os(windows: bool, linux: bool, mac: bool) -> Applicability {
    Applicability {
        windows: Some(windows),
        linux: Some(linux),
        mac: Some(mac),
    }
}

const UNMARKED: Applicability = Applicability {
    windows: None,
    linux: None,
    mac: None,
};

macro_rules! patch_codes {
    ($( $variant:ident = $code:literal, $name:literal, $state:literal, $os:expr, $result:ident, $desc:literal; )*) => {
        /// A PatchJob per-host code. 2031 has two names (`Downloaded`, `Downloading - Failed`);
        /// the name tells them apart.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum PatchCode {
            $(
                #[doc = $desc]
                $variant,
            )*
        }

        impl PatchCode {
            /// Every code, in catalogue order.
            pub const ALL: &'static [PatchCode] = &[$(PatchCode::$variant),*];

            /// The numeric status code, 2031–2060.
            pub const fn number(self) -> u16 {
                match self { $(PatchCode::$variant => $code),* }
            }

            /// The status name, e.g. `Pending Reboot`.
            pub const fn name(self) -> &'static str {
                match self { $(PatchCode::$variant => $name),* }
            }

            /// The state column of the source list (0, 1 or 2).
            pub const fn state(self) -> u8 {
                match self { $(PatchCode::$variant => $state),* }
            }

            /// The operating systems the source list marks the code for.
            pub const fn applicability(self) -> Applicability {
                match self { $(PatchCode::$variant => $os),* }
            }

            /// How a task with this code counts; `InProgress` for codes that do not end it.
            pub const fn result(self) -> TaskResult {
                match self { $(PatchCode::$variant => TaskResult::$result),* }
            }

            /// What the code means, in a sentence.
            pub const fn description(self) -> &'static str {
                match self { $(PatchCode::$variant => $desc),* }
            }
        }

        impl FromStr for PatchCode {
            type Err = UnknownCode;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(PatchCode::$variant),)*
                    _ => Err(UnknownCode(s.to_string())),
                }
            }
        }
    };
}

patch_codes! {
    Pending = 2032, "Pending", 0, os(true, true, true), InProgress,
        "The job is being prepared for the host, or is ready for its agent to fetch at its next check-in.";
    JobReceived = 2055, "Job Received", 1, os(true, true, true), InProgress,
        "The host's agent fetched the job and will run it when the window opens.";
    Skipped = 2060, "Skipped", 1, os(true, true, false), Skipped,
        "The job did not run at its start time: the agent was offline, or the run did not apply to the host.";
    ExecutionBlocked = 2057, "Execution Blocked", 1, os(true, false, false), InProgress,
        "Another job holds the host; this one runs if that finishes inside the window, and times out otherwise.";
    CanceledBlackout = 2038, "Canceled - Blackout", 0, os(true, true, true), Canceled,
        "A blackout window opened, so the job was called off on this host.";
    NotLicensed = 2039, "Not Licensed", 2, os(true, false, false), Failed,
        "The host is not entitled to patch management, so the job was not handed to it.";
    NotApplicable = 2053, "Not Applicable", 1, UNMARKED, Skipped,
        "The job does not fit the host's operating system or version.";
    JobStarted = 2044, "Job Started", 0, os(true, true, true), InProgress,
        "The agent began running the job.";
    Downloaded = 2031, "Downloaded", 1, os(true, false, false), InProgress,
        "The updates or packages reached the host.";
    DownloadingFailed = 2031, "Downloading - Failed", 2, os(true, false, false), Failed,
        "The updates or packages could not be fetched to the host.";
    NoPatchAvailable = 2059, "No Patch Available", 1, os(true, false, false), Succeeded,
        "There was nothing to install and no pre or post action to run: the host is already current.";
    Patching = 2033, "Patching", 0, os(true, false, false), InProgress,
        "Updates or packages are being installed on the host.";
    JobFailed = 2046, "Job Failed", 0, os(true, true, true), Failed,
        "The agent hit an error while running the job; the message says which step.";
    PendingReboot = 2034, "Pending Reboot", 0, os(true, true, true), InProgress,
        "The change needs a reboot that has not happened yet (on Linux other jobs may still run meanwhile).";
    RebootDeferred = 2058, "Reboot Deferred", 0, os(true, true, false), InProgress,
        "The reboot was put off (a drain blocked by a PodDisruptionBudget, or the host asked to defer); the message counts the deferrals used.";
    Rebooted = 2035, "Rebooted", 0, os(true, true, true), InProgress,
        "The host restarted after the change.";
    JobResumed = 2045, "Job Resumed", 0, os(true, true, true), InProgress,
        "The agent picked the job up again after the reboot.";
    Completed = 2036, "Completed", 0, os(true, true, true), Succeeded,
        "The job finished on the host.";
    TimedOut = 2037, "Timed Out", 0, os(true, true, true), Failed,
        "The window closed before the job finished; the message gives the reason (download, actions, patching, another job, or a reboot outside the window).";
}

impl PatchCode {
    /// Whether a task with this code has ended for good.
    pub const fn is_terminal(self) -> bool {
        !matches!(self.result(), TaskResult::InProgress)
    }
}

impl fmt::Display for PatchCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

macro_rules! package_results {
    ($( $variant:ident = $name:literal, $result:ident, $desc:literal; )*) => {
        /// The installer's result for one maintenance package on one host.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum PackageResult {
            $(
                #[doc = $desc]
                $variant,
            )*
        }

        impl PackageResult {
            /// Every result, in catalogue order.
            pub const ALL: &'static [PackageResult] = &[$(PackageResult::$variant),*];

            /// The result as the installer's event history writes it, e.g. `partialSuccess`.
            pub const fn name(self) -> &'static str {
                match self { $(PackageResult::$variant => $name),* }
            }

            /// How the package's outcome counts.
            pub const fn result(self) -> TaskResult {
                match self { $(PackageResult::$variant => TaskResult::$result),* }
            }

            /// What the result means, in a sentence.
            pub const fn description(self) -> &'static str {
                match self { $(PackageResult::$variant => $desc),* }
            }
        }

        impl FromStr for PackageResult {
            type Err = UnknownCode;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(PackageResult::$variant),)*
                    _ => Err(UnknownCode(s.to_string())),
                }
            }
        }
    };
}

package_results! {
    Success = "success", Succeeded,
        "Every component of the package was installed or removed.";
    PartialSuccess = "partialSuccess", Failed,
        "Some components of the package changed and others did not; read the package's log before going on.";
    Failure = "failure", Failed,
        "The installer could not apply or remove the package.";
    Cancelled = "cancelled", Canceled,
        "The install or uninstall was stopped before it finished.";
}

impl Serialize for PackageResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for PackageResult {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for PackageResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of the catalogue, as `upkeep codes` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueEntry {
    /// The family the code belongs to.
    pub kind: CodeKind,
    /// The code's name, exactly as it appears in status.
    pub name: &'static str,
    /// The numeric code, where the code has one.
    pub code: Option<u16>,
    /// Whether the code ends the task.
    pub terminal: bool,
    /// How it counts: Succeeded, Failed, Skipped, Canceled or InProgress.
    pub result: &'static str,
    /// FirmwareUpgrade codes: where in the upgrade it occurs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// PatchJob codes: the state column of the source list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<u8>,
    /// PatchJob codes: the operating systems the source list marks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applicability: Option<Applicability>,
    /// What the code means.
    pub description: &'static str,
}

/// The whole catalogue: FirmwareUpgrade codes, then PatchJob codes, then package results.
pub fn catalogue() -> Vec<CatalogueEntry> {
    let firmware = FirmwareCode::ALL.iter().map(|&c| CatalogueEntry {
        kind: CodeKind::FirmwareUpgrade,
        name: c.name(),
        code: None,
        terminal: c.is_terminal(),
        result: c.result().as_str(),
        stage: Some(c.stage()),
        state: None,
        applicability: None,
        description: c.description(),
    });
    let patch = PatchCode::ALL.iter().map(|&c| CatalogueEntry {
        kind: CodeKind::PatchJob,
        name: c.name(),
        code: Some(c.number()),
        terminal: c.is_terminal(),
        result: c.result().as_str(),
        stage: None,
        state: Some(c.state()),
        applicability: Some(c.applicability()),
        description: c.description(),
    });
    let packages = PackageResult::ALL.iter().map(|&r| CatalogueEntry {
        kind: CodeKind::MaintenancePackage,
        name: r.name(),
        code: None,
        terminal: true,
        result: r.result().as_str(),
        stage: None,
        state: None,
        applicability: None,
        description: r.description(),
    });
    firmware.chain(patch).chain(packages).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clean code lists kept beside the contract; the catalogue must match them exactly.
    const FIRMWARE_LIST: &str = include_str!("../../../../tests/data/codes/firmware.txt");
    const PATCH_LIST: &str = include_str!("../../../../tests/data/codes/patch.tsv");

    #[test]
    fn firmware_codes_match_the_contract_list_exactly() {
        let expected: Vec<&str> = FIRMWARE_LIST.lines().filter(|l| !l.is_empty()).collect();
        let ours: Vec<&str> = FirmwareCode::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(ours, expected);
        assert_eq!(ours.len(), 65);
    }

    #[test]
    fn patch_codes_match_the_contract_list_with_state_and_applicability() {
        let mark = |s: &str| match s {
            "Y" => Some(true),
            "N" => Some(false),
            _ => None,
        };
        let mut rows = 0;
        for line in PATCH_LIST.lines().skip(1).filter(|l| !l.is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            let code: PatchCode = cols[1].parse().unwrap();
            assert_eq!(code.number().to_string(), cols[0], "{line}");
            assert_eq!(code.state().to_string(), cols[2], "{line}");
            let marks = code.applicability();
            let col = |i: usize| cols.get(i).copied().unwrap_or("");
            assert_eq!(
                (marks.windows, marks.linux, marks.mac),
                (mark(col(3)), mark(col(4)), mark(col(5))),
                "{line}"
            );
            rows += 1;
        }
        assert_eq!(rows, PatchCode::ALL.len());
    }

    #[test]
    fn names_parse_back_and_are_unique() {
        for &c in FirmwareCode::ALL {
            assert_eq!(c.name().parse::<FirmwareCode>(), Ok(c));
        }
        for &c in PatchCode::ALL {
            assert_eq!(c.name().parse::<PatchCode>(), Ok(c));
        }
        for &r in PackageResult::ALL {
            assert_eq!(r.name().parse::<PackageResult>(), Ok(r));
        }
        assert!("NOT_A_CODE".parse::<FirmwareCode>().is_err());
    }

    #[test]
    fn error_policy_failures_exclude_success_and_skips() {
        assert!(!FirmwareCode::Success.is_failure());
        assert!(!FirmwareCode::SkippedDeviceNotAvailable.is_failure());
        assert!(!FirmwareCode::ReadyForExecution.is_failure());
        assert!(FirmwareCode::ErrorDowngradeNotSupported.is_failure());
        assert!(FirmwareCode::ExecutionCanceledBecauseADayPassed.is_failure());
    }

    #[test]
    fn every_description_is_a_sentence_of_our_own() {
        for entry in catalogue() {
            assert!(entry.description.ends_with('.'), "{}", entry.name);
            assert!(entry.description.len() > 20, "{}", entry.name);
        }
    }
}
