//! The resources the server serves: a table of built-in kinds plus every CRD it is given.
//!
//! Registration is data: a CRD is served (storage, discovery, printer columns for `kubectl`,
//! status subresource) just by appearing in the list handed to the server.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// Index of a resource in the [`Registry`] (and of its store).
pub(crate) type ResourceId = usize;

/// A printer column, as `kubectl get` shows it (a CRD's `additionalPrinterColumns`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    pub json_path: String,
}

/// Everything the server knows about one resource.
#[derive(Clone, Debug)]
pub(crate) struct ResourceInfo {
    /// API group, empty for the core group.
    pub group: String,
    /// Served versions, storage version first.
    pub versions: Vec<String>,
    /// The plural resource name of the URL.
    pub plural: String,
    /// The singular name.
    pub singular: String,
    /// The kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Has the `status` subresource: main writes ignore `.status`, status writes touch nothing
    /// else.
    pub status_subresource: bool,
    /// Short names for `kubectl`.
    pub short_names: Vec<String>,
    /// Categories for `kubectl get CATEGORY`.
    pub categories: Vec<String>,
    /// A custom resource (from a CRD) rather than a built-in kind.
    pub custom: bool,
    /// Printer columns after `Name` (custom resources).
    pub columns: Vec<Column>,
    /// Field-selector labels served besides `metadata.name` and `metadata.namespace`.
    pub selectable_fields: Vec<String>,
    /// Whether a create may set `.status` (nodes); otherwise it is dropped on create.
    pub status_on_create: bool,
    /// Whether objects carry `metadata.generation` (custom resources and Jobs; Secrets,
    /// ConfigMaps, Leases, Events, Namespaces, Nodes and Pods do not).
    pub generation: bool,
    /// The `openAPIV3Schema` of the storage version (custom resources).
    pub schema: Option<serde_json::Value>,
}

impl ResourceInfo {
    /// `group/version` (or `version` for the core group) for `version`.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// `plural.group`, as error messages name the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind.group`, as validation errors name the kind.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// Whether `label` may be used in a field selector.
    pub fn field_selectable(&self, label: &str) -> bool {
        label == "metadata.name"
            || label == "metadata.namespace"
            || self.selectable_fields.iter().any(|f| f == label)
    }
}

/// A built-in kind.
struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
    status_on_create: bool,
    generation: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    fields: &'static [&'static str],
}

/// The built-in kinds the operator uses (and a few that tests may want).
const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        status: true,
        generation: false,
        status_on_create: false,
        short_names: &["ns"],
        categories: &[],
        fields: &["status.phase"],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        status: true,
        generation: false,
        status_on_create: true,
        short_names: &["no"],
        categories: &[],
        fields: &["spec.unschedulable"],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        status: false,
        generation: false,
        status_on_create: false,
        short_names: &[],
        categories: &[],
        fields: &["type"],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        status: false,
        generation: false,
        status_on_create: false,
        short_names: &["cm"],
        categories: &[],
        fields: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        status: true,
        generation: false,
        status_on_create: false,
        short_names: &["po"],
        categories: &["all"],
        fields: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    },
    Builtin {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        status: false,
        generation: false,
        status_on_create: false,
        short_names: &["ev"],
        categories: &[],
        fields: &[
            "reason",
            "type",
            "reportingController",
            "regarding.apiVersion",
            "regarding.kind",
            "regarding.name",
            "regarding.namespace",
            "regarding.uid",
            "regarding.fieldPath",
        ],
    },
    Builtin {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        status: false,
        generation: false,
        status_on_create: false,
        short_names: &[],
        categories: &[],
        fields: &[],
    },
    Builtin {
        group: "batch",
        version: "v1",
        plural: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        status: true,
        generation: true,
        status_on_create: false,
        short_names: &[],
        categories: &["all"],
        fields: &["status.successful"],
    },
];

impl From<&Builtin> for ResourceInfo {
    fn from(b: &Builtin) -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        Self {
            group: b.group.into(),
            versions: vec![b.version.into()],
            plural: b.plural.into(),
            singular: b.singular.into(),
            kind: b.kind.into(),
            namespaced: b.namespaced,
            status_subresource: b.status,
            short_names: strings(b.short_names),
            categories: strings(b.categories),
            custom: false,
            columns: Vec::new(),
            selectable_fields: strings(b.fields),
            status_on_create: b.status_on_create,
            generation: b.generation,
            schema: None,
        }
    }
}

