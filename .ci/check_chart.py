"""Lint and render the Helm chart with each values file, then validate every rendered
manifest, and the chart's CRDs, against Kubernetes' strict schemas; check the Grafana
dashboards in dashboards/ and that the rendered dashboard ConfigMaps carry them unchanged.

Usage: check_chart.py CHART [VALUES_FILE ...]   (the chart's defaults are always checked)
"""

import json
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


def dashboard_problems(name, dashboard):
    """What is wrong with one Grafana dashboard, as a list of sentences."""
    problems = []
    for key in ("uid", "title", "panels", "schemaVersion", "templating"):
        if key not in dashboard:
            problems.append(f"{name}: no {key!r}")
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    if "datasource" not in variables:
        problems.append(f"{name}: no 'datasource' variable for the panels to use")
    ids = Counter(p.get("id") for p in dashboard.get("panels", []))
    problems += [f"{name}: panel id {i} is used {n} times" for i, n in ids.items() if n > 1]
    for panel in dashboard.get("panels", []):
        what = f"{name}: panel {panel.get('id')} {panel.get('title')!r}"
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "xywh") or grid["x"] + grid["w"] > 24:
            problems.append(f"{what}: gridPos {grid} does not fit the 24-column grid")
        if panel.get("type") == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{what}: its datasource is not the 'datasource' variable")
        targets = panel.get("targets") or []
        if not targets or not all(str(t.get("expr", "")).strip() for t in targets):
            problems.append(f"{what}: every panel needs targets with a PromQL expr")
        if not all("upkeep_" in t.get("expr", "") for t in targets):
            problems.append(f"{what}: a target queries no upkeep_* metric")
    return problems


def check_dashboards(chart_dir):
    """Validates dashboards/*.json, printing a line per file or problem; returns (problems,
    dashboards by file name). tests/it/dashboard.rs checks that they query only metrics the
    operator exports."""
    problems, dashboards = [], {}
    for path in sorted(Path(chart_dir, "dashboards").glob("*.json")):
        try:
            dashboard = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            found = [f"{path.name}: not JSON: {e}"]
        else:
            dashboards[path.name] = dashboard
            found = dashboard_problems(path.name, dashboard)
        for problem in found:
            print(f"  FAIL dashboard {problem}")
        if not found:
            print(f"  ok   dashboard {path.name}: {len(dashboard['panels'])} panels")
        problems += found
    return problems, dashboards


def rendered_dashboards(manifests, dashboards):
    """Checks the ConfigMaps labelled grafana_dashboard: "1": each key is a dashboard file,
    unchanged. Returns (problems, the number of dashboards found)."""
    problems, found = [], 0
    for _, doc in manifests:
        labels = (doc.get("metadata") or {}).get("labels") or {}
        if doc.get("kind") != "ConfigMap" or labels.get("grafana_dashboard") != "1":
            continue
        for key, text in (doc.get("data") or {}).items():
            found += 1
            if key not in dashboards:
                problems.append(f"ConfigMap {doc['metadata']['name']}: {key} is no file of dashboards/")
            elif json.loads(text) != dashboards[key]:
                problems.append(f"ConfigMap {doc['metadata']['name']}: {key} differs from dashboards/{key}")
    return problems, found


def main(chart_dir, values_files):
    counts = Counter()
    lint_problems = 0
    used_templates = set()
    print("-- Grafana dashboards")
    dashboard_errors, dashboards = check_dashboards(chart_dir)
    dashboards_rendered = 0
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
            problems, found = rendered_dashboards(manifests, dashboards)
            for problem in problems:
                print(f"  FAIL {problem}")
            if found and not problems:
                print(f"  ok   {found} dashboard(s) rendered unchanged")
            dashboard_errors += problems
            dashboards_rendered += found

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

    if dashboards and not dashboards_rendered:
        dashboard_errors.append("no values file renders the dashboards (dashboards.enabled)")
    print(f"\nchart: lint problems {lint_problems}; objects valid {counts['valid']}, "
          f"invalid {counts['invalid']}, skipped {counts['skipped']} (custom kinds, no schema); "
          f"templates never rendered {len(unused)}; dashboard problems {len(dashboard_errors)}")
    failed = (lint_problems or counts["invalid"] or unused or not counts["valid"]
              or dashboard_errors)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
