//! The `command` installer: a vendor's own update tool, run as a command line (Host
//! `spec.products[].installer: command` and its `command` block).
//!
//! Each run: the response file is written from its template (mode 0600, removed afterwards),
//! then the install or uninstall line runs under `/bin/sh -c` with its standard output and
//! error streamed into `<location>/logs/update/<YYYYMMDD_HHMMSS>_<id>_<action>.log`, whose last
//! line is the result. Substitutions: `{package}` (the package file; for an uninstall the
//! package id), `{location}`, `{id}`, `{responseFile}`; in the command line each value is
//! single-quoted for the shell, in the response file it is written as is. Exit 0 is `success`,
//! 1 `partialSuccess`, anything else (a signal, a time-out past `timeout`) `failure`. The
//! event goes into the location's history (`properties/version/history/`, written to a
//! temporary name and renamed), where the Host's status and the reports read it, as they read
//! the builtin installer's.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::builtin::stamped_name;
use super::{InstallOutcome, Installer, Now, ProductTarget};
use crate::agent::products::{HISTORY_DIR, HistoryFile, LOG_DIR};
use crate::api::codes::PackageResult;
use crate::api::host::{CommandInstaller, HistoryAction};
use crate::engine::packages::plan::{EventNames, EventSubject, PackageRun, Reason, history_events};

/// Runs a vendor tool.
pub struct CommandRunner {
    command: CommandInstaller,
    now: Now,
}

impl std::fmt::Debug for CommandRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandRunner")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

/// Single-quotes `value` for `/bin/sh`.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `template` with `{package}`, `{location}`, `{id}` and `{responseFile}` replaced, each value
/// passed through `wrap`.
pub fn substitute(
    template: &str,
    values: &[(&str, &str)],
    wrap: impl Fn(&str) -> String,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    'outer: while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        for (name, value) in values {
            let key = format!("{{{name}}}");
            if let Some(tail) = after.strip_prefix(&key) {
                out.push_str(&wrap(value));
                rest = tail;
                continue 'outer;
            }
        }
        out.push('{');
        rest = &after[1..];
    }
    out.push_str(rest);
    out
}

/// How an exit status maps to a package result.
pub fn result_of(code: Option<i32>) -> PackageResult {
    match code {
        Some(0) => PackageResult::Success,
        Some(1) => PackageResult::PartialSuccess,
        _ => PackageResult::Failure,
    }
}

impl CommandRunner {
    /// A runner of `command`, reading time from `now`.
    pub fn new(command: CommandInstaller, now: Now) -> Self {
        Self { command, now }
    }

    fn run(
        &self,
        target: &ProductTarget,
        action: HistoryAction,
        id: &str,
        package: &str,
    ) -> InstallOutcome {
        let start = (self.now)();
        let verb = match action {
            HistoryAction::Install => "install",
            HistoryAction::Uninstall => "uninstall",
        };
        let log_dir = target.location.join(LOG_DIR);
        let log = log_dir.join(format!(
            "{}_{id}_{verb}.log",
            start.strftime("%Y%m%d_%H%M%S")
        ));
        let response = std::env::temp_dir().join(format!(
            "upkeep-{id}-{verb}-{}.response",
            std::process::id()
        ));
        let location = target.location.display().to_string();
        let response_text = response.display().to_string();
        let values = [
            ("package", package),
            ("location", location.as_str()),
            ("id", id),
            ("responseFile", response_text.as_str()),
        ];
        let line = match action {
            HistoryAction::Install => &self.command.install,
            HistoryAction::Uninstall => &self.command.uninstall,
        };
        let line = substitute(line, &values, quote);
        let outcome = (|| -> io::Result<(PackageResult, String)> {
            fs::create_dir_all(&log_dir)?;
            if let Some(template) = &self.command.response_file {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&response)?;
                file.write_all(substitute(template, &values, str::to_string).as_bytes())?;
            }
            let mut out = File::create(&log)?;
            writeln!(out, "upkeep command installer: {verb} {id} on {location}")?;
            writeln!(out, "command: {line}")?;
            let timeout = self.command.timeout.0;
            let (code, why) = run_with_timeout(&line, &out, timeout)?;
            let result = result_of(code);
            writeln!(out, "{why}")?;
            writeln!(out, "result: {result}")?;
            Ok((result, why))
        })();
        let _ = fs::remove_file(&response);
        let end = (self.now)();
        let (result, message) = match outcome {
            Ok(found) => found,
            Err(e) => (
                PackageResult::Failure,
                format!("could not run the tool: {e}"),
            ),
        };
        let names = EventNames {
            primary_content: Path::new(package)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            log_name: log.display().to_string(),
            backup_name: String::new(),
        };
        let events = history_events(
            EventSubject {
                product: &target.id,
                id,
                components: &[],
            },
            action,
            result,
            &names,
            start,
            end,
        );
        let mut message = message;
        if let Err(e) = record_history(&target.location, start, id, verb, &events) {
            message.push_str(&format!("; the history event could not be written: {e}"));
        }
        let run = match result {
            PackageResult::Success => PackageRun::success(id, message),
            other => PackageRun::ended(id, other, Reason::InstallFailed, message),
        };
        InstallOutcome {
            run,
            events,
            log: log.exists().then_some(log),
        }
    }
}

