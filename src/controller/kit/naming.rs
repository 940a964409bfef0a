//! Names and label values of the objects upkeep creates, kept within Kubernetes' limits.

use sha2::{Digest, Sha256};

/// The longest object name.
const NAME_LIMIT: usize = 253;
/// The longest label value (and the longest Job name, which becomes a pod label).
const LABEL_LIMIT: usize = 63;

fn shorten(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let digest = Sha256::digest(text.as_bytes());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let keep = limit - hash.len() - 1;
    let head = text[..keep].trim_end_matches(['-', '.']);
    format!("{head}-{hash}")
}

/// The name of the task of `parent` for `target`: `<parent>-<target>`, shortened with a hash
/// when longer than an object name may be.
pub fn task_name(parent: &str, target: &str) -> String {
    shorten(&format!("{parent}-{target}"), NAME_LIMIT)
}

/// A name as a label value: as is when it fits, else shortened with a hash.
pub fn label_value(name: &str) -> String {
    shorten(name, LABEL_LIMIT)
}

/// The name of a hook Job of a task: `<task>-<hook>`, at most 63 characters.
pub fn job_name(task: &str, hook: &str) -> String {
    shorten(&format!("{task}-{hook}"), LABEL_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_stay_long_names_shrink_stably() {
        assert_eq!(task_name("fw", "dp-1"), "fw-dp-1");
        let long = "d".repeat(80);
        let label = label_value(&long);
        assert_eq!(label.len(), LABEL_LIMIT);
        assert_eq!(label, label_value(&long), "stable");
        assert_ne!(label, label_value(&format!("{long}x")));
        assert!(job_name(&"t".repeat(70), "pre-plan").len() <= LABEL_LIMIT);
    }
}
