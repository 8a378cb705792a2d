"""The signer on anvil: volume, dedup, simulation failures, restarts, reorgs, external nonce use,
a lying node. Every test reads the chain itself to check nonces and transaction counts."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from eth_abi.abi import decode, encode
from eth_account import Account
from eth_utils.abi import function_signature_to_4byte_selector

from devnet.anvil import Anvil
from devnet.deploy import Deployment
from devnet.keys import DEV_ACCOUNTS, OUTSIDER, RESOLVER
from protocol.records import AuditEntry
from protocol.supervision import FaultAction, FaultRule
from protocol.tx_records import IntentState
from sources.artifacts import all_abis
from sources.evm import EvmClient
from sources.keys import SigningKey
from storage import Store
from supervision import FaultPlan
from tests.integration.test_signer_harness import (
    SIGNER,
    ChainCfg,
    assert_gapless,
    assert_index_exact,
    commit_intents,
    market_address,
    mine_seen,
    signer_runtime,
    signer_txs,
    spoil_intent,
    stored_attempts,
    stored_intents,
    transfer_intents,
    txpool_pending,
)

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

KEY = SigningKey.from_hex(RESOLVER.private_key)
_PENDING = function_signature_to_4byte_selector("pending(address)")


def committed(evm: EvmClient, oracle: str, markets: list[str]) -> list[bool]:
    """``SimpleOracle.pending(market).committed`` for each market, in JSON-RPC batches."""
    calls = [
        (
            "eth_call",
            [{"to": oracle, "data": "0x" + (_PENDING + encode(["address"], [m])).hex()}, "latest"],
        )
        for m in markets
    ]
    out = []
    for raw in evm.batch(calls):
        fields = decode(["uint8", "bytes32", "uint64", "bool", "bool"], bytes.fromhex(raw[2:]))
        out.append(bool(fields[3]))
    return out


def audits(store: Store, action: str) -> list[AuditEntry]:
    return [e for _, e in store.items("audit", expect=AuditEntry) if e.action == action]


@pytest.mark.xdist_group("signer_heavy")
def test_a_thousand_commits_each_mined_once_with_gapless_nonces(
    anvil: Anvil, deployment: Deployment, evm: EvmClient, tmp_path: Path
) -> None:
    anvil.set_automine(False)
    anvil.set_interval_mining(1)
    intents = commit_intents(deployment.oracle, 1000)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=1)) as rt:
            replies = rt.services.extra["replies"]
            for msg in intents:
                rt.tell(SIGNER, msg)
            for msg in intents[:100]:  # the same intents again while in flight: no new tx
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: replies.confirmed_count() == 1000, timeout=60)
            first = replies.confirmed()
            state = rt.state(SIGNER)
            assert state["nonce"] == 1000 and state["confirmed"] == 1000
            assert state["in_flight"] == state["queued"] == state["failed"] == 0

            # a confirmed intent asked again is answered again, at once, with the same tx
            before = len(replies.snapshot())
            for msg in intents[:10]:
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: len(replies.snapshot()) == before + 10, timeout=10)
            again = replies.snapshot()[before:]
            assert all(m == first[m.intent_id] for m in again)
            assert rt.state(SIGNER)["nonce"] == 1000

        mined = signer_txs(anvil.rpc_url, RESOLVER.address)
        assert_gapless(mined, 1000)
        assert {h for _, h, _ in mined} == {m.tx_hash for m in first.values()}
        assert sorted(m.nonce for m in first.values()) == list(range(1000))
        assert txpool_pending(anvil.rpc_url) == 0
        assert all(committed(evm, deployment.oracle, [market_address(n) for n in range(1000)]))
        records = stored_intents(store)
        assert {r.state for r in records.values()} == {IntentState.CONFIRMED}
        attempts = stored_attempts(store)
        assert {a.nonce for a in attempts} == set(range(1000))
        assert len({(a.nonce, a.intent_id) for a in attempts}) == 1000  # one intent per nonce
        assert (
            len(attempts) == 1000
        )  # full blocks of its own txs are progress, not a reason to bump
        assert assert_index_exact(store) == {"confirmed": 1000}
        # a restart loads the counts from the index and watches only the recent blocks' intents
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=1)) as rt:
            state = rt.state(SIGNER)
            assert state["confirmed"] == 1000 and state["in_flight"] == state["queued"] == 0
            newest = max(block for _, _, block in mined)
            assert state["watched"] == sum(1 for _, _, block in mined if block > newest - 64)


def test_a_revert_in_simulation_fails_for_good_and_uses_no_nonce(
    anvil: Anvil, deployment: Deployment, evm: EvmClient, tmp_path: Path
) -> None:
    first, second = commit_intents(deployment.oracle, 2)
    same_market = first.model_copy(update={"intent_id": "dev:other-id-same-market"})
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            rt.tell(SIGNER, first)
            rt.wait_for(lambda: first.intent_id in replies.confirmed(), timeout=20)
            rt.tell(SIGNER, same_market)
            failed = rt.wait_for(lambda: replies.failed().get(same_market.intent_id), timeout=20)
            assert failed.permanent
            assert "AlreadyCommitted" in failed.reason and "reverted in simulation" in failed.reason
            assert rt.state(SIGNER)["nonce"] == 1  # nothing signed, no nonce burnt
            rt.tell(SIGNER, second)
            ok = rt.wait_for(lambda: replies.confirmed().get(second.intent_id), timeout=20)
            assert ok.nonce == 1
            rt.tell(SIGNER, same_market)  # asked again: the same permanent failure, nothing sent
            rt.wait_for(lambda: len(replies.failed()) == 1 and len(replies.snapshot()) == 4, 10)
        assert stored_intents(store)[same_market.intent_id].nonce is None
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 2)


def test_a_repeated_intent_in_flight_is_not_sent_again_and_answers_its_new_requester(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    anvil.set_automine(False)
    (intent,) = transfer_intents(1)
    moved = intent.model_copy(update={"reply_to": "requester2"})
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            rt.tell(SIGNER, intent)
            rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 1, timeout=10)
            rt.tell(SIGNER, moved)  # e.g. the requester restarted under another name
            rt.tell(SIGNER, moved)
            rt.wait_for(
                lambda: stored_intents(store)[intent.intent_id].reply_to == "requester2", 10
            )
            anvil.mine(1)
            rt.wait_for(lambda: replies.confirmed_count() == 1, timeout=10)
            assert [m.intent_id for m in replies.received_by("requester2")] == [intent.intent_id]
            assert replies.received_by("requester") == []
            assert rt.state(SIGNER)["nonce"] == 1
        assert len(stored_attempts(store)) == 1
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 1)


def test_a_crash_between_persist_and_broadcast_loses_nothing(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    """In-process: the signer crashes on its Broadcast (signed and persisted, nothing sent);
    the restarted incarnation reloads the attempts from LMDB and sends the same bytes."""
    crash = FaultPlan(
        [FaultRule(actor=SIGNER, message="signer_broadcast", action=FaultAction.RAISE)]
    )
    intents = transfer_intents(20)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0), faults=crash) as rt:
            replies = rt.services.extra["replies"]
            for msg in intents:
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: replies.confirmed_count() == 20, timeout=30)
            assert rt.restarts(SIGNER) == 1 and len(crash.fired) == 1
        attempts = stored_attempts(store)
    mined = signer_txs(anvil.rpc_url, RESOLVER.address)
    assert_gapless(mined, 20)
    assert {h for _, h, _ in mined} == {a.tx_hash for a in attempts}  # the persisted bytes


def test_a_reorg_under_a_confirmed_tx_sends_it_again(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    (intent,) = transfer_intents(1)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            rt.tell(SIGNER, intent)
            first = rt.wait_for(lambda: replies.confirmed().get(intent.intent_id), timeout=20)
            assert anvil.block_hash(first.block_number) == first.block_hash
            anvil.reorg(anvil.block_number() - first.block_number + 1)  # drops the tx
            assert anvil.block_hash(first.block_number) != first.block_hash

            def confirmed_again() -> object:
                last = replies.confirmed().get(intent.intent_id)
                return last if last is not None and last.block_hash != first.block_hash else None

            second = rt.wait_for(confirmed_again, timeout=20)
            assert second.nonce == first.nonce == 0
            assert second.tx_hash == first.tx_hash  # the same signed bytes, mined again
            assert anvil.block_hash(second.block_number) == second.block_hash
            state = rt.state(SIGNER)
            assert state["reorgs"] == 1 and state["confirmed"] == 1 and state["nonce"] == 1
        assert [e.subject for e in audits(store, "tx_reorged")] == [intent.intent_id]
        assert stored_intents(store)[intent.intent_id].reorgs == 1
        assert assert_index_exact(store) == {"confirmed": 1}
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 1)


def send_outside(evm: EvmClient, nonce: int | None = None, tip: int = 10**9) -> str:
    """A transfer signed with the signer's key by someone else (the key used outside the runner)."""
    if nonce is None:
        nonce = evm.get_transaction_count(RESOLVER.address, "pending")
    tx = {
        "to": OUTSIDER.address,
        "value": 7,
        "gas": 21_000,
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": 50 * 10**9,
        "nonce": nonce,
        "chainId": 31337,
        "type": 2,
    }
    return evm.send_raw_transaction(
        bytes(Account.sign_transaction(tx, RESOLVER.private_key).raw_transaction)
    )


