"""Markets sharing a window share one measurement, and nothing else about them is shared."""

from __future__ import annotations

from decimal import Decimal

import pytest

from protocol.evaluation import EvaluationError, evaluate
from protocol.evaluation.memo import MeasureMemo
from tests.fixtures import market, raw_response

pytestmark = pytest.mark.timeout(30)

CANDLES = "test_get_candles_snapshot"
WINDOW = ("SNAPSHOT_AT", 1684782000, 1684782000)  # close 0.001539 in the recorded candles


def test_the_same_window_over_the_same_bytes_is_measured_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from protocol.evaluation import engine

    memo = MeasureMemo()
    monkeypatch.setattr(engine, "_MEMO", memo)
    pages = [raw_response(CANDLES, "candleSnapshot")]
    above = evaluate(market("kPEPE", WINDOW, op="GT", threshold=1538), pages)
    below = evaluate(market("kPEPE", WINDOW, op="LT", threshold=1538), list(pages))
    assert (above.value, above.outcome, below.outcome) == (Decimal("0.001539"), 1, 0)
    assert memo.computed == 1


def test_other_bytes_are_measured_afresh() -> None:
    pages = [raw_response(CANDLES, "candleSnapshot")]
    assert evaluate(market("kPEPE", WINDOW), pages).value == Decimal("0.001539")
    edited = pages[0].model_copy(
        update={"body": pages[0].body.replace(b'"c":"0.001539"', b'"c":"0.002"')}
    )
    assert edited.body != pages[0].body
    assert evaluate(market("kPEPE", WINDOW), [edited]).value == Decimal("0.002")


def test_changing_a_result_rule_does_not_reach_the_next_market() -> None:
    pages = [raw_response(CANDLES, "candleSnapshot")]
    first = evaluate(market("kPEPE", WINDOW), pages)
    first.rule["items"] = "tampered"
    assert evaluate(market("kPEPE", WINDOW), pages).rule["items"] == "1"


def test_a_failure_is_raised_again_not_remembered_as_a_value() -> None:
    pages = [raw_response(CANDLES, "candleSnapshot")]
    broken = pages[0].model_copy(update={"body": b"not json"})
    for _ in range(2):
        with pytest.raises(EvaluationError):
            evaluate(market("kPEPE", WINDOW), [broken])


def test_the_memo_keeps_at_most_its_size() -> None:
    memo = MeasureMemo(size=3)
    for n in range(10):
        memo.get_or_compute(n, lambda n=n: n)  # type: ignore[misc]
    assert memo.get_or_compute(9, lambda: -1) == 9
    assert memo.get_or_compute(0, lambda: -1) == -1  # evicted long ago
