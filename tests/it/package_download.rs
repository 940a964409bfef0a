//! Maintenance packages fetched over HTTP: a local axum server serves the package repository
//! (with range requests, as a web server or an object store does), and the real agent loop and
//! the real operator run an Install PatchJob whose package comes from it. A package whose sha256
//! matches is installed; a wrong sha256, an HTTP error and a missing sha256 end the task
//! `2031 Downloading - Failed` with a message naming the URL (never its credentials) and what to
//! do, and install nothing. The fetch itself: a `.part` left by a kill is resumed with a range
//! request (or started over when the server ignores it), a fetched package is not fetched again,
//! and a directory source with a sha256 is verified too.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use upkeep::agent::package_fetch::{self, FetchError, Origin, PackageRepository};
use upkeep::api::host::HistoryAction;

use crate::agent_loop::{
    FP, ProductHost, create_host, package_job, run_package_job, task_of, world,
};
use crate::common::{on_virtual_clock, serve};
use crate::packages::fixtures as pak_fixtures;

/// What the test server saw and how it behaves.
#[derive(Default)]
struct Served {
    dir: PathBuf,
    /// Requests per path.
    requests: Mutex<Vec<(String, Option<String>)>>,
    /// Answer a range request with the whole file (a server that does not resume).
    ignore_ranges: bool,
}

impl Served {
    fn gets(&self, name: &str) -> usize {
        let requests = self.requests.lock().unwrap();
        requests.iter().filter(|(p, _)| p == name).count()
    }

    fn ranges(&self) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        requests.iter().filter_map(|(_, r)| r.clone()).collect()
    }
}

async fn file(
    State(served): State<Arc<Served>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    served
        .requests
        .lock()
        .unwrap()
        .push((name.clone(), range.clone()));
    let Ok(bytes) = std::fs::read(served.dir.join(&name)) else {
        return (StatusCode::NOT_FOUND, "no such package").into_response();
    };
    let from = range.filter(|_| !served.ignore_ranges).and_then(|r| {
        r.strip_prefix("bytes=")?
            .strip_suffix('-')?
            .parse::<usize>()
            .ok()
    });
    match from {
        Some(from) if from < bytes.len() => (
            StatusCode::PARTIAL_CONTENT,
            [(
                header::CONTENT_RANGE,
                format!("bytes {from}-{}/{}", bytes.len() - 1, bytes.len()),
            )],
            bytes[from..].to_vec(),
        )
            .into_response(),
        _ => bytes.into_response(),
    }
}

/// Serves `dir` at `http://ADDR/packages/…`.
async fn package_server(dir: &Path, ignore_ranges: bool) -> (String, Arc<Served>) {
    let served = Arc::new(Served {
        dir: dir.to_path_buf(),
        ignore_ranges,
        ..Served::default()
    });
    let router = axum::Router::new()
        .route("/packages/{*name}", axum::routing::get(file))
        .with_state(served.clone());
    let addr = serve(router).await;
    (format!("http://{addr}/packages"), served)
}

fn sha256_of(path: &Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn fix_pack_sha(host: &ProductHost) -> String {
    sha256_of(&host.repository.join(format!("{FP}.pak")))
}

/// An Install job of the fix pack from `source` with `sha256`.
fn install_job(source: &str, sha256: Option<&str>) -> Value {
    let mut spec = package_job("Install", true);
    spec["packages"][0]["source"] = json!(source);
    if let Some(sha) = sha256 {
        spec["packages"][0]["sha256"] = json!(sha);
    }
    spec
}

/// The fetched copies in the agent's state directory.
fn fetched(host: &ProductHost) -> Vec<PathBuf> {
    let state = host.location.parent().unwrap().join("state");
    let mut found = Vec::new();
    let mut stack = vec![state];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().contains("/packages/") {
                found.push(path);
            }
        }
    }
    found
}

/// Runs one Install job from the HTTP repository; the task.
async fn install_over_http(
    host: &mut ProductHost,
    repository: &str,
    spec: Value,
    version: &str,
) -> (Vec<u64>, Value) {
    host.agent_repository = repository.parse().unwrap();
    let world = world().await;
    create_host(&world, &host.location).await;
    let stop = CancellationToken::new();
    let operator = tokio::spawn(world.operator(stop.clone()));
    let (codes, _) = run_package_job(&world, host, "install", spec, None, version).await;
    let task = task_of(&world, "install").unwrap();
    stop.cancel();
    let _ = operator.await;
    (codes, task["status"].clone())
}

