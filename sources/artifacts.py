"""The compiled contracts: ``contracts/artifacts/<Name>.json`` as typed objects.

::

    from sources.artifacts import load_artifact
    oracle = load_artifact("SimpleOracle")
    oracle.abi, oracle.bytecode                     # list of ABI entries, bytes
    w3.eth.contract(address=addr, abi=oracle.abi)   # a web3 contract

The artifacts are written by ``node contracts/build.js`` (``make contracts``) and committed; this
module only reads files, so the runner can use the ABIs without node.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
ARTIFACTS_DIR = Path(os.environ.get("ORACLE_RUNNER_ARTIFACTS", CONTRACTS_DIR / "artifacts"))
"""The compiled contracts; ``$ORACLE_RUNNER_ARTIFACTS`` points elsewhere (an installed copy)."""
NAMES = ("Market", "MarketFactory", "SimpleOracle")


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    source_name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    compiler_version: str
    source_sha256: str
    sources: dict[str, str]
    """sha256 of every source file of the compilation, by path relative to ``contracts/``."""

    def errors(self) -> list[dict[str, Any]]:
        """The custom-error entries of the ABI (for revert decoding)."""
        return [e for e in self.abi if e.get("type") == "error"]


@cache
def load_artifact(name: str) -> Artifact:
    """Read ``contracts/artifacts/<name>.json``; ``FileNotFoundError`` names the build command."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make contracts`")
    data = json.loads(path.read_text())
    return Artifact(
        name=data["contractName"],
        source_name=data["sourceName"],
        abi=data["abi"],
        bytecode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
        deployed_bytecode=bytes.fromhex(data["deployedBytecode"].removeprefix("0x")),
        compiler_version=data["compiler"]["version"],
        source_sha256=data["sourceSha256"],
        sources=data["sources"],
    )


def all_abis() -> list[list[dict[str, Any]]]:
    """The ABI of every reference contract (pass to ``EvmClient(abis=...)`` to decode reverts)."""
    return [load_artifact(n).abi for n in NAMES]


def stale_sources(artifact: Artifact) -> list[str]:
    """Source files whose current content differs from what ``artifact`` was compiled from.

    Also lists a ``.sol`` file in ``contracts/src`` that the compilation did not include.
    """
    stale = []
    for rel, digest in artifact.sources.items():
        path = CONTRACTS_DIR / rel
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            stale.append(rel)
    for path in sorted((CONTRACTS_DIR / "src").glob("*.sol")):
        rel = f"src/{path.name}"
        if rel not in artifact.sources:
            stale.append(rel)
    return stale
