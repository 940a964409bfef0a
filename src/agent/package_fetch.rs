//! Fetching one maintenance package into the agent's state directory: from the package
//! repository (a directory, or an `http(s)://` base URL) or from an absolute `http(s)://`
//! source, hashing the bytes as they are written.
//!
//! Invariants: a package reaches its final path only whole and, when a sha256 is known, only
//! when its SHA-256 matches (it is written to `<file>.part`, synced, checked, then renamed);
//! a download always has a sha256 (nothing unverified comes over the network); a `.part` left
//! by a kill is resumed with an HTTP range request (its bytes hashed again first) or started
//! over when the server does not resume it; a file already at its final path is not fetched
//! again; bodies stream through a fixed buffer, never held in memory; no message carries the
//! credentials or the query of a URL.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::drivers::http::{TlsSettings, tls_config};

/// Where the agent fetches maintenance packages whose `source` is a relative path.
#[derive(Clone, PartialEq, Eq)]
pub enum PackageRepository {
    /// A directory on the host (a hostPath mount, an NFS share).
    Dir(PathBuf),
    /// An `http://` or `https://` base URL; a source is resolved relative to it.
    Http(Url),
}

impl FromStr for PackageRepository {
    type Err = String;

    /// A URL when it starts with `http://` or `https://`, a directory otherwise.
    fn from_str(text: &str) -> Result<Self, String> {
        if is_http(text) {
            let mut url = Url::parse(text).map_err(|e| {
                format!(
                    "the package repository {:?} is not a URL: {e}",
                    redact_text(text)
                )
            })?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!(
                    "the package repository {} has no host",
                    redact_text(text)
                ));
            }
            // A base ends with `/`, so `join` keeps its last segment.
            if !url.path().ends_with('/') {
                let path = format!("{}/", url.path());
                url.set_path(&path);
            }
            Ok(Self::Http(url))
        } else if text.is_empty() {
            Err("the package repository is empty: give a directory or an http(s) URL".into())
        } else {
            Ok(Self::Dir(PathBuf::from(text)))
        }
    }
}

impl fmt::Display for PackageRepository {
    /// The directory, or the URL without credentials or query.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.display()),
            Self::Http(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for PackageRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackageRepository({self})")
    }
}

/// Where one package comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file on the host.
    File(PathBuf),
    /// A URL.
    Url(Url),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url(url) => f.write_str(&redact(url)),
        }
    }
}

/// Whether `text` is an `http://` or `https://` URL.
pub fn is_http(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://")
}

/// `url` as messages show it: no user name, password or query.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    // Both only fail for URLs that cannot carry them, which then carry none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?…");
    }
    text
}

/// `text` (meant to be a URL that may not parse) without what could be a credential.
fn redact_text(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) => redact(&url),
        Err(_) => "(a URL that does not parse)".into(),
    }
}