const INSTALLED: [u64; 6] = [2032, 2055, 2044, 2031, 2033, 2036];
const FAILED: [u64; 4] = [2032, 2055, 2044, 2031];

#[test]
fn a_package_from_an_http_repository_with_its_sha256_is_installed_once() {
    on_virtual_clock(|| async {
        let mut host = ProductHost::new();
        let (base, served) = package_server(&host.repository, false).await;
        let sha = fix_pack_sha(&host);
        let spec = install_job(&format!("{FP}.pak"), Some(&sha.to_uppercase()));
        let (codes, status) = install_over_http(&mut host, &base, spec, "9.0.5.23").await;
        assert_eq!(codes, INSTALLED, "{status:#}");
        assert_eq!(
            status["packages"],
            json!([{"id": FP, "result": "success"}]),
            "{status:#}"
        );
        assert_eq!(host.events(HistoryAction::Install), 1);
        assert_eq!(served.gets(&format!("{FP}.pak")), 1, "downloaded once");
    });
}

#[test]
fn a_package_from_an_absolute_url_with_its_sha256_is_installed() {
    on_virtual_clock(|| async {
        let mut host = ProductHost::new();
        let (base, served) = package_server(&host.repository, false).await;
        let sha = fix_pack_sha(&host);
        let spec = install_job(&format!("{base}/{FP}.pak"), Some(&sha));
        // The agent's own repository is a directory without the package: the URL is used.
        let empty = host.location.parent().unwrap().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let (codes, status) =
            install_over_http(&mut host, empty.to_str().unwrap(), spec, "9.0.5.23").await;
        assert_eq!(codes, INSTALLED, "{status:#}");
        assert_eq!(served.gets(&format!("{FP}.pak")), 1);
        assert_eq!(host.events(HistoryAction::Install), 1);
    });
}

/// The task ended `2031 Downloading - Failed`, nothing was installed, no copy was kept, and
/// the message holds every one of `names` and no credential.
fn assert_failed_download(host: &ProductHost, codes: &[u64], status: &Value, names: &[&str]) {
    assert_eq!(codes, FAILED, "{status:#}");
    assert_eq!(status["code"], json!("Downloading - Failed"), "{status:#}");
    assert_eq!(status["result"], json!("Failed"), "{status:#}");
    let message = status["message"].as_str().unwrap_or_default();
    for name in names {
        assert!(message.contains(name), "{name:?} not in {message:?}");
    }
    assert!(!message.contains("s3cret"), "{message}");
    assert_eq!(host.events(HistoryAction::Install), 0);
    assert!(fetched(host).is_empty(), "{:?}", fetched(host));
}

#[test]
fn a_download_whose_sha256_differs_fails_naming_the_url_and_installs_nothing() {
    on_virtual_clock(|| async {
        let mut host = ProductHost::new();
        let before = pak_fixtures::snapshot(&host.location);
        let (base, _) = package_server(&host.repository, false).await;
        let wrong = "0".repeat(64);
        let spec = install_job(&format!("{FP}.pak"), Some(&wrong));
        let with_credentials = base.replace("http://", "http://agent:s3cret@");
        let (codes, status) =
            install_over_http(&mut host, &with_credentials, spec, "9.0.5.22").await;
        let url = format!("{base}/{FP}.pak");
        let actual = fix_pack_sha(&host);
        assert_failed_download(
            &host,
            &codes,
            &status,
            &[
                &url,
                &wrong,
                &actual,
                "spec.packages[0].sha256",
                "nothing was installed",
            ],
        );
        pak_fixtures::assert_same(&pak_fixtures::snapshot(&host.location), &before, "product");
    });
}

#[test]
fn a_package_the_server_does_not_have_fails_with_the_http_status_and_the_url() {
    on_virtual_clock(|| async {
        let mut host = ProductHost::new();
        let (base, _) = package_server(&host.repository, false).await;
        let spec = install_job("fixpacks/missing.pak", Some(&"a".repeat(64)));
        let with_credentials = base.replace("http://", "http://agent:s3cret@");
        let (codes, status) =
            install_over_http(&mut host, &with_credentials, spec, "9.0.5.22").await;
        assert_failed_download(
            &host,
            &codes,
            &status,
            &[
                &format!("{base}/fixpacks/missing.pak"),
                "HTTP 404",
                "spec.packages[0].source",
            ],
        );
    });
}

