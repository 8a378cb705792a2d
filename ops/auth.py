"""Who may do what: the bearer token of mutating routes and the HMAC signature of webhooks.

Both compare in constant time, and neither ever puts a secret in an error text::

    >>> token_matches("s3cret", "Bearer s3cret"), token_matches("s3cret", "Bearer guess")
    (True, False)
    >>> body = b'{"chain": "hyperevm"}'
    >>> headers = sign_webhook("hook-secret", body, timestamp=1_700_000_000)
    >>> headers["X-Signature"][:7]
    'sha256='
    >>> verify_webhook("hook-secret", body, headers["X-Signature"], headers["X-Timestamp"],
    ...                now=1_700_000_100)
    >>> verify_webhook("hook-secret", body, headers["X-Signature"], headers["X-Timestamp"],
    ...                now=1_700_001_000)
    Traceback (most recent call last):
    ...
    ops.auth.WebhookAuthError: stale timestamp: 1000 s from now, tolerance 300 s

Webhook signature: ``X-Signature: sha256=<hex of HMAC-SHA256(secret, "<X-Timestamp>." + raw body)>``
where ``X-Timestamp`` is whole Unix seconds, accepted within ``tolerance_s`` of now either way.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_S = 300.0
_MAX_TIMESTAMP_CHARS = 20


class WebhookAuthError(Exception):
    """The webhook's signature or timestamp is missing, malformed, wrong or stale (-> 401).

    ``header`` names the header at fault.
    """

    def __init__(self, message: str, header: str = SIGNATURE_HEADER) -> None:
        super().__init__(message)
        self.header = header


def token_matches(expected: str, authorization: str | None) -> bool:
    """Whether the ``Authorization`` header value carries ``Bearer <expected>``.

    The scheme is case-insensitive; the token is compared as bytes in constant time.
    """
    if not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # header values arrive latin-1 decoded: this gives back the bytes that were sent
    sent = presented.strip().encode("latin-1", errors="replace")
    return hmac.compare_digest(sent, expected.encode("utf-8"))


def webhook_signature(secret: str, body: bytes, timestamp: int | str) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def sign_webhook(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The two headers a sender adds to ``body`` (for clients and tests)."""
    return {
        SIGNATURE_HEADER: webhook_signature(secret, body, timestamp),
        TIMESTAMP_HEADER: str(timestamp),
    }


def verify_webhook(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Check a webhook's headers against its RAW body; raises ``WebhookAuthError`` if not good."""
    if not signature:
        raise WebhookAuthError(f"missing {SIGNATURE_HEADER} header")
    if not timestamp:
        raise WebhookAuthError(f"missing {TIMESTAMP_HEADER} header", TIMESTAMP_HEADER)
    text = timestamp.strip()
    if len(text) > _MAX_TIMESTAMP_CHARS or not text.isascii() or not text.isdigit():
        raise WebhookAuthError(f"{TIMESTAMP_HEADER} is not whole Unix seconds", TIMESTAMP_HEADER)
    skew = now - int(text)
    if abs(skew) > tolerance_s:
        raise WebhookAuthError(
            f"stale timestamp: {abs(skew):.0f} s from now, tolerance {tolerance_s:.0f} s",
            TIMESTAMP_HEADER,
        )
    expected = webhook_signature(secret, body, text).encode("ascii")
    presented = signature.strip().encode("latin-1", errors="replace")
    if not hmac.compare_digest(presented.lower(), expected):
        raise WebhookAuthError("bad signature")
