"""The writer that ``test_storage_crash`` kills: it rewrites every record, forever.

Run as ``python storage_crash_child.py DIR``. It opens the store in ``DIR`` with a small map
(so crashes also land during map growth), prints ``start G`` with the generation it found, then
loops: one transaction rewrites all ``RECORDS`` records to generation ``G + 1`` (each value
carrying a payload derived from its key and generation, so a torn or mixed value is detectable)
and appends one audit entry; once ``write`` has returned (the commit is durable) it prints the
generation on its own line.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol.codec import Codec
from protocol.records import AuditEntry
from protocol.spec import Frozen
from storage import Database, Store, Txn

RECORDS = 50
DB: Database = "jobs"


class CrashRecord(Frozen):
    key: str
    generation: int
    payload: str


CODEC = Codec()
CODEC.register(CrashRecord, kind="crash_record")


def record_keys() -> list[bytes]:
    return [b"rec:%02d" % i for i in range(RECORDS)]


def payload(key: str, generation: int) -> str:
    """Deterministic, of varying length (64 to 640 chars), so pages split and merge."""
    digest = hashlib.sha256(f"{key}:{generation}".encode()).hexdigest()
    return digest * (1 + (generation + len(key) * 3) % 10)


def record(key: bytes, generation: int) -> CrashRecord:
    name = key.decode()
    return CrashRecord(key=name, generation=generation, payload=payload(name, generation))


def main(directory: str) -> None:
    store = Store.open(directory, codec=CODEC, map_size=256 * 1024, max_map_size=1 << 30)
    first = store.get(DB, record_keys()[0], CrashRecord)
    generation = first.generation if first is not None else 0
    print(f"start {generation}", flush=True)
    while True:
        generation += 1

        def rewrite(txn: Txn, generation: int = generation) -> None:
            for key in record_keys():
                txn.put(DB, key, record(key, generation))
            txn.audit(
                AuditEntry(
                    ts=0.0, actor="crash_child", action="rewrite", detail={"gen": str(generation)}
                )
            )

        store.write(rewrite)
        print(generation, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
