//! [`changed`]: the objects of a watch whose fingerprint changed, for a controller that maps
//! another kind onto its own and cares only about some of that kind's fields.
//!
//! Invariants: an object is passed on the first time it is seen (after a start or a relist
//! too, when its fingerprint differs from the one remembered), whenever its fingerprint
//! differs from the last one passed on, and always when it is deleted; nothing else is. What it
//! remembers is bounded by the objects the watch holds: a relist forgets those it no longer
//! lists.

use std::collections::{HashMap, HashSet};

use futures::{Stream, StreamExt as _};
use kube::Resource;
use kube::runtime::watcher::{self, Event};

/// An object's namespace and name.
type Key = (Option<String>, String);

fn key_of<K: Resource>(object: &K) -> Key {
    let meta = object.meta();
    (
        meta.namespace.clone(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The objects of the watch `events` that are new, deleted, or whose `fingerprint` changed
/// since they were last passed on.
pub fn changed<K, S>(
    events: S,
    fingerprint: impl Fn(&K) -> u64 + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource + Send + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send,
{
    let mut seen: HashMap<Key, u64> = HashMap::new();
    // The objects a relist has listed so far; `None` outside one.
    let mut listed: Option<HashSet<Key>> = None;
    events
        .map(move |event| {
            let object = match event {
                Ok(Event::Apply(object)) => object,
                Ok(Event::InitApply(object)) => {
                    if let Some(listed) = listed.as_mut() {
                        listed.insert(key_of(&object));
                    }
                    object
                }
                Ok(Event::Delete(object)) => {
                    seen.remove(&key_of(&object));
                    return Some(Ok(object));
                }
                Ok(Event::Init) => {
                    listed = Some(HashSet::new());
                    return None;
                }
                Ok(Event::InitDone) => {
                    if let Some(listed) = listed.take() {
                        seen.retain(|key, _| listed.contains(key));
                    }
                    return None;
                }
                Err(e) => return Some(Err(e)),
            };
            let print = fingerprint(&object);
            let before = seen.insert(key_of(&object), print);
            (before != Some(print)).then_some(Ok(object))
        })
        .filter_map(std::future::ready)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn map(name: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            data: Some([("v".to_string(), value.to_string())].into()),
            ..ConfigMap::default()
        }
    }

    /// The fingerprint: the value of `v`'s length, so "a" and "b" look alike.
    fn length(map: &ConfigMap) -> u64 {
        map.data
            .as_ref()
            .and_then(|d| d.get("v"))
            .map_or(0, |v| v.len() as u64)
    }

    fn passed(events: Vec<Event<ConfigMap>>) -> Vec<String> {
        let events = stream::iter(events.into_iter().map(Ok));
        futures::executor::block_on(
            changed(events, length)
                .map(|m| {
                    let m = m.expect("no error");
                    format!(
                        "{}={}",
                        m.metadata.name.unwrap_or_default(),
                        m.data.unwrap_or_default()["v"]
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn an_object_passes_when_new_when_its_fingerprint_changes_and_when_deleted() {
        let got = passed(vec![
            Event::Apply(map("x", "a")),
            Event::Apply(map("x", "b")),
            Event::Apply(map("x", "bb")),
            Event::Apply(map("y", "a")),
            Event::Delete(map("x", "bb")),
            Event::Apply(map("x", "bb")),
        ]);
        assert_eq!(got, ["x=a", "x=bb", "y=a", "x=bb", "x=bb"]);
    }

    #[test]
    fn a_relist_passes_only_what_changed_and_forgets_what_it_no_longer_lists() {
        let got = passed(vec![
            Event::Apply(map("x", "a")),
            Event::Apply(map("y", "a")),
            Event::Init,
            Event::InitApply(map("x", "b")),
            Event::InitApply(map("y", "aa")),
            Event::InitDone,
            // `x` was relisted unchanged and stays remembered; `z` is new.
            Event::Apply(map("x", "c")),
            Event::Apply(map("z", "a")),
            Event::Init,
            Event::InitApply(map("z", "a")),
            Event::InitDone,
            // `x` was not listed again: forgotten, so it passes as new.
            Event::Apply(map("x", "c")),
        ]);
        assert_eq!(got, ["x=a", "y=a", "y=aa", "z=a", "x=c"]);
    }
}
