"""The listener on anvil, handing markets to the real scheduler on LMDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from web3 import Web3

import actors.listener as listener_module
from actors.listener import Listener
from actors.scheduler import Scheduler
from devnet.anvil import Anvil
from devnet.deploy import Deployment, create_market, create_market_raw
from devnet.rpc_proxy import RpcProxy
from ops.repl_commands import Commands
from protocol.market_abi import spec_to_params
from protocol.messages import CommandResult, RecoverMarkets, Tick
from protocol.records import AuditEntry, Job
from protocol.spec import MarketSpec
from protocol.supervision import ChildSpec, SupervisorSpec
from sources.artifacts import all_abis
from sources.evm import EvmClient
from storage import Store
from supervision import ManualClock, Runtime

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def chain_config(deployment: Deployment, **overrides: Any) -> SimpleNamespace:
    fields = {
        "factory": deployment.factory,
        "confirmations": 0,
        "start_block": 0,
        "poll_s": 1.0,
        "max_log_range": 5_000,
        **overrides,
    }
    return SimpleNamespace(**fields)


@contextmanager
def listening(
    data: Path, url: str, deployment: Deployment, chain_id: int = 31337, **overrides: Any
) -> Iterator[Runtime]:
    tree = SupervisorSpec(
        children=(
            ChildSpec(id="scheduler", actor="scheduler", args={"tick_s": 3600}),
            ChildSpec(id="listener:dev", actor="listener", args={"chain": "dev"}),
        )
    )
    evm = EvmClient([url], chain_id=chain_id, timeout_s=2.0, abis=all_abis(), cooldown_s=0.5)
    with Store.open(data) as store:
        extra = {
            "store": store,
            "evms": {"dev": evm},
            "chains": {"dev": chain_config(deployment, **overrides)},
        }
        types = {"scheduler": Scheduler, "listener": Listener}
        # the manual clock never advances here: each poll is asked for explicitly
        with Runtime(tree, actor_types=types, clock=ManualClock(1_600_000_000), extra=extra) as rt:
            yield rt
    evm.close()


def poll(rt: Runtime) -> dict[str, Any]:
    rt.ask("listener:dev", Tick(now=0), timeout=60)
    state: dict[str, Any] = rt.state("listener:dev")
    return state


def jobs(rt: Runtime) -> set[str]:
    store: Store = rt.services.extra["store"]
    return {job.key.address for _, job in store.items("jobs", expect=Job)}


def create(w3: Web3, deployment: Deployment, spec: MarketSpec, n: int) -> set[str]:
    return {create_market(w3, deployment.factory, spec)[0] for _ in range(n)}


def test_every_market_reaches_the_scheduler_once(
    tmp_path: Path, anvil: Anvil, w3: Web3, deployment: Deployment, make_spec: Callable[..., Any]
) -> None:
    created = create(w3, deployment, make_spec(), 5)
    with listening(tmp_path / "d", anvil.rpc_url, deployment) as rt:
        state = poll(rt)
        assert jobs(rt) == created
        assert state["markets"] == 5 and state["cursor"] == anvil.block_number()
        more = create(w3, deployment, make_spec(title="second"), 3)
        assert poll(rt)["markets"] == 8
        assert jobs(rt) == created | more
    # a restart resumes from the durable cursor: nothing handed off again
    with listening(tmp_path / "d", anvil.rpc_url, deployment) as rt:
        assert poll(rt)["markets"] == 0
        assert jobs(rt) == created | more


def test_a_large_range_is_handed_off_in_batches(
    tmp_path: Path,
    anvil: Anvil,
    w3: Web3,
    deployment: Deployment,
    make_spec: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(listener_module, "HAND_OFF_BATCH", 2)
    created = create(w3, deployment, make_spec(), 5)
    with listening(tmp_path / "d", anvil.rpc_url, deployment) as rt:
        state = poll(rt)
        assert jobs(rt) == created
        assert (state["markets"], state["hand_offs"]) == (5, 3)  # 2 + 2 + 1, one range


def test_confirmations_hold_back_the_newest_blocks(
    tmp_path: Path, anvil: Anvil, w3: Web3, deployment: Deployment, make_spec: Callable[..., Any]
) -> None:
    with listening(tmp_path / "d", anvil.rpc_url, deployment, confirmations=3) as rt:
        created = create(w3, deployment, make_spec(), 1)
        assert poll(rt)["markets"] == 0
        anvil.mine(3)
        assert poll(rt)["markets"] == 1
        assert jobs(rt) == created


def test_a_refused_range_is_shrunk(
    tmp_path: Path,
    anvil: Anvil,
    w3: Web3,
    deployment: Deployment,
    make_spec: Callable[..., Any],
    rpc_proxy: RpcProxy,
) -> None:
    created = create(w3, deployment, make_spec(), 4)
    anvil.mine(40)
    rpc_proxy.set_faults(max_logs_range=8)
    with listening(tmp_path / "d", rpc_proxy.url, deployment) as rt:
        state = poll(rt)
        assert jobs(rt) == created
        assert state["cursor"] == anvil.block_number()
        assert rpc_proxy.stats()["range_too_large"] >= 1  # refused, then shrunk and retried


def test_an_undecodable_log_is_audited_and_the_listener_goes_on(
    tmp_path: Path, anvil: Anvil, w3: Web3, deployment: Deployment, make_spec: Callable[..., Any]
) -> None:
    good = create(w3, deployment, make_spec(), 1)
    params = list(spec_to_params(make_spec()))
    window = list(params[4])
    window[1], window[2] = 2_000_000_000, 1_000_000_000  # t_end before t_start
    params[4] = tuple(window)
    create_market_raw(w3, deployment.factory, tuple(params))
    later = create(w3, deployment, make_spec(title="after the bad one"), 1)
    with listening(tmp_path / "d", anvil.rpc_url, deployment) as rt:
        state = poll(rt)
        assert jobs(rt) == good | later
        assert state["bad_logs"] == 1
        store: Store = rt.services.extra["store"]
        (entry,) = [e for _, e in store.items("audit", expect=AuditEntry) if e.action == "bad_log"]
        assert "t_end" in entry.detail["reason"]


def test_a_reorg_rewinds_to_the_fork_point_and_rescans(
    tmp_path: Path, anvil: Anvil, w3: Web3, deployment: Deployment, make_spec: Callable[..., Any]
) -> None:
    before = create(w3, deployment, make_spec(), 2)
    anvil.mine(5)
    with listening(tmp_path / "d", anvil.rpc_url, deployment) as rt:
        assert poll(rt)["markets"] == 2
        anvil.reorg(3)  # the last three blocks are replaced (no markets were in them)
        after = create(w3, deployment, make_spec(title="after the reorg"), 2)
        state = poll(rt)
        assert state["reorgs"] == 1
        assert jobs(rt) == before | after


def test_recovery_rebuilds_markets_from_the_factory(
    tmp_path: Path, anvil: Anvil, w3: Web3, deployment: Deployment, make_spec: Callable[..., Any]
) -> None:
    created = create(w3, deployment, make_spec(), 3)
    head = anvil.block_number()
    with listening(tmp_path / "d", anvil.rpc_url, deployment, start_block=head + 1) as rt:
        assert poll(rt)["markets"] == 0  # started past them, as a new data dir might
        answer = rt.ask("listener:dev", RecoverMarkets(), timeout=60)
        assert answer == CommandResult(ok=True, state="3 markets re-delivered")
        assert jobs(rt) == created
        # the operator's way (operations.md): the same message from the debug REPL
        repl = Commands(rt, rt.services.extra["store"], str)
        ok, text = repl.run('ask("listener:dev", {"kind": "listener_recover"}, timeout_s=30)')
        assert ok, text
        assert "3 markets re-delivered" in text
        assert jobs(rt) == created


def test_a_recovery_the_node_refuses_is_answered_not_a_crash(
    tmp_path: Path, deployment: Deployment
) -> None:
    with listening(tmp_path / "d", "http://127.0.0.1:9", deployment) as rt:
        answer = rt.ask("listener:dev", RecoverMarkets(), timeout=60)
        assert isinstance(answer, CommandResult) and not answer.ok
        assert answer.error.startswith("recovery stopped: ") and "ask again" in answer.error
        entry = rt.registry.entry("listener:dev")
        assert entry is not None and entry.restarts == 0


def test_faults_in_the_rpc_path_lose_no_market(
    tmp_path: Path,
    anvil: Anvil,
    w3: Web3,
    deployment: Deployment,
    make_spec: Callable[..., Any],
    rpc_proxy: RpcProxy,
) -> None:
    created = create(w3, deployment, make_spec(), 12)
    rpc_proxy.set_faults(error_rate=0.1, drop_rate=0.1, malformed_rate=0.1, max_logs_range=4)
    with listening(tmp_path / "d", rpc_proxy.url, deployment) as rt:
        for _ in range(60):
            poll(rt)
            if jobs(rt) == created:
                break
        assert jobs(rt) == created
        assert rt.state("listener:dev")["errors"] > 0  # the faults really happened


def test_a_lying_node_halts_the_listener(
    tmp_path: Path, anvil: Anvil, w3: Web3, deployment: Deployment, make_spec: Callable[..., Any]
) -> None:
    create(w3, deployment, make_spec(), 1)
    with listening(tmp_path / "d", anvil.rpc_url, deployment, chain_id=999) as rt:
        state = poll(rt)
        assert "chain" in state["halted"].lower()
        assert jobs(rt) == set()
