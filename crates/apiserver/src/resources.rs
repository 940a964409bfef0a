//! The resources the server serves: a table of built-in kinds plus every CRD it is given.
//!
//! Registration is data: a CRD is served (storage, discovery, printer columns for `kubectl`,
//! status subresource, field selectors, OpenAPI schema) just by appearing in the list handed
//! to the server; a built-in kind is a row of [`BUILTINS`] naming its field-selector labels,
//! its `Table` printer and its OpenAPI schema.
//!
//! A resource may be a *view* of another one's store, as core `v1` Events are of
//! `events.k8s.io/v1` Events on a real server: its objects live in the other resource's store
//! (in that resource's form) and are converted on the way in and out ([`Conversion`]). Every
//! other resource is its own store.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::schemars::{JsonSchema, Schema, SchemaGenerator};

use super::convert::Conversion;
use super::printers::Printer;

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

/// A field-selector label and where its value is in a stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldLabel {
    /// The label, as clients write it (`involvedObject.name`).
    pub label: String,
    /// Dotted paths into the stored object, tried in order: the first that holds a non-empty
    /// value gives it (a numeric segment indexes a list).
    pub paths: Vec<String>,
    /// The value when no path holds one: what the real server's defaulting would have stored
    /// (`spec.hostNetwork` is `false`, a Pod's `spec.restartPolicy` is `Always`).
    pub default: String,
}

/// Builds the OpenAPI schema of a built-in kind into a generator (its definitions land there).
pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

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
    /// The field-selector labels served, as the real server's conversion functions accept
    /// them (`metadata.name` included where the real server takes it).
    pub field_labels: Vec<FieldLabel>,
    /// Whether a create may set `.status` (nodes); otherwise it is dropped on create.
    pub status_on_create: bool,
    /// Whether objects carry `metadata.generation` (custom resources, Jobs, the apps kinds,
    /// PodDisruptionBudgets; Secrets, ConfigMaps, Leases, Events, Namespaces, Nodes and Pods do
    /// not).
    pub generation: bool,
    /// The `openAPIV3Schema` of the storage version (custom resources).
    pub schema: Option<serde_json::Value>,
    /// The OpenAPI schema of a built-in kind.
    pub builtin_schema: Option<SchemaFn>,
    /// How `kubectl get` shows objects (`Table` output).
    pub printer: Printer,
    /// The resource whose store holds this one's objects (itself unless a view).
    pub storage: ResourceId,
    /// How objects convert between this resource's form and its store's.
    pub conversion: Conversion,
    /// Whether the `eviction` subresource is served (Pods).
    pub eviction: bool,
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

    /// The field-selector label `label`, if served.
    pub fn field_label(&self, label: &str) -> Option<&FieldLabel> {
        self.field_labels.iter().find(|f| f.label == label)
    }

    /// Whether this is the core group's kind `kind` (a built-in).
    pub fn is_core(&self, kind: &str) -> bool {
        !self.custom && self.group.is_empty() && self.kind == kind
    }
}

/// A field-selector label of a built-in kind (see [`FieldLabel`]); no paths means the label
/// itself is the path.
struct BuiltinField {
    label: &'static str,
    paths: &'static [&'static str],
    default: &'static str,
}

/// A label whose path is itself and whose default is empty.
const fn plain(label: &'static str) -> BuiltinField {
    BuiltinField {
        label,
        paths: &[],
        default: "",
    }
}

const NAME: BuiltinField = plain("metadata.name");
const NAMESPACE: BuiltinField = plain("metadata.namespace");

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
    fields: &'static [BuiltinField],
    printer: Printer,
    schema: SchemaFn,
    /// `(group, plural)` of the resource whose store this one views.
    view_of: Option<(&'static str, &'static str)>,
    conversion: Conversion,
}

/// The schema of `K` (definitions into `generator`).
fn schema_of<K: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<K>()
}

/// A namespaced built-in with no status subresource, generation, short names or categories.
const fn namespaced(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    printer: Printer,
    schema: SchemaFn,
) -> Builtin {
    Builtin {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced: true,
        status: false,
        status_on_create: false,
        generation: false,
        short_names: &[],
        categories: &[],
        fields: &[NAME, NAMESPACE],
        printer,
        schema,
        view_of: None,
        conversion: Conversion::None,
    }
}

