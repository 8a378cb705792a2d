"""Static ABI words against eth-abi: the same bytes written, the same values read, and only the
canonical encoding read (anything else is left to eth-abi)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import decode, encode
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.abi_words import (
    decode_word_arrays,
    decode_words,
    encode_word_arrays,
    encode_words,
    split_words,
    word,
)

pytestmark = pytest.mark.timeout(60)

KINDS = ("address", "bool", "bytes32", "uint8", "uint64", "uint256")
addresses = st.binary(min_size=20, max_size=20).flatmap(
    lambda raw: st.sampled_from(
        ["0x" + raw.hex(), to_checksum_address(raw), "0x" + raw.hex().upper()]
    )
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "address": addresses,
    "bool": st.booleans(),
    "bytes32": st.binary(min_size=0, max_size=32),
    "uint8": st.integers(0, 2**8 - 1),
    "uint64": st.integers(0, 2**64 - 1),
    "uint256": st.integers(0, 2**256 - 1),
}
kinds = st.lists(st.sampled_from(KINDS), min_size=1, max_size=5)


def typed(kinds_: list[str]) -> st.SearchStrategy[list[Any]]:
    return st.tuples(*(VALUES[k] for k in kinds_)).map(list)


def normal(kind: str, value: Any) -> Any:
    """A value as eth-abi reads it back."""
    if kind == "address":
        return value.lower()
    if kind == "bytes32":
        return value + bytes(32 - len(value))
    return value


@settings(max_examples=300, deadline=None)
@given(data=st.data(), kinds_=kinds)
def test_the_bytes_are_eth_abis_and_read_back_as_eth_abi_reads_them(
    data: st.DataObject, kinds_: list[str]
) -> None:
    values = data.draw(typed(kinds_))
    encoded = encode_words(kinds_, values)
    assert encoded == encode(kinds_, values)
    assert decode_words(kinds_, encoded) == decode(kinds_, encoded)
    assert list(decode_words(kinds_, encoded) or ()) == [
        normal(k, v) for k, v in zip(kinds_, values, strict=True)
    ]


@settings(max_examples=500, deadline=None)
@given(data=st.data(), kinds_=kinds)
def test_other_bytes_are_read_only_when_eth_abi_reads_them_the_same(
    data: st.DataObject, kinds_: list[str]
) -> None:
    """Random or damaged words: what is read equals eth-abi's reading; what is refused
    (None) goes to eth-abi, which reads a longer layout or raises."""
    encoded = bytearray(encode(kinds_, data.draw(typed(kinds_))))
    at = data.draw(st.integers(0, len(encoded) - 1))
    encoded[at] = data.draw(st.integers(0, 255))
    blob = bytes(encoded) + data.draw(st.sampled_from([b"", bytes(32)]))
    mine = decode_words(kinds_, blob)
    if mine is not None:
        assert mine == decode(kinds_, blob)
    else:
        assert split_words(kinds_, blob) is None


@settings(max_examples=200, deadline=None)
@given(data=st.data(), kinds_=kinds, size=st.integers(0, 6))
def test_arrays_of_words_are_eth_abis_both_ways(
    data: st.DataObject, kinds_: list[str], size: int
) -> None:
    rows = [data.draw(typed(kinds_)) for _ in range(size)]
    columns = [[row[n] for row in rows] for n in range(len(kinds_))]
    array_types = [f"{k}[]" for k in kinds_]
    words = [[word(k, v) for k, v in zip(kinds_, row, strict=True)] for row in rows]
    encoded = encode_word_arrays(words, len(kinds_))
    assert encoded == encode(array_types, columns)
    assert decode_word_arrays(kinds_, encoded) == words
    damaged = bytearray(encoded)
    at = data.draw(st.integers(0, len(damaged) - 1))
    damaged[at] = data.draw(st.integers(0, 255))
    read = decode_word_arrays(kinds_, bytes(damaged))
    if read is not None:
        theirs = decode(array_types, bytes(damaged))
        assert [list(col) for col in zip(*read, strict=True)] == [
            [word(k, v) for v in col] for k, col in zip(kinds_, theirs, strict=True)
        ] or read == []


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("address", "0x" + "ab" * 19),
        ("address", 7),
        ("uint8", 256),
        ("uint8", -1),
        ("uint8", True),
        ("bytes32", b"\x00" * 33),
        ("bool", 1),
    ],
)
def test_values_eth_abi_refuses_are_refused(kind: str, value: Any) -> None:
    with pytest.raises(Exception):  # eth-abi raises its own error types
        encode([kind], [value])
    with pytest.raises(ValueError, match="not a"):
        word(kind, value)


@pytest.mark.parametrize("value", ["0x" + "aB" * 20, "ab" * 20])
def test_an_address_must_be_prefixed_and_checksummed_if_mixed_case(value: str) -> None:
    """Stricter than eth-abi, which takes both: a mistyped address is refused, not sent."""
    with pytest.raises(ValueError, match="EIP-55"):
        word("address", value)
