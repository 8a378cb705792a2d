"""Durable checkpoints per second through ``storage`` vs raw durable LMDB commits, same disk.

``python -m bench storage``. Three measurements, all with fsync on every commit:

- ``raw``: plain py-lmdb, one ``put`` of a bytes value per write transaction;
- ``checkpoint``: ``Checkpoints.save`` of a small pydantic state (codec-encoded to the same size
  as the raw value), one after the other from one thread: the store's whole per-write overhead;
- ``burst``: ``burst_threads`` threads saving checkpoints at once, which group commit folds into
  fewer transactions (``burst_transactions``); ``burst_vs_raw`` compares it with raw commits
  made in turns with the bursts (``burst_raw_per_s``), one raw commit per write.

Raw and checkpoint run the same number of commits, taking turns in chunks of ``CHUNK`` so that
drift in the disk's fsync latency (other work on the machine) hits both alike. The number of
commits is calibrated to keep the whole run near ``BUDGET_S`` seconds.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import lmdb

from protocol.codec import Codec
from protocol.spec import Frozen
from storage import Checkpoints, Store

BUDGET_S = 20.0
"""Target run time; the phases stop early (after a minimum) if the disk slows down."""
CHUNK = 25
"""Commits per turn; raw and checkpoint take turns until each has made ``commits``."""
BURST_THREADS = 8
BURST_PER_THREAD = 64
MIN_COMMITS, MAX_COMMITS = 200, 5000


class BenchState(Frozen):
    """A typical small actor checkpoint: a cursor, a counter and a few pending ids."""

    actor: str
    seq: int
    block_number: int
    block_hash: str
    pending: list[str]


CODEC = Codec()
CODEC.register(BenchState, kind="bench_state")


def state(actor: str, seq: int) -> BenchState:
    return BenchState(
        actor=actor,
        seq=seq,
        block_number=1_000_000 + seq,
        block_hash=f"0x{seq:064x}",
        pending=[f"hyperevm:0x{n:040x}" for n in range(3)],
    )


def bench_dir() -> tuple[Path, str]:
    """A scratch directory on a real disk (not tmpfs): /var/tmp, else under ``bench/``."""
    for base in (Path("/var/tmp"), Path(__file__).resolve().parent / ".scratch"):
        base.mkdir(parents=True, exist_ok=True)
        fs = filesystem(base)
        if fs not in {"tmpfs", "ramfs"}:
            return Path(tempfile.mkdtemp(prefix="bench-storage-", dir=base)), fs
    raise RuntimeError("no disk-backed scratch directory found")


def filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path``, from /proc/mounts ('' if unknown)."""
    best, fstype = "", ""
    target = str(path.resolve())
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                _, mount_point, kind, *_ = line.split()
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) > len(best):
                    best, fstype = mount_point, kind
    except OSError:
        return ""
    return fstype


class Raw:
    """Durable single-put transactions with plain py-lmdb.

    The values are the very bytes the checkpoint path writes (the encoded states, encoded before
    timing), so both sides put the same data and only the store's own work differs.
    """

    def __init__(self, path: Path, values: list[bytes]) -> None:
        self.env = lmdb.open(str(path), map_size=64 << 20, max_dbs=2, sync=True, metasync=True)
        self.db = self.env.open_db(b"checkpoints")
        self.values = values
        self.seq = 0

    def commits(self, n: int) -> float:
        values, count = self.values, len(self.values)
        start = time.perf_counter()
        for _ in range(n):
            self.seq += 1
            with self.env.begin(write=True) as txn:
                txn.put(b"bench:actor", values[self.seq % count], db=self.db)
        return time.perf_counter() - start

    def close(self) -> None:
        self.env.close()


class Saves:
    """Durable ``Checkpoints.save`` calls: the state is encoded (and validated) inside the call."""

    def __init__(self, store: Store, states: list[BenchState]) -> None:
        self.checkpoints = Checkpoints(store)
        self.states = states
        self.seq = 0

    def commits(self, n: int) -> float:
        save, states, count = self.checkpoints.save, self.states, len(self.states)
        start = time.perf_counter()
        for _ in range(n):
            self.seq += 1
            save("bench:actor", states[self.seq % count])
        return time.perf_counter() - start


