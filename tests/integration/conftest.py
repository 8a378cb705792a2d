"""Integration fixtures: ``hl_sim``, the Hyperliquid simulator on the recorded cassettes, and
``node``, a JSON-RPC server answering by a script.

The cassettes are found at ``<repo root>/../shared/fixtures/hyperliquid/cassettes`` unless
``ORACLE_RUNNER_FIXTURES`` says otherwise (see ``devnet.hl_sim.fixtures``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devnet.hl_sim import Dataset, HlSimulator
from devnet.hl_sim.fixtures import cassettes_dir
from tests.integration.scripted_node import Script, ScriptedNode


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


@pytest.fixture
def node() -> Iterator[Callable[[Script], str]]:
    """``node(script)``: the URL of a JSON-RPC server on 127.0.0.1 answering by ``script``
    (``tests.integration.scripted_node``); every one is stopped at teardown."""
    started: list[ScriptedNode] = []

    def start(script: Script) -> str:
        started.append(ScriptedNode(script))
        return started[-1].url

    try:
        yield start
    finally:
        for server in started:
            server.close()
