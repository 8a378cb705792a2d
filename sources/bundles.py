"""Calls that one transaction can carry for many intents: ``commit`` and ``finalize`` of the
oracle, carried by ``commitBatch`` and ``finalizeBatch`` (ADR 0021).

    >>> from eth_abi.abi import encode
    >>> one = COMMIT + encode(["address", "uint8", "bytes32"], ["0x" + "11" * 20, 1, b"\\x07" * 32])
    >>> two = COMMIT + encode(["address", "uint8", "bytes32"], ["0x" + "22" * 20, 0, b"\\x08" * 32])
    >>> rule = rule_for(one)
    >>> rule.name
    'commitBatch'
    >>> rule_for(b"\\x00\\x00\\x00\\x00") is None
    True
    >>> carried = rule.carrier([one, two])
    >>> carried[:4] == COMMIT_BATCH
    True
    >>> rule.members(carried) == [one, two]
    True

The batch functions are all or nothing (one member that reverts reverts them all), so a
successful receipt of a carrier proves every member's call took effect, as the receipt of the
single call would.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_signature_to_4byte_selector

from protocol.abi_words import decode_word_arrays, encode_word_arrays, split_words

COMMIT = function_signature_to_4byte_selector("commit(address,uint8,bytes32)")
FINALIZE = function_signature_to_4byte_selector("finalize(address)")
COMMIT_BATCH = function_signature_to_4byte_selector("commitBatch(address[],uint8[],bytes32[])")
FINALIZE_BATCH = function_signature_to_4byte_selector("finalizeBatch(address[])")


class BundleError(ValueError):
    """Calldata that is not a call the rule carries."""


@dataclass(frozen=True)
class BundleRule:
    """How calls to ``selector`` with arguments ``types`` are carried by ``name``: one array
    argument per argument of the single call."""

    name: str
    selector: bytes
    types: tuple[str, ...]
    batch_selector: bytes

    def carrier(self, calls: list[bytes]) -> bytes:
        """The calldata of one ``name`` call that makes every call of ``calls``, in order."""
        rows = [split_words(self.types, call[4:]) for call in calls]
        if all(row is not None for row in rows) and all(
            call[:4] == self.selector for call in calls
        ):  # the usual: canonical calls, carried word for word (ADR 0023)
            words = [row for row in rows if row is not None]
            return self.batch_selector + encode_word_arrays(words, len(self.types))
        values = [self._args(call) for call in calls]
        columns = [list(column) for column in zip(*values, strict=True)]
        return self.batch_selector + encode([f"{t}[]" for t in self.types], columns)

    def members(self, carrier: bytes) -> list[bytes]:
        """The single calls ``carrier`` makes (the inverse of :meth:`carrier`)."""
        if carrier[:4] != self.batch_selector:
            raise BundleError(f"not a {self.name} call")
        words = decode_word_arrays(self.types, carrier[4:])
        if words is not None:
            return [self.selector + b"".join(row) for row in words]
        try:
            columns = decode([f"{t}[]" for t in self.types], carrier[4:])
            rows = list(zip(*columns, strict=True))
        except (DecodingError, OverflowError, ValueError) as exc:
            raise BundleError(f"{self.name} arguments do not decode: {exc}") from exc
        return [self.selector + encode(list(self.types), list(row)) for row in rows]

    def _args(self, call: bytes) -> tuple[object, ...]:
        if call[:4] != self.selector:
            raise BundleError(f"selector 0x{call[:4].hex()} is not carried by {self.name}")
        try:
            return tuple(decode(list(self.types), call[4:]))
        except (DecodingError, OverflowError, ValueError) as exc:
            raise BundleError(f"arguments of a call carried by {self.name}: {exc}") from exc


RULES = {
    rule.selector: rule
    for rule in (
        BundleRule("commitBatch", COMMIT, ("address", "uint8", "bytes32"), COMMIT_BATCH),
        BundleRule("finalizeBatch", FINALIZE, ("address",), FINALIZE_BATCH),
    )
}


def rule_for(call: bytes) -> BundleRule | None:
    """The rule that carries ``call`` with others of its kind, if any."""
    return RULES.get(call[:4])


def carrier_rule(carrier: bytes) -> BundleRule | None:
    """The rule whose batch function ``carrier`` calls, if any."""
    return next((r for r in RULES.values() if r.batch_selector == carrier[:4]), None)
