//! `upkeep package build DIR -o FILE.pak`: a package from a directory holding `package.yaml`
//! and `files/`. The directory is judged by the rules the installer applies (no symlinks or
//! special files, every path safe, files matching the components), the archive is written to a
//! temporary name beside the output, opened again with [`Package::open`], and only then renamed
//! into place: a package this builds is one the installer accepts.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::read::{Package, PakError, parse_manifest};
use crate::engine::packages::archive::{FILES_DIR, Limits, MANIFEST, MAX_MANIFEST_BYTES};
use crate::engine::packages::manifest::{PackageManifest, check_relative_path};

/// Why a package could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Reading the directory or writing the archive failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// Something in the directory is not allowed in a package.
    #[error("{path}: {why}")]
    Refused {
        /// The file or directory.
        path: String,
        /// Why.
        why: String,
    },
    /// The archive breaks a rule of the format.
    #[error(transparent)]
    Package(#[from] PakError),
}

/// What was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// The package id.
    pub id: String,
    /// The files carried under `files/`.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Builds the package of `dir` into `out`.
pub fn build(dir: &Path, out: &Path) -> Result<Built, BuildError> {
    let manifest_path = dir.join(MANIFEST);
    let meta = fs::symlink_metadata(&manifest_path).map_err(io_err(&manifest_path))?;
    if !meta.is_file() {
        return Err(BuildError::Refused {
            path: manifest_path.display().to_string(),
            why: "is not a regular file".into(),
        });
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(BuildError::Refused {
            path: manifest_path.display().to_string(),
            why: format!(
                "is {} bytes, more than the {MAX_MANIFEST_BYTES} allowed",
                meta.len()
            ),
        });
    }
    let text = fs::read_to_string(&manifest_path).map_err(io_err(&manifest_path))?;
    let manifest: PackageManifest = parse_manifest(&text).map_err(|why| BuildError::Refused {
        path: manifest_path.display().to_string(),
        why,
    })?;
    let findings = manifest.validate();
    if !findings.is_empty() {
        let why: Vec<String> = findings
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect();
        return Err(BuildError::Refused {
            path: manifest_path.display().to_string(),
            why: why.join("; "),
        });
    }
    let files_dir = dir.join(FILES_DIR.trim_end_matches('/'));
    let mut files = Vec::new();
    if files_dir.exists() {
        walk(&files_dir, "", &mut files)?;
    }
    files.sort();

    let tmp = temporary_beside(out);
    let result = write_archive(&tmp, &text, &files_dir, &files).and_then(|()| {
        // Judge the archive exactly as the installer will, before it takes the output's name.
        Package::open(
            &tmp,
            &Limits {
                max_expanded: u64::MAX,
            },
        )?;
        fs::rename(&tmp, out).map_err(io_err(out))
    });
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let bytes = files
        .iter()
        .map(|f| fs::metadata(files_dir.join(f)).map_or(0, |m| m.len()))
        .sum();
    Ok(Built {
        id: manifest.id,
        files: files.len(),
        bytes,
    })
}

fn temporary_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "package.pak".into());
    out.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Collects the regular files under `dir` as relative paths, refusing symlinks, special files
/// and names that are not safe relative paths.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), BuildError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| BuildError::Refused {
                path: path.display().to_string(),
                why: "has a name that is not UTF-8".into(),
            })?;
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        check_relative_path(&relative).map_err(|e| BuildError::Refused {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        let kind = entry.file_type().map_err(io_err(&path))?;
        if kind.is_dir() {
            walk(&path, &relative, out)?;
        } else if kind.is_file() {
            out.push(relative);
        } else {
            let what = if kind.is_symlink() {
                "a symlink"
            } else {
                "a special file"
            };
            return Err(BuildError::Refused {
                path: path.display().to_string(),
                why: format!("is {what}; a package holds regular files only"),
            });
        }
    }
    Ok(())
}

fn write_archive(
    tmp: &Path,
    manifest: &str,
    files_dir: &Path,
    files: &[String],
) -> Result<(), BuildError> {
    let file = File::create(tmp).map_err(io_err(tmp))?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let zip_err = |e: zip::result::ZipError| BuildError::Io {
        path: tmp.display().to_string(),
        source: io::Error::other(e),
    };
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .large_file(false);
    zip.start_file(MANIFEST, options.unix_permissions(0o644))
        .map_err(zip_err)?;
    zip.write_all(manifest.as_bytes()).map_err(io_err(tmp))?;
    for relative in files {
        let source = files_dir.join(relative);
        let mut input = File::open(&source).map_err(io_err(&source))?;
        let meta = input.metadata().map_err(io_err(&source))?;
        let mode = meta.permissions().mode() & 0o777;
        zip.start_file(
            format!("{FILES_DIR}{relative}"),
            options
                .unix_permissions(mode)
                .large_file(meta.len() >= u32::MAX as u64),
        )
        .map_err(zip_err)?;
        io::copy(&mut input, &mut zip).map_err(io_err(&source))?;
    }
    let mut writer = zip.finish().map_err(zip_err)?;
    writer.flush().map_err(io_err(tmp))?;
    writer
        .into_inner()
        .map_err(|e| io_err(tmp)(e.into_error()))?
        .sync_all()
        .map_err(io_err(tmp))?;
    Ok(())
}
