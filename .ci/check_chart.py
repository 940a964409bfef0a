"""Lint and render the Helm chart with each values file, then validate every rendered
manifest, and the chart's CRDs, against Kubernetes' strict schemas.

Usage: check_chart.py CHART [VALUES_FILE ...]   (the chart's defaults are always checked)
"""

import sys
from collections import Counter
from pathlib import Path

import helm_python as helm
import yaml

import kube

RELEASE, NAMESPACE = "upkeep", "upkeep-system"
SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}

# Kinds that are not in Kubernetes' schemas: validated by nothing here, so skipped by
# name and reported. Any other kind without a schema fails the check.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def lint(chart_dir, values):
    """helm lint --strict: warnings count as failures. Returns the number of problems."""
    report = helm.lint(
        chart_dir,
        values,
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{kube.KUBE_VERSION}.0",
    )
    problems = 0
    for msg in report["messages"]:
        severity = msg["severity"]
        print(f"  lint [{SEVERITY.get(severity, severity)}] {msg['path']}: {msg['error'].strip()}")
        problems += severity >= 2
    for error in report["errors"]:
        if not any(error.strip() in m["error"] for m in report["messages"]):
            print(f"  lint [ERROR] {error.strip()}")
            problems += 1
    print(f"  lint --strict: {'ok' if not problems else f'{problems} problem(s)'}")
    return problems


def render(chart, values):
    """The rendered manifests as (template, document) pairs; NOTES.txt is not a manifest."""
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        (template, doc)
        for template, text in sorted(rendered.items())
        if template.endswith((".yaml", ".yml"))
        for doc in kube.load_documents(text)
    ]


def validate(source, doc, counts):
    """Validate one object, printing one line; updates counts."""
    meta = doc.get("metadata") or {}
    what = "/".join(str(p) for p in (doc.get("kind"), meta.get("namespace"), meta.get("name")) if p)
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CUSTOM_KINDS:
        print(f"  SKIP {source}: {what}: {key[0]} {key[1]} is a custom kind with no Kubernetes schema")
        counts["skipped"] += 1
        return
    try:
        error = kube.validate_builtin(doc)
    except kube.SchemaNotFoundError as e:
        error = e.message
    if error:
        print(f"  FAIL {source}: {what}: {error}")
        counts["invalid"] += 1
    else:
        print(f"  ok   {source}: {what}")
        counts["valid"] += 1


def main(chart_dir, values_files):
    counts = Counter()
    lint_problems = 0
    used_templates = set()
    with helm.Chart.load(chart_dir) as chart:
        print(f"Chart {chart.name} {chart.version} (Helm SDK {helm.helm_sdk_version()}), "
              f"validated against Kubernetes {kube.KUBE_VERSION} (strict)")
        for values_file in [None, *values_files]:
            label = values_file or "default values"
            values = yaml.safe_load(Path(values_file).read_text()) if values_file else None
            print(f"\n-- {label}")
            lint_problems += lint(chart_dir, values)
            manifests = render(chart, values)
            kinds = Counter(doc["kind"] for _, doc in manifests)
            print(f"  rendered {len(manifests)} objects: "
                  + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
            for template, doc in manifests:
                used_templates.add(template.split("/", 1)[1])
                validate(template, doc, counts)

        # The values files must switch every optional part on at least once.
        unused = sorted(
            t["name"] for t in chart.templates
            if t["name"].endswith((".yaml", ".yml")) and t["name"] not in used_templates
        )
        for template in unused:
            print(f"  FAIL {template} rendered nothing with any of the values files")

        print(f"\n-- CRDs shipped in {chart_dir}/crds")
        for crd in chart.crds:
            for doc in kube.load_documents(crd["data"]):
                validate(crd["filename"], doc, counts)

    print(f"\nchart: lint problems {lint_problems}; objects valid {counts['valid']}, "
          f"invalid {counts['invalid']}, skipped {counts['skipped']} (custom kinds, no schema); "
          f"templates never rendered {len(unused)}")
    failed = lint_problems or counts["invalid"] or unused or not counts["valid"]
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
