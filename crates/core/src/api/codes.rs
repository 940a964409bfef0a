//! The catalogue of status codes: every code a task or resource can show, what it means, whether
//! it ends the task, and how it counts. The single source of truth for `upkeep codes`,
//! `docs/status-codes.md` and the engines.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a task ended, or that it has not ended yet.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum TaskResult {
    /// Not ended yet.
    #[default]
    InProgress,
    /// Ended successfully.
    Succeeded,
    /// Ended in a failure.
    Failed,
    /// Did not run: nothing to do, or the target was not there or not available.
    Skipped,
    /// Did not run, or was stopped, by a rule (window, waiting time, error policy, blackout).
    Canceled,
}

impl TaskResult {
    /// The name Kubernetes users see.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "InProgress",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Skipped => "Skipped",
            Self::Canceled => "Canceled",
        }
    }
}

/// What every code of the catalogue tells: its name as status shows it and how a task with it
/// counts. The parent status (summaries, first failures) reads codes only through this.
pub trait CatalogueCode: Copy + Eq + fmt::Display {
    /// The name status shows, e.g. `READY_FOR_EXECUTION` or `Pending Reboot`.
    fn name(self) -> &'static str;
    /// How a task with this code counts; `InProgress` for codes that do not end it.
    fn result(self) -> TaskResult;
}

/// The resource family a code belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum CodeKind {
    /// Codes of FirmwareUpgrade tasks (and the one whole-resource code).
    FirmwareUpgrade,
    /// Per-host codes of PatchJob tasks.
    PatchJob,
    /// Results of one maintenance package's install or uninstall on a host.
    MaintenancePackage,
    /// Codes of DevicePatch tasks (and its whole-resource codes).
    DevicePatch,
}

/// Where in a task (a firmware upgrade, a device patch) a code occurs.
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

