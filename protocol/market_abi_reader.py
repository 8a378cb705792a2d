"""A reader of the one layout ``eth_abi`` gives a ``MarketParams``: the listener's fast path.

``eth_abi``'s strict decoding of a ``MarketParams`` costs about 175 µs (it decodes each
pointed-to part twice, once to validate the pointers); a burst of 10,000 ``MarketCreated`` logs
spent some 2 s of the daemon's one core there (ADR 0016). ``read_canonical`` reads the bytes
that ``eth_abi.encode`` writes for such a struct, and nothing else: every offset must be the
one the encoder would write, every padding byte zero, every small integer within its type, every
string UTF-8 and the length exact. Anything else is ``None``, and the caller decodes with
``eth_abi`` as before (which then accepts a valid non-canonical encoding or says what is wrong).
So what it accepts is the encoding of the value it returns, which ``eth_abi`` decodes the same;
``tests/unit/test_market_abi.py`` checks that against ``eth_abi`` on generated specs and on
mutated bytes. ``decode_market_params`` uses it so::

    params = read_canonical(data)        # what eth_abi.decode gives, 10x faster
    if params is None:                   # another layout, or not MarketParams at all
        (params,) = eth_abi.decode([MARKET_PARAMS_TYPE], data, strict=True)
"""

from __future__ import annotations

from typing import Any

_WORD = 32
_HEAD_WORDS = 14
"""The tuple's head: 3 offsets, predicate (2 words), window (3), an offset, cutoff, creator,
economics (3)."""


class _NotCanonical(Exception):
    pass


def read_canonical(data: bytes) -> tuple[Any, ...] | None:
    """The ``MarketParams`` value (as ``eth_abi.decode`` returns it) if ``data`` is its
    canonical encoding, else ``None``."""
    try:
        return _Reader(data).params()
    except _NotCanonical:
        return None


class _Reader:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def params(self) -> tuple[Any, ...]:
        if self._uint(0, 256) != _WORD:
            raise _NotCanonical
        base = _WORD
        head = [base + i * _WORD for i in range(_HEAD_WORDS)]
        end = base + _HEAD_WORDS * _WORD
        title, end = self._string_at(base, head[0], end)
        description, end = self._string_at(base, head[1], end)
        subject, end = self._subject_at(base, head[2], end)
        oracle, end = self._oracle_at(base, head[8], end)
        if end != len(self.data):
            raise _NotCanonical
        return (
            title,
            description,
            subject,
            (self._uint(head[3], 8), self._int256(head[4])),
            (self._uint(head[5], 8), self._uint(head[6], 64), self._uint(head[7], 64)),
            oracle,
            self._uint(head[9], 64),
            self._address(head[10]),
            (self._address(head[11]), self._uint(head[12], 16), self._uint(head[13], 256)),
        )

    # --- dynamic parts: each must start where the previous one ended ---------------------

    def _follows(self, base: int, slot: int, end: int) -> int:
        """The part that the offset in ``slot`` (relative to ``base``) points to must be at
        ``end``, where the encoder puts it."""
        if base + self._uint(slot, 256) != end:
            raise _NotCanonical
        return end

    def _string_at(self, base: int, slot: int, end: int) -> tuple[str, int]:
        start = self._follows(base, slot, end)
        size = self._uint(start, 256)
        body = start + _WORD
        padded = -(-size // _WORD) * _WORD
        if body + padded > len(self.data) or any(self.data[body + size : body + padded]):
            raise _NotCanonical
        try:
            text = self.data[body : body + size].decode("utf-8")
        except UnicodeDecodeError:
            raise _NotCanonical from None
        return text, body + padded

    def _subject_at(self, base: int, slot: int, end: int) -> tuple[tuple[Any, ...], int]:
        start = self._follows(base, slot, end)
        end = start + 4 * _WORD
        metric, end = self._string_at(start, start + _WORD, end)
        token, end = self._string_at(start, start + 2 * _WORD, end)
        kind, decimals = self._uint(start, 8), self._uint(start + 3 * _WORD, 8)
        return (kind, metric, token, decimals), end

    def _oracle_at(self, base: int, slot: int, end: int) -> tuple[tuple[Any, ...], int]:
        start = self._follows(base, slot, end)
        end = start + 3 * _WORD
        primary, end = self._string_at(start, start, end)
        fallback, end = self._string_at(start, start + _WORD, end)
        return (primary, fallback, self._uint(start + 2 * _WORD, 8)), end

    # --- static words --------------------------------------------------------------------

    def _word(self, at: int) -> bytes:
        word = self.data[at : at + _WORD]
        if len(word) != _WORD:
            raise _NotCanonical
        return word

    def _uint(self, at: int, bits: int) -> int:
        value = int.from_bytes(self._word(at), "big")
        if value >> bits:
            raise _NotCanonical
        return value

    def _int256(self, at: int) -> int:
        return int.from_bytes(self._word(at), "big", signed=True)

    def _address(self, at: int) -> str:
        word = self._word(at)
        if any(word[:12]):
            raise _NotCanonical
        return "0x" + word[12:].hex()  # lower case, as eth_abi gives it
