"""What a resolver finds on chain decides its path: a commit already there (ours: adopted; another
hash: parked), a dispute window longer than it may hold a slot, a key the oracle does not accept;
and a data query that is never answered does not hold it for ever. A checkpoint that does not
decode loses nothing of that: the market's record, or its stored proof if that verifies, stands in.

Each test runs the whole daemon on a devnet (anvil, the contracts, the simulator) and arranges
the chain with the resolver's own key, as another runner or a restored data directory would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.scheduler import resolver_name
from devnet.deploy import send
from devnet.environment import Devnet
from devnet.keys import CREATOR, OUTSIDER, RESOLVER
from devnet.rpc_proxy import Faults
from devnet.scenario import REPLAY_NOW, default_specs
from ops.config import KeySource
from ops.daemon import Daemon
from protocol.evaluation import evaluate, next_page, plan
from protocol.messages import FailureClass, OperatorAction, OperatorCommand, intent_id
from protocol.proof import Proof, ProofError, build_proof, canonical_bytes, data_hash_hex, verify
from protocol.records import Job, JobState, Resolution, Stage
from protocol.spec import MarketKey, MarketSpec
from protocol.supervision import FaultAction, FaultRule
from protocol.tx_records import IntentState, TxIntent, intent_key
from sources.batcher import Batcher
from sources.hyperliquid import HyperliquidClient
from sources.oracle import OracleClient
from storage import Database, Store, Txn, get_proof
from storage.checkpoints import checkpoint_key
from supervision import FaultPlan
from tests.integration.daemon_harness import running, store_of, wait_job
from tests.integration.test_signer_harness import put_garbage

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240), pytest.mark.xdist_group("e2e")]

FOREIGN_HASH = b"\x11" * 32


def closed_specs(n: int) -> list[MarketSpec]:
    """``n`` specs of the default scenario whose windows closed before the devnet's now."""
    closed = [s for s in default_specs(CREATOR.address, REPLAY_NOW) if s.window.t_end < REPLAY_NOW]
    return closed[:n]


def in_state(state: JobState) -> Any:
    return lambda job: job.state is state


def commit_outside_the_runner(net: Devnet, key: MarketKey, outcome: int, data_hash: bytes) -> None:
    """``commit`` sent with the resolver's key by something other than this runner."""
    data = OracleClient(None, net.deployment.oracle).commit_call(key.address, outcome, data_hash)  # type: ignore[arg-type]
    send(net.w3, RESOLVER, {"to": net.deployment.oracle, "data": data})


def runner_intent(store: Store, net: Devnet, key: MarketKey, action: str) -> TxIntent | None:
    """The signer's intent for ``action`` on the market, if the runner ever made one."""
    ident = intent_id("dev", net.deployment.oracle, key.address, action)
    return store.get("txs", intent_key("dev", ident), TxIntent)


def restore_data_dir(
    data: Path,
    key: MarketKey,
    proof: Proof,
    observed: Resolution | None,
    unreadable: tuple[Database, ...],
) -> None:
    """A data directory as a backup left it: the market's proof, and its record and resolver
    checkpoint at ``observed`` if given; then the values of ``unreadable`` corrupted."""
    checkpoint = checkpoint_key(resolver_name(key))

    def restored(txn: Txn) -> None:
        txn.put("proofs", key.db_key(), proof)
        if observed is not None:
            txn.put("resolutions", key.db_key(), observed)
            txn.put("checkpoints", checkpoint, observed)

    with Store.open(data) as store:
        store.write(restored)
        for db in unreadable:
            put_garbage(store, db, {"checkpoints": checkpoint}.get(db, key.db_key()))


def settled(job: Job) -> bool:
    return job.state in (JobState.FINALIZED, JobState.PARKED, JobState.DEAD)


