"""An HTTP POST whose whole answer must arrive within a deadline and a size.

httpx's timeouts bound each phase (connect, each read, each write), not the call: a server that
sends a byte just inside the read timeout, again and again, holds a call for as long as it likes,
and one that never ends its body fills the memory. Both clients of the outside world (the EVM
JSON-RPC client and the Hyperliquid client) read their answers through this::

    answer = bounded_post(client, url, deadline_s=10.0, max_bytes=64 << 20, json=body)
    answer.status, answer.headers, answer.body

A late answer raises ``httpx.ReadTimeout`` and an oversized one ``httpx.RemoteProtocolError``,
so callers sort them with every other timeout and broken answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx

MAX_ANSWER_BYTES = 64 << 20
"""The largest answer read: far above a batch of 500 receipts or a page of 5,000 candles."""


class Answer(NamedTuple):
    status: int
    headers: httpx.Headers
    body: bytes


def bounded_post(
    client: httpx.Client,
    url: str,
    *,
    deadline_s: float,
    max_bytes: int = MAX_ANSWER_BYTES,
    monotonic: Callable[[], float] = time.monotonic,
    **request: Any,
) -> Answer:
    """POST ``request`` (httpx's ``json=``, ``content=``, ...) to ``url``; the answer, read whole
    within ``deadline_s`` of the start and ``max_bytes``."""
    started = monotonic()
    with client.stream("POST", url, **request) as response:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise httpx.RemoteProtocolError(f"answer larger than {max_bytes} bytes")
            if monotonic() - started > deadline_s:
                raise httpx.ReadTimeout(f"answer not complete within {deadline_s:g} s")
            chunks.append(chunk)
        return Answer(response.status_code, response.headers, b"".join(chunks))
