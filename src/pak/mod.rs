//! `.pak` maintenance package archives on disk: opening one and refusing it, naming the entry,
//! before anything is extracted (every rule of `engine::packages::{archive, manifest}`);
//! streaming its files out one at a time; and building one from a directory
//! (`upkeep package build`).
//!
//! Invariant: a [`Package`] exists only for an archive that passed every rule, and its files
//! are never held in memory whole: each is copied through a fixed-size buffer, and a file that
//! expands past the size its archive states is an error, not a surprise on disk.

pub mod build;
mod read;

pub use read::{Package, PakError, entries, manifest_of};
