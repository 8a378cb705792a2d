"""``POST /info`` without HTTP: request bytes in, status and body bytes out.

An invalid body, an unknown type or a missing/ill-typed parameter is answered as the real API
does: 422 with the text ``Failed to deserialize the JSON body into the target type``. The types
in ``HANDLERS`` replay a recorded answer where they have one (see ``snapshots``) or filter rows
(see ``history``); a recorded answer of any other type (e.g. ``userFunding``), and a recorded
error of any type, is replayed as recorded when the request matches exactly::

    >>> ds = Dataset()
    >>> answer(ds, b'{"type": "fundingHistory", "coin": "BTC", "startTime": 0}', now_ms=0).body
    b'[]'
    >>> answer(ds, b'{"type": "nope"}', now_ms=0).status
    422
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devnet.hl_sim import history, snapshots
from devnet.hl_sim.dataset import Dataset
from devnet.hl_sim.minutes import API_ONLY_INTERVALS, INTERVAL_MS

DESERIALIZE_ERROR = b"Failed to deserialize the JSON body into the target type"
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    request_type: str
    content_type: str = "application/json"


class BadRequest(Exception):
    """The body does not deserialize into a request the simulator knows."""

    def __init__(self, detail: bytes = DESERIALIZE_ERROR) -> None:
        super().__init__(detail.decode())
        self.detail = detail


@dataclass(frozen=True)
class Context:
    ds: Dataset
    body: dict[str, Any]
    now_ms: int
    candle_retention: int | None


def answer(
    ds: Dataset,
    raw: bytes,
    now_ms: int,
    *,
    candle_retention: int | None = history.CANDLE_RETENTION,
) -> Answer:
    """Answer one ``POST /info`` body as the real API would, from ``ds`` as seen at ``now_ms``."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return Answer(422, DESERIALIZE_ERROR, "<invalid>", "text/plain")
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return Answer(422, DESERIALIZE_ERROR, "<invalid>", "text/plain")
    rtype = body["type"]
    handler = HANDLERS.get(rtype)
    rec = ds.recorded(body)
    if rec is not None and (handler is None or rec.status != 200):
        return Answer(rec.status, rec.body, rtype)
    if handler is None:
        return Answer(422, DESERIALIZE_ERROR, rtype, "text/plain")
    try:
        result = handler(Context(ds, body, now_ms, candle_retention))
    except BadRequest as exc:
        return Answer(422, exc.detail, rtype, "text/plain")
    if isinstance(result, bytes):
        return Answer(200, result, rtype)
    return Answer(200, json.dumps(result, separators=(",", ":")).encode(), rtype)


def _int(params: dict[str, Any], key: str) -> int:
    value = params.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequest
    return value


def _opt_int(params: dict[str, Any], key: str) -> int | None:
    return None if params.get(key) is None else _int(params, key)


def _str(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str):
        raise BadRequest
    return value


def _user(params: dict[str, Any]) -> str:
    user = _str(params, "user")
    if not _ADDRESS.match(user):
        raise BadRequest
    return user.lower()


def _candles(ctx: Context) -> Any:
    req = ctx.body.get("req")
    if not isinstance(req, dict):
        raise BadRequest
    coin, interval = _str(req, "coin"), _str(req, "interval")
    start = _int(req, "startTime")
    end = _opt_int(req, "endTime")
    if interval in API_ONLY_INTERVALS:
        raise BadRequest(f"simulator: interval {interval} is not simulated".encode())
    if interval not in INTERVAL_MS:
        raise BadRequest
    end = ctx.now_ms if end is None else end
    return history.candle_rows(
        ctx.ds, coin, interval, start, end, now_ms=ctx.now_ms, retention=ctx.candle_retention
    )


def _funding(ctx: Context) -> Any:
    start, end = _int(ctx.body, "startTime"), _opt_int(ctx.body, "endTime")
    return history.funding_rows(ctx.ds, _str(ctx.body, "coin"), start, end, ctx.now_ms)


def _fills_by_time(ctx: Context) -> Any:
    start, end = _int(ctx.body, "startTime"), _opt_int(ctx.body, "endTime")
    return history.user_fills_by_time(ctx.ds, _user(ctx.body), start, end, ctx.now_ms)


HANDLERS: dict[str, Callable[[Context], Any]] = {
    "meta": lambda c: snapshots.meta(c.ds, c.body),
    "allMids": lambda c: snapshots.all_mids(c.ds, c.body, c.now_ms),
    "metaAndAssetCtxs": lambda c: snapshots.meta_and_asset_ctxs(c.ds, c.body, c.now_ms),
    "l2Book": lambda c: snapshots.l2_book(c.ds, c.body, _str(c.body, "coin"), c.now_ms),
    "clearinghouseState": lambda c: snapshots.clearinghouse_state(
        c.ds, c.body, _user(c.body), c.now_ms
    ),
    "candleSnapshot": _candles,
    "fundingHistory": _funding,
    "userFills": lambda c: history.user_fills(c.ds, _user(c.body), c.now_ms),
    "userFillsByTime": _fills_by_time,
}
