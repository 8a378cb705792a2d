"""Request limits, as plain ASGI middleware: a per-client rate limit and a body size limit.

Both answer before the app sees the request, with the API's JSON error body::

    app = BodyLimit(RateLimit(app, RateLimiter(rate_per_s=20, burst=40)), max_bytes=64 * 1024)

``RateLimiter`` is a token bucket per client IP (the socket peer: the API binds 127.0.0.1 by
default and trusts no forwarding header)::

    >>> t = [0.0]
    >>> limiter = RateLimiter(rate_per_s=1, burst=2, clock=lambda: t[0])
    >>> [limiter.take("10.0.0.1") for _ in range(3)]
    [0.0, 0.0, 1.0]
    >>> t[0] = 1.0; limiter.take("10.0.0.1")
    0.0
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Collection, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]


async def send_error(
    send: Send,
    status: int,
    error: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer with ``{"error": ..., "field": ...}`` straight from ASGI middleware."""
    body = json.dumps({"error": error, "field": field}).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by client: ``burst`` requests at once, refilled at ``rate_per_s``.

    Thread-safe. At most ``max_clients`` buckets are kept; full (idle) ones are dropped first.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("need rate_per_s > 0 and burst >= 1")
        self.rate = rate_per_s
        self.burst = float(burst)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Spend one token of ``client``: 0.0 if allowed, else seconds until one is there."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                self._make_room(now)
                bucket = self._buckets[client] = _Bucket(tokens=self.burst, at=now)
            elapsed = max(0.0, now - bucket.at)  # a clock that steps back refills nothing
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_clients:
            return
        for client, bucket in list(self._buckets.items()):
            if bucket.tokens + max(0.0, now - bucket.at) * self.rate >= self.burst:
                del self._buckets[client]
        while len(self._buckets) >= self.max_clients:
            del self._buckets[next(iter(self._buckets))]


class RateLimit:
    """ASGI middleware: 429 with ``Retry-After`` when a client's bucket is empty."""

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter, exempt: Collection[str] = ("/livez",)
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.limiter.take(str(client[0]) if client else "unknown")
        if wait > 0:
            retry_after = str(max(1, math.ceil(wait)))
            await send_error(
                send, 429, "rate limit exceeded; retry later", headers={"Retry-After": retry_after}
            )
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: reads at most ``max_bytes`` of a request body, else answers 413.

    The body is read before the app runs and handed to it unchanged, so a handler may still
    verify a signature over the raw bytes.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is None:
            await send_error(send, 400, "Content-Length is not a number", "content-length")
            return
        if declared > self.max_bytes:
            await send_error(send, 413, self._too_large(), "body")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_error(send, 413, self._too_large(), "body")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _too_large(self) -> str:
        return f"request body exceeds {self.max_bytes} bytes"


def _content_length(scope: Scope) -> int | None:
    """The declared length (0 if none), or ``None`` when it is not a number."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            if not (text.isascii() and text.isdigit()):
                return None
            return int(text) if len(text) <= 18 else 10**18
    return 0


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # type: ignore[no-any-return]

    return replay