/// Defines a catalogue of task codes that have a stage (FirmwareUpgrade, DevicePatch): the enum,
/// its table (name, stage, result, description), name lookup, serde as the name, a JSON schema
/// enumerating the names, and the rules every such catalogue shares (terminal, unstarted,
/// executing, failure, incident). The two catalogues cannot drift apart in how they behave.
macro_rules! stage_codes {
    ($(#[$meta:meta])* $code:ident; $( $variant:ident = $name:literal, $stage:ident, $result:ident, $desc:literal; )*) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $code {
            $(
                #[doc = $desc]
                $variant,
            )*
        }

        impl $code {
            /// Every code, in catalogue order.
            pub const ALL: &'static [$code] = &[$($code::$variant),*];

            /// The code's name, e.g. `READY_FOR_EXECUTION`.
            pub const fn name(self) -> &'static str {
                match self { $($code::$variant => $name),* }
            }

            /// Where in the task the code occurs.
            pub const fn stage(self) -> Stage {
                match self { $($code::$variant => Stage::$stage),* }
            }

            /// How a task with this code counts; `InProgress` for codes that do not end it.
            pub const fn result(self) -> TaskResult {
                match self { $($code::$variant => TaskResult::$result),* }
            }

            /// What the code means, in a sentence.
            pub const fn description(self) -> &'static str {
                match self { $($code::$variant => $desc),* }
            }

            /// Whether a task with this code has ended for good.
            pub const fn is_terminal(self) -> bool {
                !matches!(self.result(), TaskResult::InProgress)
            }

            /// Whether a task with this code has not started: it is validating or queued. The
            /// rollout may still end it without running (waiting limit, window, error policy).
            pub const fn is_unstarted(self) -> bool {
                matches!(self, Self::WaitingForPreValidation | Self::ReadyForExecution)
            }

            /// Whether a task with this code left the queue and has not ended: it holds a
            /// rollout slot.
            pub fn is_executing(self) -> bool {
                self.stage() == Stage::Execution && !self.is_terminal()
            }

            /// Whether the code is a failure under the error policy: every terminal code but the
            /// successes and the `SKIPPED_*` codes.
            pub fn is_failure(self) -> bool {
                self.is_terminal()
                    && self.result() != TaskResult::Succeeded
                    && !self.name().starts_with("SKIPPED_")
            }

            /// Whether a task ending with this code carries an incident id: the codes of
            /// unexpected failures, whose details are in the operator's log under that id.
            pub fn has_incident(self) -> bool {
                self.name().contains("EXCEPTION")
            }
        }

        impl FromStr for $code {
            type Err = UnknownCode;

            /// Looks the name up in a table sorted by name: stored statuses are read often.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                static BY_NAME: std::sync::LazyLock<Vec<(&'static str, $code)>> = std::sync::LazyLock::new(|| {
                    let mut table: Vec<(&'static str, $code)> = vec![$(($name, $code::$variant)),*];
                    table.sort_unstable_by_key(|(name, _)| *name);
                    table
                });
                BY_NAME
                    .binary_search_by_key(&s, |(name, _)| *name)
                    .map(|i| BY_NAME[i].1)
                    .map_err(|_| UnknownCode(s.to_string()))
            }
        }

        impl Serialize for $code {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $code {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $code {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($code).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                schemars::json_schema!({ "type": "string", "enum": names })
            }
        }

        impl CatalogueCode for $code {
            fn name(self) -> &'static str {
                $code::name(self)
            }

            fn result(self) -> TaskResult {
                $code::result(self)
            }
        }

        impl fmt::Display for $code {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

stage_codes! {
    /// A FirmwareUpgrade code, spelled exactly as the contract spells it.
    FirmwareCode;
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
    ErrorDevicePatchNotRunning = "ERROR_DEVICE_PATCH_NOT_RUNNING", Validation, Failed,
        "A patch on the device is loaded, activating or activated but not running, so it does not take effect; bring it to running (a DevicePatch with confirm: true) or remove it first.";
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

stage_codes! {
    /// A DevicePatch code: the contract's names for the load → activate → confirm lifecycle of a
    /// patch on a network element, plus the queue, resolution and internal-failure codes it shares
    /// with FirmwareUpgrade (same names, same meaning).
    ///
    /// `PATCH_ACTIVATED` does not end a task by itself (the catalogue marks it non-terminal): only
    /// a resource with `confirm: false` ends there, and such a task counts as Succeeded with a
    /// warning. [`DevicePatchCode::ends_unconfirmed`] names that code; the task state
    /// (`engine::devicepatch::state::TaskState`) records the end.
    DevicePatchCode;
    WaitingForPreValidation = "WAITING_FOR_PRE_VALIDATION", Validation, InProgress,
        "The patch task exists and the device has not been checked yet; it may still end without touching the device.";
    SkippedDeviceDoesNotExist = "SKIPPED_DEVICE_DOES_NOT_EXIST", Validation, Skipped,
        "A target name has no Device object in the namespace, so no patch was loaded for it.";
    SkippedDeviceNotAvailable = "SKIPPED_DEVICE_NOT_AVAILABLE", Validation, Skipped,
        "The network element did not answer when its facts were read, so it was left alone.";
    ErrorPatchPackageDoesNotExist = "ERROR_PATCH_PACKAGE_DOES_NOT_EXIST", Validation, Failed,
        "The patch package named in the resource is not in the image repository.";
    ErrorNotEnoughFreeSpaceOnBoard = "ERROR_NOT_ENOUGH_FREE_SPACE_ON_BOARD", Validation, Failed,
        "The element's board has less free space than the patch package needs; free some space first.";
    PatchAlreadyRunning = "PATCH_ALREADY_RUNNING", Validation, Succeeded,
        "The element already reports the patch running: there is nothing to do.";
    ReadyForExecution = "READY_FOR_EXECUTION", Queue, InProgress,
        "Every check passed; the task waits for a rollout slot and an open window.";
    PatchLoading = "PATCH_LOADING", Execution, InProgress,
        "The package is being transferred to the element and loaded as a patch.";
    ErrorPatchLoadFailed = "ERROR_PATCH_LOAD_FAILED", Execution, Failed,
        "The element refused to load the patch, or the load did not finish within loadTimeout; the message has the element's answer.";
    ErrorCommunicationFailed = "ERROR_COMMUNICATION_FAILED", Execution, Failed,
        "A call to the element broke off (connection reset or an unreadable answer), or a reading was answered with an error; the message names the step.";
    PatchLoaded = "PATCH_LOADED", Execution, InProgress,
        "The element reports the patch loaded.";
    PatchWaitingForActivation = "PATCH_WAITING_FOR_ACTIVATION", Execution, InProgress,
        "The activation delay runs: the one the resource told the element, or the element's own.";
    PatchActivating = "PATCH_ACTIVATING", Execution, InProgress,
        "The element was asked to activate the patch; upkeep waits for it to report the patch activated.";
    ErrorPatchActivationTimeout = "ERROR_PATCH_ACTIVATION_TIMEOUT", Execution, Failed,
        "The element did not report the patch activated within activation.timeout after the delay; the message gives the state it reported.";
    PatchActivated = "PATCH_ACTIVATED", Execution, InProgress,
        "The element reports the patch activated but not yet running; with confirm: false the task ends here, Succeeded with a warning that the patch does not take effect.";
    PatchConfirming = "PATCH_CONFIRMING", Execution, InProgress,
        "The element was asked to confirm the patch; upkeep waits for it to report the patch running.";
    ErrorPatchConfirmFailed = "ERROR_PATCH_CONFIRM_FAILED", Execution, Failed,
        "The element refused to activate or confirm the patch, or did not report it running within confirmTimeout after the confirm; the message names the step.";
    PatchRunning = "PATCH_RUNNING", Execution, Succeeded,
        "The element itself reports the patch running: it takes effect.";
    SkippedNoDevicesMatchingPattern = "SKIPPED_NO_DEVICES_MATCHING_PATTERN", Resolution, Skipped,
        "Whole-resource code: the names, pattern and selector matched no Device, so no task was created.";
    SkippedInternalException = "SKIPPED_INTERNAL_EXCEPTION", Resolution, Skipped,
        "upkeep could not work out the targets (for example the Device list could not be read); see the incident id in the log.";
    ValidationInternalException = "VALIDATION_INTERNAL_EXCEPTION", Validation, Failed,
        "upkeep itself failed while checking the target; the incident id leads to the log line with the details.";
    SkippedBecauseErrorPolicy = "SKIPPED_BECAUSE_ERROR_POLICY", Validation, Skipped,
        "Another target failed under errorPolicy: Fail while this one was still being checked, so it was dropped.";
    ExecutionCanceledBecauseErrorPolicy = "EXECUTION_CANCELED_BECAUSE_ERROR_POLICY", Queue, Canceled,
        "Another target failed under errorPolicy: Fail while this one was queued, so it never started.";
    ExecutionCanceledBecauseADayPassed = "EXECUTION_CANCELED_BECAUSE_A_DAY_PASSED", Queue, Canceled,
        "The task waited longer than maxWait (default 24h) after its creation without starting, so it was dropped.";
    ExecutionCanceledBecauseMaintenanceWindow = "EXECUTION_CANCELED_BECAUSE_MAINTENANCE_WINDOW", Queue, Canceled,
        "The task was ready while no allowed window was open (or a blackout was), and outsideWindow is Cancel.";
    ExecutionFailedWithInternalException = "EXECUTION_FAILED_WITH_INTERNAL_EXCEPTION", Execution, Failed,
        "upkeep itself failed while working on the element; the incident id leads to the log line with the details.";
}

impl DevicePatchCode {
    /// The code a task with `confirm: false` ends with (Succeeded, with a warning); it does not
    /// end a task otherwise.
    pub const fn ends_unconfirmed(self) -> bool {
        matches!(self, Self::PatchActivated)
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

impl CatalogueCode for PatchCode {
    fn name(self) -> &'static str {
        PatchCode::name(self)
    }

    fn result(self) -> TaskResult {
        PatchCode::result(self)
    }
}

macro_rules! patch_reasons {
    ($( $variant:ident, $desc:literal; )*) => {
        /// Why a PatchJob task timed out, was skipped or failed: the `reason` of its status, a
        /// CamelCase word.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum PatchReason {
            $(
                #[doc = $desc]
                $variant,
            )*
        }

        impl PatchReason {
            /// Every reason, in catalogue order.
            pub const ALL: &'static [PatchReason] = &[$(PatchReason::$variant),*];

            /// The reason as status shows it, e.g. `PatchingOutsideWindow`.
            pub const fn as_str(self) -> &'static str {
                match self { $(PatchReason::$variant => stringify!($variant)),* }
            }

            /// What the reason means, in a sentence.
            pub const fn description(self) -> &'static str {
                match self { $(PatchReason::$variant => $desc),* }
            }
        }

        impl FromStr for PatchReason {
            type Err = UnknownCode;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $(stringify!($variant) => Ok(PatchReason::$variant),)*
                    _ => Err(UnknownCode(s.to_string())),
                }
            }
        }
    };
}

