//! Reading a few metadata fields of one object: a `PartialObjectMetadata` GET decoded into a
//! struct of just those fields, for the reads that run for every host on a timer (the agent's
//! resync of its Host, the Host controller's look at its Node). The rest of the object, and
//! `metadata.managedFields` (most of a Host), are skipped unparsed, not decoded and dropped.

use kube::{Client, Resource};
use serde::de::DeserializeOwned;

/// The object `name` of kind `K` (in `namespace`, for a namespaced kind) as the metadata
/// fields `T` names; `None` when it does not exist.
pub async fn metadata_opt<K, T>(
    client: &Client,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<T>, kube::Error>
where
    K: Resource<DynamicType = ()>,
    T: DeserializeOwned,
{
    let request = kube::core::Request::new(K::url_path(&(), namespace))
        .get_metadata(name, &kube::api::GetParams::default())
        .map_err(kube::Error::BuildRequest)?;
    match client.request::<T>(request).await {
        Ok(found) => Ok(Some(found)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(error),
    }
}
