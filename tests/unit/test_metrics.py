"""The `--metrics` file: what node_exporter's textfile collector and alert rules read."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sprunner.report.metrics import (
    ApiCallCount,
    ApplyMetrics,
    CollectionMetrics,
    MetricsError,
    write_metrics,
)

SHOP = CollectionMetrics("shop", success=5, failed=1, timeout=1, credits=25, ok=False)
NEWS = CollectionMetrics("news", success=3, credits=3, ok=True)
CALLS = (ApiCallCount("list runs", "200", 4), ApiCallCount("start run", "429", 1))


def _apply(exit_code: int, finished_at: float = 1_800_000_000.0) -> ApplyMetrics:
    return ApplyMetrics(finished_at, 12.5, exit_code, (SHOP, NEWS), CALLS)


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = path.read_text(encoding="utf-8")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_file_parses_and_holds_every_metric(tmp_path: Path) -> None:
    path = tmp_path / "sprunner.prom"
    write_metrics(path, _apply(1))
    got = _samples(path)
    assert got[("sprunner_last_apply_timestamp_seconds", ())] == 1_800_000_000.0
    assert got[("sprunner_last_apply_exit_code", ())] == 1
    assert got[("sprunner_last_apply_duration_seconds", ())] == 12.5
    assert got[("sprunner_collection_ok", (("collection", "shop"),))] == 0
    assert got[("sprunner_collection_ok", (("collection", "news"),))] == 1
    shop_failed = (("collection", "shop"), ("status", "failed"))
    assert got[("sprunner_requests_total", shop_failed)] == 1
    assert got[("sprunner_collection_last_requests", shop_failed)] == 1
    assert got[("sprunner_credits_total", (("collection", "shop"),))] == 25
    assert got[("sprunner_api_calls_total", (("call", "start run"), ("code", "429")))] == 1
    # Never succeeded yet: the series is absent, so `absent()` can alert on it.
    assert not any(name == "sprunner_last_success_timestamp_seconds" for name, _ in got)
    assert not any(name.endswith("_created") for name, _ in got)


def test_last_success_survives_a_failed_apply(tmp_path: Path) -> None:
    path = tmp_path / "sprunner.prom"
    write_metrics(path, _apply(0, finished_at=1000.0))
    write_metrics(path, _apply(1, finished_at=2000.0))
    write_metrics(path, _apply(3, finished_at=3000.0))
    got = _samples(path)
    assert got[("sprunner_last_success_timestamp_seconds", ())] == 1000.0
    assert got[("sprunner_last_apply_timestamp_seconds", ())] == 3000.0
    assert got[("sprunner_last_apply_exit_code", ())] == 3

    write_metrics(path, _apply(0, finished_at=4000.0))
    assert _samples(path)[("sprunner_last_success_timestamp_seconds", ())] == 4000.0


def test_counters_add_up_over_applies(tmp_path: Path) -> None:
    path = tmp_path / "sprunner.prom"
    for _ in range(3):
        write_metrics(path, _apply(0))
    got = _samples(path)
    assert got[("sprunner_credits_total", (("collection", "shop"),))] == 75
    assert got[("sprunner_api_calls_total", (("call", "list runs"), ("code", "200")))] == 12
    # The last-apply gauge does not add up.
    assert (
        got[("sprunner_collection_last_requests", (("collection", "news"), ("status", "success")))]
        == 3
    )


def test_an_unreadable_previous_file_restarts_the_counters(tmp_path: Path) -> None:
    path = tmp_path / "sprunner.prom"
    path.write_text("this is {not prometheus\n", encoding="utf-8")
    write_metrics(path, _apply(1))
    assert _samples(path)[("sprunner_credits_total", (("collection", "shop"),))] == 25


def test_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "sprunner.prom"
    many = tuple(CollectionMetrics(f"c{i:04}", success=i, credits=i) for i in range(200))
    big = ApplyMetrics(1.0, 1.0, 0, many, CALLS)
    write_metrics(path, big)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                got = _samples(path)
                seen.append(sum(1 for name, _ in got if name == "sprunner_collection_ok"))
            except BaseException as e:  # reported by the main thread
                errors.append(e)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(8):
            write_metrics(path, big)
    finally:
        stop.set()
        reader.join(timeout=30)
    assert not errors
    assert seen and set(seen) == {200}
    # Nothing is left behind for the textfile collector to trip on.
    assert [p.name for p in tmp_path.iterdir()] == ["sprunner.prom"]


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "sprunner.prom"
    with pytest.raises(MetricsError, match=r"nope.*does not exist"):
        write_metrics(path, _apply(0))


def test_an_unwritable_target_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "sprunner.prom").mkdir()  # a directory where the file should go
    with pytest.raises(MetricsError, match="cannot write metrics"):
        write_metrics(tmp_path / "sprunner.prom", _apply(0))
    assert [p.name for p in tmp_path.iterdir()] == ["sprunner.prom"]  # no temp file left


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_is_a_clear_error(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(MetricsError, match="cannot write metrics"):
            write_metrics(directory / "sprunner.prom", _apply(0))
    finally:
        directory.chmod(0o700)


def test_from_outcome_counts_charged_credits_and_calls(tmp_path: Path) -> None:
    from dataclasses import dataclass

    from sprunner.report.metrics import from_outcome
    from sprunner.report.outcome import ApplyOutcome, CollectionOutcome, RunOutcome

    @dataclass(frozen=True)
    class Call:
        call: str
        status: int | None

    # credits are the run's charged ones (`sprunner.runs.credits`): from_outcome passes them on.
    run = RunOutcome(
        "completed", "r1", total_requests=4, success_requests=3, failed_requests=1, credits=15
    )
    outcome = ApplyOutcome(
        "https://api.example.com",
        100.0,
        130.0,
        (
            CollectionOutcome("shop", "a.yaml", "create", "c1", 4, run),
            CollectionOutcome("later", "a.yaml", "unchanged", "c2", 1, RunOutcome("skipped")),
            CollectionOutcome("bad", "a.yaml", "error", error="422"),
        ),
    )
    calls = [Call("list runs", 200), Call("list runs", 200), Call("start run", None)]
    metrics = from_outcome(outcome, exit_code=1, calls=calls)
    assert (metrics.finished_at, metrics.duration_s, metrics.exit_code) == (130.0, 30.0, 1)
    shop, later, bad = metrics.collections
    assert (shop.success, shop.failed, shop.credits, shop.ok) == (3, 1, 15, True)
    assert later.ok and not bad.ok and later.credits == 0
    assert metrics.api_calls == (
        ApiCallCount("list runs", "200", 2),
        ApiCallCount("start run", "error", 1),
    )
    write_metrics(tmp_path / "m.prom", metrics)
    got = _samples(tmp_path / "m.prom")
    assert got[("sprunner_collection_ok", (("collection", "bad"),))] == 0


def test_the_documented_sample_is_what_sprunner_writes(tmp_path: Path) -> None:
    import re

    readme = Path(__file__).resolve().parents[2] / "deploy" / "README.md"
    section = readme.read_text(encoding="utf-8").split("## Monitoring", 1)[1]
    sample = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    assert sample is not None
    documented = {f.name for f in text_string_to_metric_families(sample[1])}
    path = tmp_path / "sprunner.prom"
    write_metrics(path, _apply(0))
    text = path.read_text(encoding="utf-8")
    assert documented == {f.name for f in text_string_to_metric_families(text)}