patch_reasons! {
    DownloadOutsideWindow, "The download would have started after the window closed.";
    ActionOutsideWindow, "A pre or post action would have started after the window closed.";
    PatchingOutsideWindow, "The install would have started after the window closed.";
    RebootOutsideWindow, "The due reboot would have started after the window closed.";
    AnotherJobRunning, "Another job held the host until the window closed.";
    NotStartedInTime, "The host did not start within maxWait of its task's creation.";
    AgentOffline, "The host's agent was not online (its Lease was not renewed).";
    ErrorPolicy, "Another host failed under errorPolicy: Fail before this one started.";
    BackupMissing, "An uninstall found no backup of the package to restore from.";
    NotApplicable, "Nothing of the job applies to the host (its OS, its packages or its products).";
    ProcessesRunning, "Processes of the product still run from its location.";
    DrainBlocked, "A PodDisruptionBudget kept refusing the node's drain after every deferral was used.";
    ActionFailed, "A pre or post action exited non-zero or ran past its timeout.";
    InstallFailed, "The package manager or the installer failed; the message has its own error line.";
    DownloadFailed, "The updates or packages could not be fetched.";
    RebootFailed, "The host was asked to reboot and did not.";
    PatchManagementDisabled, "The Host's spec sets patchManagement: Disabled.";
}

