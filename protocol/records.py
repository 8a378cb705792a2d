"""Stored record types: what the runner keeps in LMDB besides actor checkpoints.

Each is registered with the process-wide codec under a stable kind and version; a change of
shape bumps the version and registers an upgrader from the old one.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from protocol.codec import register
from protocol.spec import Frozen, MarketSpec
from protocol.supervision import ChildSpec, FaultRule, SupervisorSpec


class AuditEntry(Frozen):
    """One audited act: who did what to which subject, and when (runtime clock, seconds)."""

    ts: float
    actor: str
    action: str
    subject: str = ""
    detail: dict[str, str] = Field(default_factory=dict)


class Cursor(Frozen):
    """How far a chain has been scanned: the last block handed off, by number and hash."""

    chain: str
    block_number: Annotated[int, Field(ge=0)]
    block_hash: str


class SchemaVersion(Frozen):
    """The layout version of an LMDB environment, kept in ``meta``."""

    version: Annotated[int, Field(ge=0)]


register(AuditEntry, kind="audit_entry")
register(Cursor, kind="cursor")
register(SchemaVersion, kind="schema_version")
register(MarketSpec, kind="market_spec")
register(ChildSpec, kind="child_spec")
register(SupervisorSpec, kind="supervisor_spec")
register(FaultRule, kind="fault_rule")