def observed_proof(net: Devnet, spec: MarketSpec) -> Proof:
    """The proof a runner builds for ``spec`` from the simulator's answers."""
    client = HyperliquidClient(net.sim.url)
    try:
        responses = [
            page
            for request in plan(spec, REPLAY_NOW * 1000).requests
            for page in client.fetch_pages(request, next_page)
        ]
    finally:
        client.close()
    return build_proof(spec, responses, evaluate(spec, responses))


@pytest.mark.parametrize(
    "unreadable",
    [(), ("checkpoints",), ("checkpoints", "resolutions")],
    ids=["intact", "checkpoint bad", "checkpoint and record bad"],
)
def test_a_commit_of_our_hash_already_on_chain_is_adopted_and_only_finalized(
    tmp_path: Path, unreadable: tuple[Database, ...]
) -> None:
    """A data directory restored from a backup taken at OBSERVED, after that commit was mined:
    the resolver finds its own hash on chain, adopts it, sends no second commit, finalizes.
    The same if the resolver's checkpoint does not decode (the market's record stands in), or
    the record does not either (the stored proof verifies: its hash is the one committed), where
    new data would give a proof of another hash, and the market would be parked."""
    with Devnet.start(dispute_window_s=3) as net:
        (spec,) = closed_specs(1)
        (key,) = net.create_markets([spec])
        proof = observed_proof(net, spec)
        ours = data_hash_hex(proof)
        commit_outside_the_runner(net, key, proof.outcome, bytes.fromhex(ours[2:]))
        observed = Resolution(
            key=key,
            stage=Stage.OBSERVED,
            value=proof.value,
            scaled=proof.scaled,
            outcome=proof.outcome,
            data_hash=ours,
        )
        restore_data_dir(tmp_path / "data", key, proof, observed, unreadable)
        with running(net, tmp_path / "data") as daemon:
            done = wait_job(daemon, key, settled)
            assert done.state is JobState.FINALIZED, done.last_error
            store = store_of(daemon)
            res = store.get("resolutions", key.db_key(), Resolution)
            assert res is not None and res.stage is Stage.FINALIZED
            assert (res.note, res.commit_tx, res.data_hash) == ("adopted", "", ours)
            assert runner_intent(store, net, key, "commit") is None  # never sent again
            finalize = runner_intent(store, net, key, "finalize")
            assert finalize is not None and res.finalize_tx
            stored = get_proof(store, key.db_key())
            if "resolutions" in unreadable:  # counted where an operator sees it (metrics)
                assert store.stats().bad_values >= 1
        assert net.outcomes([key])[key] == (proof.outcome, ours, True)
        assert stored is not None and verify(canonical_bytes(stored), expected_hash=ours).ok


@pytest.mark.parametrize("bad", ["altered response", "another market's spec", "a float in it"])
def test_a_stored_proof_that_does_not_prove_the_market_is_not_reused_new_data_is_queried(
    tmp_path: Path, bad: str
) -> None:
    """Neither the checkpoint nor the record decodes, and the stored proof does not prove this
    market: its raw response was altered, so that it no longer gives the proof's value, or it
    is a sound proof of another spec, or it holds a float, which no proof may (it has no
    canonical bytes, so no hash). The resolver queries the data again and commits the hash of
    the new proof, never the stored one's."""
    with Devnet.start(dispute_window_s=3) as net:
        spec, other = closed_specs(2)
        (key,) = net.create_markets([spec])
        proof = observed_proof(net, spec)
        if bad == "altered response":
            altered = altered_response(proof)
            assert verify(canonical_bytes(altered)).mismatch == "value"
        elif bad == "a float in it":
            altered = with_float_request(proof)
            with pytest.raises(ProofError, match="float"):
                canonical_bytes(altered)
        else:
            altered = observed_proof(net, other)
            assert altered.spec != spec and verify(canonical_bytes(altered)).ok
        restore_data_dir(tmp_path / "data", key, altered, None, ("checkpoints", "resolutions"))
        with running(net, tmp_path / "data") as daemon:
            done = wait_job(daemon, key, settled)
            assert done.state is JobState.FINALIZED, done.last_error
            res = store_of(daemon).get("resolutions", key.db_key(), Resolution)
            stored = get_proof(store_of(daemon), key.db_key())
        assert res is not None and stored is not None
        assert stored != altered  # replaced by the new proof
        if bad != "a float in it":
            assert res.data_hash != data_hash_hex(altered)
        assert net.outcomes([key])[key] == (proof.outcome, res.data_hash, True)
        assert verify(canonical_bytes(stored), expected_hash=res.data_hash).ok  # the new proof


