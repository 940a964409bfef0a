//! The simulated devices of a fleet file (`sim::fleet_file`).
//!
//! The [`FleetModel`] plays the devices a fleet file lists: operations take the configured time, faults strike at
//! their step, and the model counts upgrade starts, so tests can prove an upgrade never starts
//! twice. The model is shared by `upkeep simulate` (in-process, on the virtual clock) and
//! `upkeep devicesim` (over HTTP, in real time); time always comes in as a value.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

use crate::drivers::{Caller, ImageRef, Inventory, Phase};
use crate::engine::firmware::image::ApplianceImage;
use crate::engine::firmware::observe::{
    CallError, Domain, DomainStatus, Facts, FaultKind, HookKind, ImageEntry, OpKind, OpStatus,
};
use crate::engine::size::parse_bytes;

use super::fleet_file::{FaultMode, FaultStep, Fleet, FleetDevice, HookOutcome, UnavailableFrom};

/// The answer of a simulated device to a reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<T> {
    /// The device answered (or failed at once).
    Ready(Result<T, CallError>),
    /// The device never answers; the caller's timeout decides.
    Hang,
}

/// Identifies a device in the fleet: namespace and name.
pub type DeviceKey = (String, String);

#[derive(Clone, Debug)]
struct Operation {
    kind: OpKind,
    started: Timestamp,
    /// `None` for an operation that never completes.
    length: Option<SignedDuration>,
    image: Option<(String, u64, Option<String>)>,
    applied: bool,
}

#[derive(Debug)]
struct DeviceState {
    spec: FleetDevice,
    firmware: String,
    domains: Vec<Domain>,
    available: bool,
    execution_seen: bool,
    ops: HashMap<String, Operation>,
    uploaded: BTreeMap<String, u64>,
    upgrade_starts: u32,
    down_until: Option<Timestamp>,
}

impl DeviceState {
    fn new(spec: &FleetDevice) -> Self {
        Self {
            firmware: spec.firmware.clone(),
            domains: spec
                .domains
                .iter()
                .map(|d| Domain {
                    name: d.name.clone(),
                    quiesced: d.quiesced,
                })
                .collect(),
            available: spec.available && spec.unavailable_from != Some(UnavailableFrom::Validation),
            execution_seen: false,
            ops: HashMap::new(),
            uploaded: BTreeMap::new(),
            upgrade_starts: 0,
            down_until: None,
            spec: spec.clone(),
        }
    }

    fn fault(&self, step: FaultStep) -> Option<FaultMode> {
        self.spec
            .faults
            .iter()
            .find(|f| f.step == step)
            .map(|f| f.kind)
    }