/// The `involvedObject.*` labels of core Events, read from `regarding`.
const CORE_EVENT_FIELDS: &[BuiltinField] = &[
    NAME,
    NAMESPACE,
    BuiltinField {
        label: "involvedObject.kind",
        paths: &["regarding.kind"],
        default: "",
    },
    BuiltinField {
        label: "involvedObject.namespace",
        paths: &["regarding.namespace"],
        default: "",
    },
    BuiltinField {
        label: "involvedObject.name",
        paths: &["regarding.name"],
        default: "",
    },
    BuiltinField {
        label: "involvedObject.uid",
        paths: &["regarding.uid"],
        default: "",
    },
    BuiltinField {
        label: "involvedObject.apiVersion",
        paths: &["regarding.apiVersion"],
        default: "",
    },
    BuiltinField {
        label: "involvedObject.resourceVersion",
        paths: &["regarding.resourceVersion"],
        default: "",
    },
    BuiltinField {
        label: "involvedObject.fieldPath",
        paths: &["regarding.fieldPath"],
        default: "",
    },
    plain("reason"),
    BuiltinField {
        label: "reportingComponent",
        paths: &["reportingController"],
        default: "",
    },
    // The real server falls back to the reporting controller when `source.component` is empty.
    BuiltinField {
        label: "source",
        paths: &["deprecatedSource.component", "reportingController"],
        default: "",
    },
    plain("type"),
];

/// The built-in kinds the operator uses, and those the coming host patching needs (Nodes,
/// Pods, PodDisruptionBudgets and the controllers that own pods).
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
        fields: &[NAME, plain("status.phase")],
        printer: Printer::Namespace,
        schema: schema_of::<k8s_openapi::api::core::v1::Namespace>,
        view_of: None,
        conversion: Conversion::None,
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
        fields: &[
            NAME,
            BuiltinField {
                label: "spec.unschedulable",
                paths: &[],
                default: "false",
            },
        ],
        printer: Printer::Node,
        schema: schema_of::<k8s_openapi::api::core::v1::Node>,
        view_of: None,
        conversion: Conversion::None,
    },
    Builtin {
        fields: &[NAME, NAMESPACE, plain("type")],
        ..namespaced(
            "",
            "secrets",
            "secret",
            "Secret",
            Printer::Secret,
            schema_of::<k8s_openapi::api::core::v1::Secret>,
        )
    },
    Builtin {
        short_names: &["cm"],
        ..namespaced(
            "",
            "configmaps",
            "configmap",
            "ConfigMap",
            Printer::ConfigMap,
            schema_of::<k8s_openapi::api::core::v1::ConfigMap>,
        )
    },
    Builtin {
        status: true,
        short_names: &["po"],
        categories: &["all"],
        fields: &[
            NAME,
            NAMESPACE,
            plain("spec.nodeName"),
            // Old clients' spelling of spec.nodeName.
            BuiltinField {
                label: "spec.host",
                paths: &["spec.nodeName"],
                default: "",
            },
            BuiltinField {
                label: "spec.restartPolicy",
                paths: &[],
                default: "Always",
            },
            BuiltinField {
                label: "spec.schedulerName",
                paths: &[],
                default: "default-scheduler",
            },
            BuiltinField {
                label: "spec.serviceAccountName",
                paths: &["spec.serviceAccountName", "spec.serviceAccount"],
                default: "",
            },
            BuiltinField {
                label: "spec.hostNetwork",
                paths: &[],
                default: "false",
            },
            plain("status.phase"),
            BuiltinField {
                label: "status.podIP",
                paths: &["status.podIPs.0.ip", "status.podIP"],
                default: "",
            },
            plain("status.nominatedNodeName"),
        ],
        ..namespaced(
            "",
            "pods",
            "pod",
            "Pod",
            Printer::Pod,
            schema_of::<k8s_openapi::api::core::v1::Pod>,
        )
    },
    // Core v1 Events: the events.k8s.io/v1 Events seen through the core API, as `kubectl get
    // events` and `kubectl describe` read them.
    Builtin {
        short_names: &["ev"],
        fields: CORE_EVENT_FIELDS,
        view_of: Some(("events.k8s.io", "events")),
        conversion: Conversion::CoreEvent,
        ..namespaced(
            "",
            "events",
            "event",
            "Event",
            Printer::Event,
            schema_of::<k8s_openapi::api::core::v1::Event>,
        )
    },
    Builtin {
        short_names: &["ev"],
        fields: &[
            NAME,
            NAMESPACE,
            plain("reason"),
            plain("type"),
            plain("reportingController"),
            plain("regarding.kind"),
            plain("regarding.namespace"),
            plain("regarding.name"),
            plain("regarding.uid"),
            plain("regarding.apiVersion"),
            plain("regarding.resourceVersion"),
            plain("regarding.fieldPath"),
        ],
        ..namespaced(
            "events.k8s.io",
            "events",
            "event",
            "Event",
            Printer::Event,
            schema_of::<k8s_openapi::api::events::v1::Event>,
        )
    },
    namespaced(
        "coordination.k8s.io",
        "leases",
        "lease",
        "Lease",
        Printer::Lease,
        schema_of::<k8s_openapi::api::coordination::v1::Lease>,
    ),
    Builtin {
        status: true,
        generation: true,
        categories: &["all"],
        fields: &[
            NAME,
            NAMESPACE,
            BuiltinField {
                label: "status.successful",
                paths: &["status.succeeded"],
                default: "0",
            },
        ],
        ..namespaced(
            "batch",
            "jobs",
            "job",
            "Job",
            Printer::Job,
            schema_of::<k8s_openapi::api::batch::v1::Job>,
        )
    },
    Builtin {
        status: true,
        generation: true,
        short_names: &["pdb"],
        ..namespaced(
            "policy",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            Printer::PodDisruptionBudget,
            schema_of::<k8s_openapi::api::policy::v1::PodDisruptionBudget>,
        )
    },
    Builtin {
        status: true,
        generation: true,
        short_names: &["deploy"],
        categories: &["all"],
        ..namespaced(
            "apps",
            "deployments",
            "deployment",
            "Deployment",
            Printer::Deployment,
            schema_of::<k8s_openapi::api::apps::v1::Deployment>,
        )
    },
    Builtin {
        status: true,
        generation: true,
        short_names: &["rs"],
        categories: &["all"],
        fields: &[
            NAME,
            NAMESPACE,
            BuiltinField {
                label: "status.replicas",
                paths: &[],
                default: "0",
            },
        ],
        ..namespaced(
            "apps",
            "replicasets",
            "replicaset",
            "ReplicaSet",
            Printer::ReplicaSet,
            schema_of::<k8s_openapi::api::apps::v1::ReplicaSet>,
        )
    },
    Builtin {
        status: true,
        generation: true,
        short_names: &["sts"],
        categories: &["all"],
        ..namespaced(
            "apps",
            "statefulsets",
            "statefulset",
            "StatefulSet",
            Printer::StatefulSet,
            schema_of::<k8s_openapi::api::apps::v1::StatefulSet>,
        )
    },
    Builtin {
        status: true,
        generation: true,
        short_names: &["ds"],
        categories: &["all"],
        ..namespaced(
            "apps",
            "daemonsets",
            "daemonset",
            "DaemonSet",
            Printer::DaemonSet,
            schema_of::<k8s_openapi::api::apps::v1::DaemonSet>,
        )
    },
];

