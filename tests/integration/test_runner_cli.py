"""``oracle-runner run``: a configuration that cannot start the daemon exits with status 2 and one
line saying which setting is wrong (operations.md; the systemd unit does not restart on 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from runner import main

pytestmark = pytest.mark.timeout(30)

SECRET = "0x" + "5a" * 32
CONFIG = """
data_dir = "{data}"
[chains.dev]
rpc_urls = ["http://127.0.0.1:9"]
chain_id = 31337
factory = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
oracle = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
key = {key}
[hyperliquid]
base_urls = ["http://127.0.0.1:9"]
"""


def run(tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "runner.toml"
    path.write_text(CONFIG.format(data=tmp_path / "data", key=key))
    code = main(["run", "--config", str(path)])
    return code, capsys.readouterr().err


def test_an_invalid_file_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(tmp_path, '{ env = "lower-case" }', capsys)
    assert code == 2
    assert "chains.dev.key.env" in err


def test_an_unset_key_variable_exits_2_naming_the_chain_and_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORACLE_RUNNER_TEST_UNSET_KEY", raising=False)
    code, err = run(tmp_path, '{ env = "ORACLE_RUNNER_TEST_UNSET_KEY" }', capsys)
    assert code == 2
    assert err.strip() == (
        "cannot start: chains.dev.key: environment variable ORACLE_RUNNER_TEST_UNSET_KEY "
        "is not set or empty"
    )


def test_a_wrong_keystore_password_exits_2_without_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keystore, password = tmp_path / "key.json", tmp_path / "password"
    blob = Account.encrypt(SECRET, "right", kdf="pbkdf2", iterations=2)
    keystore.write_text(json.dumps(blob))
    password.write_text("wrong\n")
    keystore.chmod(0o600)
    password.chmod(0o600)
    key = f'{{ keystore = "{keystore}", password_file = "{password}" }}'
    code, err = run(tmp_path, key, capsys)
    assert code == 2
    assert err.startswith("cannot start: chains.dev.key: cannot decrypt keystore")
    assert "wrong password" in err
    assert "Traceback" not in err
    assert SECRET[2:] not in err.lower()
