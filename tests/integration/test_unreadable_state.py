"""Values in LMDB that no longer decode (a disk fault, a bad restore) are each reported and
worked around at the next start, never a crash on every restart: the listener's cursor (the
factory is scanned again), the signer's nonce counter (set again from the chain), the state
counts of jobs and intents (rebuilt), a job (replaced when its market is found again) and a
market's spec (that market goes to the dead-letter queue, saying so)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.environment import Devnet
from protocol.messages import OperatorAction, OperatorCommand
from protocol.records import AuditEntry, JobState
from protocol.tx_records import nonce_key
from storage import Store
from storage.indexes import JOBS, intents_index
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
            put_garbage(store, "markets", c.db_key())
        with running(net, data, settle_delay_s=0) as daemon:
            rt = daemon.runtime
            assert rt is not None
            for key in (a, c):  # due in decades by their stored jobs: now, by an operator
                command = OperatorCommand(action=OperatorAction.RESOLVE_NOW, key=key, operator="t")
                assert rt.ask("scheduler", command).ok
            finished = (JobState.FINALIZED, JobState.DEAD)
            done = {k: wait_job(daemon, k, lambda j: j.state in finished) for k in (a, b, c)}
            assert done[a].state is JobState.FINALIZED, done[a].last_error
            assert done[b].state is JobState.FINALIZED, done[b].last_error  # found again
            assert done[c].state is JobState.DEAD
            assert done[c].last_error == f"no readable spec stored for {c}"
            store = store_of(daemon)
            assert store.stats().bad_values >= 4  # counted where an operator sees them
            assert [e.restarts for e in rt.registry.entries() if e.restarts] == []
            counts = {k: n for k, n in rt.state("scheduler")["jobs"].items() if n}
            assert counts == {"finalized": 2, "dead": 1}  # the bad job's count went with it
            assert rt.state("signer:dev")["confirmed"] == 4  # two commits, two finalizes
            initialised = [
                e for _, e in store.items("audit", expect=AuditEntry)
                if e.action == "nonce_initialised"
            ]  # fmt: skip
            assert [e.detail["next_nonce"] for e in initialised] == ["0", "0"]
        assert net.outcomes([a, b]).keys() == {a, b}
