//! [`Watched`]: an object as the controllers watch and cache it.

use std::borrow::Cow;

use kube::Resource;
use kube::api::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::core::error_boundary::InvalidObject;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An object as the controllers watch and cache it: like kube's
/// [`DeserializeGuard`](kube::core::DeserializeGuard) (an object that does not deserialize is
/// kept as an [`InvalidObject`] with its metadata, so one malformed object cannot stop a
/// watch), without `metadata.managedFields`. The operator writes with server-side apply and
/// never reads field ownership, and parsed managed fields are the largest part of a cached
/// object: a fleet of 10,000 devices would keep them for every Device and UpgradeTask.
#[derive(Clone, Debug)]
pub struct Watched<K>(pub Result<K, InvalidObject>);

impl<'de, K> Deserialize<'de> for Watched<K>
where
    K: DeserializeOwned + Resource,
{
    /// What [`DeserializeGuard`](kube::core::DeserializeGuard) does, cheaper: the object is read
    /// once into a JSON tree, its managed fields dropped there, and the resource (or, failing
    /// that, its metadata) is read from the tree by reference. (`DeserializeGuard` buffers the
    /// object, clones the buffer to try the resource, and parses every managed field; at fleet
    /// scale the watches decode hundreds of thousands of objects.)
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut value = Value::deserialize(deserializer)?;
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        match K::deserialize(&value) {
            Ok(object) => Ok(Self(Ok(object))),
            Err(error) => {
                let PartialObjectMeta { metadata, .. } =
                    PartialObjectMeta::<K>::deserialize(&value).map_err(D::Error::custom)?;
                Ok(Self(Err(InvalidObject {
                    error: error.to_string(),
                    metadata,
                })))
            }
        }
    }
}

impl<K: Resource> Resource for Watched<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        self.0.as_ref().map_or_else(|e| &e.metadata, K::meta)
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0
            .as_mut()
            .map_or_else(|e| &mut e.metadata, K::meta_mut)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::Device;

    #[test]
    fn drops_managed_fields_of_good_and_bad_objects() {
        let managed = json!([{"manager": "upkeep", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]);
        let good: Watched<Device> = serde_json::from_value(json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "Device",
            "metadata": {"name": "dp-1", "namespace": "default", "managedFields": managed},
            "spec": {"driver": "upkeep", "address": "https://dp-1"},
        }))
        .unwrap();
        assert!(good.0.is_ok());
        assert_eq!(good.meta().name.as_deref(), Some("dp-1"));
        assert_eq!(good.meta().managed_fields, None);
        let bad: Watched<Device> = serde_json::from_value(json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "Device",
            "metadata": {"name": "dp-2", "managedFields": managed},
            "spec": {"driver": 7},
        }))
        .unwrap();
        assert!(bad.0.is_err(), "kept as an invalid object");
        assert_eq!(bad.meta().name.as_deref(), Some("dp-2"));
        assert_eq!(bad.meta().managed_fields, None);
    }
}
