"""Bearer tokens, webhook signatures, the rate limiter and the body limit, without a server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.auth import (
    WebhookAuthError,
    sign_webhook,
    token_matches,
    verify_webhook,
    webhook_signature,
)
from ops.limits import BodyLimit, RateLimiter

pytestmark = pytest.mark.timeout(30)

SECRET = "hook-secret"
NOW = 1_700_000_000


# --- bearer token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer tok-123", True),
        ("bearer tok-123", True),
        ("Bearer  tok-123 ", True),
        ("Bearer tok-1234", False),
        ("Bearer tok-12", False),
        ("Basic tok-123", False),
        ("tok-123", False),
        ("Bearer", False),
        ("", False),
        (None, False),
        ("Bearer t\xf6k", False),  # latin-1 text from a header never crashes the compare
    ],
)
def test_token_matches(header: str | None, ok: bool) -> None:
    assert token_matches("tok-123", header) is ok


def test_a_non_ascii_token_compares_by_its_utf8_bytes() -> None:
    token = "tök"
    sent = token.encode("utf-8").decode("latin-1")  # as Starlette hands a raw header over
    assert token_matches(token, f"Bearer {sent}")


# --- webhook signatures ----------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"a": 1}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhook_signature(SECRET, body, NOW) == "sha256=" + expected
    assert sign_webhook(SECRET, body, NOW) == {
        "X-Signature": "sha256=" + expected,
        "X-Timestamp": "1700000000",
    }


@given(body=st.binary(max_size=512), skew=st.integers(min_value=-300, max_value=300))
def test_a_signed_body_verifies_within_the_tolerance(body: bytes, skew: int) -> None:
    headers = sign_webhook(SECRET, body, NOW)
    verify_webhook(SECRET, body, headers["X-Signature"], headers["X-Timestamp"], now=NOW + skew)


@given(body=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_changed_byte_fails(body: bytes, data: st.DataObject) -> None:
    headers = sign_webhook(SECRET, body, NOW)
    i = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    changed = body[:i] + bytes([body[i] ^ flip]) + body[i + 1 :]
    with pytest.raises(WebhookAuthError, match="bad signature"):
        verify_webhook(SECRET, changed, headers["X-Signature"], headers["X-Timestamp"], now=NOW)


def test_upper_case_hex_is_accepted() -> None:
    sig = sign_webhook(SECRET, b"x", NOW)["X-Signature"]
    verify_webhook(SECRET, b"x", "sha256=" + sig[7:].upper(), str(NOW), now=NOW)


@pytest.mark.parametrize(
    ("signature", "timestamp", "now", "message", "header"),
    [
        (None, str(NOW), NOW, "missing X-Signature", "X-Signature"),
        ("sha256=00", None, NOW, "missing X-Timestamp", "X-Timestamp"),
        ("sha256=00", "12.5", NOW, "not whole Unix seconds", "X-Timestamp"),
        ("sha256=00", "-5", NOW, "not whole Unix seconds", "X-Timestamp"),
        ("sha256=00", "١٢٣", NOW, "not whole Unix seconds", "X-Timestamp"),
        ("sha256=00", "9" * 400, NOW, "not whole Unix seconds", "X-Timestamp"),
        ("sha256=00", str(NOW - 301), NOW, "stale timestamp", "X-Timestamp"),
        ("sha256=00", str(NOW + 301), NOW, "stale timestamp", "X-Timestamp"),
        ("sha256=00", str(NOW), NOW, "bad signature", "X-Signature"),
        ("sha1=abc", str(NOW), NOW, "bad signature", "X-Signature"),
    ],
)
def test_bad_headers_are_refused(
    signature: str | None, timestamp: str | None, now: float, message: str, header: str
) -> None:
    with pytest.raises(WebhookAuthError, match=message) as caught:
        verify_webhook(SECRET, b"{}", signature, timestamp, now=now)
    assert caught.value.header == header


def test_another_secret_fails_and_no_error_names_the_secret() -> None:
    headers = sign_webhook("other-secret", b"{}", NOW)
    with pytest.raises(WebhookAuthError) as caught:
        verify_webhook(SECRET, b"{}", headers["X-Signature"], headers["X-Timestamp"], now=NOW)
    assert SECRET not in str(caught.value) and "other-secret" not in str(caught.value)


# --- rate limiter ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=2, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # clients are independent
    clock.t += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    clock.t += 100
    assert [limiter.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # capped at burst


def test_a_clock_stepping_back_refills_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1, burst=1, clock=clock)
    assert limiter.take("a") == 0.0
    clock.t -= 50
    assert limiter.take("a") == pytest.approx(1.0)


def test_the_number_of_buckets_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1, burst=2, clock=clock, max_clients=10)
    for n in range(100):
        limiter.take(f"10.0.0.{n}")
    assert len(limiter._buckets) <= 10


def test_the_limiter_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=1, burst=0)


# --- body limit ------------------------------------------------------------------------------


class Echo:
    """An ASGI app answering with the body it received."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["body"]})


def call(app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(app(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, body


def test_a_body_within_the_limit_reaches_the_app_unchanged() -> None:
    app = BodyLimit(Echo(), max_bytes=10)
    assert call(app, [b"12345", b"67890"], []) == (200, b"1234567890")
    assert call(app, [b"1234567890"], [(b"content-length", b"10")]) == (200, b"1234567890")


@pytest.mark.parametrize(
    ("chunks", "headers", "status", "field"),
    [
        ([b"x" * 11], [(b"content-length", b"11")], 413, "body"),
        ([b"x" * 6, b"x" * 6], [], 413, "body"),  # no declared length: counted as it arrives
        ([b"x"], [(b"content-length", b"9" * 30)], 413, "body"),
        ([b"x"], [(b"content-length", b"abc")], 400, "content-length"),
    ],
)
def test_too_large_or_badly_declared_bodies_are_refused(
    chunks: list[bytes], headers: list[tuple[bytes, bytes]], status: int, field: str
) -> None:
    code, body = call(BodyLimit(Echo(), max_bytes=10), chunks, headers)
    assert code == status
    assert json.loads(body)["field"] == field