def test_nonces_used_outside_the_runner_are_detected_at_start(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            for msg in transfer_intents(3):
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: replies.confirmed_count() == 3, timeout=20)
        send_outside(evm)  # nonce 3, while the runner is down
        send_outside(evm)  # nonce 4
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            state = rt.wait_for(lambda: (s := rt.state(SIGNER))["phase"] == "running" and s, 10)
            assert state["external_nonce_use"] == 2 and state["nonce"] == 5
            for msg in transfer_intents(2, start=3):
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: replies.confirmed_count() == 2, timeout=20)
            assert sorted(m.nonce for m in replies.confirmed().values()) == [5, 6]
        (alert,) = audits(store, "external_nonce_use")
        assert alert.detail["from"] == "3" and alert.detail["to"] == "5"
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 7)


def test_a_pending_nonce_taken_by_someone_else_is_alerted_and_the_intent_renonced(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    anvil.set_automine(False)
    (intent,) = transfer_intents(1)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            rt.tell(SIGNER, intent)
            rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 1, timeout=10)
            ours = stored_attempts(store)[0]
            outsider = send_outside(evm, nonce=0, tip=20 * 10**9)  # replaces ours
            for _ in range(4):  # the signer must see the nonce used on two heads
                head = anvil.block_number() + 1
                anvil.mine(1)
                rt.wait_for(lambda h=head: rt.state(SIGNER)["head"] >= h, timeout=10)
                if rt.state(SIGNER)["external_nonce_use"]:
                    break
            assert rt.state(SIGNER)["external_nonce_use"] == 1
            anvil.mine(1)
            done = rt.wait_for(lambda: replies.confirmed().get(intent.intent_id), timeout=20)
            assert done.nonce == 1 and done.tx_hash not in (ours.tx_hash, outsider)
        (alert,) = audits(store, "external_nonce_use")
        assert alert.subject == intent.intent_id and ours.tx_hash in alert.detail["attempts"]
    mined = signer_txs(anvil.rpc_url, RESOLVER.address)
    assert [(n, h) for n, h, _ in mined] == [(0, outsider), (1, done.tx_hash)]


