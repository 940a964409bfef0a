"""Validate every upkeep.dev document under the given directories against the
openAPIV3Schema of its CRD, as the API server would with strict field validation.

Usage: validate_examples.py CRD_DIR EXAMPLES_DIR [EXAMPLES_DIR ...]

The OpenAPI schema is turned into a JSON schema:
- `nullable: true` also allows null;
- `x-kubernetes-int-or-string: true` allows an integer or a string;
- an object without `x-kubernetes-preserve-unknown-fields: true` and without an
  `additionalProperties` schema gets `additionalProperties: false` (unknown fields are
  errors, as with `kubectl apply --validate=strict`);
- `format: date-time` is checked; other formats are ignored, as the API server does;
- apiVersion, kind and metadata are added at the root; metadata is Kubernetes'
  ObjectMeta, strict, with a DNS-1123 subdomain name.
CEL rules (`x-kubernetes-validations`) are not evaluated here: `upkeep check` does that.
Documents of other API groups (e.g. Secrets) and upkeep's own file formats (the simulator's
Fleet) are skipped and counted.
"""

import re
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource

import kube

GROUP = "upkeep.dev"
# upkeep.dev kinds that are file formats rather than CRDs.
FILE_KINDS = {"Fleet"}

# The API server requires custom resources' names to be DNS-1123 subdomains.
DNS_SUBDOMAIN = {
    "type": "string",
    "maxLength": 253,
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}

# Extensions with no bearing on the checks made here. Any other x-kubernetes-* key
# stops the script, so that a new one is handled on purpose rather than ignored.
IGNORED = {"x-kubernetes-validations", "description", "title", "default", "example"}


def to_json_schema(node):
    """Convert one OpenAPI v3 (structural) schema node, recursively."""
    node = dict(node)
    nullable = node.pop("nullable", False)
    int_or_string = node.pop("x-kubernetes-int-or-string", False)
    preserve_unknown = node.pop("x-kubernetes-preserve-unknown-fields", False)
    for key in IGNORED:
        node.pop(key, None)
    unknown = sorted(k for k in node if k.startswith("x-kubernetes-"))
    if unknown:
        raise SystemExit(f"validate_examples.py does not handle {', '.join(unknown)} yet")

    if "properties" in node:
        node["properties"] = {k: to_json_schema(v) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = to_json_schema(node["additionalProperties"])
    if "items" in node:
        node["items"] = to_json_schema(node["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            node[key] = [to_json_schema(s) for s in node[key]]
    if "not" in node:
        node["not"] = to_json_schema(node["not"])
    # OpenAPI 3.0 (draft 4) booleans to the numeric form of later drafts.
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(bound) is True:
            node[bound] = node.pop(limit)
        elif node.get(bound) is False:
            del node[bound]

    if int_or_string:
        node["type"] = ["integer", "string"]
    if node.get("type") == "object" and not preserve_unknown and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if nullable:
        if "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            node["type"] = [*types, "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    return node


def crd_schemas(crd_dir):
    """{(apiVersion, kind): JSON schema} for every served version of every CRD."""
    schemas = {}
    for path in sorted(Path(crd_dir).glob("*.yaml")):
        for crd in kube.load_documents(path.read_text()):
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                api_version = f"{crd['spec']['group']}/{version['name']}"
                schema = to_json_schema(version["schema"]["openAPIV3Schema"])
                schema["properties"] = {
                    "apiVersion": {"const": api_version},
                    "kind": {"const": kind},
                    "metadata": {"$ref": kube.OBJECT_META_REF, "properties": {"name": DNS_SUBDOMAIN}},
                    **schema.get("properties", {}),
                }
                schema["required"] = ["apiVersion", "kind", "metadata", *schema.get("required", [])]
                schemas[(api_version, kind)] = schema
    return schemas


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
formats = jsonschema.FormatChecker(formats=())


@formats.checks("date-time", raises=ValueError)
def is_date_time(value):
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


def json_path(error):
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "."


def main(crd_dir, example_dirs):
    schemas = crd_schemas(crd_dir)
    registry = Registry().with_resource(
        kube.DEFINITIONS_ID, Resource.from_contents(kube.strict_definitions())
    )
    counts = Counter()
    files = sorted(p for d in example_dirs for p in Path(d).rglob("*") if p.suffix in (".yaml", ".yml"))
    for path in files:
        try:
            docs = kube.load_documents(path.read_text())
        except yaml.YAMLError as e:
            print(f"  FAIL {path}: not valid YAML: {e}".replace("\n", " "))
            counts["invalid"] += 1
            continue
        for index, doc in enumerate(docs, start=1):
            kind = doc.get("kind") if isinstance(doc, dict) else None
            api_version = doc.get("apiVersion", "") if isinstance(doc, dict) else ""
            name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
            where = f"{path} #{index} {kind}/{name}"
            if api_version.split("/")[0] != GROUP:
                print(f"  SKIP {where}: {api_version or 'no apiVersion'} is not {GROUP}")
                counts["skipped"] += 1
                continue
            if kind in FILE_KINDS:
                # Not a CRD: a file format of upkeep's own, checked by `upkeep check` (step 6).
                print(f"  SKIP {where}: {kind} is an upkeep file format, not a Kubernetes kind")
                counts["skipped"] += 1
                continue
            schema = schemas.get((api_version, kind))
            if schema is None:
                print(f"  FAIL {where}: no CRD in {crd_dir} serves {api_version} {kind}")
                counts["invalid"] += 1
                continue
            validator = jsonschema.Draft202012Validator(
                schema, registry=registry, format_checker=formats
            )
            errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
            if errors:
                counts["invalid"] += 1
                for error in errors:
                    print(f"  FAIL {where}: {json_path(error)}: {error.message}")
            else:
                counts["valid"] += 1
                print(f"  ok   {where}")

    total = sum(counts.values())
    print(f"examples: {total} documents in {len(files)} files: {counts['valid']} valid, "
          f"{counts['invalid']} invalid, {counts['skipped']} skipped (not {GROUP} CRDs)")
    return 1 if counts["invalid"] or not counts["valid"] else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
