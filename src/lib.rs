//! upkeep: a Kubernetes operator that runs firmware upgrades, OS patch jobs and maintenance
//! packages as custom resources, gated by maintenance and blackout windows.
//!
//! # The layers
//!
//! The workspace's crates are the architecture, so the compiler keeps it:
//! - `upkeep-core` (re-exported here as [`api`], [`engine`] and [`schedule`]): the CRD types,
//!   the code catalogue, the schema checks, and the pure engine that holds every rule about
//!   upgrades. No async runtime, HTTP stack or Kubernetes client is in its dependency tree.
//! - `upkeep-apiserver` (re-exported as [`sim::apiserver`]): an in-memory Kubernetes API server,
//!   given the CRDs it serves and the clock it reads.
//! - this crate: the I/O around the engine — [`controller`] (kube-runtime glue, one file per
//!   kind, shared pieces in `controller::kit`), [`drivers`] (devices), [`images`] (the image
//!   repository and server), [`check`] (`upkeep check`), [`sim`] (fleet file and model,
//!   devicesim, the simulation runner) and [`cli`].
//!
//! A reconcile is a pipeline: resolve what it needs from caches and devices, let the engine
//! decide (a pure `plan` for a parent kind, a sans-IO `step` for a task), apply the decisions,
//! write the status the engine derived. A rule found outside `upkeep-core`'s engine is a bug.
//!
//! # Adding a kind
//!
//! In the order a newcomer needs them (the firmware kind is the one to follow):
//! 1. Its type in `crates/core/src/api/<kind>.rs`, one kind per file, with printer columns,
//!    kstatus conditions and CEL rules; add it to [`api::crds()`] and regenerate `crds/` and the
//!    chart's CRDs (`upkeep crds --dir …`; CI fails on drift).
//! 2. Its codes in the catalogue (`api::codes`): name, stage or number, result, a sentence of our
//!    own; implement `CatalogueCode`, and `engine::rollout::RolloutCode` for the rollout.
//! 3. Its pure engine in `crates/core/src/engine/<kind>/`: the task's state machine (a `step`
//!    that returns actions and `persist_first` before anything that must not run twice) with a
//!    test case per code, and its parent `plan` (tasks to create, rollout decisions, the
//!    parent's status through `engine::parent`) with a test per rule.
//! 4. Its lint in `engine::lint` and its checker in `check::kinds()`: a test fails for a CRD of
//!    `api::crds()` that `upkeep check` does not know.
//! 5. Its controller in `src/controller/<kind>.rs`, running in `kit::reconcile::guarded`: resolve
//!    from the caches, call the plan, apply, write the status with `kit::status` (one field
//!    manager). Register it in `controller::operator`.
//! 6. Its chart RBAC (`charts/upkeep/templates/`), its fleet-file fields when the simulation
//!    must play its targets, and an example in `examples/` whose outcome a test checks.
//!
//! # Adding a driver
//!
//! 1. A folder `src/drivers/<vendor>/` implementing [`drivers::DeviceDriver`]: every call
//!    bounded in time, long operations started with the idempotency key and the target version
//!    the engine passes in [`engine::firmware::observe::Start`], credentials never logged.
//! 2. A variant of [`api::device::DriverKind`]; its `family()` match is exhaustive, so the
//!    compiler asks which family the new driver's devices are.
//! 3. Its arm in `drivers::connect`, and tests against a server over loopback (a real emulator
//!    where one exists, recorded fixtures otherwise); `docs/drivers.md` says how.
//!    Every caller performs engine actions through [`drivers::perform()`], so nothing else
//!    changes.

pub mod agent;
pub mod check;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod drivers;
pub mod images;
pub mod pak;
pub mod sim;

pub use upkeep_core::{api, engine, schedule};
