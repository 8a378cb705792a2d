"""The committed contract artifacts match their sources (fast: hashes only, no node).

The byte-for-byte recompile is ``tests/integration/test_contracts.py::test_artifacts_rebuild``.
"""

from __future__ import annotations

import json

import pytest

from sources.artifacts import ARTIFACTS_DIR, CONTRACTS_DIR, NAMES, load_artifact, stale_sources

pytestmark = pytest.mark.timeout(10)


def test_every_artifact_is_present_and_no_other() -> None:
    assert sorted(p.stem for p in ARTIFACTS_DIR.glob("*.json")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_artifact_matches_current_sources(name: str) -> None:
    art = load_artifact(name)
    assert stale_sources(art) == [], (
        f"{name}.json was built from other sources than contracts/src now holds: "
        "run `make contracts` and commit contracts/artifacts"
    )
    assert art.sources[art.source_name] == art.source_sha256


@pytest.mark.parametrize("name", NAMES)
def test_artifact_is_from_the_pinned_compiler(name: str) -> None:
    pinned = json.loads((CONTRACTS_DIR.parent / "package.json").read_text())["dependencies"]["solc"]
    art = load_artifact(name)
    assert art.compiler_version.startswith(pinned + "+")
    assert art.bytecode and art.deployed_bytecode


def test_abis_have_what_the_runner_calls() -> None:
    def names(contract: str, kind: str) -> set[str]:
        return {e["name"] for e in load_artifact(contract).abi if e.get("type") == kind}

    assert {"commit", "finalize", "pending", "setResolver", "disputeWindow"} <= names(
        "SimpleOracle", "function"
    )
    assert {"Committed", "Finalized"} <= names("SimpleOracle", "event")
    assert {"AlreadyCommitted", "NotResolver", "DisputeWindowOpen"} <= names(
        "SimpleOracle", "error"
    )
    assert {"createMarket", "marketCount", "markets", "allMarkets", "paramsOf"} <= names(
        "MarketFactory", "function"
    )
    assert {"ingestResolution", "resolved", "outcome", "dataHash", "params"} <= names(
        "Market", "function"
    )
