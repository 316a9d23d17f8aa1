"""Reading the README's code blocks, and running the shell lines they show (for
tests/e2e/test_readme.py): every `sprunner` command line the README holds is found here,
so a test can hold each one to what the README says it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_MARK = "@@readme-command-done@@"
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")
_ID = re.compile(r"\b[0-9a-f]{32}\b")
DEMO_URL = "http://127.0.0.1:8765"  # the emulator of the README's captures


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # of the opening fence, for messages

    @property
    def console(self) -> list[tuple[str, list[str]]]:
        """`$ command` lines, each with the lines shown after it."""
        shown: list[tuple[str, list[str]]] = []
        for line in self.text.splitlines():
            if line.startswith("$ "):
                shown.append((line[2:], []))
            elif shown:
                shown[-1][1].append(line)
        return shown


def blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [
        Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in _FENCE.finditer(text)
    ]


def sprunner_commands() -> set[str]:
    """Every command line in a code block that runs sprunner (usage synopses left out: a
    line with `[...]` is one), as written, without the `$ ` prompt."""
    found: set[str] = set()
    for block in blocks():
        for line in block.text.splitlines():
            line = line.removeprefix("$ ").strip()
            if "[" not in line and any(_program(s) == "sprunner" for s in _SEGMENT.split(line)):
                found.add(line)
    return found


_SEGMENT = re.compile(r"&&|\|\||\||;|\$\(")


def _program(segment: str) -> str | None:
    """The program a shell segment runs: its first word after `NAME=value` assignments."""
    words = segment.replace('"', " ").replace(")", " ").split()
    while words and re.fullmatch(r"[A-Za-z_]+=\S*", words[0]):
        words.pop(0)
    return words[0] if words else None


def normalized(line: str) -> str:
    """Times and ids out: what stays is what the README promises."""
    return _ID.sub("<id>", _STAMP.sub("<time>", line)).rstrip()


def shim(bin_dir: Path) -> dict[str, str]:
    """An environment whose `sprunner` is this tree's, run by this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "sprunner"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m sprunner "$@"\n')
    script.chmod(0o755)
    skip = ("SCRAPINGPROS_", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


def run_lines(
    commands: list[str], *, cwd: Path, env: dict[str, str], url: str | None = None
) -> list[str]:
    """Run `commands` in one bash (so `$?` is the previous command's, as on a terminal),
    stdout and stderr together; the output of each. `url` stands for the demo's emulator."""
    parts = []
    for command in commands:
        if url is not None:
            command = command.replace(DEMO_URL, url)
        parts.append(f"{command}\n__status=$?\necho {_MARK}\n(exit $__status)")
    done = subprocess.run(
        ["bash", "-c", "\n".join(parts)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    outputs = done.stdout.split(_MARK + "\n")
    assert len(outputs) == len(commands) + 1, done.stdout
    return outputs[:-1]
