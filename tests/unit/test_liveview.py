"""The live display's frames and the log line formats, from plain values."""

from __future__ import annotations

import io
import json

from sprunner.api.models import Run
from sprunner.output.liveview import ROWS, LiveView, frame, slowest, totals
from sprunner.output.logfmt import json_line, structure, text_line, timestamp
from sprunner.report.outcome import Progress


def row(name: str, done: int, total: int = 10, state: str = "in_progress") -> Progress:
    run = Run(f"run{name}xx", "c", "in_progress", total, done, 1 if done else 0, 0)
    return Progress(name, "create", state, run, credits=total)  # type: ignore[arg-type]


def test_totals_and_a_bounded_frame_whatever_the_collections() -> None:
    rows = [row(f"c{i:03d}", i % 9) for i in range(300)]
    rows.append(Progress("skipped-one", "unchanged", "skipped", None))
    t = totals(rows)
    assert (t.collections, t.reconciled, t.runs, t.runs_done) == (301, 301, 300, 0)
    assert t.credits == 3000
    lines = frame(rows, 60, lambda s: s)
    assert len(lines) == 1 + ROWS and all(len(line) < 60 for line in lines)
    assert [r.name for r in slowest(rows)] == ["c000", "c009", "c018", "c027", "c036"]


def test_a_log_line_erases_the_display_and_exit_leaves_nothing() -> None:
    stream = io.StringIO()
    rows = [row("a", 1), row("b", 2)]
    with LiveView(stream, lambda: rows, lambda s: s, refresh=60) as live:
        live.log("hello")
        live.log("world")
    text = stream.getvalue()
    # Drawn once at the start; each log line costs one erase, not a redraw.
    assert text.count("] runs ") == 1
    assert text.endswith("hello\nworld\n")
    assert text.count("\x1b[3F\x1b[J") == 1


def test_log_formats() -> None:
    assert timestamp(0.5) == "1970-01-01T00:00:00.500Z"
    assert text_line("warning", "x", now=0.0) == "1970-01-01T00:00:00.000Z warning: x"
    assert text_line("info", "x", now=None) == "x"
    known = {"shop"}
    # The collection and the run id are read back from the words; the event is the one the
    # line was logged with ("log" when none).
    assert structure("shop: run abcdef123 started", known) == {
        "collection": "shop",
        "run_id": "abcdef123",
        "event": "log",
    }
    assert structure("other: created (1)", known)["collection"] is None
    line = json_line(
        "info", "shop: deleted (x)", now=0.0, collections=known, fields={"event": "deleted"}
    )
    record = json.loads(line)
    assert (record["event"], record["level"], record["collection"]) == ("deleted", "info", "shop")
    assert record["apply_id"] is None  # present on every line, null outside an apply
