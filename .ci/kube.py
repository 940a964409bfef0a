"""Shared by the CI scripts: YAML loading as the API server sees it, and Kubernetes' own
schemas (from the kubernetes-validate package)."""

import yaml
from kubernetes_validate import utils as kv

# The Kubernetes version manifests are validated against.
KUBE_VERSION = "1.33"
_SCHEMA_DIR = f"kubernetes-json-schema/v{KUBE_VERSION}.0-local-strict"

DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
OBJECT_META_REF = DEFINITIONS_ID + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader minus timestamp parsing: kubectl sends an unquoted
    2026-01-01T00:00:00Z as a string, so it must stay one here."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(text):
    """The non-empty documents of a multi-document YAML text."""
    return [doc for doc in yaml.load_all(text, Loader=Loader) if doc is not None]


def strict_definitions():
    """Kubernetes' strict (no unknown fields) shared definitions, e.g. ObjectMeta."""
    return kv.schema_contents(f"{_SCHEMA_DIR}/_definitions.json", KUBE_VERSION)


def validate_builtin(doc):
    """Validate a built-in Kubernetes object in strict mode.

    Returns None when valid, or an error message. Raises kv.SchemaNotFoundError for a
    kind that Kubernetes' schemas don't know (a custom resource)."""
    try:
        kv.validate(doc, KUBE_VERSION, strict=True)
    except kv.ValidationError as e:
        path = ".".join(str(p) for p in e.path) or "(root)"
        return f"{path}: {e.message}"
    return None


SchemaNotFoundError = kv.SchemaNotFoundError
