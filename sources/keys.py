"""The signing key: loaded from an encrypted keystore + password file or an environment variable,
held so that it never shows itself, and used to sign EIP-1559 transactions (coincurve, RFC 6979).

::

    key = SigningKey.from_keystore("keys/signer.json", "keys/signer.pass")
    key = SigningKey.from_env("HYPEREVM_SIGNER_KEY")       # 0x-hex, 64 digits
    key = SigningKey.load(config.chains["hyperevm"].key)   # whichever the config names
    key.address                                            # "0xAbC..." (EIP-55)
    repr(key)                                              # "SigningKey(address=0xAbC...)"
    signed = key.sign_transaction(Eip1559Tx(chain_id=999, nonce=0, max_priority_fee_per_gas=1,
                                            max_fee_per_gas=2, gas=21_000, to=addr))
    signed.raw, signed.tx_hash                             # bytes for eth_sendRawTransaction

The secret exists only inside a ``coincurve.PrivateKey``: ``repr``, ``str``, ``format``, pickling
and every error message of this module leave it out (errors are raised ``from None``, so no
traceback carries the offending text either). ``redact(text)`` removes it from any text, for a
runtime's ``redact`` hook. Signatures are deterministic, so the bytes equal eth-account's for the
same transaction (the tests check it); this path is several times faster than eth-account's.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

import rlp
from coincurve import PrivateKey
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

log = logging.getLogger(__name__)

SECRET_BYTES = 32
EIP1559_TYPE = b"\x02"
_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class KeyLoadError(ValueError):
    """The key could not be loaded; the message says from where and why, never the key."""


class KeySourceLike(Protocol):
    """What ``SigningKey.load`` reads (``ops.config.KeySource`` has these fields)."""

    @property
    def keystore(self) -> Path | None: ...

    @property
    def password_file(self) -> Path | None: ...

    @property
    def env(self) -> str | None: ...


# --- transactions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Eip1559Tx:
    """An unsigned type-2 transaction (empty access list)."""

    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    to: str | None
    value: int = 0
    data: bytes = b""

    def fields(self) -> list[Any]:
        to = b"" if self.to is None else to_canonical_address(self.to)
        return [
            self.chain_id,
            self.nonce,
            self.max_priority_fee_per_gas,
            self.max_fee_per_gas,
            self.gas,
            to,
            self.value,
            self.data,
            [],
        ]

    def signing_hash(self) -> bytes:
        """keccak256(0x02 || rlp(fields)): what the signature commits to."""
        return keccak(EIP1559_TYPE + rlp_encode(self.fields()))


@dataclass(frozen=True)
class SignedTx:
    raw: bytes
    """The bytes for ``eth_sendRawTransaction``."""
    tx_hash: str
    """``0x`` + 64 hex digits: keccak256 of ``raw``."""


def rlp_encode(item: Any) -> bytes:
    """RLP of non-negative ints, bytes and (nested) lists, by the ``rlp`` library."""
    return bytes(rlp.encode(item))


# --- the key -------------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    raise KeyLoadError(message)


class SigningKey:
    """A secp256k1 private key that signs but never shows itself."""

    __slots__ = ("_key", "address")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes | bytearray) or len(secret) != SECRET_BYTES:
            _fail(f"a private key is {SECRET_BYTES} bytes")
        try:
            key = PrivateKey(bytes(secret))
        except Exception:
            key = None
        if key is None:
            _fail("not a valid secp256k1 private key (zero or above the curve order)")
        self._key = key
        public = key.public_key.format(compressed=False)[1:]
        self.address: str = to_checksum_address(keccak(public)[-20:])

    # --- loading -----------------------------------------------------------------------------

    @classmethod
    def from_hex(cls, text: str, *, origin: str = "the given text") -> SigningKey:
        """From ``0x`` + 64 hex digits (the ``0x`` is optional; surrounding blanks are ignored)."""
        text = text.strip()
        if not _HEX_KEY.match(text):
            _fail(f"{origin} does not hold a private key (expected 64 hex digits)")
        return cls(bytes.fromhex(text[2:] if text.startswith("0x") else text))

    @classmethod
    def from_env(cls, name: str, environ: Mapping[str, str] | None = None) -> SigningKey:
        """From the environment variable ``name``."""
        env = os.environ if environ is None else environ
        value = env.get(name)
        if not value:
            _fail(f"environment variable {name} is not set or empty")
        return cls.from_hex(value, origin=f"environment variable {name}")

    @classmethod
    def from_keystore(
        cls, keystore: str | os.PathLike[str], password_file: str | os.PathLike[str]
    ) -> SigningKey:
        """From an encrypted JSON keystore (v3, as ``eth_account.Account.encrypt`` writes) and a
        file holding its password (one trailing newline is not part of the password)."""
        from eth_account import Account

        keystore_path, password_path = Path(keystore), Path(password_file)
        for path in (keystore_path, password_path):
            _warn_if_readable_by_others(path)
        try:
            blob = keystore_path.read_text(encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot read keystore {keystore_path}: {exc.strerror}")
        try:
            password = password_path.read_text(encoding="utf-8")
        except OSError as exc:
            # not its path: a password pasted into the wrong setting would be printed
            _fail(f"cannot read the keystore's password file: {exc.strerror}")
        password = password.removesuffix("\n").removesuffix("\r")
        secret: bytes | None = None
        try:
            secret = bytes(Account.decrypt(blob, password))
        except Exception as exc:
            problem = "wrong password" if "MAC mismatch" in str(exc) else type(exc).__name__
        if secret is None:
            _fail(f"cannot decrypt keystore {keystore_path}: {problem}")
        return cls(secret)

    @classmethod
    def load(cls, source: KeySourceLike, environ: Mapping[str, str] | None = None) -> SigningKey:
        """From a configured key source: a keystore + password file, or an environment variable."""
        if source.keystore is not None:
            if source.password_file is None:
                _fail(f"keystore {source.keystore} needs a password file")
            return cls.from_keystore(source.keystore, source.password_file)
        if source.env:
            return cls.from_env(source.env, environ)
        _fail("no key source: set a keystore with a password file, or an environment variable")

    # --- signing -----------------------------------------------------------------------------

    def sign_digest(self, digest: bytes) -> tuple[int, int, int]:
        """``(y_parity, r, s)`` of a 32-byte digest (low-s, deterministic)."""
        if len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        sig = self._key.sign_recoverable(digest, hasher=None)
        return sig[64], int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")

    def sign_transaction(self, tx: Eip1559Tx) -> SignedTx:
        fields = tx.fields()
        y_parity, r, s = self.sign_digest(keccak(EIP1559_TYPE + rlp_encode(fields)))
        raw = EIP1559_TYPE + rlp_encode([*fields, y_parity, r, s])
        return SignedTx(raw=raw, tx_hash="0x" + keccak(raw).hex())

    # --- never showing the secret --------------------------------------------------------------

    def register_secret(self, register: Callable[[bytes], None]) -> None:
        """Hand the secret to a redactor (``REDACTOR.add_secret``): the one way it leaves."""
        register(self._key.secret)

    def redact(self, text: str) -> str:
        """``text`` with the secret's hex (any case, with or without ``0x``) replaced."""
        secret = self._key.secret.hex()
        return re.sub(f"(0x)?{secret}", "[REDACTED KEY]", text, flags=re.IGNORECASE)

    def __repr__(self) -> str:
        return f"SigningKey(address={self.address})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a SigningKey cannot be pickled or serialised")

    def __copy__(self) -> SigningKey:
        return self

    def __deepcopy__(self, memo: object) -> SigningKey:
        return self


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by other users (mode %o); chmod 600 it", path, mode & 0o777)
