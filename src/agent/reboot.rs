//! Rebooting the host, and telling one boot from the next.
//!
//! Two ways, behind one trait, [`Rebooter`]:
//! - [`Logind`]: `org.freedesktop.login1.Manager.Reboot(false)` over the system D-Bus (zbus, on
//!   the agent's tokio runtime). Needs the bus socket (`/run/dbus/system_bus_socket`, which a pod
//!   mounts from the host) and root or the `org.freedesktop.login1.reboot` polkit permission.
//! - [`CommandRebooter`]: `systemctl reboot`, run in the host's namespaces with `nsenter -t 1 -m -u
//!   -i -n -p` when the agent runs in a pod with `hostPID` (and the privilege to enter them), or
//!   as it is on a machine where the agent is a systemd service.
//!
//! A reboot request returns once the init system accepted it; the host goes down afterwards. The
//! boot id ([`boot_id`]) is how the agent knows, after it starts again, that the reboot happened.
//! Invariant: a rebooter asks once per call and never retries by itself (whether a reboot is due
//! is the journal's and the engine's business).

use std::path::Path;
use std::process::Stdio;

use futures::FutureExt as _;
use futures::future::BoxFuture;

/// Why a reboot could not be requested.
#[derive(Debug, thiserror::Error)]
pub enum RebootError {
    /// No D-Bus bus to talk to.
    #[error(
        "cannot reach the D-Bus system bus at {address}: {reason}; mount /run/dbus/system_bus_socket into the agent, or use the systemctl reboot method"
    )]
    Bus {
        /// The bus address tried.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// The bus has no logind.
    #[error(
        "logind (org.freedesktop.login1) is not on the D-Bus system bus: {0}; this host does not run systemd-logind, use the systemctl reboot method"
    )]
    NoLogind(String),
    /// logind refused or failed.
    #[error("logind refused the reboot: {0}")]
    Refused(String),
    /// The reboot command could not be started.
    #[error("{program} could not be started: {reason}")]
    Spawn {
        /// The program.
        program: String,
        /// What went wrong.
        reason: String,
    },
    /// The reboot command failed.
    #[error("`{command}` exited with status {status}: {output}")]
    Command {
        /// The command line (redacted).
        command: String,
        /// Its exit status (-1 when killed by a signal).
        status: i32,
        /// The end of its output, redacted.
        output: String,
    },
}

/// A way to reboot the host.
pub trait Rebooter: Send + Sync {
    /// Asks the host to reboot; returns once the request was accepted.
    fn reboot(&self) -> BoxFuture<'_, Result<(), RebootError>>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Login1Manager {
    /// Reboots the system; `interactive` asks polkit to prompt (never, for the agent).
    fn reboot(&self, interactive: bool) -> zbus::Result<()>;
}

/// The system bus's address when `DBUS_SYSTEM_BUS_ADDRESS` is unset.
const SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";

/// How long logind may take to answer the Reboot call.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reboots through systemd-logind over D-Bus.
#[derive(Clone, Debug)]
pub struct Logind {
    address: String,
}

impl Logind {
    /// logind on the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else
    /// `unix:path=/run/dbus/system_bus_socket`).
    pub fn system() -> Self {
        Self::at(
            std::env::var("DBUS_SYSTEM_BUS_ADDRESS").unwrap_or_else(|_| SYSTEM_BUS.to_string()),
        )
    }

    /// logind on the bus at `address` (a D-Bus address, e.g. `unix:path=/host/run/dbus/…`).
    pub fn at(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
        }
    }

    async fn request(&self) -> Result<(), RebootError> {
        let bus = |reason: String| RebootError::Bus {
            address: self.address.clone(),
            reason,
        };
        let connection = zbus::connection::Builder::address(self.address.as_str())
            .method_timeout(CALL_TIMEOUT)
            .build();
        let connection = tokio::time::timeout(CALL_TIMEOUT, connection)
            .await
            .map_err(|_| bus(format!("no answer within {}s", CALL_TIMEOUT.as_secs())))?
            .map_err(|e| bus(e.to_string()))?;
        let manager = Login1ManagerProxy::new(&connection)
            .await
            .map_err(|e| RebootError::Refused(e.to_string()))?;
        tracing::info!(address = %self.address, "asking logind to reboot");
        manager.reboot(false).await.map_err(|e| match &e {
            zbus::Error::FDO(fdo) => match fdo.as_ref() {
                zbus::fdo::Error::ServiceUnknown(detail)
                | zbus::fdo::Error::NameHasNoOwner(detail) => RebootError::NoLogind(detail.clone()),
                other => RebootError::Refused(other.to_string()),
            },
            _ => RebootError::Refused(e.to_string()),
        })
    }
}

