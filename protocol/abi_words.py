"""Static ABI words: calls whose every argument is one 32-byte word, read and written as words.

The oracle's ``commit(address,uint8,bytes32)``, ``finalize(address)``, ``pending(address)`` and
the answer of ``pending`` are such calls, and their batches (``commitBatch`` ...) take one array
of words per argument. eth-abi encodes or decodes one of them in 14 to 25 µs, and a burst makes
several per market (ADR 0023). These functions write the very bytes eth-abi writes, and read
only the canonical encoding: every padding byte zero, an integer within its type, a bool 0 or 1,
the length exact. Anything else reads as ``None``, and the caller decodes with eth-abi, which
reads a valid other layout or says what is wrong. ``tests/unit/test_abi_words.py`` checks both
directions against eth-abi::

    >>> data = encode_words(("address", "uint8"), ["0x" + "11" * 20, 7])
    >>> len(data), data[-1]
    (64, 7)
    >>> decode_words(("address", "uint8"), data)
    ('0x1111111111111111111111111111111111111111', 7)
    >>> decode_words(("uint8",), data[32:])
    (7,)
    >>> decode_words(("uint8", "uint8"), data) is None  # 0x11... is no uint8: not canonical
    True

Types: ``address``, ``bool``, ``bytes32`` and ``uint8`` to ``uint256`` (whole bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from protocol.spec import checksum_address

WORD = 32
_PAD_ADDRESS = bytes(12)
_PAD_BOOL = bytes(WORD - 1)


def word(kind: str, value: Any) -> bytes:
    """The word eth-abi writes for ``value`` as ``kind``; ``ValueError`` for a value it refuses,
    and for an address that is not ``0x`` and 40 hex digits, in one case or with a valid
    EIP-55 checksum (eth-abi takes those too)."""
    if kind == "address":
        return bytes(12) + _address_bytes(value)
    if kind == "bytes32":
        if not isinstance(value, bytes) or len(value) > WORD:
            raise ValueError(f"not a bytes32 value: {value!r}")
        return value + bytes(WORD - len(value))
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"not a bool: {value!r}")
        return bytes(WORD - 1) + (b"\x01" if value else b"\x00")
    bits = _uint_bits(kind)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise ValueError(f"not a {kind}: {value!r}")
    return int(value).to_bytes(WORD, "big")


def read(kind: str, data: bytes) -> Any | None:
    """The value of the canonical word ``data`` of ``kind`` (as eth-abi decodes it), else None."""
    if len(data) != WORD:
        return None
    if kind == "address":
        return "0x" + data[12:].hex() if data[:12] == _PAD_ADDRESS else None
    if kind == "bytes32":
        return bytes(data)
    if kind == "bool":
        return (data[31] == 1) if data[:31] == _PAD_BOOL and data[31] <= 1 else None
    value = int.from_bytes(data, "big")
    return value if value >> _uint_bits(kind) == 0 else None


def encode_words(kinds: Sequence[str], values: Sequence[Any]) -> bytes:
    """``eth_abi.encode(kinds, values)`` for static one-word types."""
    if len(kinds) != len(values):
        raise ValueError(f"{len(values)} values for {len(kinds)} types")
    return b"".join(word(kind, value) for kind, value in zip(kinds, values, strict=True))


def split_words(kinds: Sequence[str], data: bytes) -> list[bytes] | None:
    """The words of ``data`` if it is exactly the canonical encoding of one value per kind."""
    if len(data) != WORD * len(kinds):
        return None
    words = [data[i : i + WORD] for i in range(0, len(data), WORD)]
    if any(read(kind, w) is None for kind, w in zip(kinds, words, strict=True)):
        return None
    return words


def decode_words(kinds: Sequence[str], data: bytes) -> tuple[Any, ...] | None:
    """``eth_abi.decode(kinds, data)`` when ``data`` is that canonical encoding, else None."""
    if len(data) != WORD * len(kinds):
        return None
    values = tuple(read(kind, data[n * WORD : (n + 1) * WORD]) for n, kind in enumerate(kinds))
    return None if any(value is None for value in values) else values


def encode_word_arrays(rows: Sequence[Sequence[bytes]], columns: int) -> bytes:
    """``eth_abi.encode`` of ``columns`` arrays of static words, from rows of words (row ``i``:
    the ``i``-th element of every array)."""
    size = len(rows)
    if any(len(row) != columns for row in rows):
        raise ValueError(f"every row needs {columns} words")
    tail = WORD * (1 + size)  # one array: its length, then its words
    heads = [word("uint256", WORD * columns + n * tail) for n in range(columns)]
    arrays = [word("uint256", size) + b"".join(row[n] for row in rows) for n in range(columns)]
    return b"".join(heads) + b"".join(arrays)


def decode_word_arrays(kinds: Sequence[str], data: bytes) -> list[list[bytes]] | None:
    """The rows of words of ``data`` if it is exactly what ``encode_word_arrays`` writes for
    arrays of ``kinds`` (each word canonical for its kind), else None."""
    columns = len(kinds)
    if columns == 0 or len(data) < WORD * (columns + 1):
        return None
    size = read("uint256", data[WORD * columns : WORD * (columns + 1)])
    if size is None or len(data) != WORD * columns * (2 + size):
        return None
    tail = WORD * (1 + size)  # one array: its length, then its words
    arrays = []
    for n, kind in enumerate(kinds):
        start = WORD * columns + n * tail
        if read("uint256", data[n * WORD : (n + 1) * WORD]) != start:
            return None  # not the offset the encoder writes
        if read("uint256", data[start : start + WORD]) != size:
            return None
        words = [data[start + WORD * (1 + i) : start + WORD * (2 + i)] for i in range(size)]
        if any(read(kind, w) is None for w in words):
            return None
        arrays.append(words)
    return [list(row) for row in zip(*arrays, strict=True)]


def _address_bytes(value: Any) -> bytes:
    """The 20 bytes of an address: 20 bytes, or ``0x`` and 40 hex digits in one case or with a
    valid EIP-55 checksum."""
    if isinstance(value, bytes) and len(value) == 20:
        return value
    if isinstance(value, str) and len(value) == 42 and value[:2] == "0x":
        digits = value[2:]
        try:
            raw = bytes.fromhex(digits)
        except ValueError:
            raw = b""
        if len(raw) == 20 and (
            digits in (digits.lower(), digits.upper()) or checksum_address(value) == value
        ):
            return raw
    raise ValueError(f"not an address (or a wrong EIP-55 checksum): {value!r}")


def _uint_bits(kind: str) -> int:
    bits = int(kind[4:]) if kind.startswith("uint") and kind[4:].isdigit() else 0
    if not 8 <= bits <= 256 or bits % 8:
        raise ValueError(f"not a one-word ABI type: {kind!r}")
    return bits
