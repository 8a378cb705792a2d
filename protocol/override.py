"""An operator's outcome override: what is committed when the data cannot decide a market.

An override is not derived from data, and says so: its hash is over this record (the spec, the
outcome, the operator's reason), encoded like a proof file, so the on-chain ``dataHash`` of an
overridden market identifies exactly what the operator decided and why::

    record = OverrideRecord(spec=spec, outcome=1, reason="API outage, settled by the venue")
    record_hash(record)        # '0x…', committed instead of a data proof's hash
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from protocol.codec import register
from protocol.proof import canonical_model_bytes, keccak256
from protocol.spec import Frozen, MarketSpec


class OverrideRecord(Frozen):
    format: Literal[1] = 1
    kind: Literal["operator_override"] = "operator_override"
    spec: MarketSpec
    outcome: Literal[0, 1]
    reason: str = Field(min_length=1, max_length=1024)


register(OverrideRecord, kind="override_record")


def record_bytes(record: OverrideRecord) -> bytes:
    """The record's unique bytes (the proof file encoding of DESIGN.md section 7)."""
    return canonical_model_bytes(record, "override")


def record_hash(record: OverrideRecord) -> str:
    """``0x`` + keccak256 of ``record_bytes``: the data hash committed for an override."""
    return "0x" + keccak256(record_bytes(record)).hex()
