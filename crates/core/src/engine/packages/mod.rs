//! Maintenance packages (interim fixes, fix packs, refresh packs) on installed products, decided
//! without touching anything: the `package.yaml` format and its rules (`manifest`), the rules
//! of the `.pak` archive on its list of entries (`archive`), dotted versions and `appliesTo`
//! ranges (`version`), applicability, order, projected versions, history events, package
//! results and the host task's code (`plan`), and cluster consistency (`consistency`).
//!
//! Pure: the agent's installers, `upkeep check`, `upkeep package build`, the PatchJob
//! controller and the simulation call these functions with values they read; nothing here reads
//! a file or the clock.

pub mod archive;
pub mod consistency;
pub mod manifest;
pub mod plan;
pub mod version;

pub use archive::{ArchiveEntry, ArchiveProblem, EntryKind, Limits};
pub use consistency::{consistency, consistent_condition, is_consistent, level};
pub use manifest::{Component, PackageManifest, PathProblem};
pub use plan::{
    ComponentInfo, Decision, EventNames, EventSubject, HostOutcome, Next, PackageInfo, PackageRun,
    Reason, Refusal, Removal, Step,
};
pub use version::{AppliesTo, DottedVersion};
