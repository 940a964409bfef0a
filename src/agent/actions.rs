//! A PatchJob's pre and post actions, run on the host, and the redaction of anything a host
//! command prints.
//!
//! An action's `command` runs as `/bin/sh -c COMMAND` in a process group of its own, with no
//! standard input, for at most its `timeout` (default 10m); at the timeout the whole group is
//! killed (SIGKILL), so a pipeline or a background child does not outlive it. The same happens
//! when the caller stops waiting (the future is dropped). Processes an action leaves running
//! after it exits normally (a daemon it started) are left alone.
//!
//! Output: standard output and error, in arrival order, each line redacted as it arrives
//! ([`redact`]: URL credentials, `password=`/`token=`-style pairs, Authorization and Cookie
//! headers, bearer tokens, private key blocks, well-known token shapes), then only a bounded tail
//! is kept. Invariant: no output reaches a caller (and so a status or an Event) unredacted.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Stdio;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use regex::Regex;
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::api::patch_job::Action;

/// The most output an outcome carries (the end of it), in bytes.
pub const OUTPUT_TAIL: usize = 4096;
/// Lines longer than this are cut (the rest of the line is dropped).
const MAX_LINE: usize = 16 * 1024;
/// How much output is kept while the command runs, in bytes of whole lines.
const KEPT: usize = 64 * 1024;
/// How long output is still read after the shell exited (a background child may hold the pipe).
const DRAIN: Duration = Duration::from_secs(1);

/// How an action's command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionResult {
    /// It exited with this status.
    Exited(i32),
    /// It was killed by this signal (not by upkeep).
    Signaled(i32),
    /// It ran past its timeout and its process group was killed.
    TimedOut,
}

/// What running an action gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionOutcome {
    /// How it ended.
    pub result: ActionResult,
    /// The end of its output (at most [`OUTPUT_TAIL`] bytes), redacted.
    pub output: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl ActionOutcome {
    /// Whether it exited 0.
    pub fn succeeded(&self) -> bool {
        self.result == ActionResult::Exited(0)
    }

    /// One line for a status message: `action NAME exited with status 3: <last output line>`.
    pub fn summary(&self, name: &str, timeout: Duration) -> String {
        let how = match self.result {
            ActionResult::Exited(0) => "succeeded".to_string(),
            ActionResult::Exited(code) => format!("exited with status {code}"),
            ActionResult::Signaled(signal) => format!("was killed by signal {signal}"),
            ActionResult::TimedOut => format!(
                "did not finish within its timeout of {}s and was killed",
                timeout.as_secs()
            ),
        };
        match self.output.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(last) => format!("action {name} {how}: {}", last.trim()),
            None => format!("action {name} {how}"),
        }
    }
}

/// Why an action could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// `/bin/sh` could not be started.
    #[error("action {name}: /bin/sh could not be started: {source}")]
    Spawn {
        /// The action's name.
        name: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Runs `action` to its end or its timeout.
#[tracing::instrument(skip_all, fields(action = %action.name))]
pub async fn run(action: &Action) -> Result<ActionOutcome, ActionError> {
    let started = tokio::time::Instant::now();
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&action.command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| ActionError::Spawn {
            name: action.name.clone(),
            source,
        })?;
    let mut group = Group(
        child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32)),
    );
    let kept = Arc::new(Mutex::new(Kept::default()));
    let readers: Vec<_> = [
        child.stdout.take().map(|s| reader(s, kept.clone())),
        child.stderr.take().map(|s| reader(s, kept.clone())),
    ]
    .into_iter()
    .flatten()
    .collect();

    let timeout = action.timeout.get();
    let result = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => match (status.code(), status.signal()) {
            (Some(code), _) => ActionResult::Exited(code),
            (None, Some(signal)) => ActionResult::Signaled(signal),
            (None, None) => ActionResult::Signaled(0),
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "waiting for the action failed; killing its process group");
            group.kill();
            ActionResult::Signaled(9)
        }
        Err(_) => {
            tracing::warn!(
                timeout_s = timeout.as_secs(),
                "action timed out; killing its process group"
            );
            group.kill();
            let _ = child.wait().await;
            ActionResult::TimedOut
        }
    };
    // Exited normally: what it left running is its business.
    group.0 = None;
    for reader in readers {
        let abort = reader.abort_handle();
        if tokio::time::timeout(DRAIN, reader).await.is_err() {
            abort.abort();
        }
    }
    let output = kept.lock().map(|k| k.tail()).unwrap_or_default();
    let outcome = ActionOutcome {
        result,
        output,
        elapsed: started.elapsed(),
    };
    tracing::info!(result = ?outcome.result, elapsed_ms = outcome.elapsed.as_millis() as u64, "action finished");
    Ok(outcome)
}

