"""``sources.bundles``: the calldata of a carrier and back, and what it refuses."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from hypothesis import given
from hypothesis import strategies as st

from sources.bundles import (
    COMMIT,
    COMMIT_BATCH,
    FINALIZE,
    FINALIZE_BATCH,
    BundleError,
    carrier_rule,
    rule_for,
)

pytestmark = pytest.mark.timeout(60)

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
commits = st.tuples(addresses, st.integers(0, 255), st.binary(min_size=32, max_size=32)).map(
    lambda args: COMMIT + encode(["address", "uint8", "bytes32"], list(args))
)


@given(st.lists(commits, min_size=1, max_size=30))
def test_a_carrier_makes_exactly_its_members_calls_in_order(calls: list[bytes]) -> None:
    rule = rule_for(calls[0])
    assert rule is not None
    carrier = rule.carrier(calls)
    assert carrier[:4] == COMMIT_BATCH and carrier_rule(carrier) is rule
    assert rule.members(carrier) == calls


def test_finalize_calls_are_carried_by_finalize_batch() -> None:
    calls = [FINALIZE + encode(["address"], ["0x" + f"{n:040x}"]) for n in range(3)]
    rule = rule_for(calls[0])
    assert rule is not None and rule.name == "finalizeBatch"
    assert rule.carrier(calls)[:4] == FINALIZE_BATCH
    assert rule.members(rule.carrier(calls)) == calls


def test_other_calls_are_never_carried() -> None:
    assert rule_for(b"") is None and rule_for(b"\xa9\x05\x9c\xbb" + b"\0" * 64) is None
    assert carrier_rule(COMMIT) is None


def test_calls_of_another_kind_or_that_do_not_decode_are_refused_by_name() -> None:
    rule = rule_for(COMMIT)
    assert rule is not None
    finalize = FINALIZE + encode(["address"], ["0x" + "11" * 20])
    with pytest.raises(BundleError, match="is not carried by commitBatch"):
        rule.carrier([COMMIT + b"\0" * 96, finalize])
    with pytest.raises(BundleError, match="arguments of a call carried by commitBatch"):
        rule.carrier([COMMIT + b"\x01"])


def test_a_carrier_whose_arrays_differ_in_length_is_refused() -> None:
    rule = rule_for(COMMIT)
    assert rule is not None
    lopsided = COMMIT_BATCH + encode(
        ["address[]", "uint8[]", "bytes32[]"], [["0x" + "11" * 20] * 2, [1], [b"\0" * 32] * 2]
    )
    with pytest.raises(BundleError, match="commitBatch arguments do not decode"):
        rule.members(lopsided)
    with pytest.raises(BundleError, match="not a commitBatch call"):
        rule.members(FINALIZE_BATCH)
