//! A Host's conditions, from what its agent reported and whether its Lease is fresh: the
//! controller writes them (an agent that went away cannot say so itself).
//!
//! `AgentOnline` follows the Lease; `RebootRequired` is True, False or Unknown as the host's
//! reboot signal is Yes, No or Unknown; `Ready` is True while the agent is online and has
//! reported the host's OS.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::conditions::{self, Desired, Status};
use crate::api::host::{HostStatus, RebootRequired};

/// Condition type: the agent's Lease is fresh.
pub const AGENT_ONLINE: &str = "AgentOnline";
/// Condition type: the host needs a reboot.
pub const REBOOT_REQUIRED: &str = "RebootRequired";

/// Sets the Host's conditions in `conditions` for an agent that is `online`; returns whether
/// they changed.
pub fn set_conditions(
    conditions: &mut Vec<Condition>,
    status: &HostStatus,
    online: bool,
    generation: Option<i64>,
    now: Timestamp,
) -> bool {
    let (reason, message) = if online {
        ("LeaseRenewed", "the agent renews its Lease")
    } else {
        (
            "LeaseExpired",
            "the agent has not renewed its Lease (or never did): check the agent on the host",
        )
    };
    let mut changed = conditions::set(
        conditions,
        Desired::new(AGENT_ONLINE, online, reason, message),
        generation,
        now,
    );
    let (required, reason, message) = match status.reboot_required {
        RebootRequired::Yes => (
            Status::True,
            "RebootRequired",
            if status.reboot_required_by.is_empty() {
                "the host needs a reboot".to_string()
            } else {
                format!(
                    "the host needs a reboot for {}",
                    status.reboot_required_by.join(", ")
                )
            },
        ),
        RebootRequired::No => (
            Status::False,
            "NoRebootRequired",
            "the host needs no reboot".into(),
        ),
        RebootRequired::Unknown => (
            Status::Unknown,
            "NoSignal",
            "the host gives no reboot signal upkeep can read; it is never rebooted for one".into(),
        ),
    };
    changed |= conditions::set(
        conditions,
        Desired::new(REBOOT_REQUIRED, required, reason, message),
        generation,
        now,
    );
    let reported = !status.os.id.is_empty();
    let (ready, reason, message) = match (online, reported) {
        (true, true) => (true, "AgentReporting", "the agent reports the host"),
        (true, false) => (
            false,
            "NoFacts",
            "the agent has not reported the host's facts yet",
        ),
        (false, _) => (false, "AgentOffline", "the host's agent is offline"),
    };
    changed |= conditions::set(
        conditions,
        Desired::new(conditions::READY, ready, reason, message),
        generation,
        now,
    );
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn an_offline_agent_makes_the_host_not_ready_and_unknown_reboots_say_so() {
        let mut status = HostStatus::default();
        status.os.id = "debian".into();
        let mut conditions = Vec::new();
        assert!(set_conditions(&mut conditions, &status, true, None, at(0)));
        let get = |c: &[Condition], t: &str| conditions::get(c, t).map(|c| c.status.clone());
        assert_eq!(get(&conditions, conditions::READY).as_deref(), Some("True"));
        assert_eq!(
            get(&conditions, REBOOT_REQUIRED).as_deref(),
            Some("Unknown")
        );
        assert!(
            !set_conditions(&mut conditions, &status, true, None, at(5)),
            "no change, no write"
        );
        status.reboot_required = RebootRequired::Yes;
        assert!(set_conditions(&mut conditions, &status, false, None, at(9)));
        assert_eq!(get(&conditions, AGENT_ONLINE).as_deref(), Some("False"));
        assert_eq!(
            get(&conditions, conditions::READY).as_deref(),
            Some("False")
        );
        assert_eq!(get(&conditions, REBOOT_REQUIRED).as_deref(), Some("True"));
    }
}
