"""Data proofs: everything needed to recompute a resolution, in bytes whose hash goes on chain.

    proof = build_proof(spec, responses, evaluate(spec, responses))
    blob = canonical_bytes(proof)            # the file ``oracle-runner proof verify FILE`` reads
    data_hash_hex(proof)                     # '0x…' = keccak256(blob), committed on chain
    verify(blob, expected_hash=...).ok       # recomputes everything from the raw responses

File format (format 1), enough to verify without this code:

* The file is one msgpack map (the ``Proof``), no envelope. Every map has string keys written in
  ascending order of their UTF-8 bytes; arrays are arrays; byte strings are msgpack ``bin``; text
  is msgpack ``str``. Floats never appear. Integers from -2**63 to 2**64-1 are msgpack integers;
  any other integer (a threshold or scaled value past 64 bits) is written as its base-10 ``str``.
  These rules make the bytes of a proof unique: ``verify`` rejects any other encoding.
* ``dataHash = keccak256(file bytes)`` (Ethereum's Keccak-256, not SHA3-256).
* Keys of the top map: ``format`` (1), ``spec`` (the market spec: ``subject``, ``predicate``,
  ``window`` in chain seconds, ``oracle.rounding_decimals``, ...), ``responses`` (each:
  ``request.body`` the JSON body posted to ``url``, ``fetched_at_ms``, ``status`` and ``body`` the
  exact response bytes), ``rule`` (strings: method, source, interval, ``start_ms``, ``end_ms``,
  items, ...), ``value`` (the exact measured value as a plain decimal string), ``scaled`` (the
  integer compared with the threshold) and ``outcome`` (0 or 1).
* To verify: recompute the value from ``responses[*].body`` by the rules of
  ``protocol.evaluation`` (DESIGN.md section 6), round it half-even to
  ``spec.oracle.rounding_decimals`` places, multiply by ``10**spec.subject.value_decimals`` and
  round half-even to an integer; ``outcome`` is 1 iff ``scaled <op> spec.predicate.threshold``.
  Compare ``value`` numerically, ``scaled`` and ``outcome`` exactly, and keccak256 of the file
  with the hash on chain.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

import msgpack
import sha3  # safe-pysha3: a Keccak-256 state that can be copied
from eth_utils.crypto import keccak
from pydantic import Field, ValidationError

from protocol.codec import register
from protocol.evaluation import Evaluation, EvaluationError, evaluate
from protocol.evaluation.memo import MeasureMemo, responses_key
from protocol.hyperliquid import RawResponse
from protocol.spec import Frozen, MarketSpec

PROOF_FORMAT: Literal[1] = 1
MAX_PROOF_BYTES = 64 * 1024 * 1024
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_HASH = re.compile(r"(0x)?[0-9a-fA-F]{64}")


class ProofError(ValueError):
    """Bytes that are not a format-1 proof, or a proof that cannot be encoded; says why."""


class Proof(Frozen):
    """A resolution and its evidence: the spec, every raw response and what they gave."""

    format: Literal[1] = PROOF_FORMAT
    spec: MarketSpec
    responses: tuple[RawResponse, ...]
    rule: dict[str, str]
    value: str = Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$")
    scaled: int
    outcome: Literal[0, 1]


register(Proof, kind="proof")
"""Stored in LMDB (``proofs``) as an envelope; the file and the hash use ``canonical_bytes``."""


def build_proof(
    spec: MarketSpec, responses: Sequence[RawResponse], evaluation: Evaluation
) -> Proof:
    """The proof of ``evaluation``, which ``evaluate(spec, responses)`` returned."""
    return Proof(
        spec=spec,
        responses=tuple(responses),
        rule=evaluation.rule,
        value=format(evaluation.value, "f"),
        scaled=evaluation.scaled,
        outcome=evaluation.outcome,
    )


def _plain(obj: Any, path: str) -> Any:
    """``obj`` as plain msgpack-ready data with sorted keys; raises ``ProofError`` on floats.

    The path of each element is only spelled out when something is wrong: the fast pass
    builds no strings, and a failure is located by a second, slower pass."""
    try:
        return _plain_fast(obj)
    except _NotPlain:
        _locate(obj, path)
        raise AssertionError("a value the fast pass refused was accepted") from None


class _NotPlain(Exception):
    pass


def _plain_fast(obj: Any) -> Any:
    # the exact types a proof is made of first, by identity: this runs some forty times for
    # each market of a burst (ADR 0017)
    kind = type(obj)
    if kind is str:
        return obj
    if kind is dict:
        return _plain_map(obj)
    if kind is int:
        return obj if _INT_MIN <= obj <= _INT_MAX else str(obj)
    if kind is list or kind is tuple:
        return [_plain_fast(item) for item in obj]
    return _plain_other(obj)


def _plain_other(obj: Any) -> Any:
    """``_plain_fast`` of the other types (bool before int, an enum by its value)."""
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int):
        return int(obj) if _INT_MIN <= obj <= _INT_MAX else str(obj)
    if isinstance(obj, Enum):
        return _plain_fast(obj.value)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    if isinstance(obj, dict):
        return _plain_map(obj)
    if isinstance(obj, list | tuple):
        return [_plain_fast(item) for item in obj]
    raise _NotPlain


def _plain_map(obj: dict[Any, Any]) -> dict[str, Any]:
    for key in obj:
        if not isinstance(key, str):
            raise _NotPlain
    plain = {}
    # UTF-8 keeps the order of code points: keys sorted as text are sorted as their bytes
    for key in sorted(obj):
        value = obj[key]
        kind = type(value)  # a text or a small integer as it is, without a call
        if kind is str or (kind is int and _INT_MIN <= value <= _INT_MAX):
            plain[key] = value
        else:
            plain[key] = _plain_fast(value)
    return plain


def _locate(obj: Any, path: str) -> None:
    """Raise ``ProofError`` naming the first element of ``obj`` that cannot be in a proof."""
    if isinstance(obj, Enum):
        _locate(obj.value, path)
    elif isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise ProofError(f"{path}: map keys must be strings")
        for k in sorted(obj):
            _locate(obj[k], f"{path}.{k}")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            _locate(item, f"{path}[{i}]")
    elif isinstance(obj, float | Decimal):
        raise ProofError(f"{path}: {type(obj).__name__} {obj!r} cannot be in a proof")
    elif not isinstance(obj, bool | int | str | bytes | bytearray | memoryview | None):
        raise ProofError(f"{path}: {type(obj).__name__} cannot be in a proof")


def canonical_bytes(proof: Proof) -> bytes:
    """The proof's unique msgpack bytes (see the module docstring)."""
    return canonical_model_bytes(proof, "proof")


