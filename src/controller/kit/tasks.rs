//! Creating a parent's task for one target: named `<parent>-<target>` (shortened with a hash
//! when too long), labelled with the parent's kind, the parent and the target, and owned by the
//! parent (so it is garbage-collected with it). A task that exists already is left as it is.

use std::collections::BTreeMap;

use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Resource, ResourceExt as _};

use super::context::Context;
use super::naming::{label_value, task_name};
use crate::api::upgrade_task::{LABEL_PARENT, LABEL_PARENT_KIND, LABEL_TARGET, ParentKind};
use crate::api::{UpgradeTask, UpgradeTaskSpec};

/// Creating a task failed.
#[derive(Debug, thiserror::Error)]
#[error("creating UpgradeTask {task}: {source}")]
pub struct CreateError {
    /// The task.
    pub task: String,
    /// The API error.
    pub source: kube::Error,
}

/// Creates the task of `parent` (of `kind`) for `target`.
pub async fn create_task<K>(
    ctx: &Context,
    parent: &K,
    kind: ParentKind,
    target: &str,
) -> Result<(), CreateError>
where
    K: Resource<DynamicType = ()>,
{
    let namespace = parent.namespace().unwrap_or_default();
    let parent_name = parent.name_any();
    let name = task_name(&parent_name, target);
    let labels = BTreeMap::from([
        (LABEL_PARENT_KIND.to_string(), kind.as_str().to_string()),
        (LABEL_PARENT.to_string(), label_value(&parent_name)),
        (LABEL_TARGET.to_string(), label_value(target)),
    ]);
    let task = UpgradeTask {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            owner_references: parent.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: UpgradeTaskSpec {
            parent_kind: kind,
            parent: parent_name,
            target: target.to_string(),
        },
        status: None,
    };
    match Api::<UpgradeTask>::namespaced(ctx.client.clone(), &namespace)
        .create(&PostParams::default(), &task)
        .await
    {
        Ok(_) => {
            ctx.metrics.wrote("UpgradeTask", "object");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(CreateError { task: name, source }),
    }
}