#[test]
fn a_download_without_a_sha256_is_refused_before_any_request() {
    on_virtual_clock(|| async {
        let mut host = ProductHost::new();
        let (base, served) = package_server(&host.repository, false).await;
        let spec = install_job(&format!("{FP}.pak"), None);
        let (codes, status) = install_over_http(&mut host, &base, spec, "9.0.5.22").await;
        assert_failed_download(
            &host,
            &codes,
            &status,
            &[&format!("{base}/{FP}.pak"), "spec.packages[0].sha256"],
        );
        assert_eq!(served.gets(&format!("{FP}.pak")), 0);
    });
}

/// A `.part` holding the first half of the package, as a kill mid-download leaves it.
fn half_part(host: &ProductHost, to: &Path) {
    let bytes = std::fs::read(host.repository.join(format!("{FP}.pak"))).unwrap();
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to.with_extension("pak.part"), &bytes[..bytes.len() / 2]).unwrap();
}

#[test]
fn a_download_cut_off_resumes_or_starts_over_and_a_fetched_package_is_not_fetched_again() {
    on_virtual_clock(|| async {
        for ignore_ranges in [false, true] {
            let host = ProductHost::new();
            let (base, served) = package_server(&host.repository, ignore_ranges).await;
            let sha = fix_pack_sha(&host);
            let size = std::fs::metadata(host.repository.join(format!("{FP}.pak")))
                .unwrap()
                .len();
            let to = host.location.parent().unwrap().join("fetched/fp.pak");
            half_part(&host, &to);
            let origin = Origin::Url(format!("{base}/{FP}.pak").parse().unwrap());
            package_fetch::fetch(&origin, Some(&sha), &to)
                .await
                .unwrap();
            assert_eq!(sha256_of(&to), sha, "ignore_ranges {ignore_ranges}");
            assert!(!to.with_extension("pak.part").exists());
            assert_eq!(served.ranges(), [format!("bytes={}-", size / 2)]);
            // Fetched: nothing is asked again.
            package_fetch::fetch(&origin, Some(&sha), &to)
                .await
                .unwrap();
            assert_eq!(served.gets(&format!("{FP}.pak")), 1);
        }
    });
}

#[test]
fn a_stale_part_that_does_not_match_is_deleted_and_the_next_try_starts_over() {
    on_virtual_clock(|| async {
        let host = ProductHost::new();
        let (base, _) = package_server(&host.repository, false).await;
        let sha = fix_pack_sha(&host);
        let to = host.location.parent().unwrap().join("fetched/fp.pak");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to.with_extension("pak.part"), b"garbage from another file").unwrap();
        let origin = Origin::Url(format!("{base}/{FP}.pak").parse().unwrap());
        let e = package_fetch::fetch(&origin, Some(&sha), &to)
            .await
            .unwrap_err();
        assert!(matches!(e, FetchError::Mismatch { .. }), "{e}");
        assert!(!to.exists() && !to.with_extension("pak.part").exists());
        package_fetch::fetch(&origin, Some(&sha), &to)
            .await
            .unwrap();
        assert_eq!(sha256_of(&to), sha);
    });
}

#[test]
fn a_directory_source_with_a_sha256_is_verified() {
    on_virtual_clock(|| async {
        let host = ProductHost::new();
        let repository = PackageRepository::Dir(host.repository.clone());
        let source = format!("{FP}.pak");
        let to = host.location.parent().unwrap().join("fetched/fp.pak");
        let wrong = "1".repeat(64);
        let origin = package_fetch::origin(Some(&repository), &source, Some(&wrong)).unwrap();
        let e = package_fetch::fetch(&origin, Some(&wrong), &to)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&source) && e.contains(&wrong), "{e}");
        assert!(!to.exists());
        let sha = fix_pack_sha(&host);
        package_fetch::fetch(&origin, Some(&sha), &to)
            .await
            .unwrap();
        package_fetch::fetch(&origin, None, &to).await.unwrap();
        assert_eq!(sha256_of(&to), sha);
    });
}