def test_an_oracle_read_that_fails_after_the_observation_keeps_the_proof_and_is_repeated(
    tmp_path: Path,
) -> None:
    """With no commit on chain, an observation is written with COMMIT_SENT at once; when the
    oracle cannot be read (every ``eth_call`` refused at the proxy) it is written as OBSERVED,
    proof and all, and that stage reads the oracle again: once the node answers, the market is
    committed with the hash of that very proof, once, and finalized."""
    with Devnet.start(dispute_window_s=3, rpc_faults=Faults()) as net:
        assert net.proxy is not None
        (spec,) = closed_specs(1)
        (key,) = net.create_markets([spec])
        net.proxy.set_faults(error_rate=1.0, methods=("eth_call",))
        with running(net, tmp_path / "data") as daemon:
            assert daemon.runtime is not None
            store = store_of(daemon)
            res = observed_with_its_proof(daemon, store, key)
            assert runner_intent(store, net, key, "commit") is None  # nothing sent unread
            net.proxy.set_faults(error_rate=0.0)
            done = wait_job(daemon, key, settled)
            assert done.state is JobState.FINALIZED, done.last_error
            final = store.get("resolutions", key.db_key(), Resolution)
        assert final is not None and final.data_hash == res.data_hash
        assert net.outcomes([key])[key] == (res.outcome, res.data_hash, True)


def observed_with_its_proof(daemon: Daemon, store: Store, key: MarketKey) -> Resolution:
    """The market's record once it is OBSERVED, its proof kept with the hash it records."""
    assert daemon.runtime is not None

    def observed() -> Resolution | None:
        res = store.get("resolutions", key.db_key(), Resolution)
        return res if res is not None and res.stage is Stage.OBSERVED else None

    res: Resolution = daemon.runtime.wait_for(observed, timeout=60, interval=0.05)
    kept = get_proof(store, key.db_key())
    assert kept is not None and data_hash_hex(kept) == res.data_hash
    return res


def test_an_oracle_read_slower_than_the_query_deadline_keeps_the_observation(
    tmp_path: Path,
) -> None:
    """ADR 0022: the read after the observation does not hold the resolver; when it has not
    answered by the query's deadline (every ``eth_call`` held 3 s at the proxy, the deadline
    1.5 s) the observation is written as OBSERVED, proof and all, instead of the market
    failing for want of data; that stage reads again and the market is committed with the
    hash of that very proof, in its first attempt."""
    with Devnet.start(dispute_window_s=3, rpc_faults=Faults()) as net:
        assert net.proxy is not None
        (spec,) = closed_specs(1)
        (key,) = net.create_markets([spec])
        net.proxy.set_faults(latency_s=3.0, methods=("eth_call",))
        with running(net, tmp_path / "data", data_timeout_s=1.5) as daemon:
            assert daemon.runtime is not None
            store = store_of(daemon)
            res = observed_with_its_proof(daemon, store, key)
            net.proxy.set_faults(latency_s=0.0)
            done = wait_job(daemon, key, settled)
            assert done.state is JobState.FINALIZED, done.last_error
            assert done.attempts == 1, done.last_error
            final = store.get("resolutions", key.db_key(), Resolution)
        assert final is not None and final.data_hash == res.data_hash


