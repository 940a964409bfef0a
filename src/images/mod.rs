//! Firmware images: where they are kept (the repository: a directory with an optional
//! `catalog.yaml`, or a fixed list for simulations), the reference drivers get for one image,
//! and the read-only HTTP server devices that pull their image download it from.

pub mod repository;
pub mod server;

use std::path::PathBuf;

use crate::engine::firmware::observe::ImageEntry;

pub use repository::{DirRepository, ImageRepository, RepositoryError, StaticRepository};

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
