"""Frozen values that leave the job-file stage: what the rest of sprunner consumes.

A `DesiredCollection` holds the final request bodies exactly as they will be sent, in
order, with exact duplicates already dropped. Its `fingerprint` identifies that content:
equal fingerprints mean "nothing to PUT".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from sprunner.util.canonical import canonical_json

if TYPE_CHECKING:
    from sprunner.jobfile.identify import RequestIndex

When = Literal["always", "changed", "never"]
Overlap = Literal["skip", "allow"]
RetryOn = Literal["failed", "timeout"]
ResultsFormat = Literal["jsonl.gz", "jsonl", "parquet"]

# The fields a results line may carry (SPEC section 7; the schema's results.fields enum).
RESULT_METADATA_FIELDS = (
    "url",
    "custom_id",
    "status",
    "status_code",
    "message",
    "block_reason",
    "completed_at",
    "job_id",
    "queued_at",
    "started_at",
    "execution_time_ms",
    "retries_attempted",
    "attempts",  # runs the request took, retries included (SPEC section 8)
)
RESULT_BODY_FIELDS = ("html", "markdown", "extracted_data", "screenshot", "extra")
RESULT_FIELDS = RESULT_METADATA_FIELDS + RESULT_BODY_FIELDS
DEFAULT_RESULT_FIELDS = tuple(f for f in RESULT_FIELDS if f != "screenshot")
MAX_RETRY_ATTEMPTS = 10

DEFAULT_TIMEOUT = 3600.0
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_REQUESTS = 50_000
BROWSER_CREDITS = 5
PLAIN_CREDITS = 1


@dataclass(frozen=True)
class MaxFailed:
    """Failed plus timed-out jobs a run may have: a count, or a percentage of its jobs."""

    count: int | None = 0
    percent: float | None = None

    def allows(self, bad: int, total: int) -> bool:
        if self.percent is not None:
            return bad * 100 <= self.percent * total
        return bad <= (self.count or 0)

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count or 0)


@dataclass(frozen=True)
class RetryPolicy:
    """`run.retry`: re-run what failed in `<name>.retry`, up to `attempts` more times."""

    attempts: int = 0  # 0..MAX_RETRY_ATTEMPTS; 0 = no retry
    on: frozenset[RetryOn] = frozenset({"failed", "timeout"})  # never empty
    delay: float = 0.0  # seconds before each retry run


@dataclass(frozen=True)
class ResultsSpec:
    """`results`: where each run's results go. Not part of the API content fingerprint."""

    to: str  # an absolute local directory (resolved against the job file's folder) or an fsspec URL
    format: ResultsFormat = "jsonl.gz"
    fields: tuple[str, ...] = DEFAULT_RESULT_FIELDS  # in the order the user gave

    @property
    def is_url(self) -> bool:
        """True for an fsspec URL (s3://, gs://, memory://...), False for a local directory."""
        return "://" in self.to


@dataclass(frozen=True)
class RunPolicy:
    when: When = "always"
    schedule: str | None = None
    timeout: float = DEFAULT_TIMEOUT  # seconds
    poll_interval: float = DEFAULT_POLL_INTERVAL  # seconds
    max_failed: MaxFailed = field(default_factory=MaxFailed)
    overlap: Overlap = "skip"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Seconds after which a collection whose latest passing run is older (or absent) is
    # stale: not healthy, as dbt's source freshness (SPEC §9). None: never stale.
    max_age: float | None = None


def _fingerprint(name: str, texts: Iterable[str]) -> str:
    # Hashed request by request so a 50,000-request list is never serialised as one string.
    digest = hashlib.sha256(name.encode())
    for text in texts:
        digest.update(b"\n")
        digest.update(text.encode())
    return digest.hexdigest()


def request_credits(request: Mapping[str, Any]) -> int:
    return BROWSER_CREDITS if request.get("browser") is True else PLAIN_CREDITS


@dataclass(frozen=True, eq=False)
class DesiredCollection:
    """One collection as the job files want it, fully rendered."""

    name: str
    file: str  # as the user named it, for messages and the report
    line: int | None
    tags: tuple[str, ...]
    requests: tuple[Mapping[str, Any], ...]
    run: RunPolicy = field(default_factory=RunPolicy)
    # Where results go; None when the collection declares no `results:` block. Like `run`,
    # it is not sent to the API, so it is not part of `fingerprint`.
    results: ResultsSpec | None = None
    # env() values used while rendering: redacted from every output, never persisted.
    secrets: frozenset[str] = frozenset()
    # The same requests rendered with every env() value shown as "***", for `render` and
    # `plan`; None when the collection used no env() value (then `requests` is shown).
    display_requests: tuple[Mapping[str, Any], ...] | None = None
    # Every rendered string made with env() (directly, through filters, loops or
    # concatenation) -> its display form (the same template rendered with env() as "***").
    # See masking.py: this is taint, not a search for the raw value.
    masked: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def fingerprint(self) -> str:
        return _fingerprint(self.name, (canonical_json(r) for r in self.requests))

    def canonical_requests(self) -> list[str]:
        """Each request's `canonical_json`, for the state's request digests; `fingerprint`
        is computed on the way when it was not yet (one serialisation for both)."""
        texts = [canonical_json(r) for r in self.requests]
        if "fingerprint" not in self.__dict__:  # the cached_property's own slot
            self.__dict__["fingerprint"] = _fingerprint(self.name, texts)
        return texts

    @cached_property
    def credits(self) -> int:
        """What one run costs: 1 credit per plain request, 5 per browser request."""
        return sum(request_credits(r) for r in self.requests)

    @cached_property
    def index(self) -> RequestIndex:
        """Which rendered request a job the API echoes back is (`jobfile.identify`)."""
        from sprunner.jobfile.identify import RequestIndex

        return RequestIndex(self.requests, self.display_requests)

    def mask_value(self, value: str) -> str | None:
        """The display form of a rendered secret-bearing string; None for any other."""
        return self.masked.get(value)

    def shown_job(self, url: str, custom_id: str | None) -> tuple[str, str | None] | None:
        """The `url` and `custom_id` of a job the API echoes back, as sprunner shows them:
        those of the request it is (its masked render), never the echo's.

        None when the collection has no secret-bearing value (the echo is shown as it
        is), or when the job is no request or several (then the echo goes through the
        redactor's search, `sprunner.util.redact`); several requests with one display form
        are shown by it.
        """
        if not self.masked:
            return None
        return self.display_of(self.index.find(url, custom_id))

    def display_of(self, found: Iterable[int]) -> tuple[str, str | None] | None:
        """The shown `(url, custom_id)` of the requests `found` (`index.find`): None
        unless they are one request, or several shown alike."""
        from sprunner.jobfile.masking import tidy

        shown = set()
        for index in found:
            request = self.shown_requests()[index]
            custom_id = request.get("custom_id")
            url = tidy(str(request.get("url")))
            shown.add((url, None if custom_id is None else tidy(str(custom_id))))
        return shown.pop() if len(shown) == 1 else None

    def mask_url(self, url: str) -> str | None:
        """The display form of a URL the API echoes back (`shown_job` without custom_id).
        None when the URL is not secret-bearing: then it is shown as it is."""
        if not self.masked:
            return None
        shown = (self.display_of((i,)) for i in self.index.find(url, None))
        urls = {one[0] for one in shown if one is not None}
        return urls.pop() if len(urls) == 1 else None

    def shown_requests(self) -> tuple[Mapping[str, Any], ...]:
        return self.requests if self.display_requests is None else self.display_requests
