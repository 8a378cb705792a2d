"""Restart with 100,000 tracked markets and a history: seconds until the stateful actors are ready.

A data directory is filled once with 100,000 markets waiting to be resolved (spec + job) and a
history of 100,000 markets already finalized (spec, finalized job, and their two confirmed
intents, ``commit`` and ``finalize``, each with its signed attempt). Then a FRESH interpreter
opens it, starts the scheduler and the chain's signer (the actors that rebuild state from LMDB
at start), and reports when both answer (the scheduler's jobs loaded and its heap built, the
signer's intents loaded) and its peak RSS (``VmHWM`` of the child's own process image; also
its anonymous and file-mapped resident memory at ready, the latter being LMDB pages it read).
The data is written as the actors write it, with the state indexes (``storage.indexes``), and
with the history's done intents past the signer's reorg watch no longer live. The signer's
node is a closed port: its start does not depend on the chain, and its first sync fails and
is retried later. The baseline in the
same run is the same interpreter importing everything and opening the store without the tree,
so the figures separate the runner's recovery from Python's start-up. Goals: ``ready_s <= 3``,
``rss_mb <= 300``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MARKETS = 100_000
WATCH_BLOCKS = 64
"""The signer's default reorg watch: the history's newest blocks stay watched."""
HISTORY = 100_000
"""Markets already finalized: their jobs, specs, two intents and two attempts each."""
REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time

def status():
    # this process image's own figures: ru_maxrss would carry over the peak of the process
    # that forked it (Linux keeps it across exec), here the filler's
    with open("/proc/self/status") as f:
        rows = (line.split(":", 1) for line in f)
        return {k: int(v.split()[0]) / 1024 for k, v in rows if k in WANTED}

WANTED = ("VmHWM", "RssAnon", "RssFile")
began = time.perf_counter()
from actors.scheduler import Scheduler
from actors.signer import Signer
from devnet.keys import RESOLVER
from protocol.supervision import ChildSpec, SupervisorSpec
from sources.evm import EvmClient
from sources.keys import SigningKey
from storage import Store
from supervision import ManualClock, Runtime

class Chain:
    chain_id, confirmations, max_fee_gwei, poll_s = 31337, 0, 500.0, 1.0

imported = time.perf_counter()
tree = SupervisorSpec(children=(
    ChildSpec(id="signer:dev", actor="signer", args={"chain": "dev"}),
    ChildSpec(id="scheduler", actor="scheduler", args={"tick_s": 3600}),
    ChildSpec(id="resolvers", actor="supervisor", supervisor=SupervisorSpec(max_children=64)),
))
extra = {"evms": {"dev": EvmClient(["http://127.0.0.1:9"], chain_id=31337, timeout_s=1.0)},
         "signer_keys": {"dev": SigningKey.from_hex(RESOLVER.private_key)},
         "chains": {"dev": Chain()}}
with Store.open(sys.argv[1]) as store:
    opened = time.perf_counter()
    if sys.argv[2] == "tree":
        with Runtime(tree, actor_types={"scheduler": Scheduler, "signer": Signer},
                     clock=ManualClock(0), extra={"store": store, **extra}) as rt:
            jobs = rt.state("scheduler", timeout=120)["jobs"]
            signer = rt.state("signer:dev", timeout=120)
            ready = time.perf_counter()
            at_ready = status()
            tracked, finalized = jobs.get("waiting", 0), jobs.get("finalized", 0)
            confirmed, watched = signer["confirmed"], signer["watched"]
    else:
        ready, tracked, finalized, confirmed, watched = opened, 0, 0, 0, 0
        at_ready = status()
print(json.dumps({"import_s": imported - began, "ready_s": ready - imported,
                  "rss_mb": status()["VmHWM"], "anon_mb": at_ready["RssAnon"],
                  "file_mb": at_ready["RssFile"], "tracked": tracked, "finalized": finalized,
                  "confirmed": confirmed, "watched": watched}))
"""


