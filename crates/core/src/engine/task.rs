//! What every task state machine shares: the bounded history of codes it passed, deterministic
//! incident ids, how both map onto an UpgradeTask status, and the error of a stored status that
//! cannot be read back. The firmware and DevicePatch engines keep their own code types; these
//! helpers take the code's name where they need it.
//!
//! Invariants: a history never holds more than [`HISTORY_LIMIT`] entries and always keeps its
//! first [`HISTORY_KEEP_FIRST`] and its latest ones; an incident id depends only on the task, the
//! code and the instant, so the same run always gives the same ids.

use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use uuid::Uuid;

use crate::api::codes::UnknownCode;
use crate::api::upgrade_task::HistoryEntry;

/// The most history entries a task keeps.
pub const HISTORY_LIMIT: usize = 64;
/// How many of the oldest entries are kept when the history is cut.
pub const HISTORY_KEEP_FIRST: usize = 8;

/// How long to wait before asking a device again when it gives no hint.
pub const POLL_INTERVAL: SignedDuration = SignedDuration::from_secs(10);
/// Bounds on a device's hint of when to ask again.
const MIN_POLL: SignedDuration = SignedDuration::from_secs(1);
const MAX_POLL: SignedDuration = SignedDuration::from_mins(5);

/// The namespace of incident ids: ids are UUID v5 of the task, the code and the instant.
const INCIDENT_NAMESPACE: Uuid = Uuid::from_u128(0x5c1e_7a3b_2d4f_4e8a_9b60_1f2e_3d4c_5b6a);

/// A stored status that cannot be read back (written by another version, or by hand).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// A code (or a reason) is not in the catalogue.
    #[error("status holds an unknown code or reason: {0}")]
    UnknownCode(#[from] UnknownCode),
    /// A required field is missing.
    #[error("status lacks {0}")]
    Missing(&'static str),
}

/// Appends `(code, at)` to `history`, dropping the oldest entry after the first
/// [`HISTORY_KEEP_FIRST`] when the history would grow past [`HISTORY_LIMIT`].
pub fn push_history<C>(history: &mut Vec<(C, Timestamp)>, code: C, at: Timestamp) {
    history.push((code, at));
    if history.len() > HISTORY_LIMIT {
        history.remove(HISTORY_KEEP_FIRST);
    }
}

/// The incident id of a failure with the code named `code` of `task` at `now`.
pub fn incident_id(task: &str, code: &str, now: Timestamp) -> String {
    Uuid::new_v5(
        &INCIDENT_NAMESPACE,
        format!("{task}|{code}|{now}").as_bytes(),
    )
    .to_string()
}

/// A history as the status stores it: each code by `name`, with its number when `number` gives
/// one (PatchJob codes).
pub fn history_to_status<C: Copy>(
    history: &[(C, Timestamp)],
    name: impl Fn(C) -> &'static str,
    number: impl Fn(C) -> Option<u16>,
) -> Vec<HistoryEntry> {
    history
        .iter()
        .map(|(code, at)| HistoryEntry {
            code: name(*code).to_string(),
            status_code: number(*code),
            at: Time(*at),
        })
        .collect()
}

/// A stored history read back; an empty one becomes `[(code, created_at)]`.
pub fn history_from_status<C: FromStr<Err = UnknownCode> + Copy>(
    entries: &[HistoryEntry],
    code: C,
    created_at: Timestamp,
) -> Result<Vec<(C, Timestamp)>, UnknownCode> {
    let history = entries
        .iter()
        .map(|e| Ok((e.code.parse()?, e.at.0)))
        .collect::<Result<Vec<_>, UnknownCode>>()?;
    Ok(if history.is_empty() {
        vec![(code, created_at)]
    } else {
        history
    })
}

/// What to do after a step of a task's state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<A> {
    /// The next action, whose answer is the next step's input; `None` to stop for now.
    pub action: Option<A>,
    /// Store the task's state before performing the action (it must not be repeated blindly).
    pub persist_first: bool,
    /// When to call the engine again without an input; `None` when only an outside change (a
    /// rollout grant) moves the task.
    pub wake_at: Option<Timestamp>,
}

impl<A> Step<A> {
    /// Perform `action` next.
    pub(crate) fn act(action: A) -> Self {
        Self {
            action: Some(action),
            persist_first: false,
            wake_at: None,
        }
    }

    /// Store the state, then perform `action`.
    pub(crate) fn act_after_persist(action: A) -> Self {
        Self {
            persist_first: true,
            ..Self::act(action)
        }
    }

    /// Nothing to do until `at`.
    pub(crate) fn wait_until(at: Timestamp) -> Self {
        Self {
            action: None,
            persist_first: false,
            wake_at: Some(at),
        }
    }

    /// Nothing to do until something outside changes.
    pub(crate) fn idle() -> Self {
        Self {
            action: None,
            persist_first: false,
            wake_at: None,
        }
    }
}

/// A spec duration as a signed one (durations beyond its range saturate).
pub(crate) fn duration(d: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// `now + by`, saturating at the end of time.
pub(crate) fn later(now: Timestamp, by: SignedDuration) -> Timestamp {
    now.checked_add(by).unwrap_or(Timestamp::MAX)
}

/// When to ask a running operation again: the device's hint, bounded to 1s–5m, else
/// [`POLL_INTERVAL`].
pub(crate) fn poll_after(now: Timestamp, hint: Option<SignedDuration>) -> Timestamp {
    later(now, hint.unwrap_or(POLL_INTERVAL).clamp(MIN_POLL, MAX_POLL))
}
