"""Integration fixtures: ``hl_sim``, the Hyperliquid simulator on the recorded cassettes.

The cassettes are found at ``<repo root>/../shared/fixtures/hyperliquid/cassettes`` unless
``ORACLE_RUNNER_FIXTURES`` says otherwise (see ``devnet.hl_sim.fixtures``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devnet.hl_sim import Dataset, HlSimulator
from devnet.hl_sim.fixtures import cassettes_dir


@pytest.fixture(scope="session")
def hl_cassettes() -> Dataset:
    """The recorded cassettes as a dataset, loaded once per session (treat as read-only)."""
    directory = cassettes_dir()
    if not directory.is_dir():
        pytest.fail(f"Hyperliquid cassettes not found at {directory}; set ORACLE_RUNNER_FIXTURES")
    return Dataset.from_cassettes(directory)


@pytest.fixture
def hl_sim(hl_cassettes: Dataset) -> Iterator[HlSimulator]:
    """A simulator in this process on 127.0.0.1:<free port>; stopped and joined afterwards."""
    sim = HlSimulator(hl_cassettes)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
