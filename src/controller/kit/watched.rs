//! [`Watched`]: an object as the controllers watch and cache it.

use std::borrow::Cow;

use kube::Resource;
use kube::api::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::core::error_boundary::InvalidObject;
use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
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
    /// once into a JSON tree, its managed fields skipped unparsed (not built and dropped), and
    /// the resource (or, failing that, its metadata) is read from the tree by reference.
    /// (`DeserializeGuard` buffers the object, clones the buffer to try the resource, and
    /// parses every managed field; at fleet scale the watches decode hundreds of thousands of
    /// objects.)
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = deserializer.deserialize_map(Tree {
            skip_managed_fields: false,
        })?;
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

/// Reads a JSON object into a tree, leaving out `metadata.managedFields`: at the top level
/// (`skip_managed_fields` false) the `metadata` object is read with it set.
struct Tree {
    skip_managed_fields: bool,
}

impl<'de> Visitor<'de> for Tree {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Kubernetes object")
    }

    /// `metadata: null`, as the tree read it before.
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = if self.skip_managed_fields {
                if key == "managedFields" {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                map.next_value::<Value>()?
            } else if key == "metadata" {
                map.next_value_seed(Tree {
                    skip_managed_fields: true,
                })?
            } else {
                map.next_value::<Value>()?
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

impl<'de> DeserializeSeed<'de> for Tree {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
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

    #[test]
    fn reads_the_same_object_from_text_as_from_a_tree_and_only_skips_managed_fields() {
        let object = json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "Device",
            "metadata": {"name": "dp-1", "namespace": "default", "labels": {"site": "x"},
                         "managedFields": [{"manager": "upkeep", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
            "spec": {"driver": "upkeep", "address": "https://dp-1"},
            "status": {"managedFields": "kept: only metadata's are skipped"},
        });
        let text = object.to_string();
        let tree = serde_json::Deserializer::from_str(&text)
            .deserialize_map(Tree {
                skip_managed_fields: false,
            })
            .unwrap();
        let mut expected = object.clone();
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(tree, expected);

        let from_text: Watched<Device> = serde_json::from_str(&text).unwrap();
        let mut typed: Device = serde_json::from_value(object).unwrap();
        typed.metadata.managed_fields = None;
        assert_eq!(
            serde_json::to_value(from_text.0.unwrap()).unwrap(),
            serde_json::to_value(typed).unwrap()
        );
        // Not an object: an error, as before.
        assert!(serde_json::from_str::<Watched<Device>>("[1]").is_err());
    }
}
