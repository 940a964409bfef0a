//! Status writes: server-side apply of the status subresource with upkeep's one field manager,
//! optionally as compare-and-swap on the object's resourceVersion. An apply's answer is read for
//! the resourceVersion it left only: the object it carries is the one just written, and decoding
//! all of it (its status and managed fields) on every write was a large part of a fleet's CPU.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::events::MANAGER;

/// What an apply's answer is read for.
#[derive(Debug, Deserialize)]
struct Applied {
    metadata: AppliedMetadata,
}

#[derive(Debug, Deserialize)]
struct AppliedMetadata {
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
}

/// Applies `status` to the status of the object `name`. With `resource_version`, the write only
/// succeeds if the object has not changed since (409 Conflict otherwise). Returns the
/// resourceVersion the write left.
pub async fn apply<K>(
    api: &Api<K>,
    name: &str,
    status: &impl Serialize,
    resource_version: Option<&str>,
) -> Result<Option<String>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let mut metadata = json!({ "name": name });
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv);
    }
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": metadata,
        "status": status,
    });
    let mut request = kube::core::Request::new(api.resource_url())
        .patch_subresource(
            "status",
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .map_err(kube::Error::BuildRequest)?;
    // What kube's `Api::patch_status` marks its requests with.
    request.extensions_mut().insert("patch_status");
    let applied: Applied = api.clone().into_client().request(request).await?;
    Ok(applied.metadata.resource_version)
}

/// Whether an API error is a 409 Conflict (a compare-and-swap that lost).
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// Whether an API error is a 404 Not Found.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Merges `status` (a JSON object of the fields to set; `null` removes one) into the status of
/// the object `name`, only if the object is still at `resource_version`. For status fields that
/// several writers share field by field (a Host's status: its agent's facts, the controllers'
/// lock and liveness), where an apply of a partial status would drop what it leaves out.
pub async fn merge<K>(
    api: &Api<K>,
    name: &str,
    status: serde_json::Value,
    resource_version: Option<&str>,
) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut body = json!({ "status": status });
    if let Some(rv) = resource_version {
        body["metadata"] = json!({ "resourceVersion": rv });
    }
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch_status(name, &params, &Patch::Merge(&body)).await
}
