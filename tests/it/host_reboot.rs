//! The logind rebooter against a real `dbus-daemon` on a private bus (started per test), with a
//! fake `org.freedesktop.login1` written with zbus's service side: the agent calls
//! `Manager.Reboot(false)` exactly once per request; a bus without logind, a logind that refuses
//! and no bus at all are each a clear error.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use upkeep::agent::reboot::{Logind, RebootError, Rebooter};

/// Asks `logind` to reboot, failing the test if it does not answer in time.
async fn reboot(logind: Logind) -> Result<(), RebootError> {
    tokio::time::timeout(Duration::from_secs(60), logind.reboot())
        .await
        .expect("the rebooter answers within 60 s")
}

use crate::host_sandbox::require;

/// A private `dbus-daemon`, stopped when dropped.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bus {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>upkeep-test</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dbus-daemon starts");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed {address:?}"
        );
        Self {
            child,
            address,
            _dir: dir,
        }
    }
}

/// The fake logind: records each Reboot call's `interactive` argument.
struct FakeLogind {
    calls: Arc<Mutex<Vec<bool>>>,
    deny: bool,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl FakeLogind {
    fn reboot(&self, interactive: bool) -> zbus::fdo::Result<()> {
        self.calls.lock().unwrap().push(interactive);
        if self.deny {
            return Err(zbus::fdo::Error::AccessDenied(
                "Interactive authentication required.".into(),
            ));
        }
        Ok(())
    }
}

async fn serve_logind(bus: &Bus, deny: bool) -> (zbus::Connection, Arc<Mutex<Vec<bool>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let connection = zbus::connection::Builder::address(bus.address.as_str())
        .name("org.freedesktop.login1")
        .serve_at(
            "/org/freedesktop/login1",
            FakeLogind {
                calls: calls.clone(),
                deny,
            },
        )
        .build()
        .await
        .unwrap();
    (connection, calls)
}

const TOOLS: &[(&str, &str)] = &[("dbus-daemon", "dbus-daemon")];

#[tokio::test]
async fn logind_reboot_is_called_once_without_interaction() {
    if !require("logind reboot", TOOLS) {
        return;
    }
    let bus = Bus::start();
    let (_service, calls) = serve_logind(&bus, false).await;
    reboot(Logind::at(bus.address.clone())).await.unwrap();
    assert_eq!(
        *calls.lock().unwrap(),
        [false],
        "one Reboot(interactive=false)"
    );
}

#[tokio::test]
async fn a_bus_without_logind_a_refusal_and_no_bus_are_clear_errors() {
    if !require("logind errors", TOOLS) {
        return;
    }
    let bus = Bus::start();
    let err = reboot(Logind::at(bus.address.clone())).await.unwrap_err();
    assert!(matches!(err, RebootError::NoLogind(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("org.freedesktop.login1") && text.contains("systemctl reboot"),
        "{text}"
    );

    let (_service, calls) = serve_logind(&bus, true).await;
    let err = reboot(Logind::at(bus.address.clone())).await.unwrap_err();
    assert!(matches!(err, RebootError::Refused(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("Interactive authentication required"),
        "{err}"
    );
    assert_eq!(calls.lock().unwrap().len(), 1);

    let gone = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}/no-bus", gone.path().display());
    let err = reboot(Logind::at(address.clone())).await.unwrap_err();
    assert!(matches!(err, RebootError::Bus { .. }), "{err:?}");
    assert!(err.to_string().contains(&address), "{err}");
}
