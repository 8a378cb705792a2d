"""Market spec validation: impossible specs are refused with a reason naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol.spec import MarketKey, MarketSpec, PredicateOp, checksum_address

pytestmark = pytest.mark.timeout(10)

CREATOR = "0x" + "ab" * 20


def spec(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": "BTC above 30k at noon",
        "subject": {"kind": "TOKEN_PRICE", "token_identifier": "BTC", "value_decimals": 2},
        "predicate": {"op": "GT", "threshold": 3_000_000},
        "window": {"kind": "SNAPSHOT_AT", "t_start": 1_700_000_000, "t_end": 1_700_000_000},
        "cutoff_time": 1_699_990_000,
        "creator": CREATOR,
    }
    for path, value in changes.items():
        node = base
        *parents, leaf = path.split("__")
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return base


def test_a_valid_spec_normalises_the_creator_address() -> None:
    parsed = MarketSpec.model_validate(spec(creator=CREATOR.upper().replace("0X", "0x")))
    assert parsed.creator == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"window__kind": "WINDOW_SUM", "window__t_end": 1_699_999_999}, "is before t_start"),
        ({"window__kind": "WINDOW_SUM"}, "needs t_end after t_start"),
        ({"subject__value_decimals": 37}, "less than or equal to 36"),
        ({"subject__kind": "HL_VOLUME"}, "HL_METRIC"),
        ({"predicate__op": "EQ"}, "'GT', 'GTE', 'LT' or 'LTE'"),
        ({"window__kind": "AVERAGE"}, "SNAPSHOT_AT"),
        ({"subject__kind": "HL_METRIC"}, "needs a metric_id"),
        ({"subject__metric_id": "volume"}, "takes no metric_id"),
        ({"cutoff_time": 1_700_000_001}, "after the window's t_end"),
        ({"creator": "0x1234"}, "not a 20-byte hex address"),
        ({"predicate__threshold": 2**255}, "less than or equal to"),
        ({"window__t_start": -1}, "greater than or equal to 0"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
    ],
)
def test_impossible_specs_are_refused_with_a_reason(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as raised:
        MarketSpec.model_validate(spec(**changes))
    assert reason in str(raised.value)


def test_specs_are_frozen() -> None:
    parsed = MarketSpec.model_validate(spec())
    with pytest.raises(ValidationError):
        parsed.title = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("op", "below", "equal", "above"),
    [
        ("GT", False, False, True),
        ("GTE", False, True, True),
        ("LT", True, False, False),
        ("LTE", True, True, False),
    ],
)
def test_predicates(op: str, below: bool, equal: bool, above: bool) -> None:
    predicate = PredicateOp(op)
    assert (predicate.holds(9, 10), predicate.holds(10, 10), predicate.holds(11, 10)) == (
        below,
        equal,
        above,
    )


def test_market_keys_parse_and_refuse_garbage() -> None:
    key = MarketKey.parse("hyperevm:0x" + "cd" * 20)
    assert key.chain == "hyperevm"
    with pytest.raises(ValueError, match="not of the form"):
        MarketKey.parse("no-colon")
    with pytest.raises(ValidationError):
        MarketKey.parse("bad chain:0x" + "cd" * 20)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(min_size=20, max_size=20),
    case=st.sampled_from([str.lower, str.upper, lambda s: s]),
    prefix=st.sampled_from(["0x", "0X", ""]),
)
def test_checksum_address_spells_as_eth_utils_does(raw: bytes, case: Any, prefix: str) -> None:
    expected = to_checksum_address(raw)
    asked = prefix + case(expected[2:])
    assert checksum_address(asked) == expected
    assert checksum_address(expected) == expected  # remembered under its own spelling too


@pytest.mark.parametrize(
    "value", ["", "0x", "0x" + "ab" * 19, "0x" + "ab" * 21, "0x" + "zz" * 20, "0xx" + "a" * 40]
)
def test_checksum_address_refuses_what_is_not_an_address(value: str) -> None:
    with pytest.raises(ValueError, match="not a 20-byte hex address"):
        checksum_address(value)
