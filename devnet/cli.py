"""``oracle-runner devnet``: a local chain with the reference contracts, until Ctrl-C.

::

    $ oracle-runner devnet --port 8545 --dispute-window 60
    rpc_url       http://127.0.0.1:8545
    chain_id      31337
    oracle        0x5FbDB2315678afecb367f032d93F642f64180aa3
    ...

It starts anvil, deploys SimpleOracle and MarketFactory, authorises the RESOLVER dev account,
prints where everything is and the PUBLIC dev keys, and runs until SIGINT or SIGTERM, then stops
anvil. ``--json`` prints one JSON object instead. Exit status: 0 after a signal, 1 if anvil dies,
2 on a start-up error.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict
from types import FrameType
from typing import Any

from devnet.anvil import DEFAULT_CHAIN_ID, Anvil, AnvilError
from devnet.keys import DEV_ACCOUNTS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oracle-runner devnet", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=None, help="fixed port (default: a free one)")
    p.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID)
    p.add_argument("--block-time", type=float, default=None, help="seconds; default: automine")
    p.add_argument("--dispute-window", type=int, default=600, help="oracle dispute window, s")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--config-out",
        help="write a daemon configuration for this devnet to this TOML file "
        "(key from $ORACLE_RUNNER_DEVNET_KEY, Hyperliquid at --hl-url)",
    )
    p.add_argument("--hl-url", default="http://127.0.0.1:9100", help="for --config-out")
    return p


def _write_config(path: str, info: dict[str, Any], hl_url: str) -> None:
    """A daemon configuration for this devnet: ``oracle-runner run --config PATH``."""
    import tomli_w

    config = {
        "data_dir": "data-devnet",
        "chains": {
            "devnet": {
                "rpc_urls": [info["rpc_url"]],
                "chain_id": info["chain_id"],
                "factory": info["factory"],
                "oracle": info["oracle"],
                "start_block": info["block"],
                "confirmations": 1,
                "key": {"env": "ORACLE_RUNNER_DEVNET_KEY"},
            }
        },
        "hyperliquid": {"base_urls": [hl_url]},
        "limits": {"settle_delay_s": 5},
    }
    with open(path, "w", encoding="utf-8") as out:
        out.write(tomli_w.dumps(config))
    print(f"daemon configuration written to {path}; the resolver key is dev account 1")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from web3 import Web3

    from devnet.deploy import deploy

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    anvil = Anvil(chain_id=args.chain_id, port=args.port, block_time=args.block_time)
    try:
        anvil.start()
        w3 = Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 10}))
        info = {
            "rpc_url": anvil.rpc_url,
            "pid": anvil.pid,
            **asdict(deploy(w3, dispute_window=args.dispute_window)),
        }
        keys = [{"address": a.address, "private_key": a.private_key} for a in DEV_ACCOUNTS]
        if args.config_out:
            _write_config(args.config_out, info, args.hl_url)
        if args.json:
            print(json.dumps({**info, "dev_accounts": keys}), flush=True)
        else:
            for k, v in info.items():
                print(f"{k:<15} {v}")
            print("dev accounts (PUBLIC anvil test keys, never use them on a real chain):")
            for i, acct in enumerate(keys):
                print(f"  {i}  {acct['address']}  {acct['private_key']}")
            print("running; Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            if anvil.process is None or anvil.process.poll() is not None:
                print(f"anvil exited: {anvil.log_tail()}", file=sys.stderr)
                return 1
        return 0
    except (AnvilError, OSError) as exc:
        print(f"devnet: {exc}", file=sys.stderr)
        return 2
    finally:
        anvil.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
