"""The repository's Dockerfile, built and run without Docker (no daemon here): buildah.

No registry for base images is reachable from CI, so the base is made here, from Debian's
packages (mmdebstrap: python3, its venv module, passwd), and named explicitly:
`localhost/sprunner-ci-base:<hash of its recipe>`. It is built once per machine (a new
recipe makes a new tag) under a file lock, so parallel test runs build it once.

`build` runs `buildah bud --isolation=chroot` on the Dockerfile with `BASE` set to that
image. The machine's CA bundle and a pip.conf naming it are mounted into the build's RUN
steps, never into a layer: where a proxy re-signs TLS (as on these machines) pip must trust
its CA, as a corporate CI's would. `run` does what `docker run` does with the image: its
entrypoint, working directory and environment, a uid and bind mounts of our choosing.

When buildah or mmdebstrap is missing (or we are not root), the tests that need them skip;
with CI=true they fail, so a CI machine that lost them cannot pass by skipping. .ci/run
installs both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The base's recipe; its hash is the tag, so changing it makes a new base.
BASE_PACKAGES = ("passwd", "python3", "python3-venv", "ca-certificates")
# Docs, manuals and translations: nothing runs from them, and they are half the tree.
BASE_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*")
BASE_EXCLUDES += ("/usr/share/locale/*",)
BASE_REPOSITORY = "localhost/sprunner-ci-base"
BUILD_TIMEOUT = 600  # seconds; a cold build takes about a minute here
LOCK = Path(tempfile.gettempdir()) / "sprunner-ci-base.lock"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def unavailable() -> str | None:
    """Why images cannot be built here, or None."""
    if os.name != "posix" or os.getuid() != 0:
        return "building images needs root (mmdebstrap, buildah as root)"
    missing = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        return f"missing {' and '.join(missing)} (apt-get install buildah mmdebstrap)"
    return None


def require() -> None:
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"building the image is required on CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _run(argv: Sequence[str], *, timeout: float = BUILD_TIMEOUT) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def _exists(image: str) -> bool:
    done = subprocess.run(
        ["buildah", "inspect", "--type", "image", image], capture_output=True, check=False
    )
    return done.returncode == 0


def _suite() -> str:
    """The host's Debian release: mmdebstrap then uses the host's own apt sources."""
    fields = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines()
        if "=" in line
    )
    return fields.get("VERSION_CODENAME", "bookworm").strip('"') or "bookworm"


def base_image() -> str:
    """The Debian base, made once per machine and recipe."""
    suite = _suite()
    recipe = json.dumps([suite, BASE_PACKAGES, BASE_EXCLUDES])
    image = f"{BASE_REPOSITORY}:{suite}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    from filelock import FileLock

    with FileLock(str(LOCK), timeout=BUILD_TIMEOUT):
        if not _exists(image):
            _make_base(image, suite)
    return image


def _make_base(image: str, suite: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sprunner-base-") as folder:
        rootfs = Path(folder) / "rootfs.tar"
        excludes = [f"--dpkgopt=path-exclude={pattern}" for pattern in BASE_EXCLUDES]
        _run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=essential",
                f"--include={','.join(BASE_PACKAGES)}",
                *excludes,
                suite,
                str(rootfs),
            ]
        )
        container = _run(["buildah", "from", "--quiet", "scratch"]).strip()
        try:
            _run(["buildah", "add", "--quiet", container, str(rootfs), "/"])
            path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            _run(["buildah", "config", "--env", path, "--cmd", "/bin/sh", container])
            _run(["buildah", "commit", "--quiet", container, image])
        finally:
            subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


def _ca_bundle() -> Path:
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("PIP_CERT"), paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return Path("/etc/ssl/certs/ca-certificates.crt")


@contextlib.contextmanager
def built(context: Path) -> Iterator[str]:
    """The image of `context`'s Dockerfile, removed afterwards."""
    image = f"localhost/sprunner-test:{uuid.uuid4().hex[:12]}"
    base = base_image()
    with tempfile.TemporaryDirectory(prefix="sprunner-build-") as folder:
        conf = Path(folder) / "pip.conf"
        conf.write_text("[global]\ncert = /etc/ssl/certs/build-ca.crt\n", encoding="utf-8")
        _run(
            [
                "buildah",
                "bud",
                "--quiet",
                "--isolation=chroot",
                "--build-arg",
                f"BASE={base}",
                "--volume",
                f"{_ca_bundle()}:/etc/ssl/certs/build-ca.crt:ro",
                "--volume",
                f"{conf}:/etc/pip.conf:ro",
                "--tag",
                image,
                str(context),
            ]
        )
    try:
        yield image
    finally:
        subprocess.run(["buildah", "rmi", "--force", image], capture_output=True, check=False)


def config(image: str) -> dict[str, Any]:
    """The image's OCI config: Entrypoint, WorkingDir, User, Env."""
    data = json.loads(_run(["buildah", "inspect", "--type", "image", image]))
    settings: dict[str, Any] = data["OCIv1"]["config"]
    return settings


def run(
    image: str,
    argv: Sequence[str],
    *,
    user: str | None = None,
    mounts: Mapping[Path, str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    """`docker run --rm [--user U] [-v HOST:PATH] [-e K=V] IMAGE ARGV...`, with buildah."""
    settings = config(image)
    entrypoint = [str(word) for word in settings.get("Entrypoint") or []]
    container = _run(["buildah", "from", "--quiet", "--pull-never", image]).strip()
    try:
        for name, value in (env or {}).items():
            _run(["buildah", "config", "--env", f"{name}={value}", container])
        volumes = [f"--volume={host}:{path}" for host, path in (mounts or {}).items()]
        command = ["buildah", "run", "--isolation=chroot", *volumes]
        if user is not None:
            command.append(f"--user={user}")
        done = subprocess.run(
            [*command, container, "--", *entrypoint, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
    # buildah adds its own lines about the command's exit status to stderr.
    ours = [
        line
        for line in done.stderr.splitlines()
        if not line.startswith(("subprocess exited with status", "Error: exit status"))
    ]
    return Result(done.returncode, done.stdout, "\n".join(ours))
