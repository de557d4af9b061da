"""Shared request validation: what no text, integer or time in a request may be.

One place for the rules that every field shares, so a new field cannot forget them:

- **Text** refuses control characters (U+0000-U+001F except tab, newline and carriage return, U+007F-U+009F)
  and unpaired surrogates. PostgreSQL cannot store NUL, SQLite and every UTF-8 encoder choke on a lone
  surrogate, and none of them belongs in a name, an id or a reason. `refuse_unsafe_input` applies the rule
  to every JSON body (keys and values, at any depth), query parameter and path parameter of every route (it
  is an app-wide dependency); `Text` is the same rule as a field type, `check_text` for other inputs
  (uploaded CSV).
- **Integers** in a JSON body must fit 64 bits (`Int64`); columns narrower than that, and money, have
  their own bounds (`Int32`, `Money`) on the fields that feed them. JSON numbers must be finite.
- **Planning times** (`PlanTime`) and business dates (`BusinessDate`) lie in years 1970-2199: beyond them
  date arithmetic overflows and no timetable runs anyway.

Every refusal is a 422 ``validation_error`` whose details name the field (``body.name``,
``query.action``, ``path.operator_id``) and the rule (``control_characters``, ``int64_overflow``, ...).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Annotated, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: Any single amount in minor units (fen): 100 billion yuan. Sums of many stay far inside 64 bits.
MONEY_LIMIT = 10**13
PLAN_YEARS = (1970, 2199)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_MESSAGE = ("must not contain control characters (NUL, U+0001-U+001F other than tab, newline and "
                   "carriage return, U+007F-U+009F) or unpaired surrogates")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def check_text(value: str) -> str:
    """The text, or a pydantic error ``control_characters`` when it holds characters no field may hold."""
    if has_control_characters(value):
        raise PydanticCustomError("control_characters", CONTROL_MESSAGE)
    return value


def _plan_time(value: dt.datetime | dt.date) -> dt.datetime | dt.date:
    low, high = PLAN_YEARS
    if not low <= value.year <= high:
        raise PydanticCustomError("time_out_of_range", "must lie in the years {low}-{high}",
                                  {"low": low, "high": high})
    return value


Text = Annotated[str, AfterValidator(check_text)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
Money = Annotated[int, Field(ge=-MONEY_LIMIT, le=MONEY_LIMIT, description="minor units (fen)")]
#: A price or fee: never negative (its own bound, as a field-level ``ge`` would not narrow this one).
Amount = Annotated[int, Field(ge=0, le=MONEY_LIMIT, description="minor units (fen)")]
PlanTime = Annotated[dt.datetime, AfterValidator(_plan_time)]
#: A business date (reconciliation windows): the same years as planning times.
BusinessDate = Annotated[dt.date, AfterValidator(_plan_time)]


def _error(kind: str, loc: tuple[Any, ...], message: str) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": message, "input": None}


def json_problems(value: Any, loc: tuple[Any, ...] = ("body",), limit: int = 20) -> list[dict[str, Any]]:
    """What in a parsed JSON document breaks the shared rules (iterative: any depth, no recursion)."""
    problems: list[dict[str, Any]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [(loc, value)]
    while stack and len(problems) < limit:
        where, item = stack.pop()
        if isinstance(item, str):
            if has_control_characters(item):
                problems.append(_error("control_characters", where, CONTROL_MESSAGE))
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                problems.append(_error("int64_overflow", where, "must fit in a signed 64-bit integer"))
        elif isinstance(item, float):
            if not math.isfinite(item):
                problems.append(_error("finite_number", where, "must be a finite number"))
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and has_control_characters(key):
                    problems.append(_error("control_characters", (*where, "<key>"), CONTROL_MESSAGE))
                stack.append(((*where, key), child))
        elif isinstance(item, list):
            stack.extend(((*where, i), child) for i, child in enumerate(item))
    return problems


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # FastAPI reads a body without a content type as JSON
    main = content_type.split(";")[0].strip().lower()
    return main == "application/json" or (main.startswith("application/") and main.endswith("+json"))


async def refuse_unsafe_input(request: Request) -> None:
    """App-wide dependency: path, query and JSON body checked against the shared rules before any route."""
    problems: list[dict[str, Any]] = []
    for name, value in request.path_params.items():
        if isinstance(value, str) and has_control_characters(value):
            problems.append(_error("control_characters", ("path", name), CONTROL_MESSAGE))
    for name, value in request.query_params.multi_items():
        if has_control_characters(name) or has_control_characters(value):
            problems.append(_error("control_characters", ("query", name if not has_control_characters(name)
                                                          else "<key>"), CONTROL_MESSAGE))
    if request.method not in ("GET", "HEAD", "OPTIONS", "DELETE") and _is_json(request.headers.get("content-type")):
        document = getattr(request, "_json", _MISSING)  # parsed already when the route has a body model
        if document is _MISSING:
            raw = await request.body()
            if raw.strip():
                try:
                    document = json.loads(raw)
                except (ValueError, RecursionError):
                    document = _MISSING  # not JSON: the route reports it in its own way
        if document is not _MISSING:
            problems.extend(json_problems(document))
    if problems:
        raise RequestValidationError(problems)


_MISSING = object()
