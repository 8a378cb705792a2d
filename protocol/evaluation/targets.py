"""What a subject's ``token_identifier`` names: a Hyperliquid coin or a user address.

    >>> coin("kPEPE")
    'kPEPE'
    >>> user("0xB7B6F3CEA3F66BF525F5D8F965F6DBF6D9B017B2")
    '0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2'

Coins are kept exactly as given (Hyperliquid's names are case-sensitive: ``kPEPE``, ``@107``);
user addresses are lower-cased, as Hyperliquid's info API expects.
"""

from __future__ import annotations

import re

from protocol.evaluation.errors import permanent

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def coin(token_identifier: str) -> str:
    """A coin name: non-empty, without whitespace."""
    if not token_identifier or any(ch.isspace() for ch in token_identifier):
        raise permanent(f"{token_identifier!r} is not a Hyperliquid coin name")
    return token_identifier


def user(token_identifier: str) -> str:
    """A user's 20-byte hex address, lower-cased."""
    if not _ADDRESS.fullmatch(token_identifier):
        raise permanent(f"{token_identifier!r} is not a user address (0x and 40 hex digits)")
    return token_identifier.lower()
