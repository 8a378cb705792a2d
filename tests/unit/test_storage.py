"""storage.Store: round trips, schema, the directory lock, bad values, audit, atomicity, backup."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lmdb
import pytest

from protocol.codec import Codec
from protocol.records import AuditEntry, Cursor, SchemaVersion
from protocol.spec import Frozen
from storage import (
    DATABASES,
    SCHEMA_VERSION,
    Checkpoints,
    Database,
    SchemaMigrationError,
    SchemaTooNewError,
    StorageError,
    Store,
    StoreClosedError,
    StoredValueError,
    StoreLockedError,
    Txn,
    UnknownDatabaseError,
)
from storage.schema import SCHEMA_KEY

REPO = Path(__file__).resolve().parents[2]
NAMED: tuple[Database, ...] = ("markets", "jobs", "resolutions", "proofs", "txs")


def putter(db: Database, key: bytes, value: Cursor) -> Callable[[Txn], None]:
    """A write function for ``write_many``."""
    return lambda txn: txn.put(db, key, value)


def cursor(n: int, chain: str = "hyperevm") -> Cursor:
    return Cursor(chain=chain, block_number=n, block_hash=f"0x{n:064x}")


def entry(action: str, subject: str = "") -> AuditEntry:
    return AuditEntry(ts=1.0, actor="test", action=action, subject=subject)


def raw_env(path: Path) -> lmdb.Environment:
    """The store's environment opened with plain py-lmdb (the store must be closed)."""
    return lmdb.open(str(path), max_dbs=len(DATABASES), map_size=64 << 20)


def raw_put(path: Path, db: str, key: bytes, value: bytes) -> None:
    env = raw_env(path)
    try:
        with env.begin(write=True) as txn:
            txn.put(key, value, db=env.open_db(db.encode(), txn=txn))
    finally:
        env.close()


# --- round trips -------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_put_get_delete_round_trip(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert store.get("cursors", b"hyperevm") is None
        store.put("cursors", b"hyperevm", cursor(1))
        assert store.get("cursors", b"hyperevm") == cursor(1)
        assert store.get("cursors", b"hyperevm", Cursor) == cursor(1)
        store.put("cursors", b"hyperevm", cursor(2))
        assert store.get("cursors", b"hyperevm", Cursor) == cursor(2)
        assert store.count("cursors") == 1
        assert store.delete("cursors", b"hyperevm") is True
        assert store.delete("cursors", b"hyperevm") is False
        assert store.get("cursors", b"hyperevm") is None
        assert store.count("cursors") == 0


