"""Market specs: what a market asks and how it is to be answered.

A spec arrives from a ``MarketCreated`` log (or a webhook) and is validated here, once, so that
every later step can trust it::

    >>> spec = MarketSpec(
    ...     title="BTC above 30k",
    ...     subject=Subject(kind=SubjectKind.TOKEN_PRICE, token_identifier="BTC", value_decimals=2),
    ...     predicate=Predicate(op=PredicateOp.GT, threshold=3_000_000),
    ...     window=Window(kind=WindowKind.SNAPSHOT_AT, t_start=1_700_000_000, t_end=1_700_000_000),
    ...     cutoff_time=1_699_990_000,
    ...     creator="0x0000000000000000000000000000000000000001",
    ... )
    >>> spec.window.t_end
    1700000000

An impossible spec raises ``pydantic.ValidationError`` whose message names the field and the reason.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Self

import sha3
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_DECIMALS = 36
INT256_MIN = -(2**255)
INT256_MAX = 2**255 - 1
UINT64_MAX = 2**64 - 1


class Frozen(BaseModel):
    """Base of every protocol model: immutable, no unknown fields, strict about types."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, use_enum_values=False)


_HEX_ADDRESS = re.compile(r"(?:0[xX])?[0-9a-fA-F]{40}")
_UPPER = frozenset("89abcdef")
"""Digest nibbles that capitalise the address digit at their place (EIP-55)."""
_CHECKSUMS: dict[str, str] = {}
_CHECKSUMS_MAX = 65536


def checksum_address(value: str) -> str:
    """EIP-55 form of ``value`` (40 hex digits, ``0x`` before them or not); ``ValueError`` for
    anything else.

    Remembered under the spelling asked and under its own (up to 65,536 addresses), since
    every message about a market re-validates its address and the keccak behind the checksum
    is not cheap::

        >>> checksum_address("0x" + "ab" * 20)
        '0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB'
    """
    known = _CHECKSUMS.get(value)
    if known is not None:
        return known
    if not isinstance(value, str) or _HEX_ADDRESS.fullmatch(value) is None:
        raise ValueError(f"not a 20-byte hex address: {value!r}")
    digits = value[-40:].lower()
    digest = sha3.keccak_256(digits.encode()).hexdigest()
    spelled = "0x" + "".join(
        c.upper() if d in _UPPER else c for c, d in zip(digits, digest, strict=False)
    )
    if len(_CHECKSUMS) >= _CHECKSUMS_MAX:
        _CHECKSUMS.clear()
    _CHECKSUMS[value] = _CHECKSUMS[spelled] = spelled
    return spelled


Address = Annotated[str, AfterValidator(checksum_address)]
"""An EVM address, normalised to its EIP-55 checksum form."""

Decimals = Annotated[int, Field(ge=0, le=MAX_DECIMALS)]
Timestamp = Annotated[int, Field(ge=0, le=UINT64_MAX)]
"""Chain time: whole seconds since the epoch."""


class SubjectKind(StrEnum):
    HL_METRIC = "HL_METRIC"
    TOKEN_PRICE = "TOKEN_PRICE"


class PredicateOp(StrEnum):
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"

    def holds(self, value: int, threshold: int) -> bool:
        """Whether ``value <op> threshold``; both are already scaled integers."""
        match self:
            case PredicateOp.GT:
                return value > threshold
            case PredicateOp.GTE:
                return value >= threshold
            case PredicateOp.LT:
                return value < threshold
            case PredicateOp.LTE:
                return value <= threshold


class WindowKind(StrEnum):
    SNAPSHOT_AT = "SNAPSHOT_AT"
    WINDOW_SUM = "WINDOW_SUM"
    WINDOW_COUNT = "WINDOW_COUNT"


class Subject(Frozen):
    """What is measured: a Hyperliquid metric of a coin or user, or a token's price."""

    kind: SubjectKind
    metric_id: str = Field(default="", max_length=64)
    token_identifier: str = Field(min_length=1, max_length=64)
    value_decimals: Decimals

    @model_validator(mode="after")
    def _metric_matches_kind(self) -> Self:
        if self.kind is SubjectKind.HL_METRIC and not self.metric_id:
            raise ValueError("an HL_METRIC subject needs a metric_id")
        if self.kind is SubjectKind.TOKEN_PRICE and self.metric_id:
            raise ValueError("a TOKEN_PRICE subject takes no metric_id")
        return self


class Predicate(Frozen):
    """``value <op> threshold``, the threshold in units of ``10**-value_decimals``."""

    op: PredicateOp
    threshold: Annotated[int, Field(ge=INT256_MIN, le=INT256_MAX)]


class Window(Frozen):
    """When: an instant (SNAPSHOT_AT; ``t_start == t_end`` allowed) or ``[t_start, t_end)``."""

    kind: WindowKind
    t_start: Timestamp
    t_end: Timestamp

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.t_end < self.t_start:
            raise ValueError(f"t_end {self.t_end} is before t_start {self.t_start}")
        if self.kind is not WindowKind.SNAPSHOT_AT and self.t_end == self.t_start:
            raise ValueError(f"a {self.kind} window needs t_end after t_start")
        return self


class OracleSpec(Frozen):
    """Where the data comes from and how finely the raw value is rounded before scaling."""

    primary_source_id: str = Field(default="hyperliquid", min_length=1, max_length=64)
    fallback_source_id: str = Field(default="", max_length=64)
    rounding_decimals: Decimals = MAX_DECIMALS


class Economics(Frozen):
    """The market's money terms; the runner carries them but never decides on them."""

    collateral_token: Address = "0x0000000000000000000000000000000000000000"
    fee_bps: Annotated[int, Field(ge=0, le=10_000)] = 0
    initial_liquidity: Annotated[int, Field(ge=0, le=2**256 - 1)] = 0


class MarketSpec(Frozen):
    """Everything a market carries on chain about its question."""

    title: str = Field(min_length=1, max_length=256)
    description: str = Field(default="", max_length=4096)
    subject: Subject
    predicate: Predicate
    window: Window
    oracle: OracleSpec = OracleSpec()
    cutoff_time: Timestamp
    creator: Address
    economics: Economics = Economics()

    @model_validator(mode="after")
    def _cutoff_not_after_window(self) -> Self:
        if self.cutoff_time > self.window.t_end:
            raise ValueError(
                f"cutoff_time {self.cutoff_time} is after the window's t_end {self.window.t_end}"
            )
        return self


class MarketKey(Frozen):
    """A market's identity across the runner: the chain's configured name and its address."""

    chain: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    address: Address

    def __str__(self) -> str:
        return f"{self.chain}:{self.address}"

    @classmethod
    def parse(cls, text: str) -> MarketKey:
        """The inverse of ``str(key)``: ``"hyperevm:0xAbc..."``."""
        chain, sep, address = text.partition(":")
        if not sep:
            raise ValueError(f"market key {text!r} is not of the form chain:address")
        return cls(chain=chain, address=address)

    def db_key(self) -> bytes:
        """The LMDB key of this market in every per-market database."""
        return str(self).encode()
