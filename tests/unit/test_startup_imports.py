"""`sprunner --version` and `--help` start without the heavy libraries (a test of imports,
not of time: which modules load is deterministic, how long they take is not)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("httpx", "jsonschema", "jinja2", "rich", "starlette", "uvicorn", "tenacity")


def _imported(*args: str) -> set[str]:
    code = (
        "import sys\n"
        "from sprunner.cli import main\n"
        f"sys.argv = ['sprunner', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "names = sorted({name.split('.')[0] for name in sys.modules})\n"
        "print('MODULES:', *names, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES:"))
    return set(line.split()[1:])


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("validate", "--help")])
def test_start_up_imports_none_of_the_heavy_libraries(args: tuple[str, ...]) -> None:
    loaded = _imported(*args)
    assert "sprunner" in loaded
    assert sorted(loaded & set(HEAVY)) == []