    /// Applies what time and the caller's phase change: finished operations take effect, the
    /// scripted changes of the execution phase happen.
    fn advance(&mut self, caller: Caller<'_>, now: Timestamp) {
        if caller.phase == Phase::Execution && !self.execution_seen {
            self.execution_seen = true;
            if let Some(version) = self.spec.firmware_changes_to.clone() {
                self.firmware = version;
            }
            if self.spec.unavailable_from == Some(UnavailableFrom::Execution) {
                self.available = false;
            }
        }
        let finished: Vec<String> = self
            .ops
            .iter()
            .filter(|(_, op)| !op.applied && op.length.is_some_and(|l| op.started + l <= now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in finished {
            let Some(op) = self.ops.get_mut(&key) else {
                continue;
            };
            op.applied = true;
            let (kind, image) = (op.kind, op.image.clone());
            match kind {
                OpKind::FirstQuiesce | OpKind::SecondQuiesce => {
                    self.domains.iter_mut().for_each(|d| d.quiesced = true)
                }
                OpKind::Unquiesce => self.domains.iter_mut().for_each(|d| d.quiesced = false),
                OpKind::Upload => {
                    if let Some((name, size, _)) = image {
                        self.uploaded.insert(name, size);
                    }
                }
                OpKind::Upgrade => {
                    if let Some(version) = image.and_then(|(_, _, v)| v) {
                        self.firmware = version;
                    }
                    self.domains.iter_mut().for_each(|d| d.quiesced = false);
                }
                OpKind::Restart => self.domains.iter_mut().for_each(|d| d.quiesced = false),
            }
        }
        if self.down_until.is_some_and(|t| t <= now) {
            self.down_until = None;
        }
    }

    /// Why the device cannot answer now, if it cannot.
    fn silent(&self, now: Timestamp) -> Option<CallError> {
        if !self.available {
            return Some(CallError::new(
                FaultKind::Unreachable,
                "the device does not answer (connection refused)",
            ));
        }
        if self.down_until.is_some_and(|t| t > now) {
            return Some(CallError::new(
                FaultKind::Unreachable,
                "the device is restarting",
            ));
        }
        None
    }

    fn reading<T>(
        &self,
        step: FaultStep,
        now: Timestamp,
        value: impl FnOnce(&Self) -> T,
    ) -> Reply<T> {
        if let Some(e) = self.silent(now) {
            return Reply::Ready(Err(e));
        }
        match self.fault(step) {
            Some(FaultMode::Hang) => Reply::Hang,
            Some(FaultMode::Error) => Reply::Ready(Err(CallError::new(
                FaultKind::Error,
                format!("{step:?}: the device returned an error"),
            ))),
            Some(FaultMode::Exception) => Reply::Ready(Err(CallError::new(
                FaultKind::Exception,
                format!("{step:?}: the connection was reset"),
            ))),
            None => Reply::Ready(Ok(value(self))),
        }
    }

    /// How an operation stands. The answer to a start comes before a restarting device goes
    /// silent (`starting`); polls while it restarts get no answer.
    fn progress(&self, key: &str, now: Timestamp, starting: bool) -> OpStatus {
        let Some(op) = self.ops.get(key) else {
            return OpStatus::Unknown;
        };
        let rebooting = matches!(op.kind, OpKind::Restart | OpKind::Upgrade);
        if !rebooting && let Some(e) = self.silent(now) {
            return OpStatus::Failed(e);
        }
        match op.length {
            None => OpStatus::Running { retry_after: None },
            Some(length) if op.started + length <= now => OpStatus::Done,
            Some(length) => {
                if rebooting && !starting && self.silent(now).is_some() {
                    // The device is down while it restarts: the poll gets no answer.
                    return OpStatus::Failed(CallError::new(
                        FaultKind::Unreachable,
                        "the device is restarting",
                    ));
                }
                OpStatus::Running {
                    retry_after: Some((op.started + length).duration_since(now)),
                }
            }
        }
    }
}

/// The simulated devices of a fleet.
#[derive(Debug)]
pub struct FleetModel {
    devices: Mutex<BTreeMap<DeviceKey, DeviceState>>,
}

impl FleetModel {
    /// The devices of `fleet`, in their initial state.
    pub fn new(fleet: &Fleet) -> Self {
        let devices = fleet
            .devices
            .iter()
            .map(|d| {
                (
                    (d.namespace().to_string(), d.name.clone()),
                    DeviceState::new(d),
                )
            })
            .collect();
        Self {
            devices: Mutex::new(devices),
        }
    }

    fn with<T>(
        &self,
        device: &DeviceKey,
        caller: Caller<'_>,
        now: Timestamp,
        f: impl FnOnce(&mut DeviceState) -> T,
    ) -> Option<T> {
        let mut devices = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = devices.get_mut(device)?;
        state.advance(caller, now);
        Some(f(state))
    }

    fn missing<T>(device: &DeviceKey) -> Reply<T> {
        Reply::Ready(Err(CallError::new(
            FaultKind::Unreachable,
            format!("no simulated device {}/{}", device.0, device.1),
        )))
    }

    /// The device's facts.
    pub fn facts(&self, device: &DeviceKey, caller: Caller<'_>, now: Timestamp) -> Reply<Facts> {
        self.with(device, caller, now, |s| {
            s.reading(FaultStep::Facts, now, |s| Facts {
                model: s.spec.model.clone(),
                r#virtual: s.spec.r#virtual,
                firmware: s.firmware.clone(),
                free_encrypted: parse_bytes(&s.spec.free_space.encrypted).ok(),
                free_temporary: parse_bytes(&s.spec.free_space.temporary).ok(),
            })
        })
        .unwrap_or_else(|| Self::missing(device))
    }

    /// Everything the device reports about itself in one reading (the device API's facts), with
    /// the faults of the facts step.
    pub fn inventory(
        &self,
        device: &DeviceKey,
        caller: Caller<'_>,
        now: Timestamp,
    ) -> Reply<Inventory> {
        self.with(device, caller, now, |s| {
            s.reading(FaultStep::Facts, now, |s| Inventory {
                facts: Facts {
                    model: s.spec.model.clone(),
                    r#virtual: s.spec.r#virtual,
                    firmware: s.firmware.clone(),
                    free_encrypted: parse_bytes(&s.spec.free_space.encrypted).ok(),
                    free_temporary: parse_bytes(&s.spec.free_space.temporary).ok(),
                },
                features: s.spec.features.clone(),
                domains: DomainStatus {
                    domains: s.domains.clone(),
                    unsaved_changes: s.spec.unsaved_changes,
                },
                patches: Vec::new(),
            })
        })
        .unwrap_or_else(|| Self::missing(device))
    }

    /// Whether the device answers at all now (it may be unavailable or restarting), after the
    /// caller's phase and the time took effect.
    pub fn reachable(
        &self,
        device: &DeviceKey,
        caller: Caller<'_>,
        now: Timestamp,
    ) -> Result<(), CallError> {
        self.with(device, caller, now, |s| s.silent(now).map_or(Ok(()), Err))
            .unwrap_or_else(|| {
                Err(CallError::new(
                    FaultKind::Unreachable,
                    format!("no simulated device {}/{}", device.0, device.1),
                ))
            })
    }

    /// Admits the bytes of an image transfer (the device simulator's upload), with the faults of
    /// the upload step; the value is the device's upload rate in bytes per second.
    pub fn admit_upload(
        &self,
        device: &DeviceKey,
        caller: Caller<'_>,
        now: Timestamp,
    ) -> Reply<u64> {
        self.with(device, caller, now, |s| {
            s.reading(FaultStep::Upload, now, |s| {
                parse_bytes(&s.spec.timings.upload_rate).unwrap_or(1).max(1)
            })
        })
        .unwrap_or_else(|| Self::missing(device))
    }

    /// Records that a transfer of the image `name` (`size` bytes) to the device completed: an
    /// upload operation for it is then done at once, and an upgrade may install it.
    pub fn store_image(&self, device: &DeviceKey, name: &str, size: u64) {
        let mut devices = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(state) = devices.get_mut(device) {
            state.uploaded.insert(name.to_string(), size);
        }
    }

    /// The kind of the operation started on the device with `key`, if there is one.
    pub fn operation(&self, device: &DeviceKey, key: &str) -> Option<OpKind> {
        let devices = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        devices.get(device)?.ops.get(key).map(|op| op.kind)
    }

    /// The device's licensed features.
    pub fn licenses(
        &self,
        device: &DeviceKey,
        caller: Caller<'_>,
        now: Timestamp,
    ) -> Reply<Vec<String>> {
        self.with(device, caller, now, |s| {
            s.reading(FaultStep::Licenses, now, |s| s.spec.features.clone())
        })
        .unwrap_or_else(|| Self::missing(device))
    }

    /// The device's domains and unsaved changes.
    pub fn domain_status(
        &self,
        device: &DeviceKey,
        caller: Caller<'_>,
        now: Timestamp,
    ) -> Reply<DomainStatus> {
        self.with(device, caller, now, |s| {
            s.reading(FaultStep::DomainStatus, now, |s| DomainStatus {
                domains: s.domains.clone(),
                unsaved_changes: s.spec.unsaved_changes,
            })
        })
        .unwrap_or_else(|| Self::missing(device))
    }

    /// Starts an operation, or reports the one already started with `key`.
    pub fn start(
        &self,
        device: &DeviceKey,
        caller: Caller<'_>,
        op: OpKind,
        key: &str,
        image: &ImageRef,
        now: Timestamp,
    ) -> OpStatus {
        self.with(device, caller, now, |s| {
            if let Some(e) = s.silent(now) {
                return OpStatus::Failed(e);
            }
            match s.fault(FaultStep::of(op)) {
                Some(FaultMode::Error) => {
                    return OpStatus::Failed(CallError::new(
                        FaultKind::Error,
                        format!("{}: the device refused", op.as_str()),
                    ));
                }
                Some(FaultMode::Exception) => {
                    return OpStatus::Failed(CallError::new(
                        FaultKind::Exception,
                        format!("{}: the connection was reset", op.as_str()),
                    ));
                }
                _ => {}
            }
            if s.ops.contains_key(key) {
                return s.progress(key, now, true);
            }
            let timings = &s.spec.timings;
            let hangs = s.fault(FaultStep::of(op)) == Some(FaultMode::Hang);
            let size = image.entry.size;
            let length = match op {
                OpKind::FirstQuiesce | OpKind::SecondQuiesce => timings.quiesce.get(),
                OpKind::Unquiesce => timings.unquiesce.get(),
                OpKind::Restart => timings.restart.get(),
                OpKind::Upgrade => timings.upgrade.get(),
                OpKind::Upload if s.uploaded.get(&image.entry.name) == Some(&size) => {
                    std::time::Duration::ZERO
                }
                OpKind::Upload => {
                    let rate = parse_bytes(&timings.upload_rate).unwrap_or(1).max(1);
                    std::time::Duration::from_secs(size.div_ceil(rate))
                }
            };
            if op == OpKind::Upgrade {
                if s.uploaded.get(&image.entry.name) != Some(&size) {
                    return OpStatus::Failed(CallError::new(
                        FaultKind::Error,
                        format!("image {} is not on the device", image.entry.name),
                    ));
                }
                s.upgrade_starts += 1;
            }
            let length =
                (!hangs).then(|| SignedDuration::try_from(length).unwrap_or(SignedDuration::MAX));
            if matches!(op, OpKind::Restart | OpKind::Upgrade)
                && let Some(length) = length
            {
                s.down_until = Some(now + length);
            }
            let version = image_version(&image.entry);
            s.ops.insert(
                key.to_string(),
                Operation {
                    kind: op,
                    started: now,
                    length,
                    image: Some((image.entry.name.clone(), size, version)),
                    applied: false,
                },
            );
            s.advance(caller, now);
            s.progress(key, now, true)
        })
        .unwrap_or_else(|| {
            OpStatus::Failed(CallError::new(
                FaultKind::Unreachable,
                format!("no simulated device {}/{}", device.0, device.1),
            ))
        })
    }

    /// How the operation started with `key` stands.
    pub fn poll(
        &self,
        device: &DeviceKey,
        caller: Caller<'_>,
        key: &str,
        now: Timestamp,
    ) -> OpStatus {
        self.with(device, caller, now, |s| s.progress(key, now, false))
            .unwrap_or(OpStatus::Unknown)
    }

    /// How the hook Jobs of `kind` end for the device, if the device is in the fleet.
    pub fn hook_outcome(&self, device: &DeviceKey, kind: HookKind) -> Option<HookOutcome> {
        let devices = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let hooks = &devices.get(device)?.spec.hooks;
        Some(match kind {
            HookKind::PrePlan => hooks.pre_plan.clone(),
            HookKind::Pre => hooks.pre.clone(),
            HookKind::Post => hooks.post.clone(),
        })
    }

    /// How many upgrades the device started.
    pub fn upgrade_starts(&self, device: &DeviceKey) -> u32 {
        let devices = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        devices.get(device).map_or(0, |s| s.upgrade_starts)
    }

    /// Every device's key, in order.
    pub fn keys(&self) -> Vec<DeviceKey> {
        let devices = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        devices.keys().cloned().collect()
    }
}

/// The version an image installs: from its appliance name, else from the repository's catalog.
fn image_version(entry: &ImageEntry) -> Option<String> {
    ApplianceImage::parse(&entry.name)
        .ok()
        .map(|i| i.version.to_string())
        .or_else(|| entry.catalog_version.clone())
}

#[cfg(test)]
mod tests;
