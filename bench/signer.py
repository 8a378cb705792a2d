"""Confirmed transactions per second through the signer on anvil vs plain eth-account signing.

The signer side sends ``INTENTS`` intents (1-wei transfers) to a ``signer:dev`` in a real
``Runtime`` on a durable LMDB store, and times from the first ``SubmitTx`` to the last
``TxConfirmed`` (every intent: simulated, gas-estimated, priced, signed, persisted, broadcast in
batches, receipt fetched, block checked canonical, confirmation persisted and told). The
baseline signs the same transactions with ``eth_account.Account.sign_transaction`` and does
nothing else. Both sides are the best of three rounds (the signer's on a fresh anvil and store
each time; ``ratio_worst_round`` shows the spread). Goal: ``ratio = signer_per_s /
sign_only_per_s >= 0.5``. For reference:
``coincurve_tx_sign_per_s`` (the signer's own signing path) and ``raw_secp256k1_per_s``
(``coincurve.PrivateKey.sign_recoverable`` of a 32-byte digest).

    python -m bench signer
    python -c "from bench import signer; print(signer.run())"
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from coincurve import PrivateKey
from eth_account import Account

from actors.signer import Signer
from devnet.anvil import Anvil
from devnet.keys import OUTSIDER, RESOLVER
from protocol.messages import SubmitTx, TxConfirmed, TxFailed
from protocol.supervision import ChildSpec, SupervisorSpec
from protocol.tx_records import TxAttempt, attempts_prefix
from sources.evm import EvmClient
from sources.keys import Eip1559Tx, SigningKey
from storage import Store
from supervision import Runtime, SupervisedActor

INTENTS = 2_000
SIGNER_ROUNDS = 3
SIGN_ROUNDS = 3
RAW_SIGNATURES = 20_000
GOAL = 0.5
RESULTS = Path(__file__).resolve().parent / "results"


class _Collector(SupervisedActor):
    def init(self) -> None:
        self.done: dict[str, float] = self.services.extra["done"]

    def handle(self, message: Any) -> Any:
        if isinstance(message, TxConfirmed | TxFailed):
            self.done[message.intent_id] = time.perf_counter()
            return None
        return self.unhandled(message)


class _Chain:
    chain_id = 31337
    confirmations = 0
    max_fee_gwei = 500.0
    bump_after_blocks = 3
    gas_margin_pct = 20
    poll_s = 0.01


def _signer_run(anvil: Anvil, data: Path) -> tuple[float, list[TxAttempt], dict[str, Any]]:
    """Seconds from the first SubmitTx to the last TxConfirmed; the attempts; the snapshot."""
    key = SigningKey.from_hex(RESOLVER.private_key)
    intents = [
        SubmitTx(
            intent_id=f"bench:{n}",
            chain="dev",
            to=OUTSIDER.address,
            data=b"",
            value=1,
            reply_to="collector",
        )
        for n in range(INTENTS)
    ]
    done: dict[str, float] = {}
    tree = SupervisorSpec(
        children=(
            ChildSpec(id="collector", actor="collector"),
            ChildSpec(id="signer:dev", actor="signer", args={"chain": "dev", "max_batch": 1000}),
        )
    )
    evm = EvmClient([anvil.rpc_url], chain_id=31337, timeout_s=30.0)
    with Store.open(data) as store:
        extra = {
            "store": store,
            "evms": {"dev": evm},
            "signer_keys": {"dev": key},
            "chains": {"dev": _Chain()},
            "done": done,
        }
        with Runtime(
            tree, actor_types={"signer": Signer, "collector": _Collector}, extra=extra
        ) as rt:
            rt.wait_for(lambda: rt.state("signer:dev")["phase"] == "running", timeout=30)
            began = time.perf_counter()
            for msg in intents:
                rt.tell("signer:dev", msg)
            rt.wait_for(lambda: len(done) == INTENTS, timeout=300, interval=0.001)
            seconds = max(done.values()) - began
            state = rt.state("signer:dev")
        attempts = [a for _, a in store.items("txs", attempts_prefix("dev"), expect=TxAttempt)]
    evm.close()
    return seconds, attempts, state


def _eth_account_rate(txs: list[dict[str, Any]]) -> float:
    best = 0.0
    for _ in range(SIGN_ROUNDS):
        began = time.perf_counter()
        for tx in txs:
            Account.sign_transaction(tx, RESOLVER.private_key)
        best = max(best, len(txs) / (time.perf_counter() - began))
    return best


def _coincurve_tx_rate(txs: list[Eip1559Tx]) -> float:
    key = SigningKey.from_hex(RESOLVER.private_key)
    best = 0.0
    for _ in range(SIGN_ROUNDS):
        began = time.perf_counter()
        for tx in txs:
            key.sign_transaction(tx)
        best = max(best, len(txs) / (time.perf_counter() - began))
    return best


def _raw_rate() -> float:
    key = PrivateKey(bytes.fromhex(RESOLVER.private_key[2:]))
    digest = bytes(range(32))
    began = time.perf_counter()
    for _ in range(RAW_SIGNATURES):
        key.sign_recoverable(digest, hasher=None)
    return RAW_SIGNATURES / (time.perf_counter() - began)


def run() -> dict[str, Any]:
    rounds: list[float] = []
    for _ in range(SIGNER_ROUNDS):  # each on a fresh chain and store, as alike as possible
        with tempfile.TemporaryDirectory(prefix="bench-signer-") as tmp, Anvil() as anvil:
            seconds, attempts, state = _signer_run(anvil, Path(tmp) / "data")
        assert state["confirmed"] == INTENTS and state["nonce"] == INTENTS, state
        rounds.append(INTENTS / seconds)
    same = [  # the very transactions the signer signed, for the baseline
        Eip1559Tx(
            chain_id=31337,
            nonce=a.nonce,
            max_priority_fee_per_gas=a.fees.max_priority_fee_per_gas,
            max_fee_per_gas=a.fees.max_fee_per_gas,
            gas=a.gas_limit,
            to=OUTSIDER.address,
            value=1,
        )
        for a in attempts
    ]
    dicts = [
        {
            "type": 2,
            "chainId": t.chain_id,
            "nonce": t.nonce,
            "maxPriorityFeePerGas": t.max_priority_fee_per_gas,
            "maxFeePerGas": t.max_fee_per_gas,
            "gas": t.gas,
            "to": t.to,
            "value": t.value,
            "data": b"",
        }
        for t in same
    ]
    sign_only = _eth_account_rate(dicts)
    signer = max(rounds)
    return {
        "intents": INTENTS,
        "rounds": SIGNER_ROUNDS,
        "confirmed": state["confirmed"],
        "attempts": len(attempts),
        "bumps": state["bumps"],
        "rpc_errors": state["rpc_errors"],
        "signer_per_s": round(signer, 1),
        "signer_per_s_rounds": [round(r, 1) for r in rounds],
        "sign_only_per_s": round(sign_only, 1),
        "ratio": round(signer / sign_only, 3),
        "ratio_worst_round": round(min(rounds) / sign_only, 3),
        "goal_ratio": GOAL,
        "coincurve_tx_sign_per_s": round(_coincurve_tx_rate(same), 1),
        "raw_secp256k1_per_s": round(_raw_rate(), 1),
        "confirmations": _Chain.confirmations,
        "mining": "anvil automine",
        "durable_store": True,
        "python": platform.python_version(),
        "eth_account": version("eth-account"),
        "coincurve": version("coincurve"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "disk": tempfile.gettempdir(),
    }


def summary(result: dict[str, Any]) -> str:
    verdict = "meets" if result["ratio"] >= result["goal_ratio"] else "BELOW"
    return (
        f"signer: {result['signer_per_s']:,} confirmed tx/s through the signer vs "
        f"{result['sign_only_per_s']:,} eth-account signatures/s: ratio {result['ratio']} "
        f"({verdict} goal >= {result['goal_ratio']}; worst round {result['ratio_worst_round']}); "
        f"coincurve tx signing {result['coincurve_tx_sign_per_s']:,}/s, raw secp256k1 "
        f"{result['raw_secp256k1_per_s']:,}/s; load {result['load_average_1m']} on "
        f"{result['cpus']} CPUs"
    )


if __name__ == "__main__":
    outcome = run()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "signer.json").write_text(json.dumps(outcome, indent=2) + "\n")
    print(summary(outcome))