def test_a_new_key_drains_the_old_keys_intents_before_it_signs(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    """Key rotation (operations.md): restarted on a new key while three transactions of the
    old key wait in the pool, the signer follows them to their receipts and past the reorg
    watch (a reorg would need the old key's nonces to settle them), holds new intents QUEUED
    meanwhile, then signs those with the new key from its own nonce 0."""
    new_key = SigningKey.from_hex(DEV_ACCOUNTS[5].private_key)
    anvil.set_automine(False)
    old, new = transfer_intents(3), transfer_intents(2, start=3)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            for msg in old:
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 3, timeout=20)
        with signer_runtime(store, evm, new_key, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            state = rt.wait_for(lambda: (s := rt.state(SIGNER))["phase"] == "draining" and s, 10)
            assert state["draining_from"] == RESOLVER.address
            assert state["address"] == new_key.address and state["in_flight"] == 3
            for msg in new:
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: rt.state(SIGNER)["queued"] == 2, timeout=10)
            head = rt.state(SIGNER)["head"]
            anvil.mine(4)  # heads pass, and the old key's three are mined
            rt.wait_for(lambda: rt.state(SIGNER)["head"] >= head + 4, timeout=10)
            assert txpool_pending(anvil.rpc_url) == 0  # the new key signed nothing while draining
            rt.wait_for(lambda: replies.confirmed_count() == 3, timeout=20)
            mined_at = rt.state(SIGNER)["head"]
            assert rt.state(SIGNER)["phase"] == "draining"  # confirmed, still within the watch
            anvil.mine(64)
            rt.wait_for(lambda: rt.state(SIGNER)["head"] >= mined_at + 64, timeout=10)
            rt.wait_for(lambda: rt.state(SIGNER)["phase"] == "running", timeout=10)
            anvil.set_automine(True)
            anvil.mine(1)
            rt.wait_for(lambda: replies.confirmed_count() == 5, timeout=20)
            assert rt.state(SIGNER)["nonce"] == 2
        confirmed = replies.confirmed()
        assert sorted(confirmed[m.intent_id].nonce for m in old) == [0, 1, 2]
        assert sorted(confirmed[m.intent_id].nonce for m in new) == [0, 1]
        (draining,) = audits(store, "signer_key_draining")
        assert draining.detail["old_address"] == RESOLVER.address
        (changed,) = audits(store, "signer_key_changed")
        assert changed.detail["old_address"] == RESOLVER.address
        assert changed.detail["address"] == new_key.address
        assert {r.state for r in stored_intents(store).values()} == {IntentState.CONFIRMED}
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 3)
    assert_gapless(signer_txs(anvil.rpc_url, new_key.address), 2)
    old_hashes = {h for _, h, _ in signer_txs(anvil.rpc_url, RESOLVER.address)}
    assert old_hashes == {confirmed[m.intent_id].tx_hash for m in old}


