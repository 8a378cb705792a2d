"""Command line: serve the simulator until SIGINT/SIGTERM.

    python -m devnet.hl_sim --data ../shared/fixtures/hyperliquid/cassettes --port 8090
    python -m devnet.hl_sim --generate BTC,ETH --seed 1 --fault-5xx 0.05 --port 0

The first line on stdout is the URL (``http://127.0.0.1:PORT``); a summary goes to stderr.
``--generate`` without ``--start``/``--end`` covers the last 7 days and the next day, so a demo
sees history and new candles appearing as time passes. Exit status: 0 after a signal, 2 on bad
arguments or data.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import Any

DAY_MS = 86_400_000


def _time_ms(text: str) -> int:
    """Milliseconds since the epoch, or an ISO 8601 time (UTC when no offset is given)."""
    if text.isdigit():
        return int(text)
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 1000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hl-sim", description="Hyperliquid info API simulator")
    p.add_argument(
        "--data", action="append", default=[], metavar="DIR", help="cassette directory (repeatable)"
    )
    p.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--generate", default="", metavar="COINS", help="e.g. BTC,ETH")
    p.add_argument("--start", type=_time_ms, help="generated range start (ms or ISO 8601)")
    p.add_argument("--end", type=_time_ms, help="generated range end (ms or ISO 8601)")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated series")
    p.add_argument("--user", default=None, help="address of the synthetic user's fills")
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--fault-5xx", type=float, default=0.0, metavar="P")
    p.add_argument("--fault-429", type=float, default=0.0, metavar="P")
    p.add_argument("--fault-malformed", type=float, default=0.0, metavar="P")
    p.add_argument("--fault-truncated", type=float, default=0.0, metavar="P")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--weight-limit", type=int, default=1200, help="weight per minute per client")
    p.add_argument(
        "--no-candle-retention",
        action="store_true",
        help="serve all candle history (5000 per page), not only the 5000 most recent",
    )
    return p


def build(args: argparse.Namespace) -> Any:
    """The simulator the arguments describe (not started)."""
    from devnet.hl_sim import Dataset, FaultConfig, HlSimulator, wall_ms

    ds = Dataset()
    for directory in args.data:
        ds = ds.merged(Dataset.from_cassettes(directory))
    coins = [c.strip() for c in args.generate.split(",") if c.strip()]
    if coins:
        now = wall_ms()
        start = args.start if args.start is not None else now - 7 * DAY_MS
        end = args.end if args.end is not None else now + DAY_MS
        ds = ds.merged(Dataset.generate(coins, start, end, args.seed, user=args.user))
    faults = FaultConfig(
        latency_ms=args.latency_ms,
        p_5xx=args.fault_5xx,
        p_429=args.fault_429,
        p_malformed=args.fault_malformed,
        p_truncated=args.fault_truncated,
        seed=args.fault_seed,
    )
    return HlSimulator(
        ds,
        host=args.host,
        port=args.port,
        faults=faults,
        weight_limit=args.weight_limit,
        candle_retention=None if args.no_candle_retention else 5000,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, serve, print the URL; return the exit status after SIGINT/SIGTERM."""
    args = _parser().parse_args(argv)
    try:
        sim = build(args)
        url = sim.start()
    except (ValueError, OSError, OverflowError) as exc:
        print(f"hl-sim: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        done.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(url, flush=True)
        print(f"hl-sim: serving {sim.dataset.summary()}", file=sys.stderr, flush=True)
        while not done.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
