"""devnet.anvil: the process never outlives its owner, and the chain helpers do what they say."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devnet import anvil as anvil_module
from devnet.anvil import Anvil, AnvilError, pid_alive
from devnet.keys import DEPLOYER, DEV_ACCOUNTS, DEV_MNEMONIC, RESOLVER
from supervision import wait_for

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def transfer(anvil: Anvil, wei: int = 1) -> str:
    tx = {"from": DEPLOYER.address, "to": RESOLVER.address, "value": hex(wei)}
    tx |= {"maxFeePerGas": hex(50 * 10**9), "maxPriorityFeePerGas": hex(10**9)}
    return str(anvil.rpc("eth_sendTransaction", tx))


def mined(anvil: Anvil, tx_hash: str) -> str:
    """Wait for ``tx_hash`` to be mined (automine is asynchronous under load)."""
    wait_for(lambda: anvil.rpc("eth_getTransactionReceipt", tx_hash), timeout=10, interval=0.01)
    return tx_hash


def test_stop_leaves_no_process() -> None:
    node = Anvil(chain_id=777)
    try:
        node.start()
        pid = node.pid
        assert pid_alive(pid)
        assert int(node.rpc("eth_chainId"), 16) == 777
    finally:
        node.stop()
    assert not pid_alive(pid)
    node.stop()  # idempotent


def test_context_manager_stops_on_error() -> None:
    pid = 0
    with pytest.raises(RuntimeError, match="boom"), Anvil() as node:
        pid = node.pid
        raise RuntimeError("boom")
    assert pid and not pid_alive(pid)


def test_atexit_guard_stops_live_instances() -> None:
    node = Anvil().start()
    pid = node.pid
    try:
        anvil_module._stop_all()
        assert not pid_alive(pid)
    finally:
        node.stop()


def test_missing_binary_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setattr(anvil_module, "ANVIL_BIN", anvil_module.REPO_ROOT / "no" / "anvil")
    with pytest.raises(AnvilError, match="make setup"):
        Anvil().start()


def test_start_failure_shows_anvil_output() -> None:
    node = Anvil(extra_args=("--no-such-flag",))
    with pytest.raises(AnvilError, match="no-such-flag"):
        node.start()
    assert node.process is None


def test_dev_keys_are_anvils_accounts(anvil: Anvil) -> None:
    assert [a.lower() for a in anvil.rpc("eth_accounts")] == [
        a.address.lower() for a in DEV_ACCOUNTS
    ]
    assert DEV_MNEMONIC.endswith("junk")
    assert "private_key" not in repr(DEPLOYER)


def test_reorg_changes_the_block_hash_at_a_height(anvil: Anvil) -> None:
    anvil.mine(3)
    tx = mined(anvil, transfer(anvil))
    height = anvil.block_number()
    before = {n: anvil.block_hash(n) for n in range(height - 2, height + 1)}
    anvil.reorg(2)
    assert anvil.block_number() == height
    assert anvil.block_hash(height - 2) == before[height - 2]  # below the reorg depth
    assert anvil.block_hash(height - 1) != before[height - 1]
    assert anvil.block_hash(height) != before[height]
    assert anvil.rpc("eth_getTransactionReceipt", tx) is None  # the transaction is gone


def test_snapshot_revert_mine_time_balance(anvil: Anvil) -> None:
    start = anvil.block_number()
    snap = anvil.snapshot()
    anvil.mine(5)
    assert anvil.block_number() == start + 5
    anvil.revert(snap)
    assert anvil.block_number() == start
    with pytest.raises(AnvilError, match="refused"):
        anvil.revert(snap)  # an id works once

    t0 = int(anvil.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    anvil.increase_time(3600)
    t1 = int(anvil.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    assert t1 - t0 >= 3600

    anvil.set_balance(RESOLVER.address, 12345)
    assert int(anvil.rpc("eth_getBalance", RESOLVER.address, "latest"), 16) == 12345


def test_automine_off_and_base_fee(anvil: Anvil) -> None:
    anvil.set_automine(False)
    height = anvil.block_number()
    tx = transfer(anvil)
    assert anvil.rpc("eth_getTransactionReceipt", tx) is None
    anvil.set_next_block_base_fee(7_000_000_000)
    anvil.mine(1)
    block = anvil.rpc("eth_getBlockByNumber", "latest", False)
    assert int(block["number"], 16) == height + 1
    assert int(block["baseFeePerGas"], 16) == 7_000_000_000
    assert anvil.rpc("eth_getTransactionReceipt", tx) is not None
    anvil.set_automine(True)


def test_several_anvils_side_by_side(start_anvil: Callable[..., Anvil]) -> None:
    a, b = start_anvil(chain_id=1001), start_anvil(chain_id=1002, no_mining=True)
    assert a.port != b.port
    assert int(b.rpc("eth_chainId"), 16) == 1002
    transfer(b)
    assert b.block_number() == 0
