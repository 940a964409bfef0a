//! kstatus conditions: `Ready`, `Reconciling` and `Stalled`, plus kind-specific ones such as
//! `Reachable`. Helpers keep `lastTransitionTime` stable while a condition's status is unchanged,
//! so a status write only happens when something a watcher cares about changed.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::codes::TaskResult;

/// Condition type: the resource reached its desired state.
pub const READY: &str = "Ready";
/// Condition type: work is under way (kstatus "in progress").
pub const RECONCILING: &str = "Reconciling";
/// Condition type: the resource failed as a whole and will not progress without a change.
pub const STALLED: &str = "Stalled";
/// Condition type of a Device: its management interface answers.
pub const REACHABLE: &str = "Reachable";

/// The status of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

impl Status {
    /// The string Kubernetes uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

/// A condition to set, before it is merged with the existing list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired<'a> {
    /// Condition type, e.g. [`READY`].
    pub type_: &'a str,
    /// True, False or Unknown.
    pub status: Status,
    /// A CamelCase reason.
    pub reason: &'a str,
    /// A human-readable message.
    pub message: String,
}

impl<'a> Desired<'a> {
    /// A condition of the given type, status and reason.
    pub fn new(
        type_: &'a str,
        status: impl Into<Status>,
        reason: &'a str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status: status.into(),
            reason,
            message: message.into(),
        }
    }
}

/// Sets `desired` in `conditions` for `generation`. The transition time moves only when the
/// status changes; reason, message and observedGeneration follow `desired`. Returns whether the
/// list changed.
pub fn set(
    conditions: &mut Vec<Condition>,
    desired: Desired<'_>,
    generation: Option<i64>,
    now: Timestamp,
) -> bool {
    let status = desired.status.as_str();
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == desired.type_) {
        let unchanged = existing.status == status
            && existing.reason == desired.reason
            && existing.message == desired.message
            && existing.observed_generation == generation;
        if unchanged {
            return false;
        }
        if existing.status != status {
            existing.last_transition_time = Time(now);
        }
        existing.status = status.to_string();
        existing.reason = desired.reason.to_string();
        existing.message = desired.message;
        existing.observed_generation = generation;
        return true;
    }
    conditions.push(Condition {
        type_: desired.type_.to_string(),
        status: status.to_string(),
        reason: desired.reason.to_string(),
        message: desired.message,
        observed_generation: generation,
        last_transition_time: Time(now),
    });
    true
}

/// The three kstatus conditions at once, for a resource that is in exactly one of the states
/// ready, reconciling or stalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Work is under way.
    Reconciling,
    /// Done, and the desired state holds.
    Ready,
    /// Failed as a whole; nothing more will happen without a change to the spec.
    Stalled,
}

/// Sets `Ready`, `Reconciling` and `Stalled` to match `phase`, all with the same reason and
/// message. Returns whether the list changed.
pub fn set_phase(
    conditions: &mut Vec<Condition>,
    phase: Phase,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> bool {
    let flags = [
        (READY, phase == Phase::Ready),
        (RECONCILING, phase == Phase::Reconciling),
        (STALLED, phase == Phase::Stalled),
    ];
    let mut changed = false;
    for (type_, on) in flags {
        changed |= set(
            conditions,
            Desired::new(type_, on, reason, message),
            generation,
            now,
        );
    }
    changed
}

/// The condition of the given type, if present.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of the given type is present and `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == "True")
}

/// A status code as an event reason: `EXECUTION_UPLOAD_IMAGE_STARTED` → `ExecutionUploadImageStarted`,
/// `Pending Reboot` → `PendingReboot`.
pub fn reason_of(code: &str) -> String {
    code.split(['_', ' ', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| {
                    c.to_uppercase()
                        .chain(chars.flat_map(char::to_lowercase))
                        .collect::<String>()
                })
                .unwrap_or_default()
        })
        .collect()
}

/// The kstatus phase of a task with `result`: in progress reconciles, a failure stalls, any other
/// end is ready.
pub fn phase_of(result: TaskResult) -> Phase {
    match result {
        TaskResult::InProgress => Phase::Reconciling,
        TaskResult::Failed => Phase::Stalled,
        TaskResult::Succeeded | TaskResult::Skipped | TaskResult::Canceled => Phase::Ready,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut list = Vec::new();
        assert!(set(
            &mut list,
            Desired::new(READY, false, "Validating", "checking"),
            Some(1),
            at(10)
        ));
        assert!(!set(
            &mut list,
            Desired::new(READY, false, "Validating", "checking"),
            Some(1),
            at(20)
        ));
        assert_eq!(list[0].last_transition_time, Time(at(10)));
        assert!(set(
            &mut list,
            Desired::new(READY, false, "Executing", "running"),
            Some(1),
            at(30)
        ));
        assert_eq!(
            list[0].last_transition_time,
            Time(at(10)),
            "same status keeps the time"
        );
        assert!(set(
            &mut list,
            Desired::new(READY, true, "Succeeded", "done"),
            Some(2),
            at(40)
        ));
        assert_eq!(list[0].last_transition_time, Time(at(40)));
        assert_eq!(list[0].observed_generation, Some(2));
        assert!(is_true(&list, READY));
    }

    #[test]
    fn phase_sets_exactly_one_of_the_three() {
        let mut list = Vec::new();
        set_phase(
            &mut list,
            Phase::Stalled,
            "NoDevices",
            "nothing matched",
            Some(3),
            at(1),
        );
        assert!(is_true(&list, STALLED));
        assert!(!is_true(&list, READY));
        assert!(!is_true(&list, RECONCILING));
        assert_eq!(list.len(), 3);
        assert!(list.iter().all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn codes_become_camel_case_reasons() {
        assert_eq!(
            reason_of("EXECUTION_UPLOAD_IMAGE_STARTED"),
            "ExecutionUploadImageStarted"
        );
        assert_eq!(reason_of("SENT_TO_MDB"), "SentToMdb");
        assert_eq!(reason_of("Canceled - Blackout"), "CanceledBlackout");
    }
}
