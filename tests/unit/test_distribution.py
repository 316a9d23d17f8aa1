"""How sprunner is distributed: packaging metadata, the container image, the Kubernetes
recipes against real Kubernetes schemas, and one placeholder repository everywhere."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "examples" / "deploy"
KUBERNETES = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
REPOSITORY = "https://github.com/scrapingpros/sprunner"
IMAGE = "ghcr.io/scrapingpros/sprunner"
# backoffLimitPerIndex and FailIndex (one shard fails alone) exist from Kubernetes 1.29.
MINIMUM = {
    "cronjob.yaml": (1, 26),
    "cronjob-sharded.yaml": (1, 29),
    "cronjob-postgres.yaml": (1, 29),
}


def _project() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data


# --- Kubernetes --------------------------------------------------------------------------------


def _kubernetes_versions() -> list[str]:
    try:
        from kubernetes_validate.utils import all_versions
    except ImportError:
        return []
    minors = {tuple(int(p) for p in v.split(".")[:2]) for v in all_versions()}
    return [f"{a}.{b}" for a, b in sorted(minors) if (a, b) >= (1, 26)]


def test_kubernetes_validate_ships_schemas_up_to_recent_versions() -> None:
    pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    versions = _kubernetes_versions()
    assert versions[0] == "1.26"
    assert tuple(int(p) for p in versions[-1].split(".")) >= (1, 34)


@pytest.mark.parametrize("manifest", KUBERNETES, ids=lambda p: p.name)
def test_kubernetes_recipes_validate_on_every_supported_version(manifest: Path) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed (the test extra)"
    )
    documents = [d for d in yaml.safe_load_all(manifest.read_text(encoding="utf-8")) if d]
    assert documents
    minimum = MINIMUM[manifest.name]
    checked = 0
    for version in _kubernetes_versions():
        if tuple(int(p) for p in version.split(".")) < minimum:
            continue
        for document in documents:
            # strict: a misspelt or unknown field is an error, as `kubectl --validate=strict`.
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{manifest.name} {document['kind']} on Kubernetes {version}: {e}")
        checked += 1
    assert checked >= 6


def test_recipe_images_are_the_one_the_dockerfile_builds() -> None:
    images = set()
    for manifest in KUBERNETES:
        for document in yaml.safe_load_all(manifest.read_text(encoding="utf-8")):
            pod = (document or {}).get("spec", {}).get("jobTemplate", {}).get("spec", {})
            for container in pod.get("template", {}).get("spec", {}).get("containers", []):
                images.add(container["image"])
    assert images and {i.rsplit(":", 1)[0] for i in images} == {IMAGE}
    version = _project()["project"]["version"]
    assert images == {f"{IMAGE}:{version}"}
    mentioned = set(re.findall(r"ghcr\.io/[\w.-]+/sprunner:[\w.-]*\w", _all_docs()))
    assert mentioned <= images


# --- one placeholder repository ------------------------------------------------------------


def _all_docs() -> str:
    files = [ROOT / "README.md", ROOT / ".pre-commit-hooks.yaml", ROOT / "Dockerfile"]
    files += [p for p in DEPLOY.rglob("*") if p.is_file()]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def test_placeholder_repository_urls_agree() -> None:
    text = _all_docs() + (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = set(re.findall(r"https://github\.com/[^/\s\"'@]+/sprunner", text))
    assert found == {REPOSITORY}
    assert "<org>" not in text and "github.com/example/" not in text
    hook_docs = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert f"repo: {REPOSITORY}" in hook_docs


# --- packaging ---------------------------------------------------------------------------------


def test_packaging_metadata() -> None:
    data = _project()
    project = data["project"]
    assert project["license"] == "MIT"  # the SPDX string, not the deprecated table
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert project["urls"]["Source"] == REPOSITORY
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers
    # PEP 639: a license expression and a License classifier together are an error.
    assert not any(c.startswith("License ::") for c in classifiers)
    (requirement,) = data["build-system"]["requires"]
    match = re.fullmatch(r"setuptools>=(\d+)", requirement)
    assert match and int(match[1]) >= 77  # the first setuptools that reads `license-files`


# --- container ---------------------------------------------------------------------------------


def test_dockerfile_is_slim_non_root_with_sprunner_as_entrypoint() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:[\d.]+-slim\b", text, re.MULTILINE)
    assert re.search(r"pip install --no-cache-dir\s", text)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert 'ENTRYPOINT ["sprunner"]' in text
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".sprunner", "tests"} <= set(ignored)
    # The recipes run as this uid; the image's files must belong to it.
    assert "10001" in users[-1]


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker executable"
    info = subprocess.run(
        ["docker", "info"], capture_output=True, text=True, timeout=30, check=False
    )
    if info.returncode != 0:
        lines = (info.stderr or info.stdout).strip().splitlines()
        return f"`docker info` failed: {lines[-1] if lines else info.returncode}"
    return None


def test_the_image_builds_and_runs_as_non_root() -> None:
    reason = _docker_unavailable()
    if reason is not None:
        print(f"skipped: {reason}")
        pytest.skip(f"no working Docker: {reason}")
    tag = "sprunner-test:local"
    build = subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    try:
        version = subprocess.run(
            ["docker", "run", "--rm", tag, "--version"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert _project()["project"]["version"] in version.stdout
        uid = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert uid.stdout.strip() == "10001"
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