/// The action's process group, killed on drop unless disarmed.
struct Group(Option<rustix::process::Pid>);

impl Group {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take()
            && let Err(e) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL)
        {
            tracing::debug!(error = %e, "killing the action's process group");
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The redacted lines kept so far, at most [`KEPT`] bytes.
#[derive(Default)]
struct Kept {
    lines: VecDeque<String>,
    bytes: usize,
}

impl Kept {
    fn push(&mut self, line: String) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.bytes > KEPT {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len() + 1,
                None => break,
            }
        }
    }

    fn tail(&self) -> String {
        let all = self
            .lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        if all.len() <= OUTPUT_TAIL {
            return all;
        }
        let mut start = all.len() - (OUTPUT_TAIL - '…'.len_utf8());
        while !all.is_char_boundary(start) {
            start += 1;
        }
        format!("…{}", &all[start..])
    }
}

/// Reads one stream into `kept`, a redacted line at a time.
fn reader(
    mut stream: impl AsyncRead + Unpin + Send + 'static,
    kept: Arc<Mutex<Kept>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut redactor = Redactor::default();
        let mut line: Vec<u8> = Vec::new();
        let mut overlong = false;
        let mut buf = [0u8; 8192];
        let emit = |line: &mut Vec<u8>, overlong: &mut bool, redactor: &mut Redactor| {
            let mut text = String::from_utf8_lossy(line).into_owned();
            if *overlong {
                text.push('…');
            }
            line.clear();
            *overlong = false;
            if let Some(clean) = redactor.line(&text)
                && let Ok(mut kept) = kept.lock()
            {
                kept.push(clean);
            }
        };
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for byte in &buf[..n] {
                if *byte == b'\n' {
                    emit(&mut line, &mut overlong, &mut redactor);
                } else if line.len() < MAX_LINE {
                    line.push(*byte);
                } else {
                    overlong = true;
                }
            }
        }
        if !line.is_empty() || overlong {
            emit(&mut line, &mut overlong, &mut redactor);
        }
    })
}

/// What replaces a secret.
const MASK: &str = "***";

/// Patterns of secrets within one line, and their replacements.
static PATTERNS: LazyLock<Vec<(Regex, String)>> = LazyLock::new(|| {
    let key = r"[A-Za-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)";
    [
        // scheme://user:pass@host → scheme://***@host
        (r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@]+@".to_string(), format!("${{1}}{MASK}@")),
        // Authorization / Proxy-Authorization / Cookie headers: the rest of the line.
        (
            r"(?i)\b((?:proxy-)?authorization|(?:set-)?cookie|x-api-key|x-auth-token)(\s*[:=]\s*).*$".to_string(),
            format!("${{1}}${{2}}{MASK}"),
        ),
        // --password VALUE, --token=VALUE, -password VALUE
        (
            format!(r"(?i)(\s|^)(--?{key}[A-Za-z0-9_-]*)(=|\s+)[^\s]+"),
            format!("${{1}}${{2}}${{3}}{MASK}"),
        ),
        // password=VALUE, "token": "VALUE", DB_PASSWORD: VALUE, ?access_token=VALUE
        (
            format!(r#"(?i)({key})(["']?\s*[=:]\s*["']?)[^\s"',;&]+"#),
            format!("${{1}}${{2}}{MASK}"),
        ),
        // Bearer / Basic credentials anywhere.
        (
            r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}".to_string(),
            format!("${{1}} {MASK}"),
        ),
        // Well-known token shapes: AWS access key ids, GitHub, GitLab and Slack tokens, JWTs.
        (
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bglpat-[A-Za-z0-9_-]{20,}\b|\bxox[abprs]-[A-Za-z0-9-]{10,}\b|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b".to_string(),
            MASK.to_string(),
        ),
    ]
    .into_iter()
    .filter_map(|(pattern, replacement)| match Regex::new(&pattern) {
        Ok(re) => Some((re, replacement)),
        Err(e) => {
            tracing::error!(%pattern, error = %e, "a redaction pattern does not compile");
            None
        }
    })
    .collect()
});

