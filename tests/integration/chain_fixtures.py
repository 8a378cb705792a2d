"""pytest fixtures for a real chain: anvil, the deployed contracts, web3, an RPC fault proxy.

Use them from a conftest (``from tests.integration.chain_fixtures import *``) or a test module
(``pytest_plugins = ["tests.integration.chain_fixtures"]``)::

    @pytest.mark.integration
    def test_x(anvil, w3, deployment, make_spec, evm):
        market, _ = create_market(w3, deployment.factory, make_spec())

Every process and thread a fixture starts is stopped in its teardown, even when the test fails,
and the teardown checks that anvil's PID is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from web3 import Web3

from devnet.anvil import Anvil, pid_alive
from devnet.deploy import Deployment, deploy
from devnet.keys import CREATOR
from devnet.rpc_proxy import RpcProxy
from protocol.spec import (
    MarketSpec,
    Predicate,
    PredicateOp,
    Subject,
    SubjectKind,
    Window,
    WindowKind,
)
from sources.artifacts import all_abis
from sources.evm import EvmClient

DISPUTE_WINDOW_S = 600
"""The dispute window of the ``deployment`` fixture's oracle."""

__all__ = ["anvil", "deployment", "evm", "make_spec", "pid_alive", "rpc_proxy", "start_anvil", "w3"]


@pytest.fixture
def start_anvil() -> Iterator[Callable[..., Anvil]]:
    """A factory for more anvils (``start_anvil(chain_id=999)``), all stopped at teardown."""
    started: list[Anvil] = []

    def start(**kwargs: Any) -> Anvil:
        node = Anvil(**kwargs).start()
        started.append(node)
        return node

    yield start
    pids = [a.process.pid for a in started if a.process is not None]
    for node in started:
        node.stop()
    assert not [p for p in pids if pid_alive(p)], "an anvil outlived its test"


@pytest.fixture
def anvil(start_anvil: Callable[..., Anvil]) -> Anvil:
    """A fresh automining anvil, chain id 31337."""
    return start_anvil()


@pytest.fixture
def w3(anvil: Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 10}))


@pytest.fixture
def deployment(w3: Web3) -> Deployment:
    """SimpleOracle (dispute window ``DISPUTE_WINDOW_S``) and MarketFactory; RESOLVER allowed."""
    return deploy(w3, dispute_window=DISPUTE_WINDOW_S)


@pytest.fixture
def evm(anvil: Anvil) -> Iterator[EvmClient]:
    """An ``EvmClient`` on the ``anvil`` fixture that decodes the reference contracts' errors."""
    client = EvmClient([anvil.rpc_url], chain_id=anvil.chain_id, timeout_s=5.0, abis=all_abis())
    yield client
    client.close()


@pytest.fixture
def rpc_proxy(anvil: Anvil) -> Iterator[RpcProxy]:
    """A fault proxy in front of ``anvil``, seed 1234, no faults until the test sets some."""
    proxy = RpcProxy(anvil.rpc_url, seed=1234).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def make_spec() -> Callable[..., MarketSpec]:
    """``make_spec(**overrides)``: a valid TOKEN_PRICE spec; override any top-level field."""

    def make(**overrides: Any) -> MarketSpec:
        fields: dict[str, Any] = {
            "title": "BTC above 30k",
            "subject": Subject(
                kind=SubjectKind.TOKEN_PRICE, token_identifier="BTC", value_decimals=2
            ),
            "predicate": Predicate(op=PredicateOp.GT, threshold=3_000_000),
            "window": Window(
                kind=WindowKind.SNAPSHOT_AT, t_start=1_700_000_000, t_end=1_700_000_000
            ),
            "cutoff_time": 1_699_990_000,
            "creator": CREATOR.address,
        }
        fields.update(overrides)
        return MarketSpec(**fields)

    return make