impl Rebooter for Logind {
    fn reboot(&self) -> BoxFuture<'_, Result<(), RebootError>> {
        self.request().boxed()
    }
}

/// Reboots by running a command, `systemctl reboot` by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRebooter {
    argv: Vec<String>,
}

impl CommandRebooter {
    /// `systemctl reboot`, for an agent that runs on the host itself.
    pub fn systemctl() -> Self {
        Self::from_argv(["systemctl", "reboot"])
    }

    /// `nsenter -t 1 -m -u -i -n -p -- systemctl reboot`: `systemctl reboot` in the namespaces of
    /// the host's PID 1, for an agent in a pod with `hostPID: true`.
    pub fn systemctl_in_host_namespaces() -> Self {
        Self::from_argv([
            "nsenter",
            "-t",
            "1",
            "-m",
            "-u",
            "-i",
            "-n",
            "-p",
            "--",
            "systemctl",
            "reboot",
        ])
    }

    /// Any command line (program first), for hosts with a reboot tool of their own.
    pub fn from_argv<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
        }
    }

    /// The command line it runs.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    async fn request(&self) -> Result<(), RebootError> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err(RebootError::Spawn {
                program: String::new(),
                reason: "the reboot command is empty".into(),
            });
        };
        tracing::info!(command = %self.argv.join(" "), "running the reboot command");
        let output = tokio::process::Command::new(program)
            .args(args)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| RebootError::Spawn {
                program: program.clone(),
                reason: e.to_string(),
            })?;
        if output.status.success() {
            return Ok(());
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = crate::agent::actions::redact(text.trim());
        Err(RebootError::Command {
            command: crate::agent::actions::redact(&self.argv.join(" ")),
            status: output.status.code().unwrap_or(-1),
            output: text.lines().last().unwrap_or_default().to_string(),
        })
    }
}

impl Rebooter for CommandRebooter {
    fn reboot(&self) -> BoxFuture<'_, Result<(), RebootError>> {
        self.request().boxed()
    }
}

/// The boot id of the running system: `/proc/sys/kernel/random/boot_id`, under `root` when given
/// (tests place one there); a new value after a restart means the host rebooted.
pub fn boot_id(root: Option<&Path>) -> std::io::Result<String> {
    let path = root
        .unwrap_or_else(|| Path::new("/"))
        .join("proc/sys/kernel/random/boot_id");
    let id = std::fs::read_to_string(&path)?.trim().to_string();
    if id.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_systemctl_command_lines() {
        assert_eq!(CommandRebooter::systemctl().argv(), ["systemctl", "reboot"]);
        assert_eq!(
            CommandRebooter::systemctl_in_host_namespaces().argv(),
            [
                "nsenter",
                "-t",
                "1",
                "-m",
                "-u",
                "-i",
                "-n",
                "-p",
                "--",
                "systemctl",
                "reboot"
            ]
        );
    }

    #[tokio::test]
    async fn a_reboot_command_runs_once_and_its_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("rebooted");
        let ok = CommandRebooter::from_argv([
            "/bin/sh".to_string(),
            "-c".to_string(),
            format!("echo once >> {}", marker.display()),
        ]);
        ok.reboot().await.unwrap();
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "once\n");
        let failing = CommandRebooter::from_argv([
            "/bin/sh",
            "-c",
            "echo 'Failed to reboot: token=abc123 denied' >&2; exit 1",
        ]);
        let err = failing.reboot().await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exited with status 1"), "{text}");
        assert!(
            text.contains("Failed to reboot") && !text.contains("abc123"),
            "{text}"
        );
        let missing = CommandRebooter::from_argv(["/nonexistent/systemctl", "reboot"]);
        assert!(matches!(
            missing.reboot().await,
            Err(RebootError::Spawn { .. })
        ));
    }

    #[test]
    fn the_boot_id_is_read_under_the_root() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("proc/sys/kernel/random");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("boot_id"),
            "3f1c2a9e-0000-4000-8000-000000000001\n",
        )
        .unwrap();
        assert_eq!(
            boot_id(Some(root.path())).unwrap(),
            "3f1c2a9e-0000-4000-8000-000000000001"
        );
        std::fs::write(dir.join("boot_id"), "\n").unwrap();
        assert!(boot_id(Some(root.path())).is_err());
        // The running system has one.
        assert_eq!(boot_id(None).unwrap().len(), 36);
    }
}
