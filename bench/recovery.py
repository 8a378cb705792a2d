"""Restart with 100,000 tracked markets: seconds until the scheduler is ready, and memory.

A data directory is filled with 100,000 markets (spec + waiting job) once; then a FRESH
interpreter opens it, starts the scheduler's part of the tree, and reports when the scheduler
answers (its jobs loaded and its due-time heap built) and its peak RSS. The baseline in the same
run is the same interpreter importing everything and opening the store without the tree, so the
figures separate the runner's recovery from Python's start-up. Goals: ``ready_s <= 3``,
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
REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
began = time.perf_counter()
from actors.scheduler import Scheduler
from protocol.supervision import ChildSpec, SupervisorSpec
from storage import Store
from supervision import ManualClock, Runtime
imported = time.perf_counter()
tree = SupervisorSpec(children=(
    ChildSpec(id="scheduler", actor="scheduler", args={"tick_s": 3600}),
    ChildSpec(id="resolvers", actor="supervisor", supervisor=SupervisorSpec(max_children=64)),
))
with Store.open(sys.argv[1]) as store:
    opened = time.perf_counter()
    if sys.argv[2] == "tree":
        with Runtime(tree, actor_types={"scheduler": Scheduler}, clock=ManualClock(0),
                     extra={"store": store}) as rt:
            state = rt.state("scheduler", timeout=120)
            ready = time.perf_counter()
            tracked = state["jobs"].get("waiting", 0)
    else:
        ready, tracked = opened, 0
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"import_s": imported - began, "ready_s": ready - imported,
                  "rss_mb": rss_mb, "tracked": tracked}))
"""


def _fill(directory: Path, markets: int) -> None:
    from devnet.keys import CREATOR
    from devnet.scenario import generated_specs
    from protocol.records import Job
    from protocol.spec import MarketKey
    from storage import Store, Txn

    specs = generated_specs(CREATOR.address, 64)
    with Store.open(directory, max_map_size=8 << 30) as store:
        for start in range(0, markets, 5_000):

            def batch(txn: Txn, start: int = start) -> None:
                for n in range(start, min(markets, start + 5_000)):
                    key = MarketKey(chain="dev", address=f"0x{n + 1:040x}")
                    spec = specs[n % len(specs)]
                    due = spec.window.t_end + 60.0
                    txn.put("markets", key.db_key(), spec)
                    txn.put("jobs", key.db_key(), Job(key=key, due_at=due, next_attempt_at=due))

            store.write(batch)


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
        _fill(directory, MARKETS)
        baseline = _measure(directory, "open")
        tree = _measure(directory, "tree")
    assert tree["tracked"] == MARKETS, tree
    return {
        "markets": MARKETS,
        "ready_s": round(tree["ready_s"], 3),
        "rss_mb": round(tree["rss_mb"], 1),
        "import_s": round(tree["import_s"], 3),
        "baseline_open_s": round(baseline["ready_s"], 3),
        "baseline_rss_mb": round(baseline["rss_mb"], 1),
        "goal_ready_s": 3.0,
        "goal_rss_mb": 300.0,
    }


def summary(result: dict[str, Any]) -> str:
    return (
        f"recovery: {result['markets']:,} markets ready in {result['ready_s']} s "
        f"(goal <= {result['goal_ready_s']}), peak RSS {result['rss_mb']} MB "
        f"(goal <= {result['goal_rss_mb']}; a bare open: {result['baseline_rss_mb']} MB)"
    )
