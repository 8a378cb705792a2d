"""sources.keys: loading the key from each source, never showing it, and signing exactly as
eth-account does."""

from __future__ import annotations

import copy
import json
import logging
import pickle
from pathlib import Path

import pytest
from coincurve import PublicKey
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from devnet.keys import DEPLOYER, OUTSIDER, RESOLVER
from ops.config import KeySource
from sources.keys import Eip1559Tx, KeyLoadError, SigningKey, rlp_encode

pytestmark = pytest.mark.timeout(60)

SECRET_HEX = RESOLVER.private_key[2:]
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def no_secret(text: str) -> None:
    assert SECRET_HEX.lower() not in text.lower()


def write_keystore(tmp_path: Path, password: str, written: str | None = None) -> tuple[Path, Path]:
    keystore = tmp_path / "key.json"
    blob = Account.encrypt(RESOLVER.private_key, password, kdf="pbkdf2", iterations=2)
    keystore.write_text(json.dumps(blob))
    password_file = tmp_path / "key.pass"
    password_file.write_text(password + "\n" if written is None else written)
    keystore.chmod(0o600)
    password_file.chmod(0o600)
    return keystore, password_file


# --- loading -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [RESOLVER.private_key, SECRET_HEX, f"  {SECRET_HEX.upper()}\n"])
def test_from_hex(text: str) -> None:
    assert SigningKey.from_hex(text).address == RESOLVER.address


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x",
        SECRET_HEX[:-1],
        SECRET_HEX + "0",
        "0x" + "g" * 64,
        SECRET_HEX[:32] + " " + "1" * 31,
    ],
)
def test_from_hex_refuses_without_echoing(text: str) -> None:
    with pytest.raises(KeyLoadError) as err:
        SigningKey.from_hex(text)
    assert "64 hex digits" in str(err.value)
    no_secret(str(err.value))
    assert err.value.__cause__ is None and err.value.__context__ is None


@pytest.mark.parametrize("scalar", [0, CURVE_ORDER, CURVE_ORDER + 1, 2**256 - 1])
def test_scalars_off_the_curve_are_refused(scalar: int) -> None:
    with pytest.raises(KeyLoadError, match="not a valid secp256k1 private key"):
        SigningKey(scalar.to_bytes(32, "big"))


def test_from_env() -> None:
    env = {"SIGNER_KEY": RESOLVER.private_key, "EMPTY": "", "BAD": "0x" + SECRET_HEX[:60]}
    assert SigningKey.from_env("SIGNER_KEY", env).address == RESOLVER.address
    with pytest.raises(KeyLoadError, match="MISSING is not set"):
        SigningKey.from_env("MISSING", env)
    with pytest.raises(KeyLoadError, match="EMPTY is not set or empty"):
        SigningKey.from_env("EMPTY", env)
    with pytest.raises(KeyLoadError, match="environment variable BAD does not hold") as err:
        SigningKey.from_env("BAD", env)
    no_secret(str(err.value))


def test_from_keystore_strips_one_trailing_newline(tmp_path: Path) -> None:
    keystore, password_file = write_keystore(tmp_path, " pass word ")
    assert SigningKey.from_keystore(keystore, password_file).address == RESOLVER.address
    password_file.write_text(" pass word \r\n")
    assert SigningKey.from_keystore(keystore, password_file).address == RESOLVER.address


def test_from_keystore_errors_name_the_file_not_the_secret(tmp_path: Path) -> None:
    keystore, password_file = write_keystore(tmp_path, "right")
    password_file.write_text("wrong\n")
    with pytest.raises(KeyLoadError, match="wrong password") as err:
        SigningKey.from_keystore(keystore, password_file)
    assert str(keystore) in str(err.value)
    no_secret(str(err.value))
    pasted = "correct horse battery staple"  # a password given where its file's path belongs
    with pytest.raises(KeyLoadError, match="cannot read the keystore's password file") as err:
        SigningKey.from_keystore(keystore, tmp_path / pasted)
    assert pasted not in str(err.value)
    with pytest.raises(KeyLoadError, match="cannot read keystore"):
        SigningKey.from_keystore(tmp_path / "nope.json", password_file)
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(KeyLoadError, match="cannot decrypt keystore"):
        SigningKey.from_keystore(tmp_path / "garbage.json", password_file)


def test_a_keystore_readable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keystore, password_file = write_keystore(tmp_path, "pw")
    keystore.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="sources.keys"):
        SigningKey.from_keystore(keystore, password_file)
    assert "readable by other users" in caplog.text and str(keystore) in caplog.text