impl From<&Builtin> for ResourceInfo {
    fn from(b: &Builtin) -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        let field_labels = b
            .fields
            .iter()
            .map(|f| FieldLabel {
                label: f.label.into(),
                paths: if f.paths.is_empty() {
                    vec![f.label.into()]
                } else {
                    strings(f.paths)
                },
                default: f.default.into(),
            })
            .collect();
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
            field_labels,
            status_on_create: b.status_on_create,
            generation: b.generation,
            schema: None,
            builtin_schema: Some(b.schema),
            printer: b.printer,
            storage: 0,
            conversion: b.conversion,
            eviction: b.group.is_empty() && b.kind == "Pod",
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
    let namespaced = spec.scope != "Cluster";
    // As the real server: metadata.name, metadata.namespace for namespaced kinds, and the
    // CRD's selectableFields.
    let mut field_labels: Vec<FieldLabel> = ["metadata.name", "metadata.namespace"]
        .into_iter()
        .filter(|l| namespaced || *l == "metadata.name")
        .chain(
            storage
                .selectable_fields
                .iter()
                .flatten()
                .map(|f| f.json_path.trim_start_matches('.')),
        )
        .map(|label| FieldLabel {
            label: label.to_string(),
            paths: vec![label.to_string()],
            default: String::new(),
        })
        .collect();
    field_labels.dedup_by(|a, b| a.label == b.label);
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
        namespaced,
        status_subresource: storage
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some()),
        short_names: spec.names.short_names.clone().unwrap_or_default(),
        categories: spec.names.categories.clone().unwrap_or_default(),
        custom: true,
        columns,
        field_labels,
        status_on_create: false,
        generation: true,
        schema: storage
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok()),
        builtin_schema: None,
        printer: Printer::Custom,
        storage: 0,
        conversion: Conversion::None,
        eviction: false,
    })
}

/// The served resources and their lookups (a linear scan: there are a few dozen).
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
        for (id, info) in list.iter_mut().enumerate() {
            info.storage = id;
        }
        for b in BUILTINS {
            let Some((group, plural)) = b.view_of else {
                continue;
            };
            let storage = list
                .iter()
                .position(|r| r.group == group && r.plural == plural && !r.custom);
            let view = list
                .iter_mut()
                .find(|r| r.group == b.group && r.plural == b.plural && !r.custom);
            match (view, storage) {
                (Some(view), Some(storage)) => view.storage = storage,
                // The viewed resource was replaced by a CRD: the view shows nothing of it.
                (Some(view), None) => view.conversion = Conversion::None,
                _ => {}
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

    /// The first stored resource (not a view) whose kind is `kind`, in any group.
    pub fn by_kind(&self, kind: &str) -> Option<ResourceId> {
        self.list
            .iter()
            .enumerate()
            .position(|(id, r)| r.kind == kind && r.storage == id)
    }

    /// The first stored resource whose group and kind are these.
    pub fn by_group_kind(&self, group: &str, kind: &str) -> Option<ResourceId> {
        self.list
            .iter()
            .enumerate()
            .position(|(id, r)| r.group == group && r.kind == kind && r.storage == id)
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
