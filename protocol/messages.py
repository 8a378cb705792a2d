"""Every message between actors: frozen pydantic models, each with a ``kind`` tag.

In-process the object itself is passed; ``protocol.codec`` turns any of them into bytes when one
leaves the process (the REPL wire, a dead-letter record)::

    >>> from protocol import codec
    >>> msg = TxFailed(intent_id="hyperevm:0xo:0xm:commit", reason="reverted: already committed",
    ...                permanent=True)
    >>> codec.decode(codec.encode(msg)) == msg
    True

Each module-level subclass of ``Message`` is registered with the process-wide codec on import.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from protocol.codec import register
from protocol.evaluation.model import Evaluation
from protocol.hyperliquid import RawResponse
from protocol.spec import Address, Frozen, MarketKey, MarketSpec
from protocol.supervision import ChildSpec, ExitReason

Hash32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")]
BlockNumber = Annotated[int, Field(ge=0)]


class Message(Frozen):
    """Base of every actor message."""

    kind: str


class FailureClass(StrEnum):
    TRANSIENT = "transient"
    """Worth retrying later: timeouts, 5xx, a node behind."""
    PERMANENT = "permanent"
    """Retrying cannot help: unsupported subject, no data for the window, a revert."""
    CONFIGURATION = "configuration"
    """The runner is set up wrong for this chain: stop its work and raise an alert."""


# --- runtime and supervision ---------------------------------------------------------------


class GetState(Message):
    """Ask any supervised actor for a snapshot of its state (for tests, the REPL and probes)."""

    kind: Literal["get_state"] = "get_state"


class Tick(Message):
    """A clock tick: ``now`` in seconds of the runtime's clock."""

    kind: Literal["tick"] = "tick"
    now: float


class ChildExited(Message):
    """A child tells its supervisor that it stopped, and why."""

    kind: Literal["child_exited"] = "child_exited"
    child_id: str
    incarnation: int
    reason: ExitReason
    error: str = ""


class StartChild(Message):
    """Ask a supervisor to start a dynamic child; the answer is a ``ChildStarted``."""

    kind: Literal["start_child"] = "start_child"
    spec: ChildSpec


class ChildStarted(Message):
    kind: Literal["child_started"] = "child_started"
    child_id: str
    started: bool
    reason: Literal["started", "already_running", "full", "stopping"] = "started"


class StartChildren(Message):
    """Ask a supervisor to start dynamic children in order; the answer is ``ChildrenStarted``.

    One round trip for a batch (the scheduler starts a dispatch round's resolvers so). Once one
    is refused as ``full``, the rest are refused too, unstarted, so the caller keeps its order.
    """

    kind: Literal["start_children"] = "start_children"
    specs: tuple[ChildSpec, ...]


class ChildrenStarted(Message):
    """One ``ChildStarted`` per spec of a ``StartChildren``, in its order."""

    kind: Literal["children_started"] = "children_started"
    results: tuple[ChildStarted, ...]


class StopChild(Message):
    """Ask a supervisor to stop a child and forget its spec."""

    kind: Literal["stop_child"] = "stop_child"
    child_id: str


class RestartChild(Message):
    """A supervisor's own timer message: restart a child after its backoff."""

    kind: Literal["restart_child"] = "restart_child"
    child_id: str
    generation: int


class CheckChildren(Message):
    """Ask a supervisor to look for children whose thread died without telling it."""

    kind: Literal["check_children"] = "check_children"
    periodic: bool = False


class WhichChildren(Message):
    """Ask a supervisor for its children; the answer is a tuple of ``ChildInfo``."""

    kind: Literal["which_children"] = "which_children"


class ChildInfo(Message):
    kind: Literal["child_info"] = "child_info"
    child_id: str
    actor: str
    alive: bool
    incarnation: int
    restarts: int
    last_error: str = ""


class Ack(Message):
    """A plain acknowledgement, for hand-offs that must be durable before the sender moves on."""

    kind: Literal["ack"] = "ack"
    detail: str = ""


# --- chain side ----------------------------------------------------------------------------


class NewHead(Message):
    kind: Literal["new_head"] = "new_head"
    chain: str
    number: BlockNumber
    hash: Hash32
    timestamp: int


class MarketDiscovered(Message):
    """A valid ``MarketCreated`` (from a log, a webhook or recovery) handed to the scheduler."""

    kind: Literal["market_discovered"] = "market_discovered"
    key: MarketKey
    spec: MarketSpec
    block_number: BlockNumber
    block_hash: Hash32
    tx_hash: Hash32
    log_index: Annotated[int, Field(ge=0)]
    via: Literal["log", "webhook", "recovery"] = "log"


