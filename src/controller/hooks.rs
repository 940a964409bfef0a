//! Hook Jobs: a FirmwareUpgrade's prePlan, pre and post hooks run as Kubernetes Jobs from their
//! templates, one per task and hook, owned by the task. A Job that completes is a zero exit; a
//! Job that fails (or cannot be created) is a non-zero exit.

use futures::FutureExt as _;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::{Job, JobTemplateSpec};
use k8s_openapi::api::core::v1::EnvVar;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client, Resource as _, ResourceExt as _};

use super::kit::naming::{job_name, label_value};
use crate::api::UpgradeTask;
use crate::api::firmware_upgrade::Hooks as HookTemplates;
use crate::api::upgrade_task::{LABEL_PARENT, LABEL_PARENT_KIND, LABEL_TARGET};
use crate::drivers::Hooks;
use crate::engine::firmware::observe::{HookKind, HookStatus};

/// Label on hook Jobs: which hook they run.
pub const LABEL_HOOK: &str = "upkeep.dev/hook";
/// Label on hook Jobs: the task they belong to.
pub const LABEL_TASK: &str = "upkeep.dev/task";

/// Runs hook Jobs.
#[derive(Clone)]
pub struct JobHooks {
    client: Client,
}

impl JobHooks {
    /// Hooks run with `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Makes sure the Job of `kind` for `task` exists (created from `template` if not) and
    /// reports how it stands.
    pub async fn status(
        &self,
        task: &UpgradeTask,
        kind: HookKind,
        template: &JobTemplateSpec,
    ) -> HookStatus {
        let namespace = task.namespace().unwrap_or_default();
        let api = Api::<Job>::namespaced(self.client.clone(), &namespace);
        let name = job_name(&task.name_any(), kind.as_str());
        match api.get_opt(&name).await {
            Ok(Some(job)) => return job_status(&job),
            Ok(None) => {}
            Err(e) => {
                return HookStatus::Failed(format!("the hook Job {name} cannot be read: {e}"));
            }
        }
        let Some(job) = job_for(task, kind, &name, template) else {
            return HookStatus::Failed(format!("the {} hook template has no spec", kind.as_str()));
        };
        match api.create(&PostParams::default(), &job).await {
            Ok(_) => HookStatus::Running,
            Err(kube::Error::Api(status)) if status.code == 409 => HookStatus::Running,
            Err(e) => HookStatus::Failed(format!("the hook Job {name} could not be created: {e}")),
        }
    }
}

/// The hooks of one task: its parent's templates, run as Jobs.
pub struct TaskHooks<'a> {
    /// Where the Jobs run.
    pub jobs: &'a JobHooks,
    /// The task the Jobs belong to.
    pub task: &'a UpgradeTask,
    /// The parent's hook templates.
    pub templates: Option<&'a HookTemplates>,
}

impl Hooks for TaskHooks<'_> {
    fn status(&self, kind: HookKind) -> BoxFuture<'_, Result<HookStatus, String>> {
        let template = match kind {
            HookKind::PrePlan => self.templates.and_then(|h| h.pre_plan.as_ref()),
            HookKind::Pre => self.templates.and_then(|h| h.pre.as_ref()),
            HookKind::Post => self.templates.and_then(|h| h.post.as_ref()),
        };
        async move {
            match template {
                Some(template) => Ok(self.jobs.status(self.task, kind, template).await),
                None => Err(format!("the {} hook has no template", kind.as_str())),
            }
        }
        .boxed()
    }
}

/// The Job for a hook: the template's metadata and spec, upkeep's labels, the task as owner,
/// and the task's identity in every container's environment.
fn job_for(
    task: &UpgradeTask,
    kind: HookKind,
    name: &str,
    template: &JobTemplateSpec,
) -> Option<Job> {
    let mut spec = template.spec.clone()?;
    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    labels.insert(
        LABEL_PARENT_KIND.into(),
        task.spec.parent_kind.as_str().into(),
    );
    labels.insert(LABEL_PARENT.into(), label_value(&task.spec.parent));
    labels.insert(LABEL_TARGET.into(), label_value(&task.spec.target));
    labels.insert(LABEL_HOOK.into(), kind.as_str().into());
    labels.insert(LABEL_TASK.into(), label_value(&task.name_any()));
    let env = [
        ("UPKEEP_HOOK", kind.as_str().to_string()),
        ("UPKEEP_TASK", task.name_any()),
        ("UPKEEP_PARENT", task.spec.parent.clone()),
        ("UPKEEP_TARGET", task.spec.target.clone()),
    ];
    if let Some(pod) = spec.template.spec.as_mut() {
        for container in &mut pod.containers {
            let vars = container.env.get_or_insert_with(Vec::new);
            vars.extend(env.iter().map(|(k, v)| EnvVar {
                name: (*k).into(),
                value: Some(v.clone()),
                value_from: None,
            }));
        }
    }
    spec.template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert(LABEL_HOOK.into(), kind.as_str().into());
    Some(Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: task.namespace(),
            labels: Some(labels),
            annotations: template_meta.annotations,
            owner_references: task.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// How a Job stands: its Complete or Failed condition.
pub fn job_status(job: &Job) -> HookStatus {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let holds = |type_: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == "True")
    };
    if holds("Complete").is_some() {
        return HookStatus::Succeeded;
    }
    if let Some(failed) = holds("Failed") {
        let why = failed
            .message
            .clone()
            .or_else(|| failed.reason.clone())
            .unwrap_or_else(|| "the Job failed".into());
        return HookStatus::Failed(why);
    }
    HookStatus::Running
}