def test_with_no_commit_on_chain_the_observation_is_written_as_commit_sent_at_once(
    tmp_path: Path,
) -> None:
    """ADR 0014: the oracle is read before the first checkpoint, and with nothing there the
    observation, its proof and COMMIT_SENT are one write. The market's record never holds
    OBSERVED: every stage it was written with, in order, is COMMIT_SENT, COMMITTED,
    FINALIZE_SENT, FINALIZED; the proof came with the first."""
    with Devnet.start(dispute_window_s=3) as net:
        (spec,) = closed_specs(1)
        with running(net, tmp_path / "data") as daemon:
            assert daemon.runtime is not None
            written = record_writes(daemon)
            (key,) = net.create_markets([spec])  # discovered after the spy is in place
            done = wait_job(daemon, key, settled)
            assert done.state is JobState.FINALIZED, done.last_error
        # a write function may run again after a map resize: each write counts once
        stages = list(dict.fromkeys((s, p) for k, s, p in written if k == key.db_key()))
        assert stages == [
            (Stage.COMMIT_SENT, (key.db_key(),)),
            (Stage.COMMITTED, ()),
            (Stage.FINALIZE_SENT, ()),
            (Stage.FINALIZED, ()),
        ]


def record_writes(daemon: Daemon) -> list[tuple[bytes, Stage, tuple[bytes, ...]]]:
    """From now on, for each write function of the daemon's store that puts a resolution
    record (its own writes, and the resolvers' checkpoints on their writes thread): its key,
    its stage, and the keys of the proofs put with it."""
    assert daemon.runtime is not None
    store = store_of(daemon)
    writes: Batcher[Any, Any] = daemon.runtime.services.extra["writes"]
    written: list[tuple[bytes, Stage, tuple[bytes, ...]]] = []
    write, run_batch = store.write, writes.run_batch

    def spy(work: Any) -> Any:
        def spied(txn: Txn) -> Any:
            proofs: list[bytes] = []
            records: list[tuple[bytes, Stage]] = []
            put = txn.put

            def put_seen(db: Database, key: bytes, value: Any) -> None:
                if db == "proofs":
                    proofs.append(key)
                elif db == "resolutions":
                    records.append((key, value.stage))
                put(db, key, value)

            txn.put = put_seen  # type: ignore[method-assign, assignment]
            try:
                return work(txn)
            finally:
                txn.put = put  # type: ignore[method-assign]
                written.extend((key, stage, tuple(proofs)) for key, stage in records)

        return spied

    store.write = lambda work: write(spy(work))  # type: ignore[method-assign, assignment]
    writes.run_batch = lambda works: run_batch([spy(work) for work in works])
    return written


def with_float_request(proof: Proof) -> Proof:
    """``proof`` with a float in its first response's request body (a JSON body may hold one)."""
    first = proof.responses[0]
    request = first.request.model_copy(update={"body": {**first.request.body, "weight": 0.5}})
    changed = first.model_copy(update={"request": request})
    return proof.model_copy(update={"responses": (changed, *proof.responses[1:])})


def altered_response(proof: Proof) -> Proof:
    """``proof`` with its measured value changed in its first raw response, and nowhere else."""
    first = proof.responses[0]
    body = first.body.replace(f'"{proof.value}"'.encode(), b'"0.000001"')
    assert body != first.body
    changed = first.model_copy(update={"body": body})
    return proof.model_copy(update={"responses": (changed, *proof.responses[1:])})


def test_another_hash_on_chain_parks_the_market_and_leaves_that_commit_alone(
    tmp_path: Path,
) -> None:
    with Devnet.start(dispute_window_s=3) as net:
        taken, free = net.create_markets(closed_specs(2))
        commit_outside_the_runner(net, taken, 1, FOREIGN_HASH)
        with running(net, tmp_path / "data") as daemon:
            parked = wait_job(daemon, taken, in_state(JobState.PARKED))
            wait_job(daemon, free, in_state(JobState.FINALIZED))
            store = store_of(daemon)
            res = store.get("resolutions", taken.db_key(), Resolution)
            assert daemon.runtime is not None
            assert daemon.runtime.state("scheduler")["jobs"]["parked"] == 1
            assert runner_intent(store, net, taken, "commit") is None
            assert runner_intent(store, net, taken, "finalize") is None
        assert "oracle holds another commit" in parked.last_error
        assert "0x" + FOREIGN_HASH.hex() in parked.last_error
        assert res is not None and res.stage is Stage.PARKED
        assert res.data_hash and res.data_hash != "0x" + FOREIGN_HASH.hex()  # ours, kept
        outcomes = net.outcomes([taken, free])
        assert outcomes[taken] == (1, "0x" + FOREIGN_HASH.hex(), False)  # untouched
        assert outcomes[free][2] is True