def _fill(directory: Path, markets: int, history: int) -> None:
    from devnet.keys import CREATOR, RESOLVER
    from devnet.scenario import generated_specs
    from protocol.records import Job, JobState
    from protocol.spec import MarketKey
    from protocol.tx_records import (
        Fees,
        Inclusion,
        IntentState,
        NonceState,
        TxAttempt,
        TxIntent,
        attempt_key,
        intent_key,
        nonce_key,
    )
    from storage import Store, Txn
    from storage.indexes import JOBS, intents_index

    INTENTS = intents_index("dev")

    specs = generated_specs(CREATOR.address, 64)
    oracle = "0x" + "0a" * 20
    fees = Fees(max_fee_per_gas=2 * 10**9, max_priority_fee_per_gas=10**9)

    deep: list[bytes] = []
    watched_from = (2 * history - 1) // 100 + 1 - WATCH_BLOCKS

    def market(txn: Txn, n: int, jobs: list[Any], intents: list[Any]) -> None:
        key = MarketKey(chain="dev", address=f"0x{n + 1:040x}")
        spec = specs[n % len(specs)]
        due = spec.window.t_end + 60.0
        txn.put("markets", key.db_key(), spec)
        if n < markets:
            jobs.append((key.db_key(), Job(key=key, due_at=due, next_attempt_at=due)))
            return
        done = Job(key=key, due_at=due, next_attempt_at=due, state=JobState.FINALIZED)
        jobs.append((key.db_key(), done))
        for seq, action in enumerate(("commit", "finalize")):
            nonce = 2 * (n - markets) + seq
            tx_hash = f"0x{nonce + 1:064x}"
            intent = TxIntent(
                intent_id=f"dev:{oracle}:{key.address}:{action}",
                chain="dev",
                to=oracle,
                data=bytes(100),
                state=IntentState.CONFIRMED,
                nonce=nonce,
                created_at=0.0,
                inclusion=Inclusion(
                    tx_hash=tx_hash,
                    block_number=nonce // 100 + 1,
                    block_hash=f"0x{nonce // 100 + 1:064x}",
                    status=1,
                    gas_used=60_000,
                ),
            )
            attempt = TxAttempt(
                intent_id=intent.intent_id,
                chain="dev",
                nonce=nonce,
                seq=0,
                tx_hash=tx_hash,
                raw=bytes(220),
                fees=fees,
                gas_limit=80_000,
                signed_at=0.0,
            )
            intents.append((intent_key("dev", intent.intent_id), intent))
            if intent.inclusion is not None and intent.inclusion.block_number <= watched_from:
                deep.append(intent_key("dev", intent.intent_id))
            txn.put("txs", attempt_key("dev", nonce, 0), attempt)

    with Store.open(directory, max_map_size=8 << 30) as store:
        total = markets + history
        for start in range(0, total, 5_000):

            def batch(txn: Txn, start: int = start) -> None:
                jobs: list[Any] = []
                intents: list[Any] = []
                for n in range(start, min(total, start + 5_000)):
                    market(txn, n, jobs, intents)
                JOBS.put_many(txn, jobs)  # the records with their indexes, as the actors write
                INTENTS.put_many(txn, intents)

            store.write(batch)
        counter = NonceState(chain="dev", address=RESOLVER.address, next_nonce=2 * history)
        store.put("txs", nonce_key("dev"), counter)
        # as a running signer leaves it: done intents deeper than its reorg watch are not live
        store.write(lambda txn: INTENTS.forget(txn, deep))


def _measure(directory: Path, mode: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(directory), mode],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=REPO / "bench") as tmp:
        directory = Path(tmp) / "data"
        _fill(directory, MARKETS, HISTORY)
        baseline = _measure(directory, "open")
        tree = _measure(directory, "tree")
        data_mb = (directory / "data.mdb").stat().st_size / 2**20
    assert tree["tracked"] == MARKETS, tree
    assert tree["finalized"] == HISTORY, tree
    assert tree["confirmed"] == 2 * HISTORY, tree
    assert tree["watched"] == 100 * WATCH_BLOCKS, tree  # 100 intents a block in the history
    return {
        "markets": MARKETS,
        "history_markets": HISTORY,
        "intents": 2 * HISTORY,
        "ready_s": round(tree["ready_s"], 3),
        "rss_mb": round(tree["rss_mb"], 1),
        "anon_mb_at_ready": round(tree["anon_mb"], 1),
        "file_mb_at_ready": round(tree["file_mb"], 1),
        "watched_intents": tree["watched"],
        "import_s": round(tree["import_s"], 3),
        "baseline_open_s": round(baseline["ready_s"], 3),
        "baseline_rss_mb": round(baseline["rss_mb"], 1),
        "data_mb": round(data_mb, 1),
        "goal_ready_s": 3.0,
        "goal_rss_mb": 300.0,
    }


def summary(result: dict[str, Any]) -> str:
    return (
        f"recovery: {result['markets']:,} markets (and {result['history_markets']:,} finalized, "
        f"{result['intents']:,} intents) ready in {result['ready_s']} s "
        f"(goal <= {result['goal_ready_s']}), peak RSS {result['rss_mb']} MB "
        f"(goal <= {result['goal_rss_mb']}; a bare open: {result['baseline_rss_mb']} MB)"
    )