def canonical_model_bytes(model: Frozen, name: str) -> bytes:
    """Any protocol model in the proof file encoding: sorted keys, no floats, unique bytes."""
    return _pack(_plain(model.model_dump(mode="python"), name))


def keccak256(data: bytes) -> bytes:
    return bytes(keccak(data))


def data_hash(proof: Proof) -> bytes:
    """``keccak256(canonical_bytes(proof))``: the 32 bytes committed on chain.

    The top keys in canonical order are ``format``, ``outcome``, ``responses``, then the rest
    (``_TAIL``). Hundreds of markets of a burst share their responses (the same pages, tens of
    kilobytes) and have one of two outcomes, so the Keccak state after the bytes up to the end
    of ``responses`` is remembered for the last few such heads, and a proof hashes only its own
    rest: the same bytes hashed, in a tenth of the time (ADR 0017)."""
    try:
        head = _HEADS.get_or_compute(
            (proof.outcome, responses_key(proof.responses)), lambda: _head_state(proof)
        )
        state = head.copy()
        dumped = proof.model_dump(mode="python", include=_TAIL_SET)
        packer = msgpack.Packer(use_bin_type=True, strict_types=True)
        for key in _TAIL:
            state.update(packer.pack(key) + packer.pack(_plain_fast(dumped[key])))
    except _NotPlain:
        return keccak256(canonical_bytes(proof))  # raises the ProofError that names the value
    return bytes(state.digest())


_TAIL = ("rule", "scaled", "spec", "value")
"""The top keys of a proof after ``responses``, in canonical (byte) order."""
_TAIL_SET: set[str] = set(_TAIL)  # (read only)
_HEADS = MeasureMemo(size=64)
"""Keccak states after the canonical bytes up to the end of ``responses``, by (outcome,
responses)."""


def _head_state(proof: Proof) -> Any:
    responses = [_plain_fast(r.model_dump(mode="python")) for r in proof.responses]
    head = msgpack.Packer().pack_map_header(len(Proof.model_fields)) + b"".join(
        _pack(part)
        for part in ("format", proof.format, "outcome", proof.outcome, "responses", responses)
    )
    return sha3.keccak_256(head)


def _pack(obj: Any) -> bytes:
    return bytes(msgpack.packb(obj, use_bin_type=True, strict_types=True))


def data_hash_hex(proof: Proof) -> str:
    """``data_hash`` as ``0x`` and 64 lower-case hex digits."""
    return "0x" + data_hash(proof).hex()