/// Why a package could not be fetched. Every message names the package's origin (redacted)
/// and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The source or the repository does not say where the package is.
    #[error("{0}")]
    Source(String),
    /// The server answered with an error status.
    #[error(
        "downloading {url} failed: HTTP {status}; check that spec.packages[].source names a package the repository serves"
    )]
    Status {
        /// The URL, redacted.
        url: String,
        /// The status.
        status: StatusCode,
    },
    /// The request failed (connection, TLS, time-out, a body cut off).
    #[error(
        "downloading {url} failed: {error}; check that the agent reaches the package repository and that it serves the package"
    )]
    Request {
        /// The URL, redacted.
        url: String,
        /// What failed, without the URL.
        error: String,
    },
    /// The bytes are not the package the job names.
    #[error(
        "{origin}: its sha256 is {actual}, but spec.packages[].sha256 is {expected}: the file is not the package the job names and was deleted; nothing was installed. Check the sha256 (sha256sum FILE.pak) or the file the repository serves"
    )]
    Mismatch {
        /// Where the package came from, redacted.
        origin: String,
        /// The sha256 the job gives.
        expected: String,
        /// The sha256 of the bytes received.
        actual: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the package with `source` comes from: an absolute `http(s)://` source as it is, a
/// relative one inside `repository`. `sha256` is what the job gives; a download needs one.
pub fn origin(
    repository: Option<&PackageRepository>,
    source: &str,
    sha256: Option<&str>,
) -> Result<Origin, FetchError> {
    let origin = if is_http(source) {
        Origin::Url(Url::parse(source).map_err(|e| {
            FetchError::Source(format!(
                "source {}: not a URL: {e}; give an http(s) URL or a path relative to the package repository",
                redact_text(source)
            ))
        })?)
    } else {
        crate::engine::packages::manifest::check_relative_path(source)
            .map_err(|e| FetchError::Source(format!("source {source:?}: {e}")))?;
        match repository {
            None => {
                return Err(FetchError::Source(format!(
                    "{source}: the agent has no package repository; start it with --package-repository DIR|URL (UPKEEP_PACKAGE_REPOSITORY), or give the package's http(s) URL and sha256"
                )));
            }
            Some(PackageRepository::Dir(dir)) => Origin::File(dir.join(source)),
            Some(PackageRepository::Http(base)) => Origin::Url(base.join(source).map_err(|e| {
                FetchError::Source(format!("source {source:?} under {}: {e}", redact(base)))
            })?),
        }
    };
    if let Origin::Url(url) = &origin
        && sha256.is_none()
    {
        return Err(FetchError::Source(format!(
            "{}: a download needs the package's sha256 to be verified, and the PatchJob gives none; set spec.packages[].sha256 (sha256sum FILE.pak)",
            redact(url)
        )));
    }
    Ok(origin)
}

/// The buffer bodies and files stream through.
const BUFFER: usize = 64 * 1024;

/// Fetches `origin` into `to` (the final path), verifying `sha256` when given. Nothing is done
/// when `to` is there already and matches.
pub async fn fetch(origin: &Origin, sha256: Option<&str>, to: &Path) -> Result<(), FetchError> {
    let expected = sha256.map(str::to_ascii_lowercase);
    if tokio::fs::try_exists(to).await.map_err(io(to))? {
        match &expected {
            Some(expected) if &hash_file(to).await? != expected => {
                tokio::fs::remove_file(to).await.map_err(io(to))?;
            }
            _ => return Ok(()),
        }
    }
    let dir = to.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
    let part = to.with_extension("pak.part");
    let actual = match origin {
        Origin::File(from) => copy(from, &part).await?,
        Origin::Url(url) => download(url, &part).await?,
    };
    if let Some(expected) = expected
        && actual != expected
    {
        tokio::fs::remove_file(&part).await.map_err(io(&part))?;
        return Err(FetchError::Mismatch {
            origin: origin.to_string(),
            expected,
            actual,
        });
    }
    tokio::fs::rename(&part, to).await.map_err(io(to))?;
    sync_dir(dir).await
}

async fn sync_dir(dir: &Path) -> Result<(), FetchError> {
    tokio::fs::File::open(dir)
        .await
        .map_err(io(dir))?
        .sync_all()
        .await
        .map_err(io(dir))
}

fn hex(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Feeds every byte of `file` from its current position into `hasher`.
async fn hash_into(
    file: &mut tokio::fs::File,
    path: &Path,
    hasher: &mut Sha256,
) -> Result<u64, FetchError> {
    let mut buffer = vec![0; BUFFER];
    let mut total = 0;
    loop {
        let n = file.read(&mut buffer).await.map_err(io(path))?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
}

async fn hash_file(path: &Path) -> Result<String, FetchError> {
    let mut file = tokio::fs::File::open(path).await.map_err(io(path))?;
    let mut hasher = Sha256::new();
    hash_into(&mut file, path, &mut hasher).await?;
    Ok(hex(hasher))
}

/// Copies `from` into `part` (truncated first), returning the sha256 of the bytes written.
async fn copy(from: &Path, part: &Path) -> Result<String, FetchError> {
    let mut source = tokio::fs::File::open(from).await.map_err(io(from))?;
    let mut out = tokio::fs::File::create(part).await.map_err(io(part))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; BUFFER];
    loop {
        let n = source.read(&mut buffer).await.map_err(io(from))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n]).await.map_err(io(part))?;
    }
    out.sync_all().await.map_err(io(part))?;
    Ok(hex(hasher))
}

