"""The glue of results delivery: the checks before any call, the failed-job list, masking."""

from __future__ import annotations

import pytest

from sprunner.api.models import FailedJob
from sprunner.errors import EXIT_INVALID, UsageError
from sprunner.jobfile.model import DesiredCollection, ResultsSpec, RunPolicy
from sprunner.results import delivery, tally
from sprunner.results.tally import FailedJobRow


def collection(to: str, fmt: str = "jsonl.gz", **kw: object) -> DesiredCollection:
    spec = ResultsSpec(to=to, format=fmt)  # type: ignore[arg-type]
    return DesiredCollection("shop", "j.yaml", 1, (), (), results=spec, **kw)  # type: ignore[arg-type]


def test_a_destination_fsspec_does_not_know_is_a_usage_error_naming_the_collection() -> None:
    with pytest.raises(UsageError) as caught:
        delivery.check_destinations([collection("nosuchproto://bucket/x")])
    assert caught.value.exit_code == EXIT_INVALID
    assert str(caught.value).startswith("shop: results.to:")


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_pyarrow(name: str, *args: object, **kw: object) -> object:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real(name, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(UsageError) as caught:
        delivery.check_destinations([collection("/tmp/x", "parquet")])
    assert "sprunner[parquet]" in str(caught.value) and "shop" in str(caught.value)


def test_collections_without_results_are_not_checked() -> None:
    plain = DesiredCollection("plain", "j.yaml", 1, (), ())
    delivery.check_destinations([plain])  # nothing raised


def test_failed_jobs_come_from_the_listing_with_the_run_s_error_text() -> None:
    known = [FailedJob("j1", "https://a/", "failed", "HTTP 500 from target")]
    rows = [
        FailedJobRow("j1", "https://a/", "failed", "a1", 500, None, "500"),
        FailedJobRow("j2", "https://b/", "failed", "b", 403, "captcha", "Blocked"),
        FailedJobRow("j3", None, "timeout", None, None, None, None),
    ]
    merged = tally.merge_failed(known, rows)
    assert merged == (
        FailedJob("j1", "https://a/", "failed", "HTTP 500 from target", "a1", 500, None),
        FailedJob("j2", "https://b/", "failed", "Blocked", "b", 403, "captcha"),
        FailedJob("j3", "", "timeout", "timeout", None, None, None),
    )


def test_while_draining_polls_follow_the_poll_interval_within_bounds() -> None:
    assert delivery.max_poll_delay(RunPolicy(poll_interval=5.0)) == 5.0
    assert delivery.max_poll_delay(RunPolicy(poll_interval=0.1)) == delivery.MIN_DRAIN_POLL
    assert delivery.max_poll_delay(RunPolicy(poll_interval=600.0)) == delivery.DRAIN_POLL_CAP


def test_a_destination_made_with_env_is_shown_masked() -> None:
    secret_to = "s3://bucket-s3cr3t/crawls"
    desired = collection(secret_to, masked={secret_to: "s3://***/crawls"})
    assert delivery.shown_to(desired, secret_to) == "s3://***/crawls"
    assert delivery.shown_to(collection("/data/x"), "/data/x") == "/data/x"
