//! Starts sushy-tools' Redfish emulator (`sushy-emulator --libvirt-uri test:///default`) on a
//! free loopback port, one emulator per test so that tests do not see each other's changes.
//!
//! The emulator is found through `UPKEEP_SUSHY_EMULATOR` (a path to the `sushy-emulator`
//! script; `.ci/run` sets it), else `.venv-sushy/bin/sushy-emulator` in the repository, else
//! `sushy-emulator` on `PATH`. Without it a test fails when `CI=true`, and is skipped with a
//! printed reason otherwise.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running emulator; stopped when dropped.
pub struct Sushy {
    child: Child,
    /// Its base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    log: PathBuf,
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn emulator() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("UPKEEP_SUSHY_EMULATOR") {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-sushy/bin/sushy-emulator");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("sushy-emulator"))
            .find(|p| p.is_file())
    })
}

impl Sushy {
    /// Starts an emulator, or `None` (with the reason printed) when it is not installed on a
    /// developer machine. Under `CI=true` a missing emulator fails the test.
    pub fn start(test: &str) -> Option<Self> {
        let Some(program) = emulator() else {
            let reason = "sushy-emulator not found (set UPKEEP_SUSHY_EMULATOR, or run .ci/run once to create .venv-sushy)";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: {reason}; CI must run the sushy-tools tests");
            }
            eprintln!("SKIPPED {test}: {reason}");
            return None;
        };
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let log = std::env::temp_dir().join(format!("upkeep-sushy-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&program)
            .args(["--libvirt-uri", "test:///default", "-i", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let mut sushy = Sushy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(sushy);
            }
            if let Ok(Some(status)) = sushy.child.try_wait() {
                let log = std::fs::read_to_string(&sushy.log).unwrap_or_default();
                panic!("sushy-emulator exited ({status}) before answering:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "sushy-emulator did not listen on port {port} within 60s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
