//! The simulated devices of a fleet file (`sim::fleet_file`).
//!
//! The [`FleetModel`] plays the devices a fleet file lists: operations take the configured time, faults strike at
//! their step, and the model counts upgrade starts, patch loads and activations, so tests can
//! prove none of them happens twice. The model is shared by `upkeep simulate` (in-process, on the
//! virtual clock) and `upkeep devicesim` (over HTTP, in real time); time always comes in as a
//! value.
//!
//! Network elements' patches: a load puts the package on the board (its transfer at the upload
//! rate, unless the element holds it, then `patchLoad`) and lists the patch `loaded`; an
//! activation makes it `activating` and, once the element's activation delay since the load has
//! passed (its own, `patchBehaviour.activationDelay`, unless it was told another) and
//! `patchActivate` more, `activated`; a confirm makes an `activated` patch `running` after
//! `patchConfirm`, and leaves a patch in any other state as it is (as the field case's element
//! did: "confirmed", yet still activating).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

use crate::drivers::{Caller, DeviceOp, ImageRef, Inventory, Phase};
use crate::engine::devicepatch::observe::{PatchOp, PatchStart};
use crate::engine::firmware::image::ApplianceImage;
use crate::engine::firmware::observe::{
    CallError, Domain, DomainStatus, Facts, FaultKind, HookKind, ImageEntry, OpKind, OpStatus,
    Patch, PatchLifecycle,
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
    kind: DeviceOp,
    started: Timestamp,
    /// `None` for an operation that never completes. For an activation, the time it takes
    /// once the patch's activation delay has passed.
    length: Option<SignedDuration>,
    image: Option<(String, u64, Option<String>)>,
    /// The patch of a patch operation, and the delay a `patchSetDelay` sets.
    patch: Option<(String, Option<SignedDuration>)>,
    applied: bool,
}

/// A patch on a simulated element.
#[derive(Clone, Debug)]
struct SimPatch {
    id: String,
    state: PatchLifecycle,
    /// When it was loaded; `None` for patches the fleet file gives (loaded long ago).
    loaded_at: Option<Timestamp>,
    /// The delay between load and activation the element applies to it.
    delay: SignedDuration,
}

impl SimPatch {
    /// When the patch's activation delay ends.
    fn delay_ends(&self) -> Option<Timestamp> {
        self.loaded_at.map(|at| at + self.delay)
    }

