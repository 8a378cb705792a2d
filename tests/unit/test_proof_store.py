"""Proofs stored with each page once (ADR 0018): the same proof back, pages shared, old whole
proofs still read, a missing page a bad value, and a schema-2 store upgraded."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.evaluation import evaluate
from protocol.proof import build_proof, canonical_bytes, data_hash
from protocol.records import SchemaVersion
from storage import SCHEMA_VERSION, Store, StoredValueError, get_proof, put_proof
from storage.schema import SCHEMA_KEY
from tests.fixtures import market
from tests.unit.test_proof import SPEC, make, responses

pytestmark = pytest.mark.timeout(30)


def test_a_stored_proof_comes_back_with_the_same_bytes_and_hash(tmp_path: Path) -> None:
    proof = make()
    with Store.open(tmp_path) as store:
        store.write(lambda txn: put_proof(txn, b"m1", proof))
        back = get_proof(store, b"m1")
        assert back == proof
        assert canonical_bytes(back) == canonical_bytes(proof)
        assert data_hash(back) == data_hash(proof)
        assert get_proof(store, b"absent") is None


def test_proofs_of_one_window_share_their_page(tmp_path: Path) -> None:
    pages = responses()
    specs = [
        market("kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000), threshold=t)
        for t in (1, 1500, 1540, 10**9)
    ]
    proofs = [build_proof(s, pages, evaluate(s, pages)) for s in specs]
    with Store.open(tmp_path) as store:
        for n, proof in enumerate(proofs):
            store.write(lambda txn, n=n, proof=proof: put_proof(txn, b"m%d" % n, proof))
        assert store.count("proofs") == 4 and store.count("pages") == 1
        assert [get_proof(store, b"m%d" % n) for n in range(4)] == proofs
        stored = sum(len(v) for _, v in store.raw_items("proofs"))
        assert stored < len(pages[0].body)  # four records hold less than one page


def test_a_proof_stored_whole_is_still_read(tmp_path: Path) -> None:
    proof = make()
    with Store.open(tmp_path) as store:
        store.put("proofs", b"old", proof)  # as written before schema 3
        assert get_proof(store, b"old") == proof


def test_a_missing_page_or_another_record_is_a_bad_value(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.write(lambda txn: put_proof(txn, b"m1", make()))
        (page_id,) = [k for k, _ in store.raw_items("pages")]
        store.delete("pages", page_id)
        with pytest.raises(StoredValueError, match=r"page .* is missing"):
            get_proof(store, b"m1")
        store.put("proofs", b"spec", SPEC)
        with pytest.raises(StoredValueError, match="not a proof"):
            get_proof(store, b"spec")


def test_a_schema_2_store_is_upgraded_and_takes_pages(tmp_path: Path) -> None:
    with Store.open(tmp_path, schema_version=2) as old:
        old.put("proofs", b"old", make())
    with Store.open(tmp_path) as store:
        assert store.get("meta", SCHEMA_KEY, SchemaVersion) == SchemaVersion(version=SCHEMA_VERSION)
        assert SCHEMA_VERSION == 3
        store.write(lambda txn: put_proof(txn, b"new", make()))
        assert get_proof(store, b"old") == get_proof(store, b"new") == make()
