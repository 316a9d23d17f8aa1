"""The declared shape of every API answer (SPEC §1), checked at the boundary with pydantic.

Why pydantic (v2): the models read as the contract does, one field a line; its errors name
the path of the field at fault (`items[3].completed_at`), which becomes the message of a
`BadAnswerError`; and its core is compiled, so checking every answer costs microseconds.

Rules every model follows:
- Extra fields are ignored (the API grows); a missing required field, a wrong type
  (strict: `"1"` is not a count, `true` is not an id) or a value outside its range is an
  error that names the field.
- Numbers are bounded so that nothing later overflows: counts fit any database column,
  epoch times and ISO-8601 times fall between 1970 and 9000 (`"not-a-date"` and the year 1
  are refused here, not where a drain subtracts a margin from them).
- Strings that name things (ids, names, statuses) may not hold a lone UTF-16 surrogate
  (`"\\ud800"` decodes to one, and no output could print it); free text (messages, URLs)
  has them replaced by U+FFFD. Result bodies are left as they are: the results writer
  escapes them.
- Optional extras that the API may or may not give (a failed job's `custom_id`, a write's
  `duplicates_skipped`) are kept when well-typed and dropped otherwise (`Extra`).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

T = TypeVar("T")
_SURROGATE = re.compile("[\ud800-\udfff]")
_FRACTION = re.compile(r"\.(\d+)")
FIRST_YEAR, LAST_YEAR = 1970, 9000
MAX_EPOCH = 220_000_000_000.0  # seconds: the year 8941, still a date every library prints
MAX_COUNT = 2**53  # exact in a float, fits a 64-bit column


def _free(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _free_before(value: Any) -> Any:
    # Before pydantic's own check of the string, which refuses surrogates outright.
    return _free(value) if isinstance(value, str) else value


def _ident(value: str | int) -> str:
    text = str(value)
    if not text:
        raise ValueError("is empty")
    return text


def parse_iso_time(text: str) -> datetime:
    """An ISO-8601 time (any fraction length, `Z` or an offset) as an aware UTC datetime.
    Raises ValueError, also for a year outside FIRST_YEAR..LAST_YEAR."""
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants exactly 3 or 6 fraction digits.
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value, count=1)
    moment = datetime.fromisoformat(value)
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"the year {moment.year} is not plausible")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _iso_time(text: str) -> str:
    try:
        parse_iso_time(text)
    except (ValueError, OverflowError) as error:
        raise ValueError(f"is not an ISO-8601 time ({error})") from None
    return text


def _lenient(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


def _error_text(value: Any) -> str:
    if value is None:
        return ""
    return _free(value if isinstance(value, str) else str(value)[:1000])


Ident = Annotated[StrictStr | StrictInt, AfterValidator(_ident)]  # some deployments use numbers
Name = StrictStr  # pydantic's strict str refuses a lone surrogate itself
Text = Annotated[StrictStr, BeforeValidator(_free_before)]
IsoTime = Annotated[StrictStr, AfterValidator(_iso_time)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
SmallInt = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
Epoch = Annotated[float, Field(ge=0, le=MAX_EPOCH)]
Number = Annotated[StrictInt | float, Field(ge=-MAX_COUNT, le=MAX_COUNT)]
Extra = Annotated[T | None, WrapValidator(_lenient)]


class Model(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, strict=True, allow_inf_nan=False, hide_input_in_errors=True
    )


class CollectionAnswer(Model):
    id: Ident
    name: Name


class WriteAnswer(Model):
    id: Ident
    name: Name
    message: Extra[Text] = None
    duplicates_skipped: Extra[Count] = None
    blocked_urls: Extra[list[Annotated[Any, BeforeValidator(_error_text)]]] = None
    invalid_items: Extra[list[Any]] = None


class FailedJobAnswer(Model):
    job_id: Ident
    url: Text
    status: Name
    # A job may fail without a message; that is not a broken answer.
    error: Annotated[str, BeforeValidator(_error_text)] = ""
    custom_id: Extra[Text] = None
    status_code: Extra[SmallInt] = None
    block_reason: Extra[Text] = None


class RunAnswer(Model):
    run_id: Ident
    collection_id: Extra[Ident] = None
    status: Literal["in_progress", "completed"]
    total_requests: Count
    success_requests: Count
    failed_requests: Count
    timeout_requests: Count
    failed_jobs: list[FailedJobAnswer] | None = None
    created_at: Epoch | None = None
    job_ids: list[Ident] | None = None
    all_jobs_persisted: StrictBool | None = None


class RunsAnswer(Model):
    items: list[RunAnswer]


class JobAnswer(Model):
    job_public_id: Ident
    run_public_id: Ident | None = None
    collection_id: Ident | None = None
    status: Literal["processing", "completed", "failed", "timeout"]
    url: Text
    status_code: SmallInt | None = None
    message: Text | None = None
    custom_id: Text | None = None
    queued_at: IsoTime | None = None
    started_at: IsoTime | None = None
    completed_at: IsoTime | None = None
    execution_time_ms: Number | None = None
    retries_attempted: SmallInt | None = None
    block_reason: Text | None = None
    is_success: StrictBool | None = None
    result: dict[str, Any] | None = None


class JobPageAnswer(Model):
    items: list[JobAnswer]
    has_more: StrictBool
    cursor_next: Annotated[StrictStr, Field(min_length=1)] | None = None
