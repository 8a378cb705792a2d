"""What the signer's tests share: a runtime with the signer and a recording requester, intents,
and reading back what the chain and LMDB hold. (Its own few tests check the harness itself.)

::

    with signer_runtime(store, evm, key, ChainCfg(confirmations=1)) as rt:
        for msg in commit_intents(deployment.oracle, 100):
            rt.tell("signer:dev", msg)
        replies = rt.services.extra["replies"]
        rt.wait_for(lambda: replies.confirmed_count() == 100, timeout=30)
    mined = signer_txs(anvil.rpc_url, RESOLVER.address)       # [(nonce, hash, block), ...]
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from actors.signer import Signer
from devnet.anvil import Anvil
from devnet.keys import OUTSIDER
from protocol.messages import SubmitTx, TxConfirmed, TxFailed
from protocol.supervision import ChildSpec, Intensity, SupervisorSpec
from protocol.tx_records import (
    IntentState,
    TxAttempt,
    TxIntent,
    attempts_prefix,
    intent_key,
    intents_prefix,
)
from sources.evm import EvmClient
from sources.keys import SigningKey
from sources.oracle import OracleClient
from storage import Database, Store
from storage.indexes import intents_index
from supervision import Clock, FaultPlan, Runtime, SupervisedActor

CHAIN = "dev"
SIGNER = f"signer:{CHAIN}"
REQUESTER = "requester"


@dataclass
class ChainCfg:
    """The attributes the signer reads from ``services.extra["chains"][chain]``."""

    chain_id: int = 31337
    confirmations: int = 1
    max_fee_gwei: float = 500.0
    bump_after_blocks: int = 3
    gas_margin_pct: int = 20
    poll_s: float = 0.05
    bundle_max: int = 1


class Replies:
    """Every ``TxConfirmed``/``TxFailed`` the requester got, in order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.all: list[TxConfirmed | TxFailed] = []
        self.receivers: list[str] = []
        """The registered name that received each message of ``all``."""

    def add(self, message: TxConfirmed | TxFailed, receiver: str = REQUESTER) -> None:
        with self._lock:
            self.all.append(message)
            self.receivers.append(receiver)

    def received_by(self, receiver: str) -> list[TxConfirmed | TxFailed]:
        with self._lock:
            return [m for m, r in zip(self.all, self.receivers, strict=True) if r == receiver]

    def snapshot(self) -> list[TxConfirmed | TxFailed]:
        with self._lock:
            return list(self.all)

    def confirmed(self) -> dict[str, TxConfirmed]:
        """The last confirmation per intent id."""
        return {m.intent_id: m for m in self.snapshot() if isinstance(m, TxConfirmed)}

    def failed(self) -> dict[str, TxFailed]:
        return {m.intent_id: m for m in self.snapshot() if isinstance(m, TxFailed)}

    def confirmed_count(self) -> int:
        return len(self.confirmed())


class Requester(SupervisedActor):
    """Records what the signer tells it into ``services.extra["replies"]``."""

    def handle(self, message: Any) -> Any:
        match message:
            case TxConfirmed() | TxFailed():
                self.services.extra["replies"].add(message, self.name)
                return None
        return self.unhandled(message)


def signer_tree(args: dict[str, Any] | None = None) -> SupervisorSpec:
    """``requester``, ``requester2`` (both record into the same ``Replies``) and ``signer:dev``."""
    return SupervisorSpec(
        intensity=Intensity(max_restarts=20, period_s=5),
        children=(
            ChildSpec(id=REQUESTER, actor="requester"),
            ChildSpec(id=f"{REQUESTER}2", actor="requester"),
            ChildSpec(id=SIGNER, actor="signer", args={"chain": CHAIN, **(args or {})}),
        ),
    )


@contextmanager
def signer_runtime(
    store: Store,
    evm: EvmClient,
    key: SigningKey,
    cfg: ChainCfg,
    *,
    clock: Clock | None = None,
    faults: FaultPlan | None = None,
    args: dict[str, Any] | None = None,
    replies: Replies | None = None,
) -> Iterator[Runtime]:
    """A started runtime: ``requester`` and ``signer:dev`` on ``store`` and ``evm``."""
    extra = {
        "store": store,
        "evms": {CHAIN: evm},
        "signer_keys": {CHAIN: key},
        "chains": {CHAIN: cfg},
        "replies": replies or Replies(),
    }
    rt = Runtime(
        signer_tree(args),
        actor_types={"signer": Signer, "requester": Requester},
        clock=clock,
        faults=faults,
        extra=extra,
        redact=key.redact,
    )
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


# --- intents -------------------------------------------------------------------------------


def market_address(n: int) -> str:
    return f"0x{0xC0FFEE00000000 + n:040x}"


def commit_intents(oracle: str, count: int, start: int = 0) -> list[SubmitTx]:
    """``SimpleOracle.commit`` on ``count`` distinct (non-existent) markets, one intent each."""
    calls = OracleClient(None, oracle)  # type: ignore[arg-type]  # calldata only, no reads
    out = []
    for n in range(start, start + count):
        market = market_address(n)
        data = calls.commit_call(market, 1, n.to_bytes(32, "big"))
        out.append(
            SubmitTx(
                intent_id=f"{CHAIN}:{oracle.lower()}:{market}:commit",
                chain=CHAIN,
                to=oracle,
                data=data,
                reply_to=REQUESTER,
            )
        )
    return out