@pytest.mark.parametrize("finalizer", ["runner", "someone else"])
def test_a_long_dispute_window_frees_the_slot_and_the_market_resumes_after_it(
    tmp_path: Path, finalizer: str
) -> None:
    """An hour of dispute window: the resolver hands the market back to the scheduler (no actor
    waits an hour); once chain time has passed it, an operator's resolve-now finalizes it. If
    someone else finalized first (``finalize`` is open to anyone), the market is finalized all
    the same, without a transaction of ours."""
    with Devnet.start(dispute_window_s=3600) as net:
        (key,) = net.create_markets(closed_specs(1))
        with running(net, tmp_path / "data") as daemon:
            rt = daemon.runtime
            assert rt is not None
            job = handed_back_committed(daemon, key)
            assert job.next_attempt_at - rt.clock.now() > 3000  # resumes at the window's end
            pass_chain_time(net, 3601)
            if finalizer == "someone else":
                data = OracleClient(None, net.deployment.oracle).finalize_call(key.address)  # type: ignore[arg-type]
                send(net.w3, OUTSIDER, {"to": net.deployment.oracle, "data": data})
            command = OperatorCommand(action=OperatorAction.RESOLVE_NOW, key=key, operator="t")
            assert rt.ask("scheduler", command).ok
            done = wait_job(daemon, key, in_state(JobState.FINALIZED))
            res = store_of(daemon).get("resolutions", key.db_key(), Resolution)
            ours = runner_intent(store_of(daemon), net, key, "finalize")
        assert done.attempts == job.attempts  # resuming is not a new attempt
        assert res is not None and res.commit_tx
        assert net.outcomes([key])[key][2] is True
        assert ours is not None
        if finalizer == "runner":
            assert res.finalize_tx and ours.state is IntentState.CONFIRMED
        else:  # our finalize failed in simulation, so no nonce was spent on it
            assert (res.finalize_tx, res.note) == ("", "finalized by someone else")
            assert ours.state is IntentState.FAILED and ours.nonce is None


def test_our_commit_whose_checkpoint_is_lost_in_the_dispute_window_is_finalized_not_parked(
    tmp_path: Path,
) -> None:
    """The runner committed and handed the market back for an hour of dispute window; while it
    was stopped, the resolver's checkpoint was corrupted. After the restart the resolver takes
    the market's record (COMMITTED, with our commit) and finalizes: it queries no new data (the
    restarted price cache holds none, so new fetch times would give a proof of another hash than
    ours on chain) and parks nothing; the finalize is its only transaction."""
    with Devnet.start(dispute_window_s=3600) as net:
        (key,) = net.create_markets(closed_specs(1))
        account = net.w3.to_checksum_address(RESOLVER.address)
        with running(net, tmp_path / "data") as daemon:
            handed_back_committed(daemon, key)
            committed = store_of(daemon).get("resolutions", key.db_key(), Resolution)
        with Store.open(tmp_path / "data") as store:
            put_garbage(store, "checkpoints", checkpoint_key(resolver_name(key)))
        sent = net.w3.eth.get_transaction_count(account)
        pass_chain_time(net, 3601)
        with running(net, tmp_path / "data") as daemon:
            assert daemon.runtime is not None
            command = OperatorCommand(action=OperatorAction.RESOLVE_NOW, key=key, operator="t")
            assert daemon.runtime.ask("scheduler", command).ok
            done = wait_job(daemon, key, settled)
            assert done.state is JobState.FINALIZED, done.last_error
            res = store_of(daemon).get("resolutions", key.db_key(), Resolution)
        assert committed is not None and committed.commit_tx and res is not None
        kept = ("data_hash", "outcome", "commit_tx", "commit_time")
        assert [getattr(res, f) for f in kept] == [getattr(committed, f) for f in kept]
        assert res.finalize_tx
        assert net.w3.eth.get_transaction_count(account) == sent + 1  # the finalize only
        assert net.outcomes([key])[key] == (committed.outcome, committed.data_hash, True)


