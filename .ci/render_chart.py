"""Print the chart as `helm template` renders it for CI's release (upkeep in upkeep-system),
as one JSON array of the rendered objects, for tests that read what the chart installs
(tests/it/agent_policy.rs).

Usage: render_chart.py CHART [VALUES_FILE ...]
"""

import json
import sys
from pathlib import Path

import helm_python as helm
import yaml

from check_chart import render


def main(chart_dir, values_files):
    values = {}
    for values_file in values_files:
        values = merge(values, yaml.safe_load(Path(values_file).read_text()) or {})
    with helm.Chart.load(chart_dir) as chart:
        objects = [doc for _, doc in render(chart, values or None)]
    json.dump(objects, sys.stdout, indent=1)
    print()
    return 0


def merge(base, override):
    """Helm's merge of values files: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