def transfer_intents(count: int, start: int = 0, to: str = OUTSIDER.address) -> list[SubmitTx]:
    """Plain 1-wei transfers, one intent each."""
    return [
        SubmitTx(
            intent_id=f"{CHAIN}:transfer:{n}",
            chain=CHAIN,
            to=to,
            data=b"",
            value=1,
            reply_to=REQUESTER,
        )
        for n in range(start, start + count)
    ]


# --- reading back --------------------------------------------------------------------------


def rpc(url: str, method: str, *params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    reply = httpx.post(url, json=body, timeout=10.0).json()
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def signer_txs(url: str, sender: str, first_block: int = 0) -> list[tuple[int, str, int]]:
    """``(nonce, tx hash, block)`` of every transaction from ``sender`` on the canonical chain."""
    head = int(rpc(url, "eth_blockNumber"), 16)
    found: list[tuple[int, str, int]] = []
    numbers = list(range(first_block, head + 1))
    with httpx.Client(timeout=30.0) as http:
        for start in range(0, len(numbers), 200):
            body = [
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "eth_getBlockByNumber",
                    "params": [hex(n), True],
                }
                for n in numbers[start : start + 200]
            ]
            for item in http.post(url, json=body).json():
                block = item["result"]
                for tx in block["transactions"]:
                    if tx["from"].lower() == sender.lower():
                        found.append((int(tx["nonce"], 16), tx["hash"], int(block["number"], 16)))
    return sorted(found)


def assert_gapless(mined: list[tuple[int, str, int]], count: int) -> None:
    """Exactly nonces 0..count-1, each mined once."""
    nonces = [n for n, _, _ in mined]
    assert nonces == list(range(count)), f"nonces not gapless/unique: {_summary(nonces)}"


def _summary(nonces: list[int]) -> str:
    dupes = sorted({n for n in nonces if nonces.count(n) > 1})
    missing = sorted(set(range(max(nonces, default=-1) + 1)) - set(nonces))
    return f"{len(nonces)} txs, duplicates {dupes[:10]}, missing {missing[:10]}"


def stored_intents(store: Store) -> dict[str, TxIntent]:
    return {i.intent_id: i for _, i in store.items("txs", intents_prefix(CHAIN), expect=TxIntent)}


def stored_attempts(store: Store) -> list[TxAttempt]:
    return [a for _, a in store.items("txs", attempts_prefix(CHAIN), expect=TxAttempt)]


def assert_index_exact(store: Store) -> dict[str, int]:
    """The intent index agrees with a full scan: its counts by state, and every queued or
    pending intent listed live (done ones may have left it, past the reorg watch); the counts."""
    index = intents_index(CHAIN)
    records = stored_intents(store)
    scanned: dict[str, int] = {}
    for intent in records.values():
        scanned[intent.state.value] = scanned.get(intent.state.value, 0) + 1
    assert index.counts(store) == scanned
    live = set(index.live_keys(store))
    in_flight = {
        intent_key(CHAIN, i)
        for i, r in records.items()
        if r.state in (IntentState.QUEUED, IntentState.PENDING)
    }
    assert in_flight <= live
    assert live <= {intent_key(CHAIN, i) for i in records}
    return scanned


def txpool_pending(url: str) -> int:
    return int(rpc(url, "txpool_status")["pending"], 16)


# --- the harness's own checks ----------------------------------------------------------------


@pytest.mark.timeout(30)
def test_commit_intents_are_distinct_and_deterministic() -> None:
    oracle = "0x" + "ab" * 20
    first, again = commit_intents(oracle, 5), commit_intents(oracle, 5)
    assert first == again
    assert len({m.intent_id for m in first}) == 5
    assert len({m.data for m in first}) == 5


@pytest.mark.parametrize("count", [0, 3])
@pytest.mark.timeout(30)
def test_assert_gapless(count: int) -> None:
    assert_gapless([(n, "0x", 1) for n in range(count)], count)
    with pytest.raises(AssertionError):
        assert_gapless([(0, "0x", 1), (0, "0x", 2)], 2)


# --- faults on disk and on chain ---------------------------------------------------------


def put_garbage(store: Store, db: Database, key: bytes) -> None:
    """Bytes that decode as no model, under ``key``: a value corrupted on disk."""
    store.write(lambda txn: txn.raw.put(key, b"\x93garbage", db=txn.dbi(db)))


def spoil_intent(store: Store, intent_id: str) -> None:
    """The signer's record of ``intent_id`` no longer decodes."""
    put_garbage(store, "txs", intent_key(CHAIN, intent_id))


def mine_seen(rt: Runtime, anvil: Anvil, blocks: int) -> None:
    """Mine ``blocks`` blocks one at a time, each seen by the signer as its head."""
    for _ in range(blocks):
        head = anvil.block_number() + 1
        anvil.mine(1)
        rt.wait_for(lambda: rt.state(SIGNER)["head"] >= head, timeout=10)  # noqa: B023
