"""storage.Store against a dict: random puts, deletes and bursts leave the same contents."""

from __future__ import annotations

import tempfile
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.records import Cursor
from storage import Store, Txn

keys = st.binary(min_size=1, max_size=6)
put = st.tuples(st.just("put"), keys, st.integers(min_value=0, max_value=2**64))
delete = st.tuples(st.just("delete"), keys, st.just(0))
burst = st.tuples(
    st.just("burst"), st.lists(st.tuples(keys, st.integers(0, 9)), max_size=8), st.just(0)
)
ops = st.lists(st.one_of(put, delete, burst), max_size=25)


def cursor(n: int) -> Cursor:
    return Cursor(chain="c", block_number=n, block_hash="0x")


@pytest.mark.timeout(120)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, prefix=st.binary(max_size=2))
def test_store_behaves_like_a_dict(ops: list[tuple[str, object, int]], prefix: bytes) -> None:
    model: dict[bytes, int] = {}
    with tempfile.TemporaryDirectory() as directory:
        with Store.open(directory, map_size=1 << 20) as store:
            for op, arg, n in ops:
                if op == "put":
                    assert isinstance(arg, bytes)
                    store.put("jobs", arg, cursor(n))
                    model[arg] = n
                elif op == "delete":
                    assert isinstance(arg, bytes)
                    assert store.delete("jobs", arg) == (arg in model)
                    model.pop(arg, None)
                else:
                    assert isinstance(arg, list)

                    def write(txn: Txn, key: bytes, n: int) -> None:
                        if n == 0:  # a failing member of the burst changes nothing
                            txn.put("jobs", key, cursor(999))
                            raise ValueError("rolled back")
                        txn.put("jobs", key, cursor(n))

                    store.write_many([partial(write, key=k, n=n) for k, n in arg])
                    for key, value in arg:
                        if value:
                            model[key] = value
            assert store.count("jobs") == len(model)
            for key, n in model.items():
                assert store.get("jobs", key, Cursor) == cursor(n)
        with Store.open(directory) as store:  # and the same after reopening
            got = {key: c.block_number for key, c in store.items("jobs", expect=Cursor)}
            assert got == model
            want = sorted(k for k in model if k.startswith(prefix))
            assert [k for k, _ in store.items("jobs", prefix)] == want