def test_an_intent_whose_stored_record_does_not_decode_is_rebuilt_never_signed_twice(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    """Asked again for an intent whose record does not decode, the signer looks for attempts
    signed for it: one that was mined is followed to its receipt and answered with the same
    transaction (no second one); one never signed is accepted as new. No crash, each counted."""
    signed, unsigned = transfer_intents(2)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            rt.tell(SIGNER, signed)
            first = rt.wait_for(
                lambda: rt.services.extra["replies"].confirmed().get(signed.intent_id), timeout=20
            )
        for intent in (signed, unsigned):  # lost while the signer was down
            spoil_intent(store, intent.intent_id)
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            rt.tell(SIGNER, signed)
            rt.tell(SIGNER, unsigned)
            again = rt.wait_for(lambda: replies.confirmed().get(signed.intent_id), timeout=20)
            new = rt.wait_for(lambda: replies.confirmed().get(unsigned.intent_id), timeout=20)
            assert (again.tx_hash, again.nonce) == (first.tx_hash, first.nonce)
            assert new.nonce == 1
            assert rt.restarts(SIGNER) == 0 and store.stats().bad_values >= 2
        (rebuilt,) = audits(store, "intent_record_rebuilt")
        assert rebuilt.subject == signed.intent_id
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 2)


def test_an_unreadable_intent_after_a_key_rotation_is_failed_not_guessed(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    """After a rotation the new key's attempts may have taken an old one's place (attempts are
    stored by nonce, not by address): finding none for an unreadable intent proves nothing, so
    the signer answers a permanent ``TxFailed`` saying so and signs nothing for it."""
    (intent,) = transfer_intents(1)
    rotation = AuditEntry(ts=0.0, actor=SIGNER, action="signer_key_changed")
    with Store.open(tmp_path / "data") as store:
        store.audit(rotation)
        spoil_intent(store, intent.intent_id)
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            rt.tell(SIGNER, intent)
            failed = rt.wait_for(lambda: replies.failed().get(intent.intent_id), timeout=20)
            assert failed.permanent and "cannot prove its signed attempts complete" in failed.reason
            assert rt.state(SIGNER)["nonce"] == 0 and rt.restarts(SIGNER) == 0
    assert signer_txs(anvil.rpc_url, RESOLVER.address) == []


def test_a_lying_node_halts_the_signer_and_loses_nothing(anvil: Anvil, tmp_path: Path) -> None:
    intents = transfer_intents(5)
    liar = EvmClient([anvil.rpc_url], chain_id=999, timeout_s=2.0, abis=all_abis())
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, liar, KEY, ChainCfg(confirmations=0)) as rt:
            for msg in intents:
                rt.tell(SIGNER, msg)
            state = rt.wait_for(
                lambda: (s := rt.state(SIGNER))["phase"] == "halted" and s["queued"] == 5 and s, 10
            )
            assert "wrong chain" in state["halted"] and "999" in state["halted"]
            assert state["last_error"] and state["nonce"] is None and state["in_flight"] == 0
            assert rt.alive(SIGNER) and rt.restarts(SIGNER) == 0
            assert rt.state(SIGNER)["queued"] == 5
        liar.close()
        assert {i.state for i in stored_intents(store).values()} == {IntentState.QUEUED}
        assert (
            txpool_pending(anvil.rpc_url) == 0 and signer_txs(anvil.rpc_url, RESOLVER.address) == []
        )

        # the chain id configured for signing is checked too
        with EvmClient([anvil.rpc_url], chain_id=31337, timeout_s=2.0) as honest:
            with signer_runtime(store, honest, KEY, ChainCfg(chain_id=5, confirmations=0)) as rt:
                state = rt.wait_for(lambda: (s := rt.state(SIGNER))["phase"] == "halted" and s, 10)
                assert "configured as 5" in state["halted"]
            with signer_runtime(store, honest, KEY, ChainCfg(confirmations=0)) as rt:
                replies = rt.services.extra["replies"]
                rt.wait_for(lambda: replies.confirmed_count() == 5, timeout=20)
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 5)


