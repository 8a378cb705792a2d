"""A signer in its own process, for SIGKILL tests: ``python -m tests.chaos.signer_proc ...``.

Runs a ``Runtime`` with ``signer:dev`` on ``--data`` against ``--rpc``, the key from the
environment variable ``SIGNER_KEY``, and submits ``--intents`` 1-wei transfers with fixed intent
ids (so every start asks for the same intents again, as a restarted requester would). It prints one
JSON object per line on stdout:

    {"event": "started", "pid": 123}
    {"event": "fired", "message": "signer_broadcast"}        a --delay-broadcast rule fired: the
                                                             attempts are persisted, not yet sent
    {"event": "confirmed", "intent": "...", "nonce": 0, "tx": "0x..."}
    {"event": "failed", "intent": "...", "reason": "..."}
    {"event": "done", "state": {...}}                        every intent answered (then it exits
                                                             with 0, if --exit-when-done)
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from protocol.messages import TxConfirmed, TxFailed
from protocol.supervision import FaultAction, FaultRule
from sources.evm import EvmClient
from sources.keys import SigningKey
from storage import Store
from supervision import FaultPlan
from tests.integration.test_signer_harness import (
    SIGNER,
    ChainCfg,
    Replies,
    signer_runtime,
    transfer_intents,
)

_print_lock = threading.Lock()


def emit(**event: Any) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


class PrintingReplies(Replies):
    def add(self, message: TxConfirmed | TxFailed, receiver: str = "requester") -> None:
        super().add(message, receiver)
        if isinstance(message, TxConfirmed):
            emit(
                event="confirmed", intent=message.intent_id, nonce=message.nonce, tx=message.tx_hash
            )
        else:
            emit(event="failed", intent=message.intent_id, reason=message.reason)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--rpc", required=True)
    p.add_argument("--intents", type=int, default=20)
    p.add_argument("--confirmations", type=int, default=0)
    p.add_argument("--poll", type=float, default=0.05)
    p.add_argument("--delay-broadcast", type=float, default=0.0)
    p.add_argument("--exit-when-done", action="store_true")
    p.add_argument("--timeout", type=float, default=60.0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    key = SigningKey.from_env("SIGNER_KEY")
    rules = []
    if args.delay_broadcast > 0:
        rules.append(
            FaultRule(
                actor=SIGNER,
                message="signer_broadcast",
                action=FaultAction.DELAY,
                delay_s=args.delay_broadcast,
            )
        )
    plan = FaultPlan(rules)
    replies = PrintingReplies()
    cfg = ChainCfg(confirmations=args.confirmations, poll_s=args.poll)
    intents = transfer_intents(args.intents)
    evm = EvmClient([args.rpc], chain_id=cfg.chain_id, timeout_s=5.0)
    with (
        Store.open(args.data) as store,
        signer_runtime(store, evm, key, cfg, faults=plan, replies=replies) as rt,
    ):
        emit(event="started")
        for msg in intents:
            rt.tell(SIGNER, msg)
        fired = 0

        def progress() -> bool:
            nonlocal fired
            for f in plan.fired[fired:]:
                emit(event="fired", message=f.message)
            fired = len(plan.fired)
            answered = set(replies.confirmed()) | set(replies.failed())
            return len(answered) == len(intents)

        rt.wait_for(progress, timeout=args.timeout, interval=0.01)
        emit(event="done", state=rt.state(SIGNER))
        if not args.exit_when_done:
            threading.Event().wait()
    evm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