/// The newest update log of `id`'s `verb` ("install", "uninstall") in `location`, and the
/// result its last line gives (none when the run was cut off before it wrote one).
pub fn last_log(
    location: &Path,
    id: &str,
    verb: &str,
) -> Option<(std::path::PathBuf, Option<PackageResult>)> {
    let suffix = format!("_{id}_{verb}.log");
    let newest = fs::read_dir(location.join(LOG_DIR))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
        })
        .max()?;
    let text = fs::read_to_string(&newest).unwrap_or_default();
    let result = text
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("result: "))
        .and_then(|r| r.parse().ok());
    Some((newest, result))
}

/// Writes `events` as the history file of this run (its name stamped with `start`, the next
/// free second when taken), through a temporary file renamed into place.
fn record_history(
    location: &Path,
    start: jiff::Timestamp,
    id: &str,
    verb: &str,
    events: &[crate::api::host::HistoryEvent],
) -> io::Result<()> {
    let dir = location.join(HISTORY_DIR);
    fs::create_dir_all(&dir)?;
    let text = serde_saphyr::to_string(&HistoryFile {
        events: events.to_vec(),
    })
    .map_err(io::Error::other)?;
    let name = stamped_name(location, HISTORY_DIR, start, id, verb, "yaml");
    let path = location.join(name);
    let tmp = path.with_extension("yaml.tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, &path)
}

/// Runs `line` under `/bin/sh -c` in its own process group, output into `log`; kills the group
/// after `timeout`. Returns the exit code (none for a signal or a time-out) and a sentence.
fn run_with_timeout(
    line: &str,
    log: &File,
    timeout: Duration,
) -> io::Result<(Option<i32>, String)> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(line)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(0)
        .spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            let why = match status.code() {
                Some(code) => format!("the tool exited with {code}"),
                None => "the tool was ended by a signal".to_string(),
            };
            return Ok((status.code(), why));
        }
        if Instant::now() >= deadline {
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.wait();
            let secs = timeout.as_secs();
            return Ok((
                None,
                format!("the tool ran longer than {secs}s and was killed"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Installer for CommandRunner {
    fn install(&self, product: &ProductTarget, package: &Path, id: Option<&str>) -> InstallOutcome {
        let stem = package
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = id.map_or(stem, str::to_string);
        self.run(
            product,
            HistoryAction::Install,
            &id,
            &package.display().to_string(),
        )
    }

    fn uninstall(&self, product: &ProductTarget, id: &str) -> InstallOutcome {
        self.run(product, HistoryAction::Uninstall, id, id)
    }

    fn recover(&self, _product: &ProductTarget) -> Result<Option<InstallOutcome>, String> {
        // The vendor tool keeps its own state; nothing of upkeep's is pending.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_the_shell_and_unknown_braces_stay() {
        let values = [("package", "/tmp/a b'c.pak"), ("id", "IF1")];
        let line = substitute("tool -p {package} -i {id} {other} {", &values, quote);
        assert_eq!(line, r"tool -p '/tmp/a b'\''c.pak' -i 'IF1' {other} {");
        let raw = substitute(
            "-W maintenance.package=\"{package}\"",
            &values,
            str::to_string,
        );
        assert_eq!(raw, "-W maintenance.package=\"/tmp/a b'c.pak\"");
    }

    #[test]
    fn exit_codes_map_to_results() {
        assert_eq!(result_of(Some(0)), PackageResult::Success);
        assert_eq!(result_of(Some(1)), PackageResult::PartialSuccess);
        assert_eq!(result_of(Some(2)), PackageResult::Failure);
        assert_eq!(result_of(None), PackageResult::Failure);
    }
}
