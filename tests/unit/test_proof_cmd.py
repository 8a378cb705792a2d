"""``proof verify`` / ``proof show``: verdicts, exit codes and the readable listing."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from ops.proof_cmd import show_file, verify_file
from protocol.evaluation import evaluate
from protocol.proof import Proof, build_proof, canonical_bytes, data_hash_hex
from tests.fixtures import market, raw_response

pytestmark = pytest.mark.timeout(30)


def proof() -> Proof:
    spec = market("kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000), threshold=1500)
    responses = [raw_response("test_get_candles_snapshot", "candleSnapshot")]
    return build_proof(spec, responses, evaluate(spec, responses))


def write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "market.proof"
    path.write_bytes(data)
    return str(path)


def run(fn: Callable[..., int], *args: object) -> tuple[int, str]:
    out = io.StringIO()
    code = fn(*args, out=out)
    return code, out.getvalue()


def test_verify_ok(tmp_path: Path) -> None:
    p = proof()
    code, text = run(verify_file, write(tmp_path, canonical_bytes(p)), data_hash_hex(p))
    assert code == 0
    assert "VERIFIED" in text
    assert data_hash_hex(p) in text


def test_verify_names_the_first_mismatch(tmp_path: Path) -> None:
    p = proof()
    tampered = canonical_bytes(p.model_copy(update={"outcome": 0}))
    code, text = run(verify_file, write(tmp_path, tampered), None)
    assert code == 1
    assert "MISMATCH outcome: proof 0, recomputed 1" in text
    code, text = run(verify_file, write(tmp_path, canonical_bytes(p)), "0x" + "11" * 32)
    assert code == 1
    assert "MISMATCH data_hash" in text


def test_unreadable_and_undecodable_files_exit_2(tmp_path: Path) -> None:
    code, text = run(verify_file, str(tmp_path / "missing.proof"), None)
    assert code == 2
    assert "unreadable" in text
    code, text = run(verify_file, write(tmp_path, b"not a proof"), None)
    assert code == 2
    assert "MISMATCH decode" in text
    assert run(show_file, str(tmp_path / "missing.proof"))[0] == 2
    assert run(show_file, write(tmp_path, b"\x00"))[0] == 2


def test_show_lists_spec_responses_rule_value_and_hash(tmp_path: Path) -> None:
    p = proof()
    code, text = run(show_file, write(tmp_path, canonical_bytes(p)))
    assert code == 0
    for expected in (
        "TOKEN_PRICE",
        "kPEPE",
        "predicate: value GT 1500",
        "POST https://api.hyperliquid.xyz/info",
        '"interval": "1h"',
        "fetched 1689630204000 (2023-07-17T21:43:24.000+00:00), status 200, 3479 bytes",
        "interval: 1h",
        "value: 0.001539",
        "scaled: 1539",
        "outcome: 1 (YES)",
        f"data hash: {data_hash_hex(p)}",
    ):
        assert expected in text, expected