class MarketsDiscovered(Message):
    """Many ``MarketDiscovered`` at once (a scanned range), made durable in one transaction and
    answered with one ``Ack`` whose detail counts the new ones."""

    kind: Literal["markets_discovered"] = "markets_discovered"
    markets: tuple[MarketDiscovered, ...] = Field(min_length=1, max_length=10_000)


class RecoverMarkets(Message):
    """Ask a listener (``listener:<chain>``) to re-deliver every market its factory lists, as
    after the loss of the data directory; answered with a ``CommandResult`` whose ``state``
    counts them. Idempotent: the scheduler keeps one job per market."""

    kind: Literal["listener_recover"] = "listener_recover"


class SubmitTx(Message):
    """Ask the chain's signer to get a call mined; the outcome is told to ``reply_to`` later."""

    kind: Literal["submit_tx"] = "submit_tx"
    intent_id: str = Field(min_length=1, max_length=256)
    chain: str
    to: Address
    data: bytes
    value: Annotated[int, Field(ge=0)] = 0
    reply_to: str = Field(min_length=1)
    """The registered name of the requester (its current incarnation receives the answer)."""


class TxConfirmed(Message):
    """The intent's call was mined with ``status`` and is final. A call carried with others
    (ADR 0021) gets its carrier's transaction, nonce and gas: a batch call is all or nothing,
    so status 1 proves this call took effect as well."""

    kind: Literal["tx_confirmed"] = "tx_confirmed"
    intent_id: str
    tx_hash: Hash32
    block_number: BlockNumber
    block_hash: Hash32
    nonce: Annotated[int, Field(ge=0)]
    status: Literal[0, 1] = 1
    gas_used: Annotated[int, Field(ge=0)] = 0


class TxFailed(Message):
    kind: Literal["tx_failed"] = "tx_failed"
    intent_id: str
    reason: str
    permanent: bool


def intent_id(chain: str, contract: str, market: str, action: str) -> str:
    """The deterministic id of one on-chain action, so a repeated request is the same intent."""
    return f"{chain}:{contract.lower()}:{market.lower()}:{action}"


# --- data ----------------------------------------------------------------------------------


class DataQuery(Message):
    """Ask the price cache for the data of a market's spec; answered later to ``reply_to`` as
    ``DataAnswer`` or ``DataFailed`` with the same ``query_id``."""

    kind: Literal["data_query"] = "data_query"
    query_id: str = Field(min_length=1, max_length=256)
    spec: MarketSpec
    reply_to: str = Field(min_length=1)


class DataAnswer(Message):
    """Every raw page fetched for the query (the proof's evidence), the value they give, and the
    sources that agreed on it; ``evaluation``, when given, is ``evaluate(spec, responses)`` for
    the query's spec, done already by the price cache (ADR 0023)."""

    kind: Literal["data_answer"] = "data_answer"
    query_id: str
    responses: tuple[RawResponse, ...]
    value: Decimal
    sources: tuple[str, ...] = ()
    evaluation: Evaluation | None = None


class DataFailed(Message):
    kind: Literal["data_failed"] = "data_failed"
    query_id: str
    failure: FailureClass
    reason: str


# --- resolution ----------------------------------------------------------------------------


class ResolutionFailed(Message):
    """A resolver tells the scheduler that its market could not be worked, classified."""

    kind: Literal["resolution_failed"] = "resolution_failed"
    key: MarketKey
    failure: FailureClass
    reason: str


class ResolutionProgress(Message):
    """A resolver tells the scheduler that its market reached ``state``."""

    kind: Literal["resolution_progress"] = "resolution_progress"
    key: MarketKey
    state: str
    detail: dict[str, Any] = Field(default_factory=dict)


class OperatorAction(StrEnum):
    RETRY = "retry"
    CANCEL = "cancel"
    RESOLVE_NOW = "resolve_now"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    OVERRIDE = "override"


class OperatorCommand(Message):
    """An operator's act on one market, asked of the scheduler; always audited.

    ``override`` needs an ``outcome`` and a non-empty ``reason``.
    """

    kind: Literal["operator_command"] = "operator_command"
    action: OperatorAction
    key: MarketKey
    operator: str = Field(min_length=1, max_length=128)
    reason: str = Field(default="", max_length=1024)
    outcome: Literal[0, 1] | None = None


class CommandResult(Message):
    kind: Literal["command_result"] = "command_result"
    ok: bool
    state: str = ""
    error: str = ""


def _register_all() -> None:
    for model in list(globals().values()):
        if isinstance(model, type) and issubclass(model, Message) and model is not Message:
            register(model)


_register_all()
