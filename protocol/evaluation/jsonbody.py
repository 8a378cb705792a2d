"""Strict reading of response bodies: exact decimals, no floats, errors that name the request.

    >>> from protocol.hyperliquid import InfoRequest, RawResponse
    >>> resp = RawResponse(request=InfoRequest(body={"type": "allMids"}), url="u",
    ...                    fetched_at_ms=0, status=200, body=b'{"BTC": "30000.5"}')
    >>> body = parse_body(resp)
    >>> decimal_field(body, "BTC", where="allMids")
    Decimal('30000.5')

JSON numbers are read as ``Decimal`` from their literal text (never through ``float``); NaN and
Infinity, duplicate object keys and non-UTF-8 bytes are refused. Every failure is a transient
``EvaluationError`` (a refetch may give a good body) whose reason names the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from protocol.evaluation.errors import transient
from protocol.hyperliquid import InfoRequest, RawResponse

_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def describe(request: InfoRequest) -> str:
    """A request as text for messages: its body as sorted JSON."""
    return request.cache_key()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads(raw: bytes, where: str) -> Any:
    """``raw`` as JSON with exact numbers; raises a transient error naming ``where``."""
    try:
        text = raw.decode("utf-8")
        return json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_no_constants,
            object_pairs_hook=_unique_keys,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise transient(f"response to {where} is not valid JSON: {exc}") from exc


def parse_body(response: RawResponse) -> Any:
    """The JSON of a successful response; a non-200 status or a bad body is a transient error."""
    where = describe(response.request)
    if response.status != 200:
        raise transient(f"response to {where} has HTTP status {response.status}")
    return loads(response.body, where)


def rows_of(body: Any, where: str) -> list[Mapping[str, Any]]:
    """``body`` as a list of JSON objects."""
    if not isinstance(body, list):
        raise transient(f"response to {where} is not a JSON array")
    for i, row in enumerate(body):
        if not isinstance(row, dict):
            raise transient(f"response to {where}: row {i} is not an object")
    return body


def field(row: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in row:
        raise transient(f"response to {where}: a row has no {key!r}")
    return row[key]


def decimal_field(row: Mapping[str, Any], key: str, where: str) -> Decimal:
    """A decimal string such as ``"-0.00061334"`` (or an exact JSON number) as ``Decimal``."""
    value = field(row, key, where)
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise transient(f"response to {where}: {key}={value!r} is not a decimal string")
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise transient(f"response to {where}: {key}={value!r} is not a decimal")


def int_field(row: Mapping[str, Any], key: str, where: str) -> int:
    """A JSON integer (milliseconds, counts)."""
    value = field(row, key, where)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise transient(f"response to {where}: {key}={value!r} is not an integer")


def str_field(row: Mapping[str, Any], key: str, where: str) -> str:
    value = field(row, key, where)
    if isinstance(value, str):
        return value
    raise transient(f"response to {where}: {key}={value!r} is not a string")