/// The resource a CRD defines.
fn from_crd(crd: &CustomResourceDefinition) -> Option<ResourceInfo> {
    let spec = &crd.spec;
    let mut versions: Vec<_> = spec.versions.iter().filter(|v| v.served).collect();
    // Storage version first.
    versions.sort_by_key(|v| !v.storage);
    let storage = versions.first()?;
    let columns = storage
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| Column {
            name: c.name.clone(),
            type_: c.type_.clone(),
            format: c.format.clone().unwrap_or_default(),
            description: c.description.clone().unwrap_or_default(),
            priority: c.priority.unwrap_or(0),
            json_path: c.json_path.clone(),
        })
        .collect();
    let selectable_fields = storage
        .selectable_fields
        .iter()
        .flatten()
        .map(|f| f.json_path.trim_start_matches('.').to_string())
        .collect();
    Some(ResourceInfo {
        group: spec.group.clone(),
        versions: versions.iter().map(|v| v.name.clone()).collect(),
        plural: spec.names.plural.clone(),
        singular: spec
            .names
            .singular
            .clone()
            .unwrap_or_else(|| spec.names.kind.to_lowercase()),
        kind: spec.names.kind.clone(),
        namespaced: spec.scope != "Cluster",
        status_subresource: storage
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some()),
        short_names: spec.names.short_names.clone().unwrap_or_default(),
        categories: spec.names.categories.clone().unwrap_or_default(),
        custom: true,
        columns,
        selectable_fields,
        status_on_create: false,
        generation: true,
        schema: storage
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok()),
    })
}

/// The served resources and their lookups (a linear scan: there are a dozen).
#[derive(Debug)]
pub(crate) struct Registry {
    list: Vec<ResourceInfo>,
}

impl Registry {
    /// The built-in kinds and the given CRDs (a CRD for a built-in's group and plural replaces
    /// it).
    pub fn new(crds: &[CustomResourceDefinition]) -> Self {
        let mut list: Vec<ResourceInfo> = BUILTINS.iter().map(ResourceInfo::from).collect();
        for info in crds.iter().filter_map(from_crd) {
            match list
                .iter_mut()
                .find(|r| r.group == info.group && r.plural == info.plural)
            {
                Some(existing) => *existing = info,
                None => list.push(info),
            }
        }
        Self { list }
    }

    /// Every resource, in registration order.
    pub fn all(&self) -> &[ResourceInfo] {
        &self.list
    }

    /// The resource with this id.
    pub fn get(&self, id: ResourceId) -> &ResourceInfo {
        &self.list[id]
    }

    /// The resource served at `group/version/plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<ResourceId> {
        self.list.iter().position(|r| {
            r.plural == plural && r.group == group && r.versions.iter().any(|v| v == version)
        })
    }

    /// The resource of an object's `apiVersion` and `kind`.
    pub fn by_api_version_kind(&self, api_version: &str, kind: &str) -> Option<ResourceId> {
        let (group, version) = split_api_version(api_version);
        self.list.iter().position(|r| {
            r.kind == kind && r.group == group && r.versions.iter().any(|v| v == version)
        })
    }

    /// The first resource whose kind is `kind`, in any group.
    pub fn by_kind(&self, kind: &str) -> Option<ResourceId> {
        self.list.iter().position(|r| r.kind == kind)
    }

    /// The served groups in registration order (core first), each with its versions.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for info in &self.list {
            let entry = match groups.iter_mut().find(|(g, _)| *g == info.group) {
                Some(entry) => entry,
                None => {
                    groups.push((info.group.clone(), Vec::new()));
                    let last = groups.len() - 1;
                    &mut groups[last]
                }
            };
            for v in &info.versions {
                if !entry.1.contains(v) {
                    entry.1.push(v.clone());
                }
            }
        }
        groups
    }

    /// The resources served in `group/version`.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceInfo> + 'a {
        self.list
            .iter()
            .filter(move |r| r.group == group && r.versions.iter().any(|v| v == version))
    }
}

/// `("group", "version")` of an `apiVersion` (`("", "v1")` for `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}