def test_load_from_a_configured_source(tmp_path: Path) -> None:
    keystore, password_file = write_keystore(tmp_path, "pw")
    by_file = SigningKey.load(KeySource(keystore=keystore, password_file=password_file))
    by_env = SigningKey.load(KeySource(env="K"), environ={"K": RESOLVER.private_key})
    assert by_file.address == by_env.address == RESOLVER.address


# --- never showing the secret --------------------------------------------------------------------


def test_repr_str_format_pickle_copy() -> None:
    key = SigningKey.from_hex(RESOLVER.private_key)
    for text in (repr(key), str(key), f"{key}", f"{key!r}", f"{key:>100}", "%s" % key):  # noqa: UP031
        assert text == f"SigningKey(address={RESOLVER.address})"
    assert not hasattr(key, "__dict__")  # no stray attribute can hold the secret
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)
    assert copy.copy(key) is key and copy.deepcopy({"k": key})["k"] is key


def test_redact() -> None:
    key = SigningKey.from_hex(RESOLVER.private_key)
    text = f"a {RESOLVER.private_key} b {SECRET_HEX.upper()} c {DEPLOYER.private_key}"
    redacted = key.redact(text)
    no_secret(redacted)
    assert redacted.count("[REDACTED KEY]") == 2 and DEPLOYER.private_key in redacted


# --- signing ----------------------------------------------------------------------------------


def eth_account_raw(tx: Eip1559Tx, private_key: str) -> bytes:
    fields = {
        "type": 2,
        "chainId": tx.chain_id,
        "nonce": tx.nonce,
        "maxPriorityFeePerGas": tx.max_priority_fee_per_gas,
        "maxFeePerGas": tx.max_fee_per_gas,
        "gas": tx.gas,
        "value": tx.value,
        "data": tx.data,
        "accessList": [],
    }
    if tx.to is not None:
        fields["to"] = tx.to
    return bytes(Account.sign_transaction(fields, private_key).raw_transaction)


addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
transactions = st.builds(
    Eip1559Tx,
    chain_id=st.integers(1, 2**32),
    nonce=st.integers(0, 2**64 - 2),
    max_priority_fee_per_gas=st.integers(0, 2**128),
    max_fee_per_gas=st.integers(0, 2**128),
    gas=st.integers(21_000, 2**32),
    to=st.one_of(st.none(), addresses),
    value=st.integers(0, 2**200),
    data=st.binary(max_size=300),
)


@settings(max_examples=150, deadline=None)
@given(transactions)
def test_signed_bytes_equal_eth_accounts(tx: Eip1559Tx) -> None:
    key = SigningKey.from_hex(RESOLVER.private_key)
    signed = key.sign_transaction(tx)
    assert signed.raw == eth_account_raw(tx, RESOLVER.private_key)
    assert signed.tx_hash == "0x" + keccak(signed.raw).hex()
    assert Account.recover_transaction(signed.raw) == RESOLVER.address


def test_sign_digest_recovers_to_the_address() -> None:
    key = SigningKey.from_hex(OUTSIDER.private_key)
    digest = keccak(b"hello")
    y_parity, r, s = key.sign_digest(digest)
    assert y_parity in (0, 1) and s <= CURVE_ORDER // 2  # low-s
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([y_parity])
    public = PublicKey.from_signature_and_message(signature, digest, hasher=None)
    address = to_checksum_address(keccak(public.format(compressed=False)[1:])[-20:])
    assert address == OUTSIDER.address
    with pytest.raises(ValueError, match="32 bytes"):
        key.sign_digest(b"short")


@pytest.mark.parametrize(
    ("item", "encoded"),
    [
        (b"dog", "83646f67"),
        ([b"cat", b"dog"], "c88363617483646f67"),
        (b"", "80"),
        ([], "c0"),
        (0, "80"),
        (15, "0f"),
        (1024, "820400"),
        (b"\x7f", "7f"),
        (b"\x80", "8180"),
        ([[], [[]], [[], [[]]]], "c7c0c1c0c3c0c1c0"),
        (
            b"Lorem ipsum dolor sit amet, consectetur adipisicing elit",
            "b838" + b"Lorem ipsum dolor sit amet, consectetur adipisicing elit".hex(),
        ),
    ],
)
def test_rlp_vectors(item: object, encoded: str) -> None:
    assert rlp_encode(item).hex() == encoded


def test_rlp_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(TypeError):
        rlp_encode(-1)
    with pytest.raises(TypeError):
        rlp_encode(1.5)