/// Line-by-line redaction, with the state of a private key block across lines.
#[derive(Default)]
struct Redactor {
    in_private_key: bool,
}

impl Redactor {
    /// The line with its secrets masked, or `None` for a line inside a private key block.
    fn line(&mut self, line: &str) -> Option<String> {
        let begins = line.contains("-----BEGIN") && line.contains("PRIVATE KEY-----");
        let ends = line.contains("-----END") && line.contains("PRIVATE KEY-----");
        if begins {
            self.in_private_key = !ends;
            return Some(format!("-----BEGIN PRIVATE KEY----- {MASK}"));
        }
        if self.in_private_key {
            if ends {
                self.in_private_key = false;
            }
            return None;
        }
        let mut out = line.to_string();
        for (re, replacement) in PATTERNS.iter() {
            if re.is_match(&out) {
                out = re.replace_all(&out, replacement.as_str()).into_owned();
            }
        }
        Some(out)
    }
}

/// `text` with its secrets masked: what any host output goes through before it may reach a
/// status, an Event or a log.
pub fn redact(text: &str) -> String {
    let mut redactor = Redactor::default();
    text.lines()
        .filter_map(|l| redactor.line(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::GoDuration;

    #[test]
    fn credentials_are_masked() {
        let cases = [
            (
                "Get:1 https://deploy:s3cr3t-pw@mirror.example.com/debian bookworm InRelease",
                "Get:1 https://***@mirror.example.com/debian bookworm InRelease",
            ),
            (
                "git clone https://ghtoken@github.com/x/y",
                "git clone https://***@github.com/x/y",
            ),
            (
                "mysql://root:hunter2@db:3306/app",
                "mysql://***@db:3306/app",
            ),
            ("password=hunter2 user=bob", "password=*** user=bob"),
            ("export DB_PASSWORD='hunter2'", "export DB_PASSWORD='***'"),
            (
                "{\"token\": \"abc.def\", \"n\": 1}",
                "{\"token\": \"***\", \"n\": 1}",
            ),
            (
                "curl https://api/x?access_token=abc123&page=2",
                "curl https://api/x?access_token=***&page=2",
            ),
            ("Authorization: Bearer abc.def.ghi", "Authorization: ***"),
            (
                "> proxy-authorization: Basic dXNlcjpwYXNz",
                "> proxy-authorization: ***",
            ),
            ("Set-Cookie: session=abcdef; HttpOnly", "Set-Cookie: ***"),
            (
                "login --password hunter2 --user bob",
                "login --password *** --user bob",
            ),
            ("login --api-token=xyz", "login --api-token=***"),
            (
                "sent bearer abcdefghijklmnop to the API",
                "sent bearer *** to the API",
            ),
            ("key AKIAIOSFODNN7EXAMPLE used", "key *** used"),
            (
                "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "token ***",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "jwt ***",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn harmless_text_is_kept() {
        for text in [
            "Setting up libfoo (1.1) ...",
            "https://mirror.example.com/debian bookworm InRelease",
            "3 passed, 0 failed",
            "user@example.com wrote the tokens count",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn private_key_blocks_are_dropped() {
        let text = "before\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQUJDREVGR0g=\n-----END OPENSSH PRIVATE KEY-----\nafter";
        assert_eq!(
            redact(text),
            "before\n-----BEGIN PRIVATE KEY----- ***\nafter"
        );
    }

    fn action(command: &str, timeout: Duration) -> Action {
        Action {
            name: "test".into(),
            command: command.into(),
            timeout: GoDuration(timeout),
            rerun_if_interrupted: false,
        }
    }

    #[tokio::test]
    async fn exit_status_and_output_of_both_streams() {
        let outcome = run(&action(
            "echo out; echo err >&2; exit 3",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
        assert_eq!(outcome.result, ActionResult::Exited(3));
        assert!(!outcome.succeeded());
        let mut lines: Vec<&str> = outcome.output.lines().collect();
        lines.sort();
        assert_eq!(lines, ["err", "out"]);
        assert_eq!(
            outcome.summary("drain-lb", Duration::from_secs(30)),
            format!(
                "action drain-lb exited with status 3: {}",
                outcome.output.lines().last().unwrap()
            )
        );
        let ok = run(&action("true", Duration::from_secs(30))).await.unwrap();
        assert!(ok.succeeded());
        assert_eq!(
            ok.summary("noop", Duration::from_secs(30)),
            "action noop succeeded"
        );
    }

    #[tokio::test]
    async fn secrets_in_output_never_reach_the_outcome() {
        let outcome = run(&action(
            "echo 'fetching https://admin:pa55w0rd@repo.internal/x'; echo 'password=pa55w0rd' >&2; printf 'token: pa55w0rd'",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
        assert!(!outcome.output.contains("pa55w0rd"), "{}", outcome.output);
        assert!(outcome.output.contains("https://***@repo.internal/x"));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let command = format!(
            "sleep 300 & echo $! > {}; echo started; wait",
            pidfile.display()
        );
        let outcome = run(&action(&command, Duration::from_millis(500)))
            .await
            .unwrap();
        assert_eq!(outcome.result, ActionResult::TimedOut);
        assert!(
            outcome.elapsed < Duration::from_secs(10),
            "{:?}",
            outcome.elapsed
        );
        assert_eq!(outcome.output, "started");
        assert!(
            outcome
                .summary("slow", Duration::from_millis(500))
                .contains("did not finish within its timeout")
        );
        // The background `sleep` was in the group: it is gone (or a zombie awaiting its reaper).
        let pid = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.chars().next()))
                .flatten();
            if matches!(state, None | Some('Z') | Some('X')) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sleep {pid} still runs: {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn output_is_bounded_to_its_tail() {
        let outcome = run(&action(
            "i=0; while [ $i -lt 20000 ]; do echo \"line $i\"; i=$((i+1)); done; head -c 100000 /dev/zero | tr '\\0' x; echo; echo last",
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
        assert!(outcome.succeeded());
        assert!(
            outcome.output.len() <= OUTPUT_TAIL,
            "{}",
            outcome.output.len()
        );
        assert!(
            outcome.output.ends_with("\nlast"),
            "{}",
            &outcome.output[outcome.output.len() - 20..]
        );
        assert!(outcome.output.starts_with('…'));
    }

    #[tokio::test]
    async fn a_background_child_holding_the_pipe_does_not_hang_the_action() {
        // The `sleep` keeps the output pipe open after the shell exits; it ends by itself.
        let outcome = run(&action("sleep 6 & echo done", Duration::from_secs(20)))
            .await
            .unwrap();
        assert!(outcome.succeeded());
        assert_eq!(outcome.output, "done");
        assert!(
            outcome.elapsed < Duration::from_secs(4),
            "{:?}",
            outcome.elapsed
        );
    }
}
