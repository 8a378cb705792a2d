"""The codec: every registered kind round-trips; no input makes it raise anything but CodecError."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import protocol  # noqa: F401  (registers every kind)
from protocol import codec, messages, records, tx_records
from protocol.codec import CODEC, Codec, CodecError
from protocol.hyperliquid import InfoRequest, RawResponse
from protocol.override import OverrideRecord
from protocol.proof import Proof
from protocol.spec import Frozen, MarketKey
from protocol.supervision import ChildSpec, FaultAction, FaultRule, SupervisorSpec
from tests.unit.strategies import hashes, market_keys, market_specs

pytestmark = pytest.mark.timeout(60)

H = "0x" + "ab" * 32
KEY = MarketKey(chain="hyperevm", address="0x" + "12" * 20)


def examples(spec: Any) -> dict[str, BaseModel]:
    """One instance of every kind the process registers; a new kind must add one here."""
    m = messages
    child = ChildSpec(id="resolver:x", actor="resolver", args={"key": str(KEY)})
    return {
        "get_state": m.GetState(),
        "tick": m.Tick(now=12.5),
        "child_exited": m.ChildExited(child_id="a", incarnation=2, reason="crash", error="E"),
        "start_child": m.StartChild(spec=child),
        "child_started": m.ChildStarted(child_id="a", started=False, reason="full"),
        "start_children": m.StartChildren(specs=(child, child)),
        "children_started": m.ChildrenStarted(
            results=(
                m.ChildStarted(child_id="a", started=True),
                m.ChildStarted(child_id="b", started=False, reason="full"),
            )
        ),
        "stop_child": m.StopChild(child_id="a"),
        "restart_child": m.RestartChild(child_id="a", generation=3),
        "check_children": m.CheckChildren(periodic=True),
        "which_children": m.WhichChildren(),
        "child_info": m.ChildInfo(child_id="a", actor="w", alive=True, incarnation=1, restarts=0),
        "ack": m.Ack(detail="ok"),
        "new_head": m.NewHead(chain="dev", number=10, hash=H, timestamp=1_700_000_000),
        "market_discovered": m.MarketDiscovered(
            key=KEY, spec=spec, block_number=1, block_hash=H, tx_hash=H, log_index=0
        ),
        "markets_discovered": m.MarketsDiscovered(
            markets=(
                m.MarketDiscovered(
                    key=KEY, spec=spec, block_number=1, block_hash=H, tx_hash=H, log_index=0
                ),
            )
        ),
        "submit_tx": m.SubmitTx(
            intent_id="i", chain="dev", to="0x" + "34" * 20, data=b"\x00\xff", reply_to="r"
        ),
        "tx_confirmed": m.TxConfirmed(
            intent_id="i", tx_hash=H, block_number=5, block_hash=H, nonce=7, gas_used=21_000
        ),
        "tx_failed": m.TxFailed(intent_id="i", reason="reverted: nope", permanent=True),
        "data_query": m.DataQuery(query_id="q", spec=spec, reply_to="resolver:x"),
        "data_answer": m.DataAnswer(
            query_id="q", responses=(), value=Decimal("-1.000000000000000000001"), sources=("a",)
        ),
        "data_failed": m.DataFailed(query_id="q", failure="permanent", reason="no data"),
        "operator_command": m.OperatorCommand(
            action="override", key=KEY, operator="alice", reason="API down", outcome=0
        ),
        "command_result": m.CommandResult(ok=False, error="unknown market"),
        "listener_recover": m.RecoverMarkets(),
        "resolution_failed": m.ResolutionFailed(key=KEY, failure="transient", reason="timeout"),
        "resolution_progress": m.ResolutionProgress(key=KEY, state="OBSERVED", detail={"v": "1"}),
        "audit_entry": records.AuditEntry(ts=1.0, actor="op", action="retry", subject=str(KEY)),
        "resolution": records.Resolution(
            key=KEY, stage="OBSERVED", value="-0.5", scaled=-50, outcome=0, data_hash=H
        ),
        "cursor": records.Cursor(chain="dev", block_number=9, block_hash=H),
        "job": records.Job(
            key=KEY, due_at=1.0, next_attempt_at=2.5, failure="transient", override_outcome=1
        ),
        "schema_version": records.SchemaVersion(version=1),
        "state_counts": records.StateCounts(counts={"waiting": 3, "finalized": 9}),
        "weight_ledger": records.WeightLedger(
            url="https://api.hyperliquid.xyz/info", spent=((1, 2),)
        ),
        "halted_chains": records.HaltedChains(reasons={"dev": "COMMIT_SENT: NotResolver"}),
        "tx_intent": tx_records.TxIntent(
            intent_id="i",
            chain="dev",
            to="0x" + "34" * 20,
            data=b"\x01",
            created_at=1.0,
            state="confirmed",
            nonce=3,
            inclusion=tx_records.Inclusion(
                tx_hash=H, block_number=5, block_hash=H, status=1, gas_used=21_000
            ),
        ),
        "tx_attempt": tx_records.TxAttempt(
            intent_id="i",
            chain="dev",
            nonce=3,
            seq=1,
            tx_hash=H,
            raw=b"\x02\xf8",
            fees=tx_records.Fees(max_fee_per_gas=2 * 10**9, max_priority_fee_per_gas=10**9),
            gas_limit=25_200,
            signed_at=1.0,
        ),
        "nonce_state": tx_records.NonceState(chain="dev", address="0x" + "34" * 20, next_nonce=4),
        "market_spec": spec,
        "child_spec": child,
        "supervisor_spec": SupervisorSpec(children=(child,), max_children=4),
        "fault_rule": FaultRule(actor="resolver:*", action=FaultAction.DELAY, delay_s=0.5),
        "proof": Proof(
            spec=spec,
            responses=(),
            rule={"method": "test"},
            value="-1.5",
            scaled=-(2**100),
            outcome=1,
        ),
        "override_record": OverrideRecord(spec=spec, outcome=0, reason="venue settled it"),
        "info_request": InfoRequest(body={"type": "allMids"}),
        "raw_response": RawResponse(
            request=InfoRequest(body={"type": "allMids"}),
            url="http://127.0.0.1:1/info",
            fetched_at_ms=1,
            status=200,
            body=b'{"BTC": "1.5"}',
        ),
    }


@given(spec=market_specs())
@settings(max_examples=30, deadline=None)
def test_every_registered_kind_round_trips(spec: Any) -> None:
    samples = examples(spec)
    registered = CODEC.kinds()
    # kinds registered by other modules of the project are checked by their own tests
    ours = {k for k, model in registered.items() if model.__module__.startswith("protocol.")}
    ours -= {k for k in ours if registered[k].__module__.startswith("protocol.evaluation")}
    missing = ours - set(samples)
    assert not missing, f"add an example for {missing}"
    for kind, obj in samples.items():
        data = codec.encode(obj)
        assert codec.decode(data) == obj, kind
        assert codec.decode(data, expect=type(obj)) == obj


@given(key=market_keys, h=hashes)
def test_market_key_text_form_round_trips(key: MarketKey, h: str) -> None:
    assert MarketKey.parse(str(key)) == key
    assert key.db_key() == str(key).encode()


@given(st.binary(max_size=512))
@settings(max_examples=500)
def test_garbage_bytes_raise_only_codec_error(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        codec.decode(data)


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(
    v=st.one_of(st.integers(-3, 5), st.text(max_size=3), st.none()),
    kind=st.one_of(st.sampled_from(sorted(CODEC.kinds())), st.text(max_size=10)),
    data=msgpack_values,
)
@settings(max_examples=500)
def test_wellformed_envelopes_with_bad_contents_raise_only_codec_error(
    v: Any, kind: Any, data: Any
) -> None:
    buf = msgpack.packb({"v": v, "kind": kind, "data": data}, use_bin_type=True)
    with contextlib.suppress(CodecError):
        codec.decode(buf)


def test_every_truncation_of_a_valid_buffer_is_a_codec_error() -> None:
    buf = codec.encode(messages.TxFailed(intent_id="i", reason="r", permanent=False))
    for cut in range(len(buf)):
        with pytest.raises(CodecError):
            codec.decode(buf[:cut])


def test_unknown_kind_and_newer_version_are_named() -> None:
    unknown = msgpack.packb({"v": 1, "kind": "nope", "data": {}})
    with pytest.raises(CodecError, match="unknown kind 'nope'"):
        codec.decode(unknown)
    newer = msgpack.packb({"v": 99, "kind": "ack", "data": {"kind": "ack"}})
    with pytest.raises(CodecError, match="newer than this code"):
        codec.decode(newer)


def test_older_versions_are_upgraded_one_step_at_a_time() -> None:
    class Price(Frozen):
        coin: str
        px: Decimal

    local = Codec()
    local.register(
        Price,
        kind="price",
        version=3,
        upgraders={
            1: lambda d: {"coin": d["symbol"], "px": d["px"]},
            2: lambda d: {**d, "coin": d["coin"].upper()},
        },
    )
    v1 = msgpack.packb({"v": 1, "kind": "price", "data": {"symbol": "btc", "px": "1.10"}})
    assert local.decode(v1) == Price(coin="BTC", px=Decimal("1.10"))
    assert local.decode(local.encode(Price(coin="ETH", px=Decimal("2.5")))).px == Decimal("2.5")


def test_decimals_keep_every_digit_and_never_become_floats() -> None:
    class Amount(Frozen):
        value: Decimal

    local = Codec()
    local.register(Amount, kind="amount")
    exact = Decimal("123456789.123456789123456789123456789")
    buf = local.encode(Amount(value=exact))
    assert msgpack.unpackb(buf)["data"]["value"] == str(exact)
    assert local.decode(buf).value == exact


def test_wrong_expected_type_and_unregistered_types_are_codec_errors() -> None:
    buf = codec.encode(messages.Ack())
    with pytest.raises(CodecError, match="expected TxFailed"):
        codec.decode(buf, expect=messages.TxFailed)

    class Stray(Frozen):
        x: int

    with pytest.raises(CodecError, match="not a registered kind"):
        codec.encode(Stray(x=1))


@given(st.integers(min_value=-(2**300), max_value=2**300))
def test_integers_of_any_size_round_trip_exactly(n: int) -> None:
    assert codec.unpack(codec.pack({"n": n})) == {"n": n}