/// How long a download may wait for its connection and for each read of the body.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

fn client() -> Result<reqwest::Client, String> {
    let tls = tls_config(&TlsSettings::default()).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| e.without_url().to_string())
}

/// Downloads `url` into `part`, resuming what a `.part` already holds, and returns the sha256
/// of the whole file.
async fn download(url: &Url, part: &Path) -> Result<String, FetchError> {
    let shown = redact(url);
    let request_error = |e: reqwest::Error| FetchError::Request {
        url: shown.clone(),
        error: e.without_url().to_string(),
    };
    let client = client().map_err(|error| FetchError::Request {
        url: shown.clone(),
        error,
    })?;
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(part)
        .await
        .map_err(io(part))?;
    let mut hasher = Sha256::new();
    let have = hash_into(&mut file, part, &mut hasher).await?;
    let mut request = client.get(url.clone());
    if have > 0 {
        request = request.header(header::RANGE, format!("bytes={have}-"));
    }
    let mut response = request.send().await.map_err(request_error)?;
    let resumed = have > 0
        && response.status() == StatusCode::PARTIAL_CONTENT
        && response
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(&format!("bytes {have}-")));
    if !resumed {
        if have > 0 {
            // Not resumed: the whole file follows (200), or the part is stale (416): start
            // over.
            file.set_len(0).await.map_err(io(part))?;
            file.seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(io(part))?;
            hasher = Sha256::new();
            if response.status() != StatusCode::OK {
                drop(response);
                response = client
                    .get(url.clone())
                    .send()
                    .await
                    .map_err(request_error)?;
            }
        }
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: shown,
                status: response.status(),
            });
        }
    }
    while let Some(chunk) = response.chunk().await.map_err(request_error)? {
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io(part))?;
    }
    file.sync_all().await.map_err(io(part))?;
    Ok(hex(hasher))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_is_a_url_or_a_directory_and_a_base_url_keeps_its_last_segment() {
        let repo: PackageRepository = "https://u:secret@repo.example/packages?token=x"
            .parse()
            .unwrap();
        let PackageRepository::Http(base) = &repo else {
            panic!("a URL expected")
        };
        assert_eq!(base.join("fp/a.pak").unwrap().path(), "/packages/fp/a.pak");
        let shown = repo.to_string();
        assert!(
            !shown.contains("secret") && !shown.contains("token"),
            "{shown}"
        );
        assert_eq!(shown, "https://repo.example/packages/?…");
        assert_eq!(
            "/srv/packages".parse::<PackageRepository>().unwrap(),
            PackageRepository::Dir("/srv/packages".into())
        );
        assert!("".parse::<PackageRepository>().is_err());
    }

    #[test]
    fn a_download_needs_a_sha256_and_a_relative_source_needs_a_repository() {
        let url = "https://repo.example/a.pak";
        let e = origin(None, url, None).unwrap_err().to_string();
        assert!(e.contains("spec.packages[].sha256"), "{e}");
        assert!(matches!(origin(None, url, Some("ab")), Ok(Origin::Url(_))));
        let e = origin(None, "fp/a.pak", None).unwrap_err().to_string();
        assert!(e.contains("--package-repository"), "{e}");
        let http: PackageRepository = "http://repo.example/base".parse().unwrap();
        let e = origin(Some(&http), "fp/a.pak", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http://repo.example/base/fp/a.pak") && e.contains("sha256"),
            "{e}"
        );
        let dir = PackageRepository::Dir("/srv".into());
        assert_eq!(
            origin(Some(&dir), "fp/a.pak", None).unwrap(),
            Origin::File("/srv/fp/a.pak".into())
        );
        assert!(origin(Some(&dir), "../a.pak", None).is_err());
    }
}
