"""Configuration: TOML plus environment overrides; every problem reported at once with its path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ops.config import ConfigError, load_config

pytestmark = pytest.mark.timeout(10)

GOOD = """
data_dir = "/var/lib/oracle-runner"
[chains.dev]
rpc_urls = ["http://127.0.0.1:8545", "http://127.0.0.1:8546"]
chain_id = 31337
factory = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
oracle = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
key = { env = "DEV_KEY" }
[hyperliquid]
base_urls = ["http://127.0.0.1:9000", "http://127.0.0.1:9001"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "runner.toml"
    path.write_text(text)
    return path


def test_a_good_file_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    dev = config.chains["dev"]
    assert dev.factory == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert dev.confirmations == 2 and dev.key.env == "DEV_KEY"
    assert config.limits.settle_delay_s == 60.0
    assert config.api.host == "127.0.0.1"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORACLE_RUNNER_LIMITS__MAX_RESOLVERS", "7")
    monkeypatch.setenv("ORACLE_RUNNER_DATA_DIR", "/srv/data")
    config = load_config(write(tmp_path, GOOD))
    assert config.limits.max_resolvers == 7
    assert str(config.data_dir) == "/srv/data"


def test_every_problem_is_reported_at_once_with_its_path(tmp_path: Path) -> None:
    bad = (
        GOOD.replace("chain_id = 31337", "chain_id = 0").replace(
            'key = { env = "DEV_KEY" }', 'key = { keystore = "k.json" }\nconfirmations = "x"'
        )
        + "\n[limits]\nmax_resolvers = 0\nbogus = 1\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, bad))
    assert raised.value.problems == [
        "chains.dev.chain_id: Input should be greater than 0",
        "chains.dev.confirmations: Input should be a valid integer, unable to parse string as an"
        " integer",
        "chains.dev.key: Value error, a keystore needs a password_file",
        "limits.max_resolvers: Input should be greater than or equal to 1",
        "limits.bogus: Extra inputs are not permitted",
    ]


def test_unreadable_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "data_dir = "))


def test_the_configuration_reference_is_current() -> None:
    from ops.config_doc import DOC, render

    assert DOC.read_text() == render(), "run: python -m ops.config_doc"


def test_a_key_pasted_as_the_variable_name_is_refused_without_being_shown(tmp_path: Path) -> None:
    secret = "AB" * 32  # upper-case hex fits an environment variable's name
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GOOD.replace('"DEV_KEY"', f'"{secret}"')))
    assert "chains.dev.key.env" in str(err.value) and "looks like a private key" in str(err.value)
    assert secret not in str(err.value)


def test_a_fee_cap_is_the_exact_decimal_written(tmp_path: Path) -> None:
    text = GOOD.replace(
        'key = { env = "DEV_KEY" }',
        'key = { env = "DEV_KEY" }\nmax_fee_gwei = 12345678.123456789\npoll_s = 0.5',
    )
    chain = load_config(write(tmp_path, text)).chains["dev"]
    assert chain.max_fee_gwei == Decimal("12345678.123456789")  # a float would end in ...79
    assert chain.poll_s == 0.5
    too_fine = GOOD.replace(
        'key = { env = "DEV_KEY" }', 'key = { env = "DEV_KEY" }\nmax_fee_gwei = 1.0000000001'
    )
    with pytest.raises(ConfigError, match=r"chains\.dev\.max_fee_gwei"):
        load_config(write(tmp_path, too_fine))
