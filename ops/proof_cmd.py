"""``oracle-runner proof verify FILE [--hash 0x…]`` and ``oracle-runner proof show FILE``.

    from ops.proof_cmd import show_file, verify_file
    sys.exit(verify_file("market.proof", "0x5f…"))    # prints each check, then the verdict
    sys.exit(show_file("market.proof"))

A proof file holds the canonical bytes of ``protocol.proof.Proof`` (see that module). Exit codes:
0 when every check holds, 1 naming the first mismatch, 2 when the file cannot be read or is not a
proof at all.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from protocol.proof import Proof, ProofError, decode_proof, keccak256, verify

EXIT_OK, EXIT_MISMATCH, EXIT_UNREADABLE = 0, 1, 2


def _read(path: str, out: TextIO) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        print(f"unreadable: {path}: {exc.strerror or exc}", file=out)
        return None


def verify_file(path: str, expected_hash: str | None = None, *, out: TextIO | None = None) -> int:
    """Verify the proof in ``path`` (and its hash, if given); print the verdict; the exit code."""
    out = out or sys.stdout
    data = _read(path, out)
    if data is None:
        return EXIT_UNREADABLE
    report = verify(data, expected_hash)
    for check in report.checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}", file=out)
    print(f"data hash: {report.data_hash}", file=out)
    if report.ok:
        print(f"VERIFIED: {path}", file=out)
        return EXIT_OK
    print(f"MISMATCH {report.mismatch}: {report.reason}", file=out)
    return EXIT_UNREADABLE if report.mismatch == "decode" else EXIT_MISMATCH


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def render(proof: Proof, data: bytes) -> str:
    """A proof as readable text: spec, responses, rule, value, outcome and data hash."""
    spec = proof.spec
    lines = [
        f"proof format {proof.format}",
        f"market: {spec.title}",
        f"  subject: {spec.subject.kind} {spec.subject.metric_id} {spec.subject.token_identifier}"
        f" (value_decimals {spec.subject.value_decimals},"
        f" rounding_decimals {spec.oracle.rounding_decimals})",
        f"  window: {spec.window.kind} [{spec.window.t_start}, {spec.window.t_end})"
        f" = [{_when(spec.window.t_start * 1000)}, {_when(spec.window.t_end * 1000)})",
        f"  predicate: value {spec.predicate.op} {spec.predicate.threshold}",
        f"responses: {len(proof.responses)}",
    ]
    for i, response in enumerate(proof.responses):
        lines += [
            f"  [{i}] POST {response.url} {json.dumps(response.request.body, sort_keys=True)}",
            f"      fetched {response.fetched_at_ms} ({_when(response.fetched_at_ms)}),"
            f" status {response.status}, {len(response.body)} bytes,"
            f" keccak256 0x{keccak256(response.body).hex()}",
        ]
    lines.append("rule:")
    lines += [f"  {key}: {value}" for key, value in sorted(proof.rule.items())]
    lines += [
        f"value: {proof.value}",
        f"scaled: {proof.scaled}",
        f"outcome: {proof.outcome} ({'YES' if proof.outcome else 'NO'})",
        f"data hash: 0x{keccak256(data).hex()}",
    ]
    return "\n".join(lines)


def show_file(path: str, *, out: TextIO | None = None) -> int:
    """Print the proof in ``path`` readably; 0, or 2 when it cannot be read or decoded."""
    out = out or sys.stdout
    data = _read(path, out)
    if data is None:
        return EXIT_UNREADABLE
    try:
        proof = decode_proof(data)
    except ProofError as exc:
        print(f"not a proof: {path}: {exc}", file=out)
        return EXIT_UNREADABLE
    print(render(proof, data), file=out)
    return EXIT_OK
