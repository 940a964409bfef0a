//! Drivers: how upkeep talks to devices. One trait, [`DeviceDriver`], with an implementation per
//! protocol; the engine's actions map onto its calls one to one.

pub mod connect;
pub mod credentials;
pub mod datapower;
pub mod http;
pub mod image_server;
pub mod inventory;
pub mod redfish;
pub mod upkeep;
pub mod wire;

use std::path::PathBuf;

use futures::FutureExt as _;
use futures::future::BoxFuture;

pub use inventory::Inventory;

use crate::engine::firmware::observe::{
    CallError, DomainStatus, Facts, ImageEntry, OpKind, OpStatus,
};

/// Why a call is made, passed to every driver call: drivers log it, adapters may audit it, and
/// simulated devices use it to script behaviour "from the execution on".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Refreshing the Device's status.
    Inventory,
    /// Validating a task.
    Validation,
    /// Executing a task.
    Execution,
}

impl Phase {
    /// The phase's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Validation => "validation",
            Self::Execution => "execution",
        }
    }
}

/// Who calls a driver, and why.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    /// The task on whose behalf the call is made (`namespace/name`), if any.
    pub task: Option<&'a str>,
    /// The phase of the work.
    pub phase: Phase,
}

/// An image to upload or install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// What the engine needs: name, size and catalog version.
    pub entry: ImageEntry,
    /// The SHA-256 of the image file (hex), when known: devices skip an upload whose bytes they
    /// already hold.
    pub sha256: Option<String>,
    /// Where the bytes are, for drivers that send them.
    pub path: Option<PathBuf>,
}

/// A device, as upkeep drives it. Every call is bounded in time by the driver; a device that does
/// not answer in time gives [`crate::engine::firmware::observe::FaultKind::Unreachable`].
///
/// Long operations are started with an idempotency key and then polled: starting again with the
/// same key reports the existing operation instead of starting a second one.
pub trait DeviceDriver: Send + Sync {
    /// Reads the device's facts.
    fn facts<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Facts, CallError>>;
    /// Reads the device's licensed features.
    fn licenses<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Vec<String>, CallError>>;
    /// Reads the device's domains and whether it has unsaved changes.
    fn domain_status<'a>(
        &'a self,
        caller: Caller<'a>,
    ) -> BoxFuture<'a, Result<DomainStatus, CallError>>;
    /// Starts an operation (or reports the one already started with `key`).
    fn start<'a>(
        &'a self,
        caller: Caller<'a>,
        op: OpKind,
        key: &'a str,
        image: &'a ImageRef,
    ) -> BoxFuture<'a, OpStatus>;
    /// Reports how the operation started with `key` stands.
    fn poll<'a>(&'a self, caller: Caller<'a>, op: OpKind, key: &'a str) -> BoxFuture<'a, OpStatus>;
    /// Reads everything the Device's status shows. By default the facts, licenses and domain
    /// status in turn (no patches); drivers whose device reports it all at once override this.
    fn inventory<'a>(&'a self, caller: Caller<'a>) -> BoxFuture<'a, Result<Inventory, CallError>> {
        async move {
            Ok(Inventory {
                facts: self.facts(caller).await?,
                features: self.licenses(caller).await?,
                domains: self.domain_status(caller).await?,
                patches: Vec::new(),
            })
        }
        .boxed()
    }
}