impl fmt::Display for PatchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    /// FirmwareUpgrade and DevicePatch codes: where in the task it occurs.
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

/// The whole catalogue: FirmwareUpgrade codes, then PatchJob codes, package results and
/// DevicePatch codes.
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
    let device_patch = DevicePatchCode::ALL.iter().map(|&c| CatalogueEntry {
        kind: CodeKind::DevicePatch,
        name: c.name(),
        code: None,
        terminal: c.is_terminal(),
        result: c.result().as_str(),
        stage: Some(c.stage()),
        state: None,
        applicability: None,
        description: c.description(),
    });
    firmware
        .chain(patch)
        .chain(packages)
        .chain(device_patch)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clean code lists kept beside the contract; the catalogue must match them exactly.
    const FIRMWARE_LIST: &str = include_str!("../../../../tests/data/codes/firmware.txt");
    const FIRMWARE_ADDED: &str = include_str!("../../../../tests/data/codes/firmware-added.txt");
    const PATCH_LIST: &str = include_str!("../../../../tests/data/codes/patch.tsv");
    const DEVICE_PATCH_LIST: &str = include_str!("../../../../tests/data/codes/devicepatch.txt");
    const DEVICE_PATCH_ADDED: &str =
        include_str!("../../../../tests/data/codes/devicepatch-added.txt");

    /// The names of a code list: one a line, without blank lines and `#` comments.
    fn names(list: &str) -> Vec<&str> {
        list.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    /// `ours` is the contract's list in its order, plus exactly the listed additions.
    fn matches_list_and_additions(ours: &[&str], list: &str, added: &str) {
        let added = names(added);
        let listed: Vec<&str> = ours
            .iter()
            .copied()
            .filter(|n| !added.contains(n))
            .collect();
        assert_eq!(listed, names(list), "the contract's list, in its order");
        let extra: Vec<&str> = ours.iter().copied().filter(|n| added.contains(n)).collect();
        let mut extra_sorted = extra.clone();
        extra_sorted.sort_unstable();
        let mut added_sorted = added.clone();
        added_sorted.sort_unstable();
        assert_eq!(extra_sorted, added_sorted, "exactly the listed additions");
    }

    #[test]
    fn firmware_codes_match_the_contract_list_exactly() {
        let ours: Vec<&str> = FirmwareCode::ALL.iter().map(|c| c.name()).collect();
        matches_list_and_additions(&ours, FIRMWARE_LIST, FIRMWARE_ADDED);
        assert_eq!(names(FIRMWARE_LIST).len(), 65);
        assert_eq!(ours.len(), 66);
    }

    #[test]
    fn device_patch_codes_match_the_contract_list_exactly() {
        let ours: Vec<&str> = DevicePatchCode::ALL.iter().map(|c| c.name()).collect();
        matches_list_and_additions(&ours, DEVICE_PATCH_LIST, DEVICE_PATCH_ADDED);
        assert_eq!(names(DEVICE_PATCH_LIST).len(), 18);
        // The additions are FirmwareUpgrade codes, with the same stage and result there.
        for name in names(DEVICE_PATCH_ADDED) {
            let ours: DevicePatchCode = name.parse().unwrap();
            let firmware: FirmwareCode = name.parse().unwrap();
            assert_eq!(ours.stage(), firmware.stage(), "{name}");
            assert_eq!(ours.result(), firmware.result(), "{name}");
        }
    }

    #[test]
    fn device_patch_codes_end_as_the_contract_says() {
        use DevicePatchCode::*;
        assert_eq!(PatchAlreadyRunning.result(), TaskResult::Succeeded);
        assert!(PatchAlreadyRunning.is_terminal() && !PatchAlreadyRunning.is_failure());
        assert_eq!(PatchRunning.result(), TaskResult::Succeeded);
        // PATCH_ACTIVATED ends a task only with confirm: false; the catalogue says non-terminal.
        assert!(!PatchActivated.is_terminal());
        assert!(PatchActivated.ends_unconfirmed());
        assert_eq!(
            DevicePatchCode::ALL
                .iter()
                .filter(|c| c.ends_unconfirmed())
                .count(),
            1
        );
        assert!(ErrorPatchActivationTimeout.is_failure());
        assert!(!SkippedDeviceNotAvailable.is_failure());
        assert!(PatchLoading.is_executing() && !ReadyForExecution.is_executing());
        assert!(ReadyForExecution.is_unstarted() && !PatchLoading.is_unstarted());
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
        for &c in DevicePatchCode::ALL {
            assert_eq!(c.name().parse::<DevicePatchCode>(), Ok(c));
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
