"""Hyperliquid info requests and the raw responses kept as evidence.

The evaluator says *what* it needs as ``InfoRequest`` bodies; the client (``sources.hyperliquid``)
fetches them, page by page, and hands back every page as a ``RawResponse`` holding the exact bytes
received. The evaluator and ``proof verify`` recompute from those bytes alone::

    >>> req = InfoRequest(body={"type": "candleSnapshot",
    ...     "req": {"coin": "BTC", "interval": "1h", "startTime": 0, "endTime": 3_600_000}})
    >>> req.type
    'candleSnapshot'
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field

from protocol.codec import register
from protocol.spec import Frozen

PAGE_CAPS: dict[str, int] = {"candleSnapshot": 5000, "fundingHistory": 500, "userFillsByTime": 2000}
"""Most rows one response of a paged request type holds; a full page means: ask for the next."""


class InfoRequest(Frozen):
    """One ``POST /info`` JSON body, e.g. ``{"type": "fundingHistory", "coin": "BTC", ...}``."""

    body: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.body.get("type", ""))

    def cache_key(self) -> str:
        """A stable text key of the body (sorted keys), for coalescing and caching.

        Remembered with the very body object it was made from: a burst's markets share their
        requests and the key of each is asked for several times; a copy given another body
        makes its own. (Kept in the instance's ``__dict__`` beside the fields, as
        ``functools.cached_property`` would: pydantic's equality, hash and dumps read the
        fields only.)"""
        known = self.__dict__.get(_KEY)
        if known is not None and known[0] is self.body:
            return str(known[1])
        text = json.dumps(self.body, sort_keys=True, separators=(",", ":"))
        self.__dict__[_KEY] = (self.body, text)
        return text


_KEY = "_cache_key"


class RawResponse(Frozen):
    """One page as received: the request, where it went, when, its status and its exact bytes."""

    request: InfoRequest
    url: str
    fetched_at_ms: Annotated[int, Field(ge=0)]
    status: int
    body: bytes


register(InfoRequest, kind="info_request")
register(RawResponse, kind="raw_response")