def burst(store: Store, threads: int, per_thread: int) -> tuple[float, int]:
    """``threads`` threads each saving ``per_thread`` checkpoints at once; (seconds, txns)."""
    checkpoints = Checkpoints(store)
    ready = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        name = f"bench:burst:{t}"
        states = [state(name, seq) for seq in range(1 << 16, (1 << 16) + per_thread)]
        ready.wait(timeout=30)
        try:
            for one in states:
                checkpoints.save(name, one)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in workers:
        thread.start()
    before = store.transactions
    ready.wait(timeout=30)
    start = time.perf_counter()
    for thread in workers:
        thread.join(timeout=120)
    elapsed = time.perf_counter() - start
    if errors or any(thread.is_alive() for thread in workers):
        raise RuntimeError(f"burst failed: {errors[:1]}")
    return elapsed, store.transactions - before


def run() -> dict[str, Any]:
    began = time.perf_counter()
    scratch, fs = bench_dir()
    try:
        states = [state("bench:actor", seq) for seq in range(1 << 16, (1 << 16) + 1000)]
        values = [CODEC.encode(s) for s in states]
        if len({len(v) for v in values}) != 1:
            raise RuntimeError("the bench states must all encode to one size")
        raw = Raw(scratch / "raw", values)
        store = Store.open(scratch / "store", codec=CODEC)
        try:
            saves = Saves(store, states)
            probe = max(raw.commits(40), 1e-6) / 40 + max(saves.commits(40), 1e-6) / 40
            rounds = int(BUDGET_S * 0.6 / probe) // CHUNK
            rounds = max(MIN_COMMITS // CHUNK, min(MAX_COMMITS // CHUNK, rounds))
            raw_s = saves_s = 0.0
            done = 0
            while done < rounds:  # alternate small chunks: disk noise hits both alike
                raw_s += raw.commits(CHUNK)
                saves_s += saves.commits(CHUNK)
                done += 1
                if done * CHUNK >= MIN_COMMITS and time.perf_counter() - began > BUDGET_S * 0.6:
                    break  # the disk got slower than calibrated
            commits = done * CHUNK
            raw_per_s = commits / raw_s
            checkpoint_per_s = commits / saves_s

            # the burst, in turns with raw commits of the same count, for a fair burst_vs_raw
            per_burst = BURST_THREADS * BURST_PER_THREAD
            burst_s = burst_raw_s = 0.0
            burst_txns = burst_rounds = 0
            while burst_rounds < max(1, commits // per_burst):
                burst_raw_s += raw.commits(per_burst)
                seconds, txns = burst(store, BURST_THREADS, BURST_PER_THREAD)
                burst_s += seconds
                burst_txns += txns
                burst_rounds += 1
                if time.perf_counter() - began > BUDGET_S:
                    break
            burst_writes = burst_rounds * per_burst
            burst_per_s = burst_writes / burst_s
            burst_raw_per_s = burst_writes / burst_raw_s
            stats = store.stats()
        finally:
            store.close()
            raw.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "commits": commits,
        "value_bytes": len(values[0]),
        "raw_per_s": round(raw_per_s, 1),
        "checkpoint_per_s": round(checkpoint_per_s, 1),
        "ratio": round(checkpoint_per_s / raw_per_s, 3),
        "raw_commit_ms": round(1000 * raw_s / commits, 4),
        "checkpoint_commit_ms": round(1000 * saves_s / commits, 4),
        "burst_threads": BURST_THREADS,
        "burst_writes": burst_writes,
        "burst_per_s": round(burst_per_s, 1),
        "burst_transactions": burst_txns,
        "burst_writes_per_transaction": round(burst_writes / max(burst_txns, 1), 2),
        "burst_raw_per_s": round(burst_raw_per_s, 1),
        "burst_vs_raw": round(burst_per_s / burst_raw_per_s, 3),
        "durable": True,
        "store_map_size": stats.map_size,
        "store_used_bytes": stats.used_bytes,
        "python": sys.version.split()[0],
        "lmdb_version": lmdb.__version__,
        "lmdb_lib_version": ".".join(map(str, lmdb.version())),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "disk": str(scratch.parent),
        "disk_fs": fs,
        "seconds": round(time.perf_counter() - began, 2),
    }


def summary(result: dict[str, Any]) -> str:
    return (
        f"storage: checkpoint {result['checkpoint_per_s']:.0f}/s vs raw LMDB "
        f"{result['raw_per_s']:.0f}/s (ratio {result['ratio']:.2f}, goal >= 0.8); "
        f"burst of {result['burst_threads']} threads {result['burst_per_s']:.0f}/s in "
        f"{result['burst_transactions']} txns for {result['burst_writes']} writes "
        f"({result['burst_vs_raw']:.2f}x raw); all durable, on {result['disk']} "
        f"({result['disk_fs']})"
    )
