"""Values in LMDB that no longer decode (a disk fault, a bad restore) are each reported and
worked around at the next start, never a crash on every restart: the listener's cursor (the
factory is scanned again), the signer's nonce counter (set again from the chain), the state
counts of jobs and intents (rebuilt), a job (replaced when its market is found again) and a
market's spec (that market goes to the dead-letter queue, saying so, until ``listener_recover``
writes the spec again from the factory and a retry resolves it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.environment import Devnet
from protocol.messages import OperatorAction, OperatorCommand, RecoverMarkets
from protocol.records import AuditEntry, JobState
from protocol.spec import MarketKey
from protocol.tx_records import nonce_key
from storage import Store
from storage.indexes import JOBS, intents_index
from supervision import Runtime
from tests.integration.daemon_harness import running, store_of, wait_job
from tests.integration.test_resolver_on_chain import closed_specs, put_garbage

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240), pytest.mark.xdist_group("e2e")]


def test_unreadable_state_is_reported_and_worked_around_not_a_crash_loop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Devnet.start(dispute_window_s=3) as net:
        a, b, c = net.create_markets(closed_specs(3))
        with running(net, data, settle_delay_s=10**9) as daemon:  # discovered, none due
            assert daemon.runtime is not None
            wait_job(daemon, c, lambda job: job.state is JobState.WAITING)
            daemon.runtime.wait_for(lambda: daemon.runtime.state("signer:dev")["nonce"] == 0)
        with Store.open(data) as store:
            put_garbage(store, "cursors", b"dev")
            put_garbage(store, "txs", nonce_key("dev"))
            put_garbage(store, "index", JOBS.counts_key)
            put_garbage(store, "index", intents_index("dev").counts_key)
            put_garbage(store, "jobs", b.db_key())
        finished = (JobState.FINALIZED, JobState.DEAD)
        with running(net, data, settle_delay_s=0) as daemon:
            rt = daemon.runtime
            assert rt is not None
            resolve_now(rt, a)  # due in decades by its stored job
            done = {k: wait_job(daemon, k, lambda j: j.state in finished) for k in (a, b)}
            assert done[a].state is JobState.FINALIZED, done[a].last_error
            assert done[b].state is JobState.FINALIZED, done[b].last_error  # found again
            store = store_of(daemon)
            assert store.stats().bad_values >= 4  # counted where an operator sees them
            assert [e.restarts for e in rt.registry.entries() if e.restarts] == []
            counts = {k: n for k, n in rt.state("scheduler")["jobs"].items() if n}
            assert counts == {"finalized": 2, "waiting": 1}  # the bad job's count went with it
            assert rt.state("signer:dev")["confirmed"] == 4  # two commits, two finalizes
            initialised = [
                e for _, e in store.items("audit", expect=AuditEntry)
                if e.action == "nonce_initialised"
            ]  # fmt: skip
            assert [e.detail["next_nonce"] for e in initialised] == ["0", "0"]
        with Store.open(data) as store:  # c's spec lost, the rest readable (no rescan)
            put_garbage(store, "markets", c.db_key())
        with running(net, data, settle_delay_s=0) as daemon:
            rt = daemon.runtime
            assert rt is not None
            resolve_now(rt, c)
            dead = wait_job(daemon, c, lambda j: j.state in finished)
            assert dead.state is JobState.DEAD
            assert dead.last_error.startswith(f"no readable spec stored for {c}")
            # the operator's way out: the factory's list writes the spec again, then a retry
            recovered = rt.ask("listener:dev", RecoverMarkets(), timeout=60)
            assert recovered.ok, recovered.error
            retry = OperatorCommand(action=OperatorAction.RETRY, key=c, operator="t")
            assert rt.ask("scheduler", retry).ok
            again = wait_job(daemon, c, lambda j: j.state in finished)
            assert again.state is JobState.FINALIZED, again.last_error
            assert [e.restarts for e in rt.registry.entries() if e.restarts] == []
        assert net.outcomes([a, b, c]).keys() == {a, b, c}


def resolve_now(rt: Runtime, key: MarketKey) -> None:
    command = OperatorCommand(action=OperatorAction.RESOLVE_NOW, key=key, operator="t")
    assert rt.ask("scheduler", command).ok
