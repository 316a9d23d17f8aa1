"""`--metrics FILE`: Prometheus text for node_exporter's textfile collector (SPEC §9).

`prometheus_client` writes the file (`write_to_textfile`: a temp file in the same directory,
then a rename), so node_exporter reads the old file or the new one, never half of one. Its
temp name ends in `.<pid>.<thread>`, not `.prom`, so the collector never reads it.

What the file holds, and why:

- gauges about the last apply: `sprunner_last_apply_timestamp_seconds` (when it finished),
  `sprunner_last_apply_duration_seconds`, `sprunner_last_apply_exit_code`;
- per selected collection, by its latest verdict (its latest run seen to its end, after
  the retries: this apply's or an earlier one's, SPEC §9): `sprunner_collection_ok` (1
  healthy, 0 failed or stale), `sprunner_collection_last_requests{status}` (that run's
  counts after its retries), `sprunner_collection_last_success_timestamp_seconds` (when its
  newest passing run finished; absent before the first) and, for a collection with
  `run.max_age`, `sprunner_collection_max_age_seconds`: the alert rule
  `time() - last_success > max_age` fires on a stale collection;
- `sprunner_last_success_timestamp_seconds`: when an apply last exited 0. A failed apply
  keeps the previous file's value, so "no success for 2 hours" is one alert rule; before the
  first success the series is absent (`absent()` alerts on it);
- counters (`_total`) that add up over applies: requests by collection and status, credits
  by collection, API calls by call and status code. Each new file adds this apply to the
  previous file's values, so `increase(sprunner_credits_total[1d])` is the credits spent in
  a day. A lost or unreadable previous file restarts them from 0, which `rate()` and
  `increase()` treat as a counter reset. No `_created` samples: they would claim the
  counters started at this apply.

The registry is a fresh `CollectorRegistry` per write: nothing global is touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sprunner.errors import SprunnerError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from sprunner.report.outcome import ApplyOutcome

PREFIX = "sprunner_"
REQUEST_STATUSES = ("success", "failed", "timeout")
_FINISHED = ("completed", "timed_out")  # runs this apply saw to their end

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs: a series key


class MetricsError(SprunnerError):
    """The metrics file cannot be written (missing or read-only directory, ...)."""


@dataclass(frozen=True)
class CollectionMetrics:
    """One collection's part of an apply: the requests of the run this apply saw to its
    end, by status after its retries, and the credits it was charged (the counters); its
    health and latest verdict (the gauges)."""

    name: str
    success: int = 0
    failed: int = 0
    timeout: int = 0
    credits: int = 0  # charged: successful requests x cost per request (`sprunner.runs.credits`)
    ok: bool = True
    # The latest verdict's (success, failed, timeout); None: this apply's counts above.
    latest: tuple[int, int, int] | None = None
    last_success_at: float | None = None  # when its newest passing run finished
    max_age_s: float | None = None  # `run.max_age`


@dataclass(frozen=True)
class ApiCallCount:
    """How many `call`s (e.g. "list runs") answered `code` ("200", "429"; "error" if none)."""

    call: str
    code: str
    count: int


@dataclass(frozen=True)
class ApplyMetrics:
    finished_at: float  # epoch seconds
    duration_s: float
    exit_code: int
    collections: tuple[CollectionMetrics, ...] = ()
    api_calls: tuple[ApiCallCount, ...] = ()


class CallLike(Protocol):
    """What `count_calls` needs of a call record (the API client's `CallRecord` has it)."""

    @property
    def call(self) -> str: ...

    @property
    def status(self) -> int | None: ...


def count_calls(records: Iterable[CallLike]) -> tuple[ApiCallCount, ...]:
    """Group call records by call name and status code ("error" when no HTTP answer came)."""
    counts = Counter((r.call, "error" if r.status is None else str(r.status)) for r in records)
    return tuple(ApiCallCount(call, code, n) for (call, code), n in sorted(counts.items()))


def from_outcome(
    outcome: ApplyOutcome,
    *,
    exit_code: int,
    calls: Iterable[CallLike] = (),
    retries_only: bool = False,
) -> ApplyMetrics:
    """The metrics of a finished apply: per collection the counts (after retries) and the
    credits charged of the run this apply saw to its end, and its health by its latest
    verdict. A run left in progress is counted by the apply that sees it end: once.
    `retries_only` (`sprunner retry`): only the retry runs are new, the first run was
    counted by its apply."""
    collections = []
    for c in outcome.collections:
        run, verdict = c.run, c.verdict
        own = (0, 0, 0)
        if retries_only and run is not None:
            done = [r for r in run.retries if r.status in _FINISHED]
            own = (
                sum(r.success_requests for r in done),
                sum(r.failed_requests for r in done),
                sum(r.timeout_requests for r in done),
            )
        elif run is not None and run.run_id is not None and run.status in _FINISHED:
            counts = run.final or run
            own = (counts.success_requests, counts.failed_requests, counts.timeout_requests)
        latest = None
        if verdict is not None:
            latest = (verdict.success_requests, verdict.failed_requests, verdict.timeout_requests)
        collections.append(
            CollectionMetrics(
                c.name,
                *own,
                credits=run.credits if run is not None else 0,
                ok=c.ok,
                latest=latest,
                last_success_at=None if verdict is None else verdict.last_success_at,
                max_age_s=c.max_age,
            )
        )
    return ApplyMetrics(
        finished_at=outcome.finished_at,
        duration_s=max(0.0, outcome.finished_at - outcome.started_at),
        exit_code=exit_code,
        collections=tuple(collections),
        api_calls=count_calls(calls),
    )


@dataclass(frozen=True)
class _Previous:
    """What the previous file said that this one carries on."""

    last_success: float | None = None
    counters: dict[str, dict[Labels, float]] | None = None

    def counter(self, name: str) -> dict[Labels, float]:
        return dict((self.counters or {}).get(name, {}))


def read_previous(path: Path) -> _Previous:
    """Parse the previous metrics file; a missing or unreadable one counts as empty."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return _Previous()
    last_success: float | None = None
    counters: dict[str, dict[Labels, float]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == f"{PREFIX}last_success_timestamp_seconds":
                    last_success = sample.value
                elif family.type == "counter" and sample.name.endswith("_total"):
                    key = tuple(sorted(sample.labels.items()))
                    counters.setdefault(sample.name, {})[key] = sample.value
    except ValueError:
        # A hand-edited or foreign file: start afresh rather than fail the apply.
        return _Previous()
    return _Previous(last_success, counters)


def _gauge(name: str, doc: str, value: float) -> Metric:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(PREFIX + name, doc, value=value)


def _labelled_gauge(
    name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]
) -> Metric:
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(PREFIX + name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _counter(
    name: str, doc: str, labels: list[str], added: dict[Labels, float], previous: _Previous
) -> Metric:
    """A `_total` counter: the previous file's series plus this apply's."""
    from prometheus_client.core import CounterMetricFamily

    totals = previous.counter(f"{PREFIX}{name}_total")
    for key, value in added.items():
        totals[key] = totals.get(key, 0.0) + value
    family = CounterMetricFamily(PREFIX + name, doc, labels=labels)
    for key in sorted(totals):
        as_dict = dict(key)
        family.add_metric([as_dict.get(label, "") for label in labels], totals[key])
    return family


def families(metrics: ApplyMetrics, previous: _Previous) -> Iterator[Metric]:
    """Every metric family of the file, in a stable order."""
    last_success = metrics.finished_at if metrics.exit_code == 0 else previous.last_success
    yield _gauge(
        "last_apply_timestamp_seconds", "When the last apply finished.", metrics.finished_at
    )
    if last_success is not None:
        yield _gauge("last_success_timestamp_seconds", "When an apply last exited 0.", last_success)
    yield _gauge("last_apply_exit_code", "Exit code of the last apply.", metrics.exit_code)
    yield _gauge("last_apply_duration_seconds", "Duration of the last apply.", metrics.duration_s)
    cols = metrics.collections
    yield from _health(cols)
    yield _counter(
        "requests",
        "Requests run, by collection and status, over all applies.",
        ["collection", "status"],
        {
            _key(collection=c.name, status=s): _by_status(c)[s]
            for c in cols
            for s in REQUEST_STATUSES
        },
        previous,
    )
    yield _counter(
        "credits",
        "Credits charged (successful requests x cost, retries included), by collection, "
        "over all applies.",
        ["collection"],
        {_key(collection=c.name): float(c.credits) for c in cols},
        previous,
    )
    calls: dict[Labels, float] = {}
    for call in metrics.api_calls:
        key = _key(call=call.call, code=call.code)
        calls[key] = calls.get(key, 0.0) + call.count
    yield _counter(
        "api_calls",
        "API calls by call and status code, over all applies.",
        ["call", "code"],
        calls,
        previous,
    )


def _health(cols: tuple[CollectionMetrics, ...]) -> Iterator[Metric]:
    """Per collection, by its latest verdict: health, counts, last success, max age."""
    yield _labelled_gauge(
        "collection_ok",
        "1 if the collection is healthy: its latest run (after retries) met max_failed "
        "and it is not stale (run.max_age), else 0.",
        ["collection"],
        (([c.name], 1.0 if c.ok else 0.0) for c in cols),
    )
    yield _labelled_gauge(
        "collection_last_requests",
        "Requests of the collection's latest run, by status after its retries.",
        ["collection", "status"],
        (([c.name, s], float(_latest(c)[s])) for c in cols for s in REQUEST_STATUSES),
    )
    yield _labelled_gauge(
        "collection_last_success_timestamp_seconds",
        "When the collection's newest passing run finished.",
        ["collection"],
        (([c.name], c.last_success_at) for c in cols if c.last_success_at is not None),
    )
    yield _labelled_gauge(
        "collection_max_age_seconds",
        "The collection's run.max_age: stale when its newest passing run is older.",
        ["collection"],
        (([c.name], c.max_age_s) for c in cols if c.max_age_s is not None),
    )


def _latest(collection: CollectionMetrics) -> dict[str, int]:
    if collection.latest is None:
        return _by_status(collection)
    return dict(zip(REQUEST_STATUSES, collection.latest, strict=True))


def _by_status(collection: CollectionMetrics) -> dict[str, int]:
    return {
        "success": collection.success,
        "failed": collection.failed,
        "timeout": collection.timeout,
    }


def _key(**labels: str) -> Labels:
    return tuple(sorted(labels.items()))


class _Collector:
    def __init__(self, metrics: ApplyMetrics, previous: _Previous) -> None:
        self._metrics = metrics
        self._previous = previous

    def collect(self) -> Iterator[Metric]:
        return families(self._metrics, self._previous)


def write_metrics(path: Path, metrics: ApplyMetrics) -> None:
    """Write `path` atomically (temp file beside it, then rename). Raises `MetricsError`."""
    from prometheus_client import CollectorRegistry, write_to_textfile

    directory = path.parent
    if not directory.is_dir():
        raise MetricsError(
            f"cannot write metrics to {path}: the directory {directory} does not exist"
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(metrics, read_previous(path)))
    try:
        write_to_textfile(str(path), registry)
    except OSError as e:
        raise MetricsError(f"cannot write metrics to {path}: {e.strerror or e}") from e
