"""The private key never leaks: not in logs, snapshots, audit entries, exceptions, reprs, nor in
the LMDB files, whatever error paths the signer goes through; a keystore with a password file
loads the same key."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from eth_account import Account

from devnet.anvil import Anvil, free_port
from devnet.deploy import Deployment
from devnet.keys import RESOLVER
from protocol.records import AuditEntry
from sources.evm import EvmClient
from sources.keys import KeyLoadError, SigningKey
from storage import Store
from tests.integration.test_signer_harness import (
    SIGNER,
    ChainCfg,
    commit_intents,
    signer_runtime,
    transfer_intents,
)

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SECRET_HEX = RESOLVER.private_key[2:].lower()
SECRET = bytes.fromhex(SECRET_HEX)


def leaks(text: str) -> bool:
    return SECRET_HEX in text.lower()


def keystore_key(tmp_path: Path, password: str = "correct horse\n") -> tuple[Path, Path]:
    keystore = tmp_path / "signer.json"
    blob = Account.encrypt(RESOLVER.private_key, password.rstrip("\n"), kdf="pbkdf2", iterations=2)
    keystore.write_text(json.dumps(blob))
    password_file = tmp_path / "signer.pass"
    password_file.write_text(password)
    keystore.chmod(0o600)
    password_file.chmod(0o600)
    return keystore, password_file


def test_the_key_appears_nowhere_through_error_paths(
    anvil: Anvil,
    deployment: Deployment,
    evm: EvmClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = SigningKey.from_keystore(*keystore_key(tmp_path))
    assert key.address == RESOLVER.address
    errors: list[str] = []
    shown: list[str] = []
    with Store.open(tmp_path / "data") as store:
        # 1. a node that is not there: transient errors, logged and counted
        dead = EvmClient([f"http://127.0.0.1:{free_port()}"], 31337, timeout_s=0.5)
        with signer_runtime(store, dead, key, ChainCfg(confirmations=0)) as rt:
            rt.tell(SIGNER, transfer_intents(1)[0])
            state = rt.wait_for(lambda: (s := rt.state(SIGNER))["rpc_errors"] >= 3 and s, 10)
            assert state["phase"] == "syncing" and state["queued"] == 1
            assert rt.restarts(SIGNER) == 0  # transient errors: counted, retried, no crash
            shown.append(repr(state))
        dead.close()
        # 2. a lying node: halted
        liar = EvmClient([anvil.rpc_url], 999, timeout_s=2.0)
        with signer_runtime(store, liar, key, ChainCfg(confirmations=0)) as rt:
            state = rt.wait_for(lambda: (s := rt.state(SIGNER))["phase"] == "halted" and s, 10)
            shown.append(repr(state))
        liar.close()
        # 3. a revert in simulation, a confirmed tx, a crash of the actor
        with signer_runtime(store, evm, key, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            first = commit_intents(deployment.oracle, 1)[0]
            rt.tell(SIGNER, first)
            rt.wait_for(lambda: first.intent_id in replies.confirmed(), timeout=20)
            again = first.model_copy(update={"intent_id": "dev:same-market-again"})
            rt.tell(SIGNER, again)
            rt.wait_for(lambda: again.intent_id in replies.failed(), timeout=20)
            rt.wait_for(lambda: replies.confirmed_count() == 2, timeout=20)  # the transfer
            rt.tell(SIGNER, object())  # an unknown message crashes it; it is restarted
            rt.wait_for(lambda: rt.restarts(SIGNER) == 1 and rt.state(SIGNER), timeout=10)
            shown.append(repr(rt.state(SIGNER)))
            shown += [repr(m) for m in replies.snapshot()]
            entry = rt.registry.entry(SIGNER)
            assert entry is not None
            shown.append(entry.last_error)
        shown += [repr(e) for _, e in store.items("audit", expect=AuditEntry)]
        shown += [repr(v) for _, v in store.items("txs")]
    for bad in ("0x" + "zz" * 32, "0x" + SECRET_HEX[:-2], SECRET_HEX + "00"):
        with pytest.raises(KeyLoadError) as err:
            SigningKey.from_hex(bad)
        errors.append(str(err.value) + repr(err.value))
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not the password\n")
    with pytest.raises(KeyLoadError) as err:
        SigningKey.from_keystore(tmp_path / "signer.json", wrong)
    assert "wrong password" in str(err.value)
    errors.append(str(err.value))
    shown += [repr(key), str(key), f"{key}", f"{key!r:>80}"]

    assert not leaks(caplog.text), "the key is in the log"
    assert not [s for s in shown if leaks(s)], "the key is in a snapshot, record or repr"
    assert not [e for e in errors if leaks(e)], "the key is in an exception"
    assert "HALTED" in caplog.text and "crashed" in caplog.text  # the paths were taken
    assert "Connect" in caplog.text and "AlreadyCommitted" in caplog.text
    for path in (tmp_path / "data").iterdir():
        data = path.read_bytes()
        assert SECRET not in data and SECRET_HEX.encode() not in data, f"key bytes in {path.name}"
