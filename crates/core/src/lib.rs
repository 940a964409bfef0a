//! upkeep-core: what upkeep knows without talking to anything. The custom resources and their
//! CRDs (`api`), the catalogue of status codes (`api::codes`), the schema checks that
//! `upkeep check` and the in-memory API server share (`schema`), the pure engine that holds
//! every rule about upgrades (`engine`), and the window arithmetic (`schedule`).
//!
//! Invariant: this crate does no I/O, reads no clock and draws no randomness. Its dependency
//! tree has no async runtime, no HTTP stack and no Kubernetes client (`kube` comes with
//! `derive` and `cel` only), so the compiler keeps the engine pure; `tests/it/purity.rs` at the top
//! of the workspace catches clock reads and randomness, which a dependency list cannot.

pub mod api;
pub mod engine;
pub mod schedule;
pub mod schema;
