"""State indexes: exact counts and live keys whatever the order of writes; rebuilt from a scan."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from protocol.records import Job, JobState, SchemaVersion
from protocol.spec import MarketKey
from protocol.tx_records import Inclusion, IntentState, TxIntent, intent_key
from storage import Store
from storage.indexes import JOBS, chains_with_intents, intents_index
from storage.schema import SCHEMA_KEY

pytestmark = pytest.mark.timeout(60)


def job(n: int, state: JobState = JobState.WAITING) -> tuple[bytes, Job]:
    key = MarketKey(chain="dev", address=f"0x{n + 1:040x}")
    return key.db_key(), Job(key=key, due_at=float(n), next_attempt_at=float(n), state=state)


def intent(chain: str, n: int, state: IntentState, block: int | None = None) -> TxIntent:
    inclusion = (
        None
        if block is None
        else Inclusion(
            tx_hash="0x" + "ab" * 32,
            block_number=block,
            block_hash="0x" + "cd" * 32,
            status=1,
            gas_used=1,
        )
    )
    return TxIntent(
        intent_id=f"{chain}:o:m{n}:commit",
        chain=chain,
        to="0x" + "12" * 20,
        data=b"\x01",
        state=state,
        nonce=None if state is IntentState.QUEUED else n,
        created_at=0.0,
        inclusion=inclusion,
    )


def scan_counts(store: Store) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, stored in store.items("jobs", expect=Job):
        counts[stored.state.value] = counts.get(stored.state.value, 0) + 1
    return counts


def live_by_scan(store: Store) -> list[bytes]:
    return [
        k
        for k, j in store.items("jobs", expect=Job)
        if j.state in (JobState.WAITING, JobState.RUNNING)
    ]


def test_random_moves_keep_counts_and_live_keys_exact(tmp_path: Path) -> None:
    rng = random.Random(7)
    states = list(JobState)
    with Store.open(tmp_path / "data") as store:
        for _ in range(40):
            batch = [job(rng.randrange(30), rng.choice(states)) for _ in range(rng.randrange(1, 8))]
            store.write(lambda txn, batch=batch: JOBS.put_many(txn, batch))
            assert JOBS.counts(store) == scan_counts(store)
            assert list(JOBS.live_keys(store)) == live_by_scan(store)
        incremental = (JOBS.counts(store), list(JOBS.live_keys(store)))
        store.write(JOBS.rebuild)
        assert (JOBS.counts(store), list(JOBS.live_keys(store))) == incremental


def test_a_record_put_twice_in_one_transaction_counts_once(tmp_path: Path) -> None:
    with Store.open(tmp_path / "data") as store:
        key, waiting = job(1)
        running = waiting.model_copy(update={"state": JobState.RUNNING})
        store.write(lambda txn: JOBS.put_many(txn, [(key, waiting), (key, running)]))
        assert JOBS.counts(store) == {"running": 1}
        assert [k for k, _ in JOBS.live_records(store)] == [key]


def test_records_written_without_the_index_are_found_and_indexed(tmp_path: Path) -> None:
    with Store.open(tmp_path / "data") as store:
        assert not JOBS.missing(store)  # nothing stored: nothing missing
        for n in range(3):
            store.put("jobs", *job(n, JobState.FINALIZED if n else JobState.WAITING))
        assert JOBS.missing(store)
        assert store.write(JOBS.rebuild) == 3
        assert not JOBS.missing(store)
        assert JOBS.counts(store) == {"waiting": 1, "finalized": 2}
        assert list(JOBS.live_keys(store)) == [job(0)[0]]


def test_done_intents_are_live_while_watched_and_forgotten_after(tmp_path: Path) -> None:
    index = intents_index("dev")
    with Store.open(tmp_path / "data") as store:
        records = [
            (intent_key("dev", i.intent_id), i)
            for i in (
                intent("dev", 0, IntentState.QUEUED),
                intent("dev", 1, IntentState.PENDING),
                intent("dev", 2, IntentState.CONFIRMED, block=9),
                intent("dev", 3, IntentState.FAILED),  # failed in simulation: nothing to watch
            )
        ]
        store.write(lambda txn: index.put_many(txn, records))
        keys = [k for k, _ in records]
        assert list(index.live_keys(store)) == keys[:3]
        store.write(lambda txn: index.forget(txn, [keys[2]]))
        assert list(index.live_keys(store)) == keys[:2]
        assert index.counts(store) == {"queued": 1, "pending": 1, "confirmed": 1, "failed": 1}
        assert intents_index("other").counts(store) is None  # one family a chain


def test_schema_1_stores_are_indexed_by_the_migration(tmp_path: Path) -> None:
    with Store.open(tmp_path / "data", schema_version=1, migrations={}) as old:
        old.put("jobs", *job(0))
        old.put("jobs", *job(1, JobState.DEAD))
        for chain in ("dev", "hyperevm"):
            done = intent(chain, 5, IntentState.CONFIRMED, block=3)
            old.put("txs", intent_key(chain, done.intent_id), done)
    with Store.open(tmp_path / "data") as store:
        assert store.get("meta", SCHEMA_KEY, SchemaVersion) == SchemaVersion(version=3)
        assert JOBS.counts(store) == {"waiting": 1, "dead": 1}
        for chain in ("dev", "hyperevm"):
            assert intents_index(chain).counts(store) == {"confirmed": 1}
        assert store.write(chains_with_intents) == ["dev", "hyperevm"]


def test_a_record_that_does_not_decode_is_counted_unreadable_and_not_live(tmp_path: Path) -> None:
    with Store.open(tmp_path / "data") as store:
        good, bad = job(1), job(2)
        store.put("jobs", *good)
        store.write(lambda txn: txn.raw.put(bad[0], b"\x93garbage", db=txn.dbi("jobs")))
        store.write(JOBS.rebuild)
        assert JOBS.counts(store) == {"waiting": 1, "unreadable": 1}
        assert list(JOBS.live_keys(store)) == [good[0]]
        store.write(lambda txn: JOBS.put_many(txn, [bad]))  # written again, readable
        assert JOBS.counts(store) == {"waiting": 2}
