"""What the whole-daemon tests share: a daemon on a devnet, stopped even when the test fails,
and waits on the jobs it keeps in LMDB::

    with Devnet.start(dispute_window_s=3) as net, running(net, tmp_path / "data") as daemon:
        wait_states(daemon, keys, {JobState.FINALIZED}, timeout=150)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devnet.environment import Devnet
from ops.daemon import Daemon
from protocol.records import Job, JobState
from protocol.spec import MarketKey
from storage import Store
from supervision import FaultPlan


@contextmanager
def running(
    net: Devnet, data: Path, faults: FaultPlan | None = None, **config: Any
) -> Iterator[Daemon]:
    """A started daemon on ``net``, with ``faults`` injected; ``config`` goes to
    ``Devnet.config`` (``chain=`` or limits)."""
    daemon = Daemon(net.config(data, **config), faults=faults).start()
    try:
        yield daemon
    finally:
        daemon.stop()


def store_of(daemon: Daemon) -> Store:
    assert daemon.store is not None
    return daemon.store


def jobs(daemon: Daemon) -> dict[MarketKey, Job]:
    return {job.key: job for _, job in store_of(daemon).items("jobs", expect=Job)}


def wait_states(
    daemon: Daemon, keys: list[MarketKey], states: set[JobState], timeout: float
) -> None:
    """Until every market of ``keys`` has a job in one of ``states``."""
    assert daemon.runtime is not None

    def settled() -> bool:
        found = jobs(daemon)
        return all(k in found and found[k].state in states for k in keys)

    daemon.runtime.wait_for(settled, timeout=timeout, interval=0.2)


def wait_job(
    daemon: Daemon, key: MarketKey, ok: Callable[[Job], bool], timeout: float = 120
) -> Job:
    """The market's job, once ``ok(job)`` holds."""
    assert daemon.runtime is not None

    def found() -> Job | None:
        job = store_of(daemon).get("jobs", key.db_key(), Job)
        return job if job is not None and ok(job) else None

    return daemon.runtime.wait_for(found, timeout=timeout, interval=0.2)
