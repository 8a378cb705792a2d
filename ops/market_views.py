"""Read-only views of markets for the API, straight from the store (no actor is asked).

    page = list_markets(store, state=JobState.DEAD, limit=50)      # MarketPage
    detail = market_detail(store, MarketKey.parse("hyperevm:0x..."))  # MarketDetail | None
    found = load_proof(store, key)                                  # (Proof, ProofDocument) | None

Paging is by market key (``chain:address``, in key order): pass a page's ``next`` as ``after``.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable

from ops.api_models import (
    AuditView,
    DlqEntry,
    DlqPage,
    JobView,
    MarketDetail,
    MarketPage,
    MarketSummary,
    ProofDocument,
    ProofResponseView,
    ProofView,
    ResolutionView,
)
from protocol.proof import Proof, data_hash_hex
from protocol.records import AuditEntry, Job, JobState, Resolution
from protocol.spec import MarketKey, MarketSpec
from storage import Store, get_proof

AUDIT_LIMIT = 100
"""Most audit entries one market detail shows (the most recent)."""


def _jobs_after(
    store: Store, chain: str | None, after: str | None, keep: Callable[[Job], bool], limit: int
) -> tuple[list[Job], str | None]:
    prefix = f"{chain}:".encode() if chain else b""
    start = after.encode() if after else None
    found: list[Job] = []
    for _, job in store.items("jobs", prefix, after=start, expect=Job):
        if not keep(job):
            continue
        if len(found) == limit:
            return found, str(found[-1].key)
        found.append(job)
    return found, None


def list_markets(
    store: Store,
    *,
    state: JobState | None = None,
    chain: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> MarketPage:
    """Markets in key order, optionally only those in ``state`` or on ``chain``."""
    jobs, nxt = _jobs_after(store, chain, after, lambda j: state is None or j.state is state, limit)
    markets = []
    for job in jobs:
        spec = store.get("markets", job.key.db_key(), MarketSpec)
        markets.append(
            MarketSummary(
                key=str(job.key),
                chain=job.key.chain,
                address=job.key.address,
                title=spec.title if spec is not None else "",
                state=job.state,
                due_at=job.due_at,
                next_attempt_at=job.next_attempt_at,
                attempts=job.attempts,
                stage=job.stage,
                last_error=job.last_error,
            )
        )
    return MarketPage(markets=markets, next=nxt)


def dead_letters(
    store: Store, *, chain: str | None = None, after: str | None = None, limit: int = 100
) -> DlqPage:
    """Jobs in state ``dead``, with the reason each was given up on."""
    jobs, nxt = _jobs_after(store, chain, after, lambda j: j.state is JobState.DEAD, limit)
    entries = [
        DlqEntry(
            key=str(job.key),
            chain=job.key.chain,
            address=job.key.address,
            reason=job.last_error,
            failure=job.failure.value if job.failure is not None else None,
            attempts=job.attempts,
            stage=job.stage,
            due_at=job.due_at,
        )
        for job in jobs
    ]
    return DlqPage(entries=entries, next=nxt)


def job_view(job: Job) -> JobView:
    return JobView(
        state=job.state,
        due_at=job.due_at,
        next_attempt_at=job.next_attempt_at,
        attempts=job.attempts,
        stage=job.stage,
        last_error=job.last_error,
        failure=job.failure.value if job.failure is not None else None,
        override_outcome=job.override_outcome,
        override_reason=job.override_reason,
    )


def resolution_view(res: Resolution) -> ResolutionView:
    return ResolutionView(
        stage=res.stage.value,
        value=res.value,
        scaled=res.scaled,
        outcome=res.outcome,
        data_hash=res.data_hash,
        commit_tx=res.commit_tx,
        commit_time=res.commit_time,
        finalize_tx=res.finalize_tx,
        override_reason=res.override_reason,
        note=res.note,
    )


def market_audit(store: Store, key: MarketKey) -> tuple[list[AuditView], bool]:
    """The last ``AUDIT_LIMIT`` audit entries about ``key``, and whether older ones were left out.

    Scans the whole audit log (it is keyed by sequence number, not by market).
    """
    subject = str(key)
    recent: deque[AuditView] = deque(maxlen=AUDIT_LIMIT)
    seen = 0
    for raw_key, entry in store.items("audit", expect=AuditEntry):
        if entry.subject != subject:
            continue
        seen += 1
        recent.append(
            AuditView(
                seq=int.from_bytes(raw_key, "big"),
                ts=entry.ts,
                actor=entry.actor,
                action=entry.action,
                detail=dict(entry.detail),
            )
        )
    return list(recent), seen > len(recent)


def market_detail(store: Store, key: MarketKey) -> MarketDetail | None:
    """Everything stored about one market, or ``None`` if the runner does not know it."""
    db_key = key.db_key()
    spec = store.get("markets", db_key, MarketSpec)
    job = store.get("jobs", db_key, Job)
    if spec is None and job is None:
        return None
    res = store.get("resolutions", db_key, Resolution)
    audit, truncated = market_audit(store, key)
    return MarketDetail(
        key=str(key),
        chain=key.chain,
        address=key.address,
        spec=spec,
        job=job_view(job) if job is not None else None,
        resolution=resolution_view(res) if res is not None else None,
        audit=audit,
        audit_truncated=truncated,
    )


def load_proof(store: Store, key: MarketKey) -> tuple[Proof, ProofDocument] | None:
    """The stored proof of ``key`` and its JSON rendering, or ``None``."""
    proof = get_proof(store, key.db_key())
    if proof is None:
        return None
    res = store.get("resolutions", key.db_key(), Resolution)
    view = ProofView(
        format=proof.format,
        spec=proof.spec,
        responses=[
            ProofResponseView(
                request=dict(r.request.body),
                url=r.url,
                fetched_at_ms=r.fetched_at_ms,
                status=r.status,
                body_base64=base64.b64encode(r.body).decode("ascii"),
            )
            for r in proof.responses
        ],
        rule=dict(proof.rule),
        value=proof.value,
        scaled=proof.scaled,
        outcome=proof.outcome,
    )
    document = ProofDocument(
        key=str(key),
        data_hash=data_hash_hex(proof),
        committed_hash=res.data_hash if res is not None and res.data_hash else None,
        proof=view,
    )
    return proof, document
