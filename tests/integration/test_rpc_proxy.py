"""devnet.rpc_proxy: every fault kind, seen by a plain HTTP client in front of a real anvil."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from devnet.anvil import Anvil
from devnet.keys import DEPLOYER, RESOLVER
from devnet.rpc_proxy import Faults, RpcProxy
from supervision import wait_for

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


HTTP = httpx.Client()  # keep-alive, as real clients do


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 5.0) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    return HTTP.post(url, json=body, timeout=timeout)


def head(url: str) -> int:
    return int(rpc(url, "eth_blockNumber").json()["result"], 16)


def test_passes_through_without_faults(anvil: Anvil, rpc_proxy: RpcProxy) -> None:
    assert rpc(rpc_proxy.url, "eth_chainId").json()["result"] == hex(anvil.chain_id)
    assert rpc_proxy.stats()["requests"] == 1


def test_error_5xx_is_not_forwarded(anvil: Anvil, rpc_proxy: RpcProxy) -> None:
    rpc_proxy.set_faults(error_rate=1.0)
    tx = {"from": DEPLOYER.address, "to": RESOLVER.address, "value": "0x1"}
    assert rpc(rpc_proxy.url, "eth_sendTransaction", [tx]).status_code == 503
    assert anvil.block_number() == 0
    assert rpc_proxy.stats()["error_5xx"] == 1


def test_timeout_holds_past_the_client_timeout(rpc_proxy: RpcProxy) -> None:
    rpc_proxy.set_faults(timeout_rate=1.0, timeout_hold_s=2.0)
    with pytest.raises(httpx.ReadTimeout):
        rpc(rpc_proxy.url, "eth_chainId", timeout=0.3)
    assert rpc_proxy.stats()["timeout"] == 1


def sent_by(anvil: Anvil, address: str) -> int:
    """Transactions of ``address`` the node has accepted, mined or still in its pool."""
    return int(anvil.rpc("eth_getTransactionCount", address, "pending"), 16)


def test_drop_forwards_then_closes(anvil: Anvil, rpc_proxy: RpcProxy) -> None:
    rpc_proxy.set_faults(drop_rate=1.0)
    tx = {"from": DEPLOYER.address, "to": RESOLVER.address, "value": "0x1"}
    with pytest.raises(httpx.RemoteProtocolError):
        rpc(rpc_proxy.url, "eth_sendTransaction", [tx])
    # the effect happened, only the answer was lost (the pending count: automine is asynchronous)
    assert sent_by(anvil, DEPLOYER.address) == 1
    rpc_proxy.set_faults(drop_rate=1.0, forward_on_fault=False)
    with pytest.raises(httpx.RemoteProtocolError):
        rpc(rpc_proxy.url, "eth_sendTransaction", [tx])
    assert sent_by(anvil, DEPLOYER.address) == 1
    assert rpc_proxy.stats()["drop"] == 2


def test_malformed_reply(rpc_proxy: RpcProxy) -> None:
    rpc_proxy.set_faults(malformed_rate=1.0)
    reply = rpc(rpc_proxy.url, "eth_chainId")
    assert reply.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        reply.json()


def test_latency_is_added(rpc_proxy: RpcProxy) -> None:
    rpc_proxy.set_faults(latency_s=0.2)
    t0 = time.monotonic()
    assert rpc(rpc_proxy.url, "eth_chainId").status_code == 200
    assert time.monotonic() - t0 >= 0.2  # a lower bound only: never a speed assertion
    assert rpc_proxy.stats()["latency"] == 1


def test_methods_filter_limits_random_faults(rpc_proxy: RpcProxy) -> None:
    rpc_proxy.set_faults(error_rate=1.0, methods=["eth_getLogs"])
    assert rpc(rpc_proxy.url, "eth_chainId").status_code == 200
    assert rpc(rpc_proxy.url, "eth_getLogs", [{}]).status_code == 503


def test_lagging_head(anvil: Anvil, rpc_proxy: RpcProxy) -> None:
    anvil.mine(10)
    rpc_proxy.set_faults(head_lag=3)
    assert head(rpc_proxy.url) == 7
    latest = rpc(rpc_proxy.url, "eth_getBlockByNumber", ["latest", False]).json()["result"]
    assert int(latest["number"], 16) == 7
    assert latest["hash"] == anvil.block_hash(7)
    assert rpc(rpc_proxy.url, "eth_getBlockByNumber", ["0x9", False]).json()["result"] is None
    assert rpc(rpc_proxy.url, "eth_getBlockByNumber", ["0x6", False]).json()["result"]
    assert rpc_proxy.stats()["head_lag"] == 4


def test_range_too_large_and_batches(anvil: Anvil, rpc_proxy: RpcProxy) -> None:
    anvil.mine(20)
    rpc_proxy.set_faults(max_logs_range=10)
    big = rpc(rpc_proxy.url, "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest"}]).json()
    assert big["error"]["code"] == -32005
    assert "block range too large: 21 blocks, max 10" in big["error"]["message"]
    small = rpc(rpc_proxy.url, "eth_getLogs", [{"fromBlock": "0x1", "toBlock": "0xa"}]).json()
    assert small["result"] == []

    batch = [
        {"jsonrpc": "2.0", "id": 7, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "x", "method": "eth_getLogs", "params": [{"fromBlock": "0x0"}]},
        {"jsonrpc": "2.0", "id": 9, "method": "eth_blockNumber", "params": []},
    ]
    replies = HTTP.post(rpc_proxy.url, json=batch, timeout=5).json()
    assert [r["id"] for r in replies] == [7, "x", 9]
    assert replies[0]["result"] == hex(anvil.chain_id)
    assert replies[1]["error"]["code"] == -32005
    assert replies[2]["result"] == "0x14"
    assert rpc_proxy.stats()["batches"] == 1


def test_same_seed_same_faults(anvil: Anvil) -> None:
    def pattern(seed: int) -> list[int]:
        faults = Faults(error_rate=0.5)
        with RpcProxy(anvil.rpc_url, seed=seed, faults=faults) as proxy:
            return [rpc(proxy.url, "eth_chainId").status_code for _ in range(20)]

    first = pattern(5)
    assert first == pattern(5)
    assert 200 in first and 503 in first


def test_knobs_over_http(rpc_proxy: RpcProxy) -> None:
    reply = HTTP.post(f"{rpc_proxy.url}/_proxy/faults", json={"head_lag": 2}, timeout=5)
    assert reply.json()["head_lag"] == 2 and rpc_proxy.faults.head_lag == 2
    bad = HTTP.post(f"{rpc_proxy.url}/_proxy/faults", json={"error_rate": 2.0}, timeout=5)
    assert bad.status_code == 400
    bad = HTTP.post(f"{rpc_proxy.url}/_proxy/faults", json={"nope": 1}, timeout=5)
    assert bad.status_code == 400
    stats = HTTP.get(f"{rpc_proxy.url}/_proxy/stats", timeout=5).json()
    assert stats["requests"] == 0  # knob and stats requests are not counted


def test_stop_cuts_held_requests_and_joins_threads(anvil: Anvil) -> None:
    """A request held for 30 s is cut by ``stop``: only a cut lets the client's thread end
    within the 10 s it is given."""
    faults = Faults(timeout_rate=1.0, timeout_hold_s=30)
    proxy = RpcProxy(anvil.rpc_url, faults=faults).start()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            rpc(proxy.url, "eth_chainId", timeout=35)
        except httpx.HTTPError as exc:
            errors.append(exc)

    t = threading.Thread(target=client, daemon=True)
    try:
        t.start()
        wait_for(lambda: proxy.stats()["timeout"] == 1, timeout=10)  # held at the proxy
    finally:
        proxy.stop()
    t.join(timeout=10)
    assert not t.is_alive() and errors
    assert not [th for th in threading.enumerate() if th.name == "rpc-proxy"]
