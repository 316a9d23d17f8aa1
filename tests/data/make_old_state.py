"""Write `tests/data/state-fe83217/`: a state directory in the format before the SQLite store,
really written by the code of that time, for the migration test (`tests/unit/state/
test_migrate.py`). Kept to show how the data was made; it is not run by the tests.

    git worktree add --detach /tmp/old27 27a029f   # applied/ one file per collection
    git worktree add --detach /tmp/old fe83217     # applied/ buckets, journal, snapshot
    PYTHONPATH=. python3 tests/data/make_old_state.py /tmp/old27 /tmp/old

History: the older code applies three collections with runs (one retries into `b.retry`,
one delivers results), so state.json and one applied/ file per collection are written;
then fe83217's code applies an edit with --no-run (a bucket replaces one old file), and an
apply with runs is killed by SIGKILL once a run id is journaled, so journal.jsonl holds
records never folded into the snapshot. Last, fe83217's `sprunner state export` gives
`export.json`: what the old code itself reads from that directory. The API key is a fixed
fake: the directory holds only keyed hashes of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sprunner.emulator.server import running_emulator

API_KEY = "fake-key-for-the-migration-test"
OUT = Path(__file__).parent / "state-fe83217"

JOB = """\
version: 1
collections:
  - name: a
    requests:
      - url: https://a.example/{page}
    run: {{when: changed, poll_interval: 0.1s}}
    results: {{to: results/}}
  - name: b
    requests:
      - url: https://b.example/ok
      - url: https://b.example/fail
    run: {{poll_interval: 0.1s, retry: {{attempts: 1}}}}
  - name: c
    requests:
      - url: https://c.example/{page}
    run: {{poll_interval: 0.1s}}
"""


def sprunner(tree: str, url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": tree, "SCRAPINGPROS_API_KEY": API_KEY}
    command = [sys.executable, "-m", "sprunner", "--api-url", url, "--state-dir", "state"]
    return subprocess.Popen([*command, *args], cwd=OUT, env=env, text=True, stdout=subprocess.PIPE)


def done(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=120)
    return out


def main() -> None:
    older, old = sys.argv[1], sys.argv[2]
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "jobs").mkdir(parents=True)
    job = OUT / "jobs" / "shop.yaml"
    with running_emulator(mode="simulate", api_key=API_KEY, run_seconds=0.5) as emulator:
        job.write_text(JOB.format(page=1))
        done(sprunner(older, emulator.url, "apply", "jobs"))
        job.write_text(JOB.format(page=2).replace("c.example/2", "c.example/1"))
        done(sprunner(old, emulator.url, "apply", "jobs", "--no-run"))
        job.write_text(JOB.format(page=3))
        emulator.engine.run_seconds = 30.0
        killed = sprunner(old, emulator.url, "apply", "jobs")
        journal = OUT / "state" / "journal.jsonl"
        deadline = time.monotonic() + 60
        while '"run_id": "' not in (journal.read_text() if journal.exists() else ""):
            assert time.monotonic() < deadline, "no run id journaled"
            time.sleep(0.01)
        time.sleep(0.3)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        exported = done(sprunner(old, emulator.url, "state", "export"))
    (OUT / "export.json").write_text(json.dumps(json.loads(exported), indent=1) + "\n")
    shutil.rmtree(OUT / "jobs" / "results", ignore_errors=True)
    (OUT / "state" / "lock").unlink(missing_ok=True)
    for path in sorted(OUT.rglob("*")):
        print(path.relative_to(OUT))


if __name__ == "__main__":
    main()
