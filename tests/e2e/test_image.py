"""The image the Dockerfile builds, run as its documentation says: the demo job files on a
mounted folder, as an arbitrary non-root uid (`docker run --user`, OpenShift), against an
emulator on the host's loopback. Built with buildah on a Debian base made locally
(tests/container.py); one test, since the build is the slow part (about a minute cold)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from sprunner.emulator.server import EmulatorHandle, running_emulator
from sprunner.errors import EXIT_FAILED, EXIT_INVALID, EXIT_OK
from tests import container

ROOT = Path(__file__).resolve().parents[2]
KEY = "image-test-key-0123456789"
DEMO_COLLECTIONS = {"news-archive", "partner-feeds", "shop-categories", "shop-products"}


def _workdir(tmp_path: Path, name: str, uid: int, gid: int, mode: int = 0o755) -> Path:
    """A user's job-file repository: the demo as jobfiles/ (the default PATH) and a key
    file, owned by `uid`:`gid`, like the folder `docker run -v "$PWD:/work"` mounts."""
    work = tmp_path / name
    shutil.copytree(ROOT / "examples" / "jobs", work / "jobfiles")
    secrets = work / "secrets"
    secrets.mkdir()
    (secrets / "api-key").write_text(KEY + "\n", encoding="utf-8")
    for path in (work, *work.rglob("*")):
        os.chown(path, uid, gid)
    (secrets / "api-key").chmod(0o600)
    work.chmod(mode)
    return work


def _apply(image: str, emulator: EmulatorHandle, work: Path, user: str | None) -> container.Result:
    argv = ["--api-url", emulator.url, "apply", "--report", "report.json", "--junit", "junit.xml"]
    env = {"SCRAPINGPROS_API_KEY_FILE": "/work/secrets/api-key"}
    return container.run(image, argv, user=user, mounts={work: "/work"}, env=env)


def _report(work: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((work / "report.json").read_text(encoding="utf-8"))
    return data


def _owned_by(path: Path, uid: int) -> bool:
    return path.stat().st_uid == uid


def test_the_image_runs_the_demo_as_an_arbitrary_uid_on_a_mounted_folder(tmp_path: Path) -> None:
    container.require()
    with container.built(ROOT) as image, running_emulator(run_seconds=0.3, api_key=KEY) as api:
        settings = container.config(image)
        assert settings["Entrypoint"] == ["sprunner"] and settings["WorkingDir"] == "/work"
        assert str(settings["User"]).split(":")[0] not in {"", "0", "root"}

        # `docker run --user "$(id -u):$(id -g)" -v "$PWD:/work"`: a uid the image has never
        # heard of, owning the folder. The demo has a collection meant to fail: exit 1.
        work = _workdir(tmp_path, "user", 4711, 4711)
        first = _apply(image, api, work, "4711:4711")
        assert first.returncode == EXIT_FAILED, first.stderr
        report = _report(work)
        assert {c["name"] for c in report["collections"]} == DEMO_COLLECTIONS
        assert {c["action"] for c in report["collections"]} == {"created"}
        assert report["summary"]["runs"] == 4
        assert "<testsuites" in (work / "junit.xml").read_text(encoding="utf-8")
        state = work / ".sprunner"
        assert state.is_dir() and _owned_by(state, 4711)  # the state, in the documented place
        assert _owned_by(work / "report.json", 4711) and _owned_by(work / "junit.xml", 4711)
        assert KEY not in first.stdout + first.stderr
        assert "warning" not in first.stderr  # the key file is 0600 and the user's own

        # The state kept in the mounted folder: the next apply changes nothing remotely.
        second = _apply(image, api, work, "4711:4711")
        assert second.returncode in (EXIT_OK, EXIT_FAILED), second.stderr
        assert {c["action"] for c in _report(work)["collections"]} == {"unchanged"}
        assert len(api.engine.collections) == len(DEMO_COLLECTIONS)

        # OpenShift: an arbitrary uid in group 0, on a volume group 0 may write.
        shift = _workdir(tmp_path, "openshift", 0, 0, mode=0o775)
        (shift / "secrets" / "api-key").chmod(0o640)  # root's, readable by group 0: no warning
        openshift = _apply(image, api, shift, "1000770000:0")
        assert openshift.returncode == EXIT_FAILED, openshift.stderr
        # A fresh state: each collection is found by name and adopted, never made twice.
        assert {c["action"] for c in _report(shift)["collections"]} <= {"updated", "unchanged"}
        assert len(api.engine.collections) == len(DEMO_COLLECTIONS)
        assert _owned_by(shift / ".sprunner", 1000770000)
        assert "warning" not in openshift.stderr

        # Without --user, on a folder uid 10001 cannot write: exit 2, a hint, nothing sent.
        before = api.engine.calls.copy()
        foreign = _workdir(tmp_path, "foreign", 4711, 4711)
        (foreign / "secrets" / "api-key").chmod(0o644)  # readable, so the state fails first
        refused = _apply(image, api, foreign, None)
        assert refused.returncode == EXIT_INVALID, refused.stderr
        # The report's folder is the first thing found unwritable (before the lock is taken).
        assert "cannot write report.json: /work: Permission denied" in refused.stderr
        assert '--user "$(id -u):$(id -g)"' in refused.stderr
        assert api.engine.calls == before
