"""Proofs in LMDB with each response page stored once (ADR 0018).

A proof holds every raw response its value came from, and the markets of a window share those
pages: 10,000 markets of a burst stored 422 MB of proofs, mostly the same few pages again. A
proof is stored as a ``StoredProof`` in ``proofs`` (its fields, with the pages' keys in place of
the responses) and each page once in ``pages``, keyed by the SHA-256 of its canonical bytes::

    store.write(lambda txn: put_proof(txn, key, proof))    # the pages it lacks, and the record
    get_proof(store, key) == proof                         # the same Proof, the same data hash

``get_proof`` also reads a ``Proof`` stored whole (written before schema 3, or by hand). A
record whose page is missing does not decode: ``StoredValueError``, as any bad value. The
canonical bytes, the data hash and the file format do not change: only where the pages live.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from protocol.codec import register
from protocol.evaluation.memo import MeasureMemo, responses_key
from protocol.hyperliquid import RawResponse
from protocol.proof import Proof, canonical_model_bytes
from protocol.spec import Frozen, MarketSpec
from storage.errors import StoredValueError
from storage.store import Store
from storage.txn import Txn


class StoredProof(Frozen):
    """A ``Proof`` whose responses are in ``pages``, by key, in order."""

    format: Literal[1]
    spec: MarketSpec
    pages: tuple[bytes, ...]
    rule: dict[str, str]
    value: str
    scaled: int
    outcome: Literal[0, 1]


register(StoredProof, kind="stored_proof")

_KEYS = MeasureMemo(size=256)
"""Page keys by page content (``responses_key``): a page shared by a burst is hashed once."""


def page_key(page: RawResponse) -> bytes:
    """SHA-256 of the page's canonical bytes: its key in ``pages``."""
    return _KEYS.get_or_compute(
        responses_key((page,)),
        lambda: hashlib.sha256(canonical_model_bytes(page, "page")).digest(),
    )


def put_proof(txn: Txn, key: bytes, proof: Proof) -> None:
    """Store ``proof`` under ``key`` in ``proofs``, and those of its pages ``pages`` lacks."""
    keys = []
    pages = txn.dbi("pages")
    for page in proof.responses:
        page_id = page_key(page)
        if txn.raw.get(page_id, db=pages) is None:
            txn.put("pages", page_id, page)
        keys.append(page_id)
    txn.put("proofs", key, StoredProof.model_construct(pages=tuple(keys), **_shared(proof)))


def get_proof(store: Store, key: bytes) -> Proof | None:
    """The proof stored under ``key``, or ``None``; ``StoredValueError`` if it (or one of its
    pages) does not decode or is missing."""
    stored = store.get("proofs", key)
    if stored is None or isinstance(stored, Proof):
        return stored
    if not isinstance(stored, StoredProof):
        raise StoredValueError("proofs", key, f"a {type(stored).__name__}, not a proof")
    responses = []
    for page_id in stored.pages:
        page = store.get("pages", page_id, RawResponse)
        if page is None:
            raise StoredValueError("proofs", key, f"its page {page_id.hex()} is missing")
        responses.append(page)
    return Proof(responses=tuple(responses), **_shared(stored))


def _shared(model: Proof | StoredProof) -> dict[str, Any]:
    """The fields a ``StoredProof`` keeps as its ``Proof`` has them."""
    return {name: getattr(model, name) for name in StoredProof.model_fields if name != "pages"}