def _reject_floats(obj: Any, path: str) -> None:
    if isinstance(obj, float):
        raise ProofError(f"{path}: a float ({obj!r}); proofs hold none")
    if isinstance(obj, dict):
        for key, value in obj.items():
            _reject_floats(value, f"{path}.{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            _reject_floats(value, f"{path}[{i}]")


def decode_proof(data: bytes) -> Proof:
    """The proof in ``data``; ``ProofError`` for anything that is not a well-formed format-1 proof.

    Does not check that ``data`` is canonical; ``verify`` does.
    """
    if len(data) > MAX_PROOF_BYTES:
        raise ProofError(f"{len(data)} bytes exceed the {MAX_PROOF_BYTES}-byte limit")
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:
        raise ProofError(f"not msgpack ({len(data)} bytes): {exc!r}") from exc
    if not isinstance(obj, dict):
        raise ProofError(f"not a proof: the top value is a {type(obj).__name__}, not a map")
    if obj.get("format") != PROOF_FORMAT:
        raise ProofError(f"unknown proof format {obj.get('format')!r} (this code reads 1)")
    try:
        _reject_floats(obj, "proof")
        return Proof.model_validate(obj)
    except ValidationError as exc:
        raise ProofError(f"not a valid proof: {exc}") from exc
    except RecursionError as exc:
        raise ProofError("not a proof: nested too deeply") from exc


class Check(Frozen):
    """One verification step: its name, whether it held and the details."""

    name: str
    ok: bool
    detail: str


class VerifyReport(Frozen):
    """The verdict on a proof: ``mismatch`` names the first check that failed (None: all held)."""

    ok: bool
    mismatch: str | None
    reason: str
    data_hash: str
    checks: tuple[Check, ...]
    proof: Proof | None = None


def _hash_check(actual: str, expected: str | None) -> Check | None:
    if expected is None:
        return None
    if not _HASH.fullmatch(expected):
        return Check(name="data_hash", ok=False, detail=f"{expected!r} is not a 32-byte hex hash")
    want = "0x" + expected.lower().removeprefix("0x")
    ok = want == actual
    return Check(name="data_hash", ok=ok, detail=f"expected {want}, file hashes to {actual}")


def _canonical_check(proof: Proof, data: bytes) -> Check:
    try:
        again = canonical_bytes(proof)
    except ProofError as exc:
        return Check(name="canonical", ok=False, detail=str(exc))
    if again == data:
        return Check(name="canonical", ok=True, detail="the bytes are the canonical encoding")
    return Check(
        name="canonical",
        ok=False,
        detail=f"the bytes are not the canonical encoding ({len(data)} bytes, canonical "
        f"{len(again)}): unsorted keys, a str for bytes or another non-canonical form",
    )


def _content_checks(proof: Proof) -> list[Check]:
    try:
        redone = evaluate(proof.spec, proof.responses)
    except EvaluationError as exc:
        kind = "permanent" if exc.permanent else "transient"
        return [Check(name="evaluation", ok=False, detail=f"{kind}: {exc.reason}")]
    except Exception as exc:  # a verifier reports, it does not crash; this would be a bug
        return [Check(name="evaluation", ok=False, detail=f"unexpected error: {exc!r}")]
    rule_diff = sorted(
        k for k in proof.rule.keys() | redone.rule.keys() if proof.rule.get(k) != redone.rule.get(k)
    )
    value = format(redone.value, "f")
    return [
        Check(name="evaluation", ok=True, detail="recomputed from the raw responses"),
        Check(
            name="rule",
            ok=not rule_diff,
            detail=(
                "; ".join(
                    f"{k}: proof {proof.rule.get(k)!r}, recomputed {redone.rule.get(k)!r}"
                    for k in rule_diff
                )
                or "same"
            ),
        ),
        Check(
            name="value",
            ok=Decimal(proof.value) == redone.value,
            detail=f"proof {proof.value}, recomputed {value}",
        ),
        Check(
            name="scaled",
            ok=proof.scaled == redone.scaled,
            detail=f"proof {proof.scaled}, recomputed {redone.scaled}",
        ),
        Check(
            name="outcome",
            ok=proof.outcome == redone.outcome,
            detail=f"proof {proof.outcome}, recomputed {redone.outcome}",
        ),
    ]


def verify(proof_bytes: bytes, expected_hash: str | None = None) -> VerifyReport:
    """Check a proof file's bytes: decode, canonical form, recomputation, and the hash if given.

    Checks, in order: ``decode``, ``canonical``, ``evaluation``, ``rule``, ``value``, ``scaled``,
    ``outcome``, ``data_hash``. Never raises for bad input: a failure is a report.
    """
    actual = "0x" + keccak256(bytes(proof_bytes)).hex()
    checks: list[Check] = []
    proof: Proof | None = None
    try:
        proof = decode_proof(bytes(proof_bytes))
    except ProofError as exc:
        checks.append(Check(name="decode", ok=False, detail=str(exc)))
    if proof is not None:
        checks.append(Check(name="decode", ok=True, detail=f"format {proof.format}"))
        checks.append(_canonical_check(proof, bytes(proof_bytes)))
        checks.extend(_content_checks(proof))
    hash_check = _hash_check(actual, expected_hash)
    if hash_check is not None:
        checks.append(hash_check)
    failed = next((c for c in checks if not c.ok), None)
    return VerifyReport(
        ok=failed is None,
        mismatch=None if failed is None else failed.name,
        reason="all checks hold" if failed is None else failed.detail,
        data_hash=actual,
        checks=tuple(checks),
        proof=proof,
    )