POISON = "0x00000000000000000000000000000000DeaDBeef"


class RejectingProxy:
    """Forwards JSON-RPC to anvil, but answers every ``eth_sendRawTransaction`` of a transaction
    whose bytes hold ``marker`` (default: sent to ``POISON``) with a rejection no re-send can
    change (``message``, default "intrinsic gas too low")."""

    def __init__(
        self,
        upstream: str,
        marker: bytes = bytes.fromhex(POISON[2:].lower()),
        message: str = "intrinsic gas too low",
    ) -> None:

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls = body if isinstance(body, list) else [body]
                answers = {}
                forward = []
                for call in calls:
                    raw = (call.get("params") or [""])[0]
                    if call["method"] == "eth_sendRawTransaction" and marker in bytes.fromhex(
                        raw[2:]
                    ):
                        error = {"code": -32000, "message": message}
                        answers[call["id"]] = {"jsonrpc": "2.0", "id": call["id"], "error": error}
                    else:
                        forward.append(call)
                if forward:
                    for item in httpx.post(upstream, json=forward, timeout=10).json():
                        answers[item["id"]] = item
                out = [answers[c["id"]] for c in calls]
                data = json.dumps(out if isinstance(body, list) else out[0]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RejectingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def test_a_tx_the_node_never_accepts_fails_and_its_nonce_is_filled(
    anvil: Anvil, tmp_path: Path
) -> None:
    good = transfer_intents(2)
    poisoned = transfer_intents(1, start=9, to=POISON)[0]
    with (
        RejectingProxy(anvil.rpc_url) as proxy,
        EvmClient([proxy.url], 31337, 5.0) as evm,
        Store.open(tmp_path / "data") as store,
    ):
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            for msg in (good[0], poisoned, good[1]):
                rt.tell(SIGNER, msg)
            failed = rt.wait_for(lambda: replies.failed().get(poisoned.intent_id), timeout=20)
            assert failed.permanent and "intrinsic gas too low" in failed.reason
            rt.wait_for(lambda: replies.confirmed_count() == 2, timeout=20)
            state = rt.wait_for(lambda: (s := rt.state(SIGNER))["in_flight"] == 0 and s, 20)
            assert state["fillers"] == 1 and state["nonce"] == 3 and state["failed"] == 1
        assert [e.subject for e in audits(store, "nonce_filled")] == [poisoned.intent_id]
        records = stored_intents(store)
        assert records[poisoned.intent_id].state is IntentState.FAILED
        assert records["dev:filler:1"].state is IntentState.CONFIRMED
    confirmed = replies.confirmed()
    assert sorted(m.nonce for m in confirmed.values()) == [0, 2]
    mined = signer_txs(anvil.rpc_url, RESOLVER.address)
    assert_gapless(mined, 3)
    filler = anvil.rpc("eth_getTransactionByHash", mined[1][1])
    assert filler["to"].lower() == RESOLVER.address.lower() and int(filler["value"], 16) == 0


def test_a_rejected_attempt_mined_after_all_is_found_by_its_nonce(
    anvil: Anvil, tmp_path: Path
) -> None:
    """The poisoned attempt is rejected by the signer's node and its nonce filled; then another
    node mines the rejected attempt anyway. The filler sees its nonce used, looks up every
    attempt stored at that nonce, finds the rejected one mined: that intent is confirmed after
    all, the filler dropped, and no external use is alerted."""
    anvil.set_automine(False)
    poisoned = transfer_intents(1, start=9, to=POISON)[0]
    with (
        RejectingProxy(anvil.rpc_url) as proxy,
        EvmClient([proxy.url], 31337, 5.0) as evm,
        Store.open(tmp_path / "data") as store,
    ):
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            rt.tell(SIGNER, poisoned)
            rt.wait_for(lambda: replies.failed().get(poisoned.intent_id), timeout=20)
            rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 1, timeout=10)  # the filler
            rejected = next(a for a in stored_attempts(store) if a.intent_id == poisoned.intent_id)
            filler = next(a for a in stored_attempts(store) if a.intent_id != poisoned.intent_id)
            anvil.rpc("anvil_dropTransaction", filler.tx_hash)
            anvil.rpc("eth_sendRawTransaction", "0x" + rejected.raw.hex())  # "another node"
            mine_seen(rt, anvil, 3)
            done = rt.wait_for(lambda: replies.confirmed().get(poisoned.intent_id), timeout=10)
            assert done.tx_hash == rejected.tx_hash and done.nonce == 0
            state = rt.state(SIGNER)
            assert state["external_nonce_use"] == 0 and state["in_flight"] == 0
            assert state["confirmed"] == 1 and state["failed"] == 0
        assert [e.subject for e in audits(store, "abandoned_attempt_mined")] == ["dev:filler:0"]
        records = stored_intents(store)
        assert records[poisoned.intent_id].state is IntentState.CONFIRMED
        assert records["dev:filler:0"].state is IntentState.FAILED
    assert [h for _, h, _ in signer_txs(anvil.rpc_url, RESOLVER.address)] == [rejected.tx_hash]


def test_an_unfunded_key_holds_intents_without_burning_nonces(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    anvil.set_balance(RESOLVER.address, 0)
    intents = transfer_intents(3)
    cfg = ChainCfg(confirmations=0)
    with Store.open(tmp_path / "data") as store, signer_runtime(store, evm, KEY, cfg) as rt:
        replies = rt.services.extra["replies"]
        for msg in intents:
            rt.tell(SIGNER, msg)
        state = rt.wait_for(lambda: (s := rt.state(SIGNER))["funded"] is False and s, 10)
        assert state["queued"] == 3 and state["nonce"] == 0 and state["failed"] == 0
        assert "insufficient funds" in state["last_error"].lower()
        assert rt.restarts(SIGNER) == 0
        anvil.set_balance(RESOLVER.address, 10**20)
        rt.wait_for(lambda: replies.confirmed_count() == 3, timeout=20)
        assert replies.failed() == {} and rt.state(SIGNER)["funded"] is True
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 3)
