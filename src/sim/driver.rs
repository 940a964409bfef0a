//! A [`DeviceDriver`] onto a simulated device of the fleet model, in-process.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::fleet::{DeviceKey, FleetModel, Reply};
use crate::clock::Clock;
use crate::drivers::{Caller, DeviceDriver, ImageRef};
use crate::engine::devicepatch::observe::{PatchOp, PatchStart};
use crate::engine::firmware::observe::{
    CallError, DomainStatus, Facts, FaultKind, OpKind, OpStatus, Patch, Start,
};

/// How long a call to a simulated device may take before it counts as unanswered, as a real
/// driver's timeout would.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Drives one simulated device.
#[derive(Clone, Debug)]
pub struct FleetDriver {
    model: Arc<FleetModel>,
    device: DeviceKey,
    clock: Clock,
}

impl FleetDriver {
    /// A driver onto `device` of `model`, reading time from `clock`.
    pub fn new(model: Arc<FleetModel>, device: DeviceKey, clock: Clock) -> Self {
        Self {
            model,
            device,
            clock,
        }
    }

    /// Turns a device reply into the driver's answer: a hanging device costs the call timeout.
    async fn answer<T>(reply: Reply<T>) -> Result<T, CallError> {
        match reply {
            Reply::Ready(result) => result,
            Reply::Hang => {
                tokio::time::sleep(CALL_TIMEOUT).await;
                Err(CallError::new(
                    FaultKind::Unreachable,
                    format!("no answer within {}s", CALL_TIMEOUT.as_secs()),
                ))
            }
        }
    }
}

impl DeviceDriver for FleetDriver {
    fn facts<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Facts, CallError>> {
        Self::answer(self.model.facts(&self.device, caller, self.clock.now())).boxed()
    }

    fn licenses<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Vec<String>, CallError>> {
        Self::answer(self.model.licenses(&self.device, caller, self.clock.now())).boxed()
    }

    fn domain_status<'a>(
        &'a self,
        caller: Caller<'a>,
    ) -> BoxFuture<'a, Result<DomainStatus, CallError>> {
        Self::answer(
            self.model
                .domain_status(&self.device, caller, self.clock.now()),
        )
        .boxed()
    }

    fn start<'a>(
        &'a self,
        caller: Caller<'a>,
        start: &'a Start,
        image: &'a ImageRef,
    ) -> BoxFuture<'a, OpStatus> {
        let status = self.model.start(
            &self.device,
            caller,
            start.op,
            &start.key,
            image,
            self.clock.now(),
        );
        futures::future::ready(status).boxed()
    }

    fn poll<'a>(
        &'a self,
        caller: Caller<'a>,
        _op: OpKind,
        key: &'a str,
    ) -> BoxFuture<'a, OpStatus> {
        let status = self.model.poll(&self.device, caller, key, self.clock.now());
        futures::future::ready(status).boxed()
    }

    fn patches<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Vec<Patch>, CallError>> {
        Self::answer(self.model.patches(&self.device, caller, self.clock.now())).boxed()
    }

    fn start_patch<'a>(
        &'a self,
        caller: Caller<'a>,
        start: &'a PatchStart,
        package: Option<&'a ImageRef>,
    ) -> BoxFuture<'a, OpStatus> {
        let status = self
            .model
            .start_patch(&self.device, caller, start, package, self.clock.now());
        futures::future::ready(status).boxed()
    }

    fn poll_patch<'a>(
        &'a self,
        caller: Caller<'a>,
        _op: PatchOp,
        key: &'a str,
    ) -> BoxFuture<'a, OpStatus> {
        let status = self.model.poll(&self.device, caller, key, self.clock.now());
        futures::future::ready(status).boxed()
    }
}