    fn reading(&self, now: Timestamp) -> Patch {
        let waiting = matches!(
            self.state,
            PatchLifecycle::Loaded | PatchLifecycle::Activating
        );
        Patch {
            id: self.id.clone(),
            state: self.state.clone(),
            activates_in: self
                .delay_ends()
                .filter(|end| waiting && *end > now)
                .map(|end| end.duration_since(now)),
        }
    }
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
    patches: Vec<SimPatch>,
    free_board: u64,
    patch_loads: u32,
    patch_activations: u32,
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
            patches: spec
                .patches
                .iter()
                .map(|p| SimPatch {
                    id: p.id.clone(),
                    state: p.state.into(),
                    loaded_at: None,
                    delay: spec_delay(spec),
                })
                .collect(),
            free_board: parse_bytes(&spec.free_space.board).unwrap_or(0),
            patch_loads: 0,
            patch_activations: 0,
            down_until: None,
            spec: spec.clone(),
        }
    }

    fn patch(&self, id: &str) -> Option<&SimPatch> {
        self.patches.iter().find(|p| p.id == id)
    }

    fn patch_mut(&mut self, id: &str) -> Option<&mut SimPatch> {
        self.patches.iter_mut().find(|p| p.id == id)
    }

    /// When an operation completes, if it ever does: an activation once its patch's delay has
    /// passed, then its own time.
    fn done_at(&self, op: &Operation) -> Option<Timestamp> {
        let length = op.length?;
        let from = match (op.kind, &op.patch) {
            (DeviceOp::Patch(PatchOp::Activate), Some((id, _))) => self
                .patch(id)
                .and_then(SimPatch::delay_ends)
                .map_or(op.started, |end| end.max(op.started)),
            _ => op.started,
        };
        Some(from + length)
    }

    /// The facts as the device reports them.
    fn facts(&self, now: Timestamp) -> Facts {
        Facts {
            model: self.spec.model.clone(),
            r#virtual: self.spec.r#virtual,
            firmware: self.firmware.clone(),
            free_encrypted: parse_bytes(&self.spec.free_space.encrypted).ok(),
            free_temporary: parse_bytes(&self.spec.free_space.temporary).ok(),
            free_board: self.spec.is_network_element().then_some(self.free_board),
            patches: self.patches.iter().map(|p| p.reading(now)).collect(),
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
        let mut finished: Vec<(Timestamp, String)> = self
            .ops
            .iter()
            .filter(|(_, op)| !op.applied)
            .filter_map(|(key, op)| Some((self.done_at(op)?, key.clone())))
            .filter(|(at, _)| *at <= now)
            .collect();
        // In the order they completed (a load before the activation that waited for it).
        finished.sort();
        for (done, key) in finished {
            let Some(op) = self.ops.get_mut(&key) else {
                continue;
            };
            op.applied = true;
            let (kind, image, patch) = (op.kind, op.image.clone(), op.patch.clone());
            let kind = match kind {
                DeviceOp::Firmware(kind) => kind,
                DeviceOp::Patch(kind) => {
                    self.apply_patch(kind, image, patch, done);
                    continue;
                }
            };
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
        let rebooting = matches!(
            op.kind,
            DeviceOp::Firmware(OpKind::Restart | OpKind::Upgrade)
        );
        if !rebooting && let Some(e) = self.silent(now) {
            return OpStatus::Failed(e);
        }
        match self.done_at(op) {
            None => OpStatus::Running { retry_after: None },
            Some(done) if done <= now => OpStatus::Done,
            Some(done) => {
                if rebooting && !starting && self.silent(now).is_some() {
                    // The device is down while it restarts: the poll gets no answer.
                    return OpStatus::Failed(CallError::new(
                        FaultKind::Unreachable,
                        "the device is restarting",
                    ));
                }
                OpStatus::Running {
                    retry_after: Some(done.duration_since(now)),
                }
            }
        }
    }
}

impl DeviceState {
    /// What a finished patch operation changes on the element, at `done`.
    fn apply_patch(
        &mut self,
        kind: PatchOp,
        image: Option<(String, u64, Option<String>)>,
        patch: Option<(String, Option<SignedDuration>)>,
        done: Timestamp,
    ) {
        let Some((id, delay)) = patch else {
            return;
        };
        match kind {
            PatchOp::Load => {
                if let Some((name, size, _)) = image {
                    self.uploaded.insert(name, size);
                    self.free_board = self.free_board.saturating_sub(size);
                }
                if self.patch(&id).is_none() {
                    let delay = spec_delay(&self.spec);
                    self.patches.push(SimPatch {
                        id,
                        state: PatchLifecycle::Loaded,
                        loaded_at: Some(done),
                        delay,
                    });
                }
            }
            PatchOp::SetDelay => {
                if let (Some(patch), Some(delay)) = (self.patch_mut(&id), delay) {
                    patch.delay = delay;
                }
            }
            PatchOp::Activate => {
                if let Some(patch) = self.patch_mut(&id)
                    && matches!(
                        patch.state,
                        PatchLifecycle::Loaded | PatchLifecycle::Activating
                    )
                {
                    patch.state = PatchLifecycle::Activated;
                }
            }
            PatchOp::Confirm => {
                // Only an activated patch can be confirmed; the element accepts the confirm of
                // any other and changes nothing.
                if let Some(patch) = self.patch_mut(&id)
                    && patch.state == PatchLifecycle::Activated
                {
                    patch.state = PatchLifecycle::Running;
                }
            }
        }
    }

    /// Starts a patch operation, or reports the one already started with its key.
    fn start_patch(
        &mut self,
        caller: Caller<'_>,
        start: &PatchStart,
        package: Option<&ImageRef>,
        now: Timestamp,
    ) -> OpStatus {
        if let Some(e) = self.silent(now) {
            return OpStatus::Failed(e);
        }
        let step = FaultStep::of_patch(start.op);
        let refused = |message: String| OpStatus::Failed(CallError::new(FaultKind::Error, message));
        match self.fault(step) {
            Some(FaultMode::Error) => {
                return refused(format!("{}: the element refused", start.op.as_str()));
            }
            Some(FaultMode::Exception) => {
                return OpStatus::Failed(CallError::new(
                    FaultKind::Exception,
                    format!("{}: the connection was reset", start.op.as_str()),
                ));
            }
            _ => {}
        }
        if self.ops.contains_key(&start.key) {
            return self.progress(&start.key, now, true);
        }
        let timings = self.spec.timings.clone();
        let (length, image) = match start.op {
            PatchOp::Load => {
                let Some(package) = package else {
                    return refused("a patch load needs the package".into());
                };
                let size = package.entry.size;
                if self.patch(&start.patch).is_some() {
                    return refused(format!("patch {} is loaded already", start.patch));
                }
                if self.spec.is_network_element() && self.free_board < size {
                    return refused(format!(
                        "not enough free space on the board for {} ({size} bytes, {} free)",
                        package.entry.name, self.free_board
                    ));
                }
                let transfer = if self.uploaded.get(&package.entry.name) == Some(&size) {
                    std::time::Duration::ZERO
                } else {
                    let rate = parse_bytes(&timings.upload_rate).unwrap_or(1).max(1);
                    std::time::Duration::from_secs(size.div_ceil(rate))
                };
                self.patch_loads += 1;
                (
                    transfer + timings.patch_load.get(),
                    Some((package.entry.name.clone(), size, None)),
                )
            }
            PatchOp::SetDelay | PatchOp::Activate | PatchOp::Confirm => {
                let Some(patch) = self.patch(&start.patch) else {
                    return refused(format!("the element holds no patch {}", start.patch));
                };
                match start.op {
                    PatchOp::SetDelay => (std::time::Duration::ZERO, None),
                    PatchOp::Activate => {
                        let fresh = patch.state == PatchLifecycle::Loaded;
                        if fresh {
                            self.patch_activations += 1;
                        }
                        if let Some(patch) = self.patch_mut(&start.patch)
                            && fresh
                        {
                            patch.state = PatchLifecycle::Activating;
                        }
                        (timings.patch_activate.get(), None)
                    }
                    _ => (timings.patch_confirm.get(), None),
                }
            }
        };
        let hangs = self.fault(step) == Some(FaultMode::Hang);
        let length =
            (!hangs).then(|| SignedDuration::try_from(length).unwrap_or(SignedDuration::MAX));
        self.ops.insert(
            start.key.clone(),
            Operation {
                kind: DeviceOp::Patch(start.op),
                started: now,
                length,
                image,
                patch: Some((start.patch.clone(), start.delay)),
                applied: false,
            },
        );
        self.advance(caller, now);
        self.progress(&start.key, now, true)
    }
}

/// The element's own activation delay.
fn spec_delay(spec: &FleetDevice) -> SignedDuration {
    SignedDuration::try_from(spec.patch_behaviour.activation_delay.get())
        .unwrap_or(SignedDuration::MAX)
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
            s.reading(FaultStep::Facts, now, |s| s.facts(now))
        })
        .unwrap_or_else(|| Self::missing(device))
    }

    /// The patches on the device, with the faults of the facts step (both are readings of the
    /// device's state).
    pub fn patches(
        &self,
        device: &DeviceKey,
        caller: Caller<'_>,
        now: Timestamp,
    ) -> Reply<Vec<Patch>> {
        self.with(device, caller, now, |s| {
            s.reading(FaultStep::Facts, now, |s| {
                s.patches.iter().map(|p| p.reading(now)).collect()
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
                facts: s.facts(now),
                features: s.spec.features.clone(),
                domains: DomainStatus {
                    domains: s.domains.clone(),
                    unsaved_changes: s.spec.unsaved_changes,
                },
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
    pub fn operation(&self, device: &DeviceKey, key: &str) -> Option<DeviceOp> {
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
                    kind: DeviceOp::Firmware(op),
                    started: now,
                    length,
                    image: Some((image.entry.name.clone(), size, version)),
                    patch: None,
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

    /// Starts a patch operation (a load transfers `package`), or reports the one already started
    /// with its key.
    pub fn start_patch(
        &self,
        device: &DeviceKey,
        caller: Caller<'_>,
        start: &PatchStart,
        package: Option<&ImageRef>,
        now: Timestamp,
    ) -> OpStatus {
        self.with(device, caller, now, |s| {
            s.start_patch(caller, start, package, now)
        })
        .unwrap_or_else(|| {
            OpStatus::Failed(CallError::new(
                FaultKind::Unreachable,
                format!("no simulated device {}/{}", device.0, device.1),
            ))
        })
    }

    /// How many patch loads and activations the device started (an activation counts when a
    /// loaded patch starts activating).
    pub fn patch_counts(&self, device: &DeviceKey) -> (u32, u32) {
        let devices = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        devices
            .get(device)
            .map_or((0, 0), |s| (s.patch_loads, s.patch_activations))
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
