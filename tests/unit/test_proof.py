"""Data proofs: canonical bytes, hash stability, round trip, and tampering caught by name."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.evaluation import evaluate
from protocol.hyperliquid import InfoRequest, RawResponse
from protocol.proof import (
    _HEADS,  # the remembered heads, to count them
    Proof,
    ProofError,
    build_proof,
    canonical_bytes,
    data_hash,
    data_hash_hex,
    decode_proof,
    keccak256,
    verify,
)
from protocol.spec import MarketSpec
from tests.fixtures import market, raw_response

pytestmark = pytest.mark.timeout(30)

SPEC = market("kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000), threshold=1500)
PINNED = "0xd7dce8c996eddd56f281fa2b1ff8cb335732cdd81d2f1e7b9e0c5ab5ae0e4a31"
"""dataHash of ``make()``: fixes the file format (and MarketSpec's fields) in place."""


def responses() -> list[RawResponse]:
    return [raw_response("test_get_candles_snapshot", "candleSnapshot")]


def make(spec: MarketSpec = SPEC) -> Proof:
    return build_proof(spec, responses(), evaluate(spec, responses()))


def reencode(proof: Proof, **changes: Any) -> bytes:
    """The canonical bytes of ``proof`` with fields replaced: a tampered but canonical file."""
    return canonical_bytes(proof.model_copy(update=changes))


def test_build_records_the_evaluation() -> None:
    proof = make()
    assert (proof.value, proof.scaled, proof.outcome) == ("0.001539", 1539, 1)
    assert proof.rule["interval"] == "1h"
    assert proof.format == 1
    assert proof.responses[0].body.startswith(b'[{"T":1684702799999')


def test_round_trip() -> None:
    proof = make()
    data = canonical_bytes(proof)
    assert decode_proof(data) == proof
    assert canonical_bytes(decode_proof(data)) == data


def test_canonical_bytes_are_sorted_maps_with_binary_bodies() -> None:
    data = canonical_bytes(make())
    raw = msgpack.unpackb(data, raw=False)
    assert list(raw) == sorted(raw)
    assert list(raw["spec"]) == sorted(raw["spec"])
    assert isinstance(raw["responses"][0]["body"], bytes)
    assert raw["spec"]["subject"]["kind"] == "TOKEN_PRICE"


def test_hash_is_stable_and_independent_of_key_order() -> None:
    one, two = make(), make()
    assert canonical_bytes(one) == canonical_bytes(two)
    assert data_hash(one) == data_hash(two)
    assert len(data_hash(one)) == 32
    reordered = one.model_copy(update={"rule": dict(reversed(list(one.rule.items())))})
    assert list(reordered.rule) != list(one.rule)
    assert canonical_bytes(reordered) == canonical_bytes(one)
    assert data_hash_hex(one) == "0x" + data_hash(one).hex()


def test_the_hash_is_pinned() -> None:
    # A change here changes every proof's dataHash and breaks verification of stored proofs:
    # bump Proof.format (with an upgrade path) rather than edit PINNED.
    assert data_hash_hex(make()) == PINNED


def test_proofs_sharing_responses_share_the_hashed_head_and_each_hashes_its_own_bytes() -> None:
    """ADR 0017: markets of one window share the response objects; the Keccak state after
    ``format``, ``outcome`` and ``responses`` is computed once per outcome, and every hash is
    still keccak256 of that proof's own canonical bytes."""
    fresh = responses()[0].model_copy(update={"fetched_at_ms": 1_999_999_999_999})  # unseen
    proofs = [
        build_proof(spec, [fresh], evaluate(spec, [fresh]))
        for threshold in (1, 1500, 1538, 1539, 1540, 10**30)
        for spec in [market("kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000), threshold=threshold)]
    ]
    assert {p.outcome for p in proofs} == {0, 1}
    before = _HEADS.computed
    hashes = [data_hash(proof) for proof in proofs]
    assert _HEADS.computed - before == 2  # one head per outcome
    assert hashes == [keccak256(canonical_bytes(proof)) for proof in proofs]
    assert len(set(hashes)) == len(proofs)


def test_a_float_in_shared_responses_is_refused_by_the_hash_too() -> None:
    bad = responses()[0].model_copy(
        update={"request": InfoRequest(body={"type": "candleSnapshot", "x": 1.5})}
    )
    with pytest.raises(ProofError, match=r"proof\.responses\[0\]\.request\.body\.x"):
        data_hash(make().model_copy(update={"responses": (bad,)}))


def test_a_third_party_can_rebuild_the_bytes_with_plain_msgpack() -> None:
    """Sorted maps, bin bodies, nothing else: re-packing the decoded data gives the same bytes."""

    def resort(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: resort(obj[k]) for k in sorted(obj)}
        if isinstance(obj, list):
            return [resort(v) for v in obj]
        return obj

    data = canonical_bytes(make())
    assert msgpack.packb(resort(msgpack.unpackb(data, raw=False)), use_bin_type=True) == data


@settings(max_examples=200, deadline=None)
@given(rule=st.dictionaries(st.text(max_size=6), st.text(max_size=4), max_size=8))
def test_keys_are_in_the_order_of_their_utf8_bytes_and_the_hash_is_of_those_bytes(
    rule: dict[str, str],
) -> None:
    """The file's rule: map keys ascend by their UTF-8 bytes. The encoder sorts them as text,
    which UTF-8 keeps in the same order (ASCII, accents, CJK and astral keys alike)."""
    proof = make().model_copy(update={"rule": rule})
    raw = msgpack.unpackb(canonical_bytes(proof), raw=False)
    assert list(raw["rule"]) == sorted(rule, key=lambda key: key.encode())
    assert data_hash(proof) == keccak256(canonical_bytes(proof))


def test_integers_beyond_64_bits_are_decimal_strings() -> None:
    spec = market("kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000), threshold=2**100)
    proof = make(spec)
    raw = msgpack.unpackb(canonical_bytes(proof), raw=False)
    assert raw["spec"]["predicate"]["threshold"] == str(2**100)
    assert decode_proof(canonical_bytes(proof)).spec.predicate.threshold == 2**100
    assert verify(canonical_bytes(proof)).ok


def test_floats_are_refused_both_ways() -> None:
    proof = make()
    bad_request = InfoRequest(body={"type": "candleSnapshot", "x": 1.5})
    floaty = proof.model_copy(
        update={"responses": (proof.responses[0].model_copy(update={"request": bad_request}),)}
    )
    with pytest.raises(ProofError, match=r"proof\.responses\[0\]\.request\.body\.x"):
        canonical_bytes(floaty)
    raw = msgpack.unpackb(canonical_bytes(proof), raw=False)
    raw["scaled"] = 1539.0
    report = verify(msgpack.packb(raw, use_bin_type=True))
    assert (report.ok, report.mismatch) == (False, "decode")
    assert "float" in report.reason


def test_verify_accepts_a_good_proof_with_and_without_the_hash() -> None:
    proof = make()
    data = canonical_bytes(proof)
    report = verify(data, expected_hash=data_hash_hex(proof))
    assert report.ok, report.reason
    assert report.mismatch is None
    assert [c.name for c in report.checks] == [
        "decode",
        "canonical",
        "evaluation",
        "rule",
        "value",
        "scaled",
        "outcome",
        "data_hash",
    ]
    assert verify(data).ok
    assert verify(data, expected_hash=data_hash(proof).hex().upper()).ok  # no 0x, any case


def first_mismatch(data: bytes, expected_hash: str | None = None) -> str | None:
    report = verify(data, expected_hash)
    assert not report.ok
    return report.mismatch


def test_a_tampered_response_body_fails_on_value() -> None:
    proof = make()
    original = proof.responses[0]
    body = original.body.replace(b'"c":"0.001539"', b'"c":"0.001549"')
    assert body != original.body
    tampered = reencode(proof, responses=(original.model_copy(update={"body": body}),))
    report = verify(tampered)
    assert report.mismatch == "value"
    assert "proof 0.001539, recomputed 0.001549" in report.reason


def test_tampered_value_scaled_outcome_and_rule_fail_by_name() -> None:
    proof = make()
    assert first_mismatch(reencode(proof, value="0.0016")) == "value"
    assert first_mismatch(reencode(proof, scaled=1540)) == "scaled"
    assert first_mismatch(reencode(proof, outcome=0)) == "outcome"
    assert first_mismatch(reencode(proof, rule={**proof.rule, "interval": "1m"})) == "rule"
    # numerically equal values are the same value
    assert verify(reencode(proof, value="0.0015390")).ok


def test_a_tampered_spec_fails_by_what_it_changes() -> None:
    proof = make()
    flips = proof.spec.model_copy(
        update={"predicate": proof.spec.predicate.model_copy(update={"threshold": 1600})}
    )
    assert first_mismatch(reencode(proof, spec=flips)) == "outcome"
    rescaled = proof.spec.model_copy(
        update={"subject": proof.spec.subject.model_copy(update={"value_decimals": 7})}
    )
    assert first_mismatch(reencode(proof, spec=rescaled)) == "scaled"
    other_coin = proof.spec.model_copy(
        update={"subject": proof.spec.subject.model_copy(update={"token_identifier": "BTC"})}
    )
    report = verify(reencode(proof, spec=other_coin))
    assert report.mismatch == "evaluation"
    assert "BTC" in report.reason
    # a change that leaves every result alone is still caught by the committed hash
    harmless = proof.spec.model_copy(update={"title": "something else"})
    data = reencode(proof, spec=harmless)
    assert verify(data).ok
    assert first_mismatch(data, expected_hash=data_hash_hex(proof)) == "data_hash"


def test_bytes_that_are_not_canonical_fail() -> None:
    proof = make()
    raw = msgpack.unpackb(canonical_bytes(proof), raw=False)
    unsorted = dict(reversed(list(raw.items())))
    assert first_mismatch(msgpack.packb(unsorted, use_bin_type=True)) == "canonical"
    raw["responses"][0]["body"] = raw["responses"][0]["body"].decode()  # str instead of bin
    assert first_mismatch(msgpack.packb(raw, use_bin_type=True)) == "canonical"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "not msgpack"),
        (b"\xc1garbage", "not msgpack"),
        (msgpack.packb([1, 2]), "not a map"),
        (msgpack.packb({"format": 2}), "unknown proof format 2"),
        (msgpack.packb({"format": 1}), "not a valid proof"),
        (msgpack.packb({1: 2}), "not msgpack"),
    ],
)
def test_undecodable_bytes_fail_on_decode_without_raising(data: bytes, why: str) -> None:
    report = verify(data)
    assert (report.ok, report.mismatch) == (False, "decode")
    assert why in report.reason
    assert report.data_hash.startswith("0x")


def test_a_wrong_or_malformed_expected_hash_fails_on_data_hash() -> None:
    data = canonical_bytes(make())
    assert first_mismatch(data, "0x" + "00" * 32) == "data_hash"
    report = verify(data, "0x1234")
    assert report.mismatch == "data_hash"
    assert "not a 32-byte hex hash" in report.reason


def test_value_is_written_without_exponent() -> None:
    proof = make()
    assert "E" not in proof.value
    tiny = proof.model_copy(update={"value": format(Decimal("1E-8"), "f")})
    assert tiny.value == "0.00000001"


@pytest.mark.parametrize("depth", [900, 3000])
def test_deeply_nested_bytes_fail_on_decode(depth: int) -> None:
    nested = b"\x91" * depth + b"\x01"  # [[[...1...]]]
    data = b"\x82" + msgpack.packb("format") + b"\x01" + msgpack.packb("spec") + nested
    report = verify(data)
    assert (report.ok, report.mismatch) == (False, "decode")


def test_a_value_that_cannot_be_in_a_proof_is_named_by_its_path() -> None:
    from protocol.proof import ProofError, _plain

    with pytest.raises(ProofError, match=r"proof\.a\[1\]\.b: float 1.5 cannot be in a proof"):
        _plain({"a": [1, {"b": 1.5}]}, "proof")
    with pytest.raises(ProofError, match=r"proof\.a: map keys must be strings"):
        _plain({"a": {1: 2}}, "proof")
    assert _plain({"b": [1, 2**70, b"x"], "a": True}, "p") == {
        "a": True,
        "b": [1, str(2**70), b"x"],
    }
