"""The HTTP API's request and response bodies (``ops.api``); each is in the OpenAPI document.

Answers are plain views of the stored records, never the records themselves, so a change of
storage layout does not silently change the API::

    >>> ErrorBody(error="reason: must not be blank", field="reason").model_dump()
    {'error': 'reason: must not be blank', 'field': 'reason'}
    >>> OverrideRequest(outcome=1, reason="source outage, checked by hand").operator
    'api'
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.records import JobState
from protocol.spec import MarketSpec

CHAIN_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
HASH_PATTERN = r"^0x[0-9a-fA-F]{64}$"
HEX_PATTERN = r"^0x([0-9a-fA-F]{2})*$"
OPERATOR_PATTERN = r"^[^\x00-\x1f\x7f]+$"
MAX_LOG_DATA_HEX = 64 * 1024
"""Hex digits of a log's data: a ``MarketParams`` at its largest (a 4096-character description
of 4-byte characters) is about 37 000. The body limit (``max_body_bytes``) applies as well."""

OperatorName = Annotated[str, Field(min_length=1, max_length=128, pattern=OPERATOR_PATTERN)]


class Model(BaseModel):
    """Base of the API's bodies: unknown fields in a request are an error."""

    model_config = ConfigDict(extra="forbid")


# --- errors and health -----------------------------------------------------------------------


class ErrorBody(Model):
    """Every 4xx/5xx answer: what is wrong, and the request field it concerns (if one does)."""

    error: str
    field: str | None = None


class Liveness(Model):
    status: Literal["ok", "failed"]
    detail: str = ""


class Health(StrEnum):
    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"
    """Not reported (yet): does not make the daemon unready."""


class Component(Model):
    """One checked part of the daemon; ``data`` holds the numbers the verdict rests on."""

    name: str
    status: Health
    detail: str = ""
    data: dict[str, int | float | str | bool | None] = Field(default_factory=dict)


class Readiness(Model):
    ready: bool
    components: list[Component]


# --- markets ---------------------------------------------------------------------------------


class JobView(Model):
    """The scheduler's record of a market."""

    state: JobState
    due_at: float
    next_attempt_at: float
    attempts: int
    stage: str
    last_error: str
    failure: str | None
    override_outcome: Literal[0, 1] | None
    override_reason: str


class MarketSummary(Model):
    key: str
    """``chain:address``; pass it as ``after`` to read the next page."""
    chain: str
    address: str
    title: str
    state: JobState
    due_at: float
    next_attempt_at: float
    attempts: int
    stage: str
    last_error: str


class MarketPage(Model):
    markets: list[MarketSummary]
    next: str | None
    """``after`` for the next page, or ``None`` at the end."""


class ResolutionView(Model):
    stage: str
    value: str
    scaled: int | None
    outcome: Literal[0, 1] | None
    data_hash: str
    commit_tx: str
    commit_time: int
    finalize_tx: str
    override_reason: str
    note: str


class AuditView(Model):
    seq: int
    ts: float
    actor: str
    action: str
    detail: dict[str, str]


class MarketDetail(Model):
    key: str
    chain: str
    address: str
    spec: MarketSpec | None
    job: JobView | None
    resolution: ResolutionView | None
    audit: list[AuditView]
    """The market's most recent audit entries, oldest first."""
    audit_truncated: bool


class DlqEntry(Model):
    key: str
    chain: str
    address: str
    reason: str
    failure: str | None
    attempts: int
    stage: str
    due_at: float


class DlqPage(Model):
    entries: list[DlqEntry]
    next: str | None


# --- proofs ----------------------------------------------------------------------------------


class ProofResponseView(Model):
    """One raw source response of a proof; its exact bytes in base64."""

    request: dict[str, Any]
    url: str
    fetched_at_ms: int
    status: int
    body_base64: str


class ProofView(Model):
    format: int
    spec: MarketSpec
    responses: list[ProofResponseView]
    rule: dict[str, str]
    value: str
    scaled: int
    outcome: Literal[0, 1]


class ProofDocument(Model):
    key: str
    data_hash: str
    """keccak256 of the canonical bytes (``?format=raw``), as committed on chain."""
    committed_hash: str | None
    """The data hash of the market's resolution record, if there is one."""
    proof: ProofView


# --- operator actions ------------------------------------------------------------------------


class ActionRequest(Model):
    """Optional body of retry, cancel, resolve-now, pause and unpause."""

    operator: OperatorName = "api"
    reason: str = Field(default="", max_length=1024)


class OverrideRequest(Model):
    """Body of override: the outcome to commit and why (both required)."""

    outcome: Literal[0, 1]
    reason: str = Field(min_length=1, max_length=1024)
    operator: OperatorName = "api"

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class ActionResult(Model):
    key: str
    action: str
    state: str
    """The job's state after the action."""


# --- webhooks --------------------------------------------------------------------------------


class WebhookLog(BaseModel):
    """One raw ``MarketCreated`` log, Goldsky-style; unknown fields are ignored.

    ``topics`` may also be one comma-separated string (Goldsky's raw-log form).
    """

    model_config = ConfigDict(extra="ignore")

    chain: str = Field(pattern=CHAIN_PATTERN)
    address: str = Field(pattern=ADDRESS_PATTERN)
    """The contract that emitted the log (the factory)."""
    topics: list[Annotated[str, Field(pattern=HASH_PATTERN)]] = Field(max_length=4)
    data: str = Field(pattern=HEX_PATTERN, max_length=MAX_LOG_DATA_HEX)
    block_number: int = Field(ge=0, le=2**63 - 1)
    block_hash: str = Field(pattern=HASH_PATTERN)
    transaction_hash: str = Field(pattern=HASH_PATTERN)
    log_index: int = Field(ge=0, le=2**31 - 1)

    @field_validator("topics", mode="before")
    @classmethod
    def _split_topics(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class WebhookMarket(Model):
    key: str
    detail: Literal["new", "known"]


class WebhookResult(Model):
    markets: list[WebhookMarket]