@pytest.mark.timeout(30)
def test_values_survive_reopen(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        for name in NAMED:
            store.put(name, name.encode(), cursor(len(name)))
    with Store.open(tmp_path) as store:
        for name in NAMED:
            assert store.get(name, name.encode(), Cursor) == cursor(len(name))


@pytest.mark.timeout(30)
def test_items_in_key_order_with_prefix_across_batches(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.write_many(
            [putter("jobs", b"a:%05d" % i, cursor(i)) for i in range(600)]
            + [putter("jobs", b"b:1", cursor(1)), putter("jobs", b"0", cursor(0))]
        )
        got = list(store.items("jobs", b"a:", expect=Cursor))
        assert [k for k, _ in got] == [b"a:%05d" % i for i in range(600)]
        assert [v.block_number for _, v in got] == list(range(600))
        assert [k for k, _ in store.items("jobs")][:2] == [b"0", b"a:00000"]
        assert list(store.items("jobs", b"zzz")) == []
        assert store.count("jobs") == 602
        # paging: strictly after a key, whether or not it is stored, within the prefix
        page = [k for k, _ in store.items("jobs", b"a:", after=b"a:00297", expect=Cursor)]
        assert page == [b"a:%05d" % i for i in range(298, 600)]
        assert next(k for k, _ in store.raw_items("jobs", b"a:", after=b"a:00297x")) == b"a:00298"
        assert [k for k, _ in store.items("jobs", after=b"a:00599")] == [b"b:1"]
        assert len(list(store.raw_items("jobs", b"a:", after=b"0"))) == 600  # before the prefix
        assert list(store.raw_items("jobs", b"a:", after=b"a:00599")) == []


@pytest.mark.timeout(30)
def test_wrong_type_expected_is_a_stored_value_error(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.put("jobs", b"k", cursor(1))
        with pytest.raises(StoredValueError, match=r"'jobs'.*b'k'.*expected AuditEntry"):
            store.get("jobs", b"k", AuditEntry)


@pytest.mark.timeout(30)
def test_unknown_database_and_bad_keys(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        with pytest.raises(UnknownDatabaseError, match="no database 'nope'"):
            store.get("nope", b"k")  # type: ignore[call-overload]
        with pytest.raises(UnknownDatabaseError):
            store.put("nope", b"k", cursor(1))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="keys are"):
            store.put("jobs", b"", cursor(1))
        with pytest.raises(ValueError, match="keys are"):
            store.put("jobs", b"x" * 600, cursor(1))
        with pytest.raises(TypeError):
            store.put("jobs", "text", cursor(1))  # type: ignore[arg-type]


@pytest.mark.timeout(30)
def test_custom_codec(tmp_path: Path) -> None:
    class Note(Frozen):
        text: str

    codec = Codec()
    codec.register(Note, kind="note")
    with Store.open(tmp_path, codec=codec) as store:
        store.put("markets", b"n", Note(text="hi"))
        assert store.get("markets", b"n", Note) == Note(text="hi")
        assert store.audit(entry("noted")) == 1
    with Store.open(tmp_path, codec=codec) as store:
        assert store.get("markets", b"n") == Note(text="hi")


@pytest.mark.timeout(30)
def test_closed_store_refuses(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.close()
    store.close()  # idempotent
    assert store.closed
    with pytest.raises(StoreClosedError):
        store.get("jobs", b"k")
    with pytest.raises(StoreClosedError):
        store.put("jobs", b"k", cursor(1))


# --- schema ------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_fresh_store_gets_the_current_schema_version(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert store.get("meta", SCHEMA_KEY, SchemaVersion) == SchemaVersion(version=SCHEMA_VERSION)


@pytest.mark.timeout(30)
def test_newer_schema_is_refused_and_unlocked(tmp_path: Path) -> None:
    with Store.open(tmp_path, schema_version=SCHEMA_VERSION + 4):
        pass
    with pytest.raises(SchemaTooNewError) as info:
        Store.open(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert f"version {SCHEMA_VERSION + 4}" in message
    assert f"supports ({SCHEMA_VERSION})" in message
    assert (info.value.found, info.value.supported) == (SCHEMA_VERSION + 4, SCHEMA_VERSION)
    # the refused open released its lock: a newer runner can still open it
    with Store.open(tmp_path, schema_version=SCHEMA_VERSION + 4):
        pass


@pytest.mark.timeout(30)
def test_older_schema_is_migrated_in_order_in_one_transaction(tmp_path: Path) -> None:
    with Store.open(tmp_path, schema_version=1) as store:
        store.put("cursors", b"old", cursor(1))
    calls: list[int] = []

    def one_to_two(txn: Txn) -> None:
        calls.append(1)
        old = txn.get("cursors", b"old", Cursor)
        assert old is not None
        txn.put("cursors", b"new", old)
        txn.delete("cursors", b"old")

    def two_to_three(txn: Txn) -> None:
        calls.append(2)
        new = txn.get("cursors", b"new", Cursor)  # sees the previous step's writes
        assert new is not None
        txn.put("cursors", b"new", new.model_copy(update={"block_number": 3}))

    with Store.open(tmp_path, schema_version=3, migrations={2: two_to_three, 1: one_to_two}) as s:
        assert calls == [1, 2]
        assert s.get("meta", SCHEMA_KEY, SchemaVersion) == SchemaVersion(version=3)
        assert s.get("cursors", b"old") is None
        new = s.get("cursors", b"new", Cursor)
        assert new is not None and new.block_number == 3
        audited = [e for _, e in s.items("audit", expect=AuditEntry)]
        assert audited[-1].action == "schema_migrated"
        assert audited[-1].detail == {"from": "1", "to": "3"}
    with Store.open(tmp_path, schema_version=3, migrations={}) as s:  # nothing left to run
        assert calls == [1, 2]


@pytest.mark.timeout(30)
def test_failing_migration_changes_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path, schema_version=1) as store:
        store.put("cursors", b"old", cursor(1))

    def half_done(txn: Txn) -> None:
        txn.delete("cursors", b"old")
        raise RuntimeError("disk says no")

    with pytest.raises(SchemaMigrationError, match=r"from schema version 1 to 2.*disk says no"):
        Store.open(tmp_path, schema_version=2, migrations={1: half_done})
    with Store.open(tmp_path, schema_version=1) as store:
        assert store.get("cursors", b"old", Cursor) == cursor(1)
        assert store.get("meta", SCHEMA_KEY, SchemaVersion) == SchemaVersion(version=1)


@pytest.mark.timeout(30)
def test_missing_migration_is_refused(tmp_path: Path) -> None:
    with Store.open(tmp_path, schema_version=1):
        pass
    with pytest.raises(SchemaMigrationError, match="no migration registered from version 2"):
        Store.open(tmp_path, schema_version=3, migrations={1: lambda txn: None})


@pytest.mark.timeout(30)
def test_undecodable_schema_version_is_reported(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    raw_put(tmp_path, "meta", SCHEMA_KEY, b"\xc1garbage")
    with pytest.raises(StoredValueError, match=r"'meta'.*b'schema_version'"):
        Store.open(tmp_path)


# --- one process per directory -------------------------------------------------------------


@pytest.mark.timeout(30)
def test_second_store_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with Store.open(tmp_path):
        with pytest.raises(StoreLockedError) as info:
            Store.open(tmp_path)
        assert info.value.holder_pid == os.getpid()
        assert str(tmp_path) in str(info.value)
        assert f"pid {os.getpid()}" in str(info.value)
    with Store.open(tmp_path):  # released on close
        pass


HOLDER = """
import sys
from storage import Store
store = Store.open(sys.argv[1])
print("open", flush=True)
sys.stdin.read()
store.close()
"""


@pytest.mark.timeout(60)
def test_second_process_is_refused(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "open"
        with pytest.raises(StoreLockedError) as info:
            Store.open(tmp_path)
        assert info.value.holder_pid == child.pid
        assert f"pid {child.pid}" in str(info.value)
        child.stdin.close()
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    with Store.open(tmp_path):  # the child is gone: the lock went with it
        pass


# --- bad values ----------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_bad_value_is_named_and_skipped_by_items(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Store.open(tmp_path) as store:
        for i in range(3):
            store.put("jobs", b"job:%d" % i, cursor(i))
    raw_put(tmp_path, "jobs", b"job:1", b"\x93\x01garbage")
    with Store.open(tmp_path) as store:
        with pytest.raises(StoredValueError) as info:
            store.get("jobs", b"job:1")
        assert info.value.db == "jobs"
        assert info.value.key == b"job:1"
        assert "'jobs'" in str(info.value)
        assert "b'job:1'" in str(info.value)
        assert "not a msgpack envelope" in str(info.value) or "not an envelope" in str(info.value)

        with caplog.at_level(logging.WARNING, logger="storage.store"):
            keys = [key for key, _ in store.items("jobs")]
        assert keys == [b"job:0", b"job:2"]
        assert store.bad_values == 1
        assert "b'job:1'" in caplog.text

        reported: list[StoredValueError] = []
        assert [k for k, _ in store.items("jobs", on_bad_value=reported.append)] == keys
        assert [(e.db, e.key) for e in reported] == [("jobs", b"job:1")]
        assert store.bad_values == 2
        assert store.stats().bad_values == 2

        # a write transaction reading it also gets the named error, and a rewrite heals it
        with pytest.raises(StoredValueError, match="b'job:1'"):
            store.write(lambda txn: txn.get("jobs", b"job:1"))
        store.put("jobs", b"job:1", cursor(1))
        assert [k for k, _ in store.items("jobs")] == [b"job:0", b"job:1", b"job:2"]


@pytest.mark.timeout(30)
def test_store_wide_bad_value_handler(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    raw_put(tmp_path, "markets", b"m", b"")
    seen: list[StoredValueError] = []
    with Store.open(tmp_path, on_bad_value=seen.append) as store:
        assert list(store.items("markets")) == []
    assert [e.key for e in seen] == [b"m"]


# --- audit and atomicity -------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_audit_sequence_is_monotonic_and_ordered(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert store.audit(entry("a")) == 1
        assert store.write(lambda txn: [txn.audit(entry("b")), txn.audit(entry("c"))]) == [2, 3]
        with pytest.raises(RuntimeError):
            store.write(audit_then_fail)
        assert store.audit(entry("d")) == 4  # an aborted transaction leaves no gap
    with Store.open(tmp_path) as store:
        assert store.audit(entry("e")) == 5
        items = list(store.items("audit", expect=AuditEntry))
        assert [key for key, _ in items] == [n.to_bytes(8, "big") for n in range(1, 6)]
        assert [e.action for _, e in items] == ["a", "b", "c", "d", "e"]


def audit_then_fail(txn: Txn) -> None:
    txn.audit(entry("lost"))
    raise RuntimeError("boom")


@pytest.mark.timeout(30)
def test_state_and_audit_commit_together_or_not_at_all(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.put("jobs", b"j", cursor(1))

        def change_then_fail(txn: Txn) -> None:
            txn.put("jobs", b"j", cursor(2))
            txn.audit(entry("changed", "j"))
            raise RuntimeError("crash before commit")

        with pytest.raises(RuntimeError, match="crash before commit"):
            store.write(change_then_fail)
        assert store.get("jobs", b"j", Cursor) == cursor(1)
        assert store.count("audit") == 0

        def change(txn: Txn) -> int:
            txn.put("jobs", b"j", cursor(2))
            return txn.audit(entry("changed", "j"))

        assert store.write(change) == 1
        assert store.get("jobs", b"j", Cursor) == cursor(2)
        assert [e.subject for _, e in store.items("audit", expect=AuditEntry)] == ["j"]


@pytest.mark.timeout(30)
def test_txn_is_dead_after_its_function(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        kept = store.write(lambda txn: txn)
        with pytest.raises(StorageError, match="finished"):
            kept.put("jobs", b"k", cursor(1))
        with pytest.raises(StorageError, match="must not write through the store"):
            store.write(lambda txn: store.put("jobs", b"k", cursor(1)))


# --- checkpoints -----------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_checkpoints(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        cps = Checkpoints(store)
        assert cps.load("listener:hyperevm") is None
        cps.save("listener:hyperevm", cursor(1))
        cps.save("resolver:a", cursor(2))
        cps.save("resolver:b", cursor(3))
        assert cps.load("listener:hyperevm", Cursor) == cursor(1)
        assert cps.save_with_audit("listener:hyperevm", cursor(4), entry("advanced")) == 1
        assert list(cps.names("resolver:")) == ["resolver:a", "resolver:b"]
        assert cps.delete("resolver:a") is True
        with pytest.raises(ValueError):
            cps.save("", cursor(1))
    with Store.open(tmp_path) as store:
        cps = Checkpoints(store)
        assert cps.load("listener:hyperevm") == cursor(4)
        assert list(cps.names()) == ["listener:hyperevm", "resolver:b"]
        assert [e.action for _, e in store.items("audit", expect=AuditEntry)] == ["advanced"]


# --- backup and stats ------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_backup_is_a_valid_compacted_store(tmp_path: Path) -> None:
    data, dest = tmp_path / "data", tmp_path / "backup"
    with Store.open(data) as store:
        store.write_many([putter("proofs", b"p%04d" % i, cursor(i)) for i in range(2000)])
        store.write(lambda t: [t.delete("proofs", b"p%04d" % i) for i in range(1900)])
        store.audit(entry("kept"))
        store.backup(dest)
        with pytest.raises(StorageError, match="not empty"):
            store.backup(dest)
        store.put("proofs", b"after", cursor(0))  # not in the backup
    assert (dest / "data.mdb").stat().st_size < (data / "data.mdb").stat().st_size
    with Store.open(dest) as copy:
        assert copy.count("proofs") == 100
        assert copy.get("proofs", b"p1999", Cursor) == cursor(1999)
        assert copy.get("proofs", b"after") is None
        assert [e.action for _, e in copy.items("audit", expect=AuditEntry)] == ["kept"]
        assert copy.get("meta", SCHEMA_KEY, SchemaVersion) == SchemaVersion(version=SCHEMA_VERSION)


@pytest.mark.timeout(30)
def test_stats(tmp_path: Path) -> None:
    with Store.open(tmp_path, map_size=1 << 20) as store:
        store.put("jobs", b"a", cursor(1))
        store.put("jobs", b"b", cursor(2))
        stats = store.stats()
    assert stats.map_size == 1 << 20
    assert 0 < stats.used_bytes <= stats.map_size
    assert stats.entries["jobs"] == 2
    assert stats.entries["meta"] == 1
    assert set(stats.entries) == set(DATABASES)
    assert stats.transactions == 3  # the schema stamp and two puts
    assert stats.writes == 3


@pytest.mark.timeout(30)
def test_sync_false_is_loud(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="storage.store"), Store.open(tmp_path, sync=False):
        pass
    assert "NOT durable" in caplog.text


@pytest.mark.timeout(30)
def test_open_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="map_size"):
        Store.open(tmp_path, map_size=2 << 20, max_map_size=1 << 20)


@pytest.mark.timeout(30)
def test_raw_values_answer_each_key_in_order_across_read_batches(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.write(
            lambda txn: [txn.put("jobs", b"k%04d" % i, cursor(i)) for i in range(0, 600, 2)]
        )
        asked = [b"k%04d" % i for i in range(599, -1, -1)]  # 600 keys, half of them absent
        got = list(store.raw_values("jobs", iter(asked)))
        assert [k for k, _ in got] == asked
        assert [k for k, buf in got if buf is not None] == [k for k in asked if int(k[1:]) % 2 == 0]
        assert list(store.raw_values("jobs", [])) == []
