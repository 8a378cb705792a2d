"""A local anvil chain as a context manager; it never outlives its owner.

::

    with Anvil(chain_id=31337) as anvil:          # on a free 127.0.0.1 port (or port=8545)
        anvil.rpc_url                             # "http://127.0.0.1:PORT"
        anvil.mine(3)
        snap = anvil.snapshot(); ...; anvil.revert(snap)
        anvil.increase_time(3600)                 # and mines one block, so the time is visible
        anvil.reorg(2)                            # replaces the last 2 blocks (anvil_reorg)
    # here the process is gone (terminate, then kill, by PID)

The binary is ``node_modules/.bin/anvil`` of the repository (``npm ci`` / ``make setup``).
Mining: ``block_time=None`` (default) automines one block per transaction; ``block_time=S``
mines every S seconds; ``no_mining=True`` mines only on ``mine()``.

Stopping: ``stop()`` (also ``__exit__``), an ``atexit`` guard for anything still running, and on
Linux ``PR_SET_PDEATHSIG`` so that anvil dies with the thread that started it even if this process
is SIGKILLed. That signal fires when the *starting thread* exits, so it is set only when anvil is
started from the main thread (override with ``die_with_parent``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
ANVIL_BIN = REPO_ROOT / "node_modules" / ".bin" / "anvil"
DEFAULT_CHAIN_ID = 31337

_LIVE: set[Anvil] = set()
_LIVE_LOCK = threading.Lock()


PRUNE_HISTORY = 512
"""States anvil keeps (in memory; none on disk). Each is a whole copy of the state: with ten
thousand market contracts deployed, 512 of them outgrow 24 GB (anvil was OOM-killed so in
``bench burst``); pass a smaller ``prune_history`` for such a chain."""


class AnvilError(RuntimeError):
    """anvil is missing, did not start, or refused a devnet RPC call."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller retries on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (a reaped child does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def anvil_binary() -> Path:
    """The pinned anvil binary, or ``AnvilError`` telling how to install it."""
    if not ANVIL_BIN.exists():
        raise AnvilError(f"anvil not found at {ANVIL_BIN}: run `make setup` (or `npm ci`) first")
    return ANVIL_BIN


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec: no allocation here
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Anvil:
    """One anvil process on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        *,
        chain_id: int = DEFAULT_CHAIN_ID,
        port: int | None = None,
        block_time: float | None = None,
        no_mining: bool = False,
        base_fee: int | None = None,
        accounts: int = 10,
        start_timeout_s: float = 15.0,
        stop_timeout_s: float = 5.0,
        die_with_parent: bool | None = None,
        extra_args: tuple[str, ...] = (),
        prune_history: int = PRUNE_HISTORY,
    ) -> None:
        self.chain_id = chain_id
        self.block_time = block_time
        self.no_mining = no_mining
        self.base_fee = base_fee
        self.accounts = accounts
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.die_with_parent = die_with_parent
        self.extra_args = extra_args
        self.prune_history = prune_history
        self.fixed_port = port
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._http: httpx.Client | None = None
        self._ids = 0

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise AnvilError("anvil is not running")
        return self.process.pid

    def start(self) -> Anvil:
        """Start anvil and wait until it answers ``eth_chainId``; retries a port race twice."""
        if self.process is not None:
            raise AnvilError("anvil already started")
        self._http = httpx.Client(timeout=10.0)
        try:
            for attempt in range(1 if self.fixed_port else 3):
                try:
                    self._start_once(self.fixed_port or free_port())
                    break
                except AnvilError as exc:
                    self._kill()
                    if "address already in use" not in str(exc).lower() or attempt == 2:
                        raise
        except BaseException:
            self.stop()
            raise
        with _LIVE_LOCK:
            _LIVE.add(self)
        return self

    def _args(self, port: int) -> list[str]:
        args = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port), "--silent"]
        args += ["--chain-id", str(self.chain_id), "--accounts", str(self.accounts)]
        # keep recent states in memory only: without this anvil spills every older state to
        # ~/.foundry/anvil/tmp (16 MB each with 10,000 markets) and never removes a killed
        # anvil's files; 512 states is far deeper than any reorg or read the project makes
        args += ["--prune-history", str(self.prune_history)]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        if self.no_mining:
            args.append("--no-mining")
        if self.base_fee is not None:
            args += ["--block-base-fee-per-gas", str(self.base_fee)]
        return args + list(self.extra_args)

    def _start_once(self, port: int) -> None:
        self.port = port
        self._log = tempfile.TemporaryFile(prefix="anvil-")  # noqa: SIM115 - closed in _kill
        die = self.die_with_parent
        if die is None:
            die = threading.current_thread() is threading.main_thread()
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
            self._args(port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if die and sys.platform == "linux" else None,  # noqa: PLW1509
        )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AnvilError(f"anvil exited with {self.process.returncode}: {self.log_tail()}")
            try:
                got = int(self._ready_probe(), 16)
            except (httpx.HTTPError, AnvilError, ValueError):
                time.sleep(0.02)
                continue
            if got != self.chain_id:
                raise AnvilError(f"anvil answers chain id {got}, expected {self.chain_id}")
            return
        raise AnvilError(
            f"anvil did not answer within {self.start_timeout_s}s on {self.rpc_url}: "
            f"{self.log_tail()}"
        )

    def _ready_probe(self) -> str:
        body = {"jsonrpc": "2.0", "id": 0, "method": "eth_chainId", "params": []}
        assert self._http is not None
        return str(self._http.post(self.rpc_url, json=body, timeout=1.0).json()["result"])

    def log_tail(self, limit: int = 2000) -> str:
        """The end of anvil's combined stdout/stderr (for error messages)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return str(self._log.read().decode(errors="replace")[-limit:].strip() or "(no output)")

    def stop(self) -> None:
        """Terminate anvil, then kill it if it has not exited within ``stop_timeout_s``."""
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self._kill()
        if self._http is not None:
            self._http.close()
            self._http = None

    def _kill(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=self.stop_timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- RPC helpers -----------------------------------------------------------------------

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call to this anvil; a JSON-RPC error raises ``AnvilError``."""
        if self._http is None:
            raise AnvilError("anvil is not running")
        self._ids += 1
        body = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": list(params)}
        reply = self._http.post(self.rpc_url, json=body)
        reply.raise_for_status()
        data = reply.json()
        if "error" in data:
            raise AnvilError(f"{method} failed: {data['error']}")
        return data.get("result")

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def block_hash(self, number: int) -> str | None:
        """The hash of block ``number``, or None if there is no such block."""
        block = self.rpc("eth_getBlockByNumber", hex(number), False)
        return None if block is None else str(block["hash"])

    def snapshot(self) -> str:
        """Snapshot the chain state; ``revert(id)`` returns to it (once: the id is consumed)."""
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        if not self.rpc("evm_revert", snapshot_id):
            raise AnvilError(f"evm_revert({snapshot_id}) refused: unknown or used snapshot")

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def set_automine(self, enabled: bool) -> None:
        self.rpc("evm_setAutomine", enabled)

    def set_interval_mining(self, seconds: int) -> None:
        """Mine every ``seconds`` (0 turns interval mining off)."""
        self.rpc("evm_setIntervalMining", seconds)

    def set_next_block_base_fee(self, wei: int) -> None:
        self.rpc("anvil_setNextBlockBaseFeePerGas", hex(wei))

    def set_next_block_timestamp(self, timestamp: int) -> None:
        self.rpc("evm_setNextBlockTimestamp", timestamp)

    def increase_time(self, seconds: int, *, mine: bool = True) -> None:
        """Move chain time forward; with ``mine`` a block is mined so that views see the time."""
        self.rpc("evm_increaseTime", seconds)
        if mine:
            self.mine(1)

    def reorg(self, depth: int) -> None:
        """Replace the last ``depth`` blocks with new empty ones (``anvil_reorg``, same height).

        The transactions of the replaced blocks are dropped, and the new blocks have new hashes.
        """
        self.rpc("anvil_reorg", depth, [])

    def set_balance(self, address: str, wei: int) -> None:
        self.rpc("anvil_setBalance", address, hex(wei))

    def drop_all_transactions(self) -> None:
        """Empty the mempool (a stuck transaction disappears)."""
        self.rpc("anvil_dropAllTransactions")


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for anvil in live:
        with contextlib.suppress(Exception):
            anvil.stop()
