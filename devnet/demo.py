"""``oracle-runner demo``: the whole job on a devnet, from the recorded Hyperliquid data.

1. anvil starts at ``REPLAY_NOW`` (July 2023, when the fixtures were recorded) and mines a block
   a second; the contracts are deployed with a short dispute window and the runner's key allowed;
2. the Hyperliquid simulator serves the fixtures (or ``--hl-data DIR``);
3. the markets are created on chain: one of every supported subject/window pair (or the
   ``--scenario`` file), plus ``--markets N`` generated ones;
4. the daemon runs in-process with its clock at the same offset as the chain, and the demo
   shows its progress until every market is finalized (exit 0) or the time runs out (exit 1);
5. a table of the results is printed, and ``--report FILE`` gets them as JSON.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from devnet.environment import Devnet
from devnet.keys import CREATOR
from devnet.scenario import REPLAY_NOW, default_specs, generated_specs, load_scenario
from ops.daemon import Daemon
from protocol.records import Job, JobState, Resolution
from protocol.spec import MarketKey, MarketSpec
from storage import Store

DISPUTE_WINDOW_S = 5
TERMINAL = (JobState.FINALIZED, JobState.DEAD, JobState.PARKED, JobState.CANCELLED)


@dataclass
class DemoOptions:
    scenario: str | None = None
    hl_data: str | None = None
    report: str | None = None
    markets: int = 0
    timeout_s: float = 300.0
    data_dir: str | None = None


def _specs(options: DemoOptions) -> list[MarketSpec]:
    creator = CREATOR.address
    if options.scenario:
        specs = load_scenario(options.scenario, creator)
    else:
        specs = default_specs(creator, live_t_end=REPLAY_NOW + 30)
    return specs + generated_specs(creator, options.markets)


def _status(store: Store) -> tuple[Counter[str], int]:
    """Markets by where they are (a resolver's stage while worked), and how many are done."""
    stages = {key: res.stage.value for key, res in store.items("resolutions", expect=Resolution)}
    jobs = [(key, job) for key, job in store.items("jobs", expect=Job)]
    where = Counter(
        stages.get(key, "DUE") if job.state is JobState.RUNNING else job.state.value
        for key, job in jobs
    )
    return where, sum(job.state in TERMINAL for _, job in jobs)


def _rows(store: Store, keys: list[MarketKey]) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        spec = store.get("markets", key.db_key(), MarketSpec)
        job = store.get("jobs", key.db_key(), Job)
        res = store.get("resolutions", key.db_key(), Resolution)
        rows.append(
            {
                "market": key.address,
                "spec": spec.model_dump(mode="json") if spec else None,
                "state": job.state.value if job else "undiscovered",
                "last_error": job.last_error if job else "",
                "value": res.value if res else "",
                "outcome": res.outcome if res else None,
                "data_hash": res.data_hash if res else "",
                "commit_tx": res.commit_tx if res else "",
                "finalize_tx": res.finalize_tx if res else "",
            }
        )
    return rows


def _window_text(window: dict[str, Any]) -> str:
    """``SUM 05-21 21:00 +4h`` / ``AT 05-22 19:00``: short enough for an 80-column terminal."""
    if not window:
        return ""
    start, end = int(window["t_start"]), int(window["t_end"])
    kind = {"SNAPSHOT_AT": "AT", "WINDOW_SUM": "SUM", "WINDOW_COUNT": "COUNT"}[window["kind"]]
    stamp = time.strftime("%m-%d %H:%M", time.gmtime(start if kind != "AT" else end))
    if kind == "AT":
        return f"{kind} {stamp}"
    hours = (end - start) / 3600
    return f"{kind} {stamp} +{hours:g}h"


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="markets (times UTC, 2023)")
    for column in ("market", "subject", "window", "value", "outcome", "commit", "finalize"):
        table.add_column(column, overflow="fold")
    for row in rows:
        spec = row["spec"] or {}
        subject = spec.get("subject", {})
        window = spec.get("window", {})
        outcome = {1: "YES", 0: "NO"}.get(row["outcome"], row["state"])
        table.add_row(
            row["market"][:8] + "…",
            f"{subject.get('metric_id') or 'price'} {subject.get('token_identifier', '')[:10]}",
            _window_text(window),
            row["value"] or row["last_error"][:40],
            outcome,
            (row["commit_tx"] or "-")[:8],
            (row["finalize_tx"] or "-")[:8],
        )
    return table


def run(options: DemoOptions) -> int:
    console = Console()
    specs = _specs(options)
    data_dir = Path(options.data_dir or tempfile.mkdtemp(prefix="oracle-runner-demo-"))
    with Devnet.start(dispute_window_s=DISPUTE_WINDOW_S, hl_data=options.hl_data) as net:
        console.print(
            f"anvil {net.anvil.rpc_url}  oracle {net.deployment.oracle}  "
            f"factory {net.deployment.factory}\n"
            f"Hyperliquid simulator {net.sim.url}  data {data_dir}"
        )
        keys = net.create_markets(specs)
        console.print(f"{len(keys)} markets created")
        daemon = Daemon(net.config(data_dir)).start()
        finished = False
        try:
            assert daemon.store is not None
            finished = _follow(console, daemon.store, len(keys), options.timeout_s)
            rows = _rows(daemon.store, keys)
        finally:
            daemon.stop()
    console.print(_table(rows))
    if options.report:
        Path(options.report).write_text(json.dumps({"markets": rows}, indent=2))
        console.print(f"report written to {options.report}")
    finalized = sum(row["state"] == "finalized" for row in rows)
    console.print(f"{finalized} of {len(rows)} markets finalized")
    return 0 if finished and finalized == len(rows) else 1


def _follow(console: Console, store: Store, total: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("resolving", total=total)
        while time.monotonic() < deadline:
            stages, done = _status(store)
            summary = ", ".join(f"{name} {count}" for name, count in sorted(stages.items()))
            progress.update(task, completed=done, description=summary or "discovering")
            if done == total:
                return True
            time.sleep(0.5)  # a display refresh, not a synchronisation
    return False