def handed_back_committed(daemon: Daemon, key: MarketKey) -> Job:
    """The market's job once it is committed and, the dispute window being long, its resolver
    has handed it back to the scheduler and is gone."""
    rt = daemon.runtime
    assert rt is not None
    job = wait_job(
        daemon,
        key,
        lambda j: j.state is JobState.WAITING and j.stage == Stage.COMMITTED.value,
    )
    rt.wait_for(
        lambda: (
            (entry := rt.registry.entry(resolver_name(key))) is None or entry.status.value == "gone"
        )
    )
    return job


def pass_chain_time(net: Devnet, seconds: int) -> None:
    net.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    net.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def test_a_key_the_oracle_refuses_halts_the_chain_and_parks_the_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's key is not the oracle's resolver: the commit's simulation reverts with
    NotResolver, nothing is mined, the market is parked as a configuration failure and the
    chain halts (no further market is started there)."""
    monkeypatch.setenv("ORACLE_RUNNER_TEST_OTHER_KEY", OUTSIDER.private_key)  # a public dev key
    with Devnet.start(dispute_window_s=3) as net:
        first, second = net.create_markets(closed_specs(2))
        outsider = net.w3.to_checksum_address(OUTSIDER.address)
        nonce_before = net.w3.eth.get_transaction_count(outsider)
        other = {"key": KeySource(env="ORACLE_RUNNER_TEST_OTHER_KEY")}
        with running(net, tmp_path / "data", chain=other, max_resolvers=1) as daemon:
            rt = daemon.runtime
            assert rt is not None
            parked = rt.wait_for(
                lambda: [
                    j
                    for k in (first, second)
                    if (j := store_of(daemon).get("jobs", k.db_key(), Job)) is not None
                    and j.state is JobState.PARKED
                ],
                timeout=120,
                interval=0.2,
            )
            assert rt.state("scheduler")["halted_chains"] == ["dev"]
            jobs = {k: store_of(daemon).get("jobs", k.db_key(), Job) for k in (first, second)}
        (job,) = parked
        assert job.failure is FailureClass.CONFIGURATION and "NotResolver" in job.last_error
        other_job = jobs[second if job.key == first else first]
        assert other_job is not None and other_job.state is JobState.WAITING  # held back
        assert net.outcomes([first, second]) == {}  # nothing committed
        # no transaction of the refused key was mined
        assert net.w3.eth.get_transaction_count(outsider) == nonce_before


def test_a_data_query_that_is_never_answered_times_out_and_the_retry_finalizes(
    tmp_path: Path,
) -> None:
    """The price cache loses the first query (a dropped message, as in a crash between receiving
    and answering): the resolver gives up after ``data_timeout_s``, the scheduler retries."""
    drop = FaultRule(actor="price_cache", message="data_query", action=FaultAction.DROP)
    lost = FaultPlan([drop])
    with Devnet.start(dispute_window_s=3) as net:
        (key,) = net.create_markets(closed_specs(1))
        with running(net, tmp_path / "data", faults=lost, data_timeout_s=2) as daemon:
            done = wait_job(daemon, key, in_state(JobState.FINALIZED))
        assert [f.message for f in lost.fired] == ["data_query"]
        assert done.attempts == 2  # the timed-out attempt, then the one that finalized
        assert net.outcomes([key])[key][2] is True
