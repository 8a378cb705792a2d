"""Secrets out of every text the runner shows: logs, REPL answers, metrics, stored errors.

Register each secret once, at run time; then redact any text or nested value::

    >>> r = Redactor()
    >>> r.add_secret("0x" + "ab" * 32)                      # a private key, as hex
    >>> r.redact("signing with AB" + "ab" * 31 + " now")    # any case, with or without 0x
    'signing with [REDACTED] now'
    >>> r.redact("Authorization: Bearer s3cr3t-token")
    'Authorization: Bearer [REDACTED]'
    >>> r.redact_value({"nested": [b"abc", "0x" + "AB" * 32]})
    {'nested': ["b'abc'", '[REDACTED]']}

A hex secret (a private key) is also found as its raw bytes' ``repr``, base64 and decimal forms,
because that is how bytes and integers end up in an f-string or a traceback. Matching ignores
case, so a 64-hex-digit string is hidden exactly when it spells a registered secret; other hashes
(transactions, blocks) stay readable. ``Authorization:`` values and ``Bearer`` tokens are hidden
whether registered or not.

``REDACTOR`` is the process-wide instance the daemon fills (each key, the API token) and
``redact`` its function, handed to the runtime as ``services.redact``.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
MIN_SECRET_LEN = 8
"""Shorter secrets are refused: hiding every "abc" would make the logs unreadable."""
KEY_HEX_DIGITS = 32
"""A hex secret this long or longer is a key: its bytes, base64 and decimal forms are hidden too."""

_HEX = re.compile(r"^(?:0x)?([0-9a-fA-F]{2})+$")
_AUTH = re.compile(
    r"(?P<head>\bauthorization\b[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)"
    r"(?P<cred>[^\s\"',;]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\bbearer\s+)(?P<cred>[A-Za-z0-9._~+/=-]{4,})", re.IGNORECASE)


def _escape_bytes(raw: bytes, quote: str) -> str:
    """The inside of ``repr(raw)`` when Python delimits it with ``quote``."""
    special = {"\\": "\\\\", quote: "\\" + quote, "\t": "\\t", "\n": "\\n", "\r": "\\r"}
    out = []
    for byte in raw:
        char = chr(byte)
        if char in special:
            out.append(special[char])
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def variants(secret: str) -> set[str]:
    """Every spelling of ``secret`` to hide (case is ignored when matching)."""
    found = {secret}
    digits = secret[2:] if secret[:2].lower() == "0x" else secret
    if _HEX.match(secret) and len(digits) >= KEY_HEX_DIGITS:
        raw = bytes.fromhex(digits)
        found |= {digits, "0x" + digits, str(int(digits, 16))}
        found |= {_escape_bytes(raw, "'"), _escape_bytes(raw, '"')}
        found |= {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
        found |= {s.rstrip("=") for s in list(found) if s.endswith("=")}
    return {v for v in found if len(v) >= MIN_SECRET_LEN}


class Redactor:
    """Hides registered secrets and credentials in text; safe to use from any thread."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._spellings: set[str] = set()
        self._raw: tuple[bytes, ...] = ()
        """Raw forms, longest first; replaced whole (never mutated) so readers need no lock."""
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, value: str | bytes) -> None:
        """Hide ``value`` from now on; raw bytes are registered as their hex."""
        text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
        text = text.strip()
        if len(text) < MIN_SECRET_LEN:
            raise ValueError(f"a secret must have at least {MIN_SECRET_LEN} characters")
        with self._lock:
            self._spellings |= variants(text)
            raw = {*self._raw, text.encode()}
            if _HEX.match(text):
                raw.add(bytes.fromhex(text[2:] if text[:2].lower() == "0x" else text))
            self._raw = tuple(sorted(raw, key=len, reverse=True))
            # longest first, so that "0xabc.." wins over "abc.." and nothing is half-hidden
            ordered = sorted(self._spellings, key=lambda s: (-len(s), s))
            self._pattern = re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)

    def clear(self) -> None:
        """Forget every registered secret (for tests)."""
        with self._lock:
            self._spellings.clear()
            self._raw = ()
            self._pattern = None

    def redact(self, text: str) -> str:
        """``text`` with every secret and credential replaced by ``[REDACTED]``."""
        if not isinstance(text, str):
            text = str(text)
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        text = _AUTH.sub(lambda m: m["head"] + MASK if m["cred"] != MASK else m[0], text)
        return _BEARER.sub(lambda m: m["head"] + MASK if m["cred"] != MASK else m[0], text)

    __call__ = redact

    def redact_bytes(self, data: bytes) -> str:
        """A readable, redacted ``repr`` of ``data`` (raw secret bytes are cut out first)."""
        raw = bytes(data)
        for secret in self._raw:
            raw = raw.replace(secret, MASK.encode())
        return self.redact(repr(raw))

    def redact_value(self, value: Any) -> Any:
        """``scrub(value, self.redact, self.redact_bytes)``: every string inside redacted."""
        return scrub(value, self.redact, self.redact_bytes)


def scrub(
    value: Any,
    redact_text: Callable[[str], str],
    redact_bytes: Callable[[bytes], str] | None = None,
    depth: int = 0,
) -> Any:
    """A copy of ``value`` with every string redacted, through dicts, lists, tuples and sets.

    Bytes become their redacted ``repr``; other objects their redacted ``str``; an integer or
    a float stays a number unless it spells a secret. Sets come back as lists.
    """
    if depth > 32:
        return MASK
    match value:
        case None | bool():
            return value
        case int() | float():
            text = repr(value) if isinstance(value, float) or abs(value) < 10**300 else ""
            return value if redact_text(text) == text else MASK
        case str():
            return redact_text(value)
        case bytes() | bytearray() | memoryview():
            raw = bytes(value)
            return redact_bytes(raw) if redact_bytes else redact_text(repr(raw))
        case Mapping():
            return {
                scrub(k, redact_text, redact_bytes, depth + 1): scrub(
                    v, redact_text, redact_bytes, depth + 1
                )
                for k, v in value.items()
            }
        case list() | tuple() | set() | frozenset():
            items = [scrub(v, redact_text, redact_bytes, depth + 1) for v in value]
            return tuple(items) if isinstance(value, tuple) else items
    return redact_text(str(value))


REDACTOR = Redactor()
"""The daemon's redactor: it registers each private key and the API token here."""


def redact(text: str) -> str:
    """``REDACTOR.redact``: the function the runtime applies to every error text it stores."""
    return REDACTOR.redact(text)
