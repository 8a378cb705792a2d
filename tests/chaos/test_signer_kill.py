"""SIGKILL a signer process between persisting and broadcasting, between broadcasting and the
receipt, and at random moments; after a restart on the same data directory nothing is lost,
nothing is mined twice and the nonces have no gap."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devnet.anvil import REPO_ROOT, Anvil, pid_alive
from devnet.keys import RESOLVER
from storage import Store
from supervision import wait_for
from tests.integration.test_signer_harness import (
    assert_gapless,
    signer_txs,
    stored_attempts,
    stored_intents,
    txpool_pending,
)

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.timeout(120)]

INTENTS = 30


class SignerProcess:
    """``tests.chaos.signer_proc`` as a child process; its JSON lines arrive in ``events``."""

    def __init__(self, data: Path, rpc_url: str, *options: str) -> None:
        env = {**os.environ, "SIGNER_KEY": RESOLVER.private_key, "PYTHONPATH": str(REPO_ROOT)}
        cmd = [sys.executable, "-m", "tests.chaos.signer_proc", "--data", str(data)]
        cmd += ["--rpc", rpc_url, "--intents", str(INTENTS), *options]
        self.stderr = open(data.parent / f"signer-{time.monotonic_ns()}.err", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.put(json.loads(line))

    def wait_event(self, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                event = self.events.get(timeout=max(0.01, left))
            except queue.Empty:
                event = None
            if event is not None:
                self.seen.append(event)
                if event["event"] == kind:
                    return event
            if left <= 0:
                raise AssertionError(f"no {kind!r} event within {timeout}s: {self.stderr_tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.stderr.close()

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-3000:]


@pytest.fixture
def signer_process(tmp_path: Path) -> Iterator[Callable[..., SignerProcess]]:
    """Starts signer processes; each is SIGKILLed by PID at teardown if still alive."""
    started: list[SignerProcess] = []

    def start(rpc_url: str, *options: str) -> SignerProcess:
        proc = SignerProcess(tmp_path / "data", rpc_url, *options)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
    assert not [p for p in started if pid_alive(p.proc.pid)], "a signer process outlived its test"


def check_ledger(anvil: Anvil, data: Path, confirmed: dict[str, dict[str, Any]]) -> None:
    """Every intent confirmed once, by a persisted attempt, at gapless nonces."""
    mined = signer_txs(anvil.rpc_url, RESOLVER.address)
    assert_gapless(mined, INTENTS)
    assert len(confirmed) == INTENTS
    assert {h for _, h, _ in mined} == {e["tx"] for e in confirmed.values()}
    with Store.open(data) as store:
        attempts = {a.tx_hash for a in stored_attempts(store)}
        assert {h for _, h, _ in mined} <= attempts
        assert {i.state.value for i in stored_intents(store).values()} == {"confirmed"}


def run_to_done(proc: SignerProcess) -> dict[str, dict[str, Any]]:
    proc.wait_event("done", timeout=60)
    assert proc.proc.wait(timeout=20) == 0, proc.stderr_tail()
    return {e["intent"]: e for e in proc.seen if e["event"] == "confirmed"}


def test_kill_between_persist_and_broadcast(
    anvil: Anvil, signer_process: Callable[..., SignerProcess], tmp_path: Path
) -> None:
    first = signer_process(anvil.rpc_url, "--delay-broadcast", "30")
    first.wait_event("fired")  # signed and persisted; the broadcast is held
    first.kill()
    assert txpool_pending(anvil.rpc_url) == 0 and anvil.block_number() == 0  # nothing went out
    with Store.open(tmp_path / "data") as store:
        persisted = stored_attempts(store)  # the first burst (all or some of the intents)
        assert persisted and [a.nonce for a in persisted] == list(range(len(persisted)))
    confirmed = run_to_done(signer_process(anvil.rpc_url, "--exit-when-done"))
    check_ledger(anvil, tmp_path / "data", confirmed)
    with Store.open(tmp_path / "data") as store:
        after = stored_attempts(store)
        assert after[: len(persisted)] == persisted  # the same bytes were sent, no re-signing
        assert len(after) == INTENTS


def test_kill_between_broadcast_and_receipt(
    anvil: Anvil, signer_process: Callable[..., SignerProcess], tmp_path: Path
) -> None:
    anvil.set_automine(False)
    first = signer_process(anvil.rpc_url, "--confirmations", "1")
    first.wait_event("started")
    wait_for(lambda: txpool_pending(anvil.rpc_url) >= INTENTS, timeout=30, interval=0.02)
    first.kill()
    anvil.mine(1)  # everything it sent is mined while it is dead
    assert anvil.block_number() == 1
    anvil.set_interval_mining(1)
    confirmed = run_to_done(
        signer_process(anvil.rpc_url, "--confirmations", "1", "--exit-when-done")
    )
    check_ledger(anvil, tmp_path / "data", confirmed)


@pytest.mark.parametrize("seed", [7])
def test_kill_at_random_moments(
    anvil: Anvil, signer_process: Callable[..., SignerProcess], tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    anvil.set_automine(False)
    anvil.set_interval_mining(1)
    for _ in range(5):
        proc = signer_process(anvil.rpc_url, "--confirmations", "1")
        proc.wait_event("started")
        time.sleep(rng.uniform(0.0, 1.5))  # a random moment in the signer's life, not a wait
        proc.kill()
    confirmed = run_to_done(
        signer_process(anvil.rpc_url, "--confirmations", "1", "--exit-when-done")
    )
    check_ledger(anvil, tmp_path / "data", confirmed)
