"""Read routes: markets, one market, its proof, the dead-letter queue.

GET /markets?state=dead&chain=hyperevm&limit=50&after=hyperevm:0x...
GET /markets/{chain}/{address}
GET /markets/{chain}/{address}/proof            JSON; ?format=raw or
                                                Accept: application/octet-stream -> the bytes
GET /dlq?chain=&limit=&after=
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from ops.api_common import AddressPath, ApiContext, ApiError, ChainPath, error_responses, market_key
from ops.api_models import CHAIN_PATTERN, DlqPage, MarketDetail, MarketPage, ProofDocument
from ops.market_views import dead_letters, list_markets, load_proof, market_detail
from protocol.proof import canonical_bytes
from protocol.records import JobState

RAW = "application/octet-stream"

Limit = Annotated[int, Query(ge=1, le=500, description="most items in one page")]
After = Annotated[str | None, Query(max_length=200, description="the `next` of the previous page")]
ChainFilter = Annotated[str | None, Query(pattern=CHAIN_PATTERN, description="only this chain")]


def _wants_raw(fmt: str, accept: str | None) -> bool:
    if fmt == "raw":
        return True
    types = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    return RAW in types and "application/json" not in types


def markets_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["markets"])

    @router.get("/markets", responses=error_responses(422))
    def get_markets(
        state: Annotated[JobState | None, Query(description="only markets in this state")] = None,
        chain: ChainFilter = None,
        limit: Limit = 100,
        after: After = None,
    ) -> MarketPage:
        """Markets in key order, filtered by state and chain; page with `after`."""
        return list_markets(ctx.store, state=state, chain=chain, after=after, limit=limit)

    @router.get("/markets/{chain}/{address}", responses=error_responses(404, 422))
    def get_market(chain: ChainPath, address: AddressPath) -> MarketDetail:
        """One market: spec, job, resolution and its audit trail."""
        key = market_key(chain, address)
        detail = market_detail(ctx.store, key)
        if detail is None:
            raise ApiError(404, f"unknown market {key}", field="address")
        return detail

    @router.get(
        "/markets/{chain}/{address}/proof",
        response_model=ProofDocument,
        responses={
            200: {
                "description": "The proof as JSON, or its canonical bytes",
                "content": {RAW: {"schema": {"type": "string", "format": "binary"}}},
            },
            **error_responses(404, 422),
        },
    )
    def get_proof(
        chain: ChainPath,
        address: AddressPath,
        format: Annotated[
            Literal["json", "raw"], Query(description="`raw`: the canonical proof bytes")
        ] = "json",
        accept: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> ProofDocument | Response:
        """The market's data proof with its data hash (keccak256 of the canonical bytes)."""
        key = market_key(chain, address)
        found = load_proof(ctx.store, key)
        if found is None:
            raise ApiError(404, f"no proof stored for {key}", field="address")
        proof, document = found
        if _wants_raw(format, accept):
            return Response(
                canonical_bytes(proof),
                media_type=RAW,
                headers={
                    "X-Data-Hash": document.data_hash,
                    "Content-Disposition": f'attachment; filename="{key.address}.proof"',
                },
            )
        return document

    @router.get("/dlq", responses=error_responses(422))
    def get_dlq(chain: ChainFilter = None, limit: Limit = 100, after: After = None) -> DlqPage:
        """The dead-letter queue: markets given up on, with the reason; retry to revive one."""
        return dead_letters(ctx.store, chain=chain, after=after, limit=limit)

    return router
