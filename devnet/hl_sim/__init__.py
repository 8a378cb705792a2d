"""A Hyperliquid info API simulator for tests and the demo.

    from devnet.hl_sim import Dataset, HlSimulator, ManualClock

    ds = Dataset.from_cassettes("../shared/fixtures/hyperliquid/cassettes")
    ds = ds.merged(Dataset.generate(["BTC"], start_ms, end_ms, seed=1))
    with HlSimulator(ds) as sim:          # 127.0.0.1, a free port, wall clock
        httpx.post(f"{sim.url}/info", json={"type": "allMids"})

Modules: ``dataset`` (what it knows), ``cassettes`` (vcrpy loading), ``generate`` / ``minutes``
(seeded series, exact aggregation), ``history`` / ``snapshots`` / ``handlers`` (answers),
``ratelimit``, ``faults``, ``clock``, ``server``, ``cli`` (``python -m devnet.hl_sim``).
"""

from devnet.hl_sim.clock import ManualClock, wall_ms
from devnet.hl_sim.dataset import Dataset
from devnet.hl_sim.faults import FaultConfig
from devnet.hl_sim.generate import DEMO_USER
from devnet.hl_sim.server import HlSimulator

__all__ = ["DEMO_USER", "Dataset", "FaultConfig", "HlSimulator", "ManualClock", "wall_ms"]
