"""``POST /webhooks/markets``: ``MarketCreated`` logs pushed by an indexer (Goldsky-style).

The body is one log object or a list of them (at most ``MAX_LOGS``)::

    {"chain": "hyperevm", "address": "0x<factory>", "topics": ["0x<topic0>", "0x<market>",
     "0x<creator>"], "data": "0x<abi MarketParams>", "block_number": 12, "block_hash": "0x<32 B>",
     "transaction_hash": "0x<32 B>", "log_index": 0}

signed with ``X-Timestamp: <unix seconds>`` and
``X-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Timestamp>." + raw body)>`` (``ops.auth``).
The signature is checked on the raw bytes before anything is parsed (401 if missing, wrong or
older than the tolerance). Then every log is validated and decoded (422 naming the item and field;
nothing is handed off if any log is bad), and each market goes to the scheduler as
``MarketDiscovered(via="webhook")``, the listener's path: the answer says ``new`` or ``known``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ops.api_common import ApiContext, ApiError, ask_scheduler, error_responses
from ops.api_models import WebhookLog, WebhookMarket, WebhookResult
from ops.auth import WebhookAuthError, verify_webhook
from protocol.market_abi import MarketAbiError, decode_market_created
from protocol.messages import Ack, MarketDiscovered
from protocol.spec import MarketKey

MAX_LOGS = 100
_LOG_SCHEMA = WebhookLog.model_json_schema()
BODY_SCHEMA: dict[str, Any] = {
    "oneOf": [
        _LOG_SCHEMA,
        {"type": "array", "items": _LOG_SCHEMA, "minItems": 1, "maxItems": MAX_LOGS},
    ]
}


def _where(index: int | None, name: str) -> str:
    return name if index is None else f"[{index}].{name}"


def _parse(body: bytes) -> list[tuple[int | None, WebhookLog]]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(422, "body is not valid JSON", field="body") from None
    items: list[tuple[int | None, Any]]
    if isinstance(payload, dict):
        items = [(None, payload)]
    elif isinstance(payload, list) and 0 < len(payload) <= MAX_LOGS:
        items = list(enumerate(payload))
    else:
        raise ApiError(422, f"body must be a log object or a list of 1 to {MAX_LOGS}", "body")
    logs = []
    for index, item in items:
        try:
            logs.append((index, WebhookLog.model_validate(item)))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "log"
            where = _where(index, loc)
            raise ApiError(422, f"{where}: {first['msg']}", field=where) from None
    return logs


def _discovery(ctx: ApiContext, index: int | None, entry: WebhookLog) -> MarketDiscovered:
    if entry.chain not in ctx.chains:
        where = _where(index, "chain")
        raise ApiError(422, f"{where}: chain {entry.chain!r} is not configured", field=where)
    factory = ctx.factories.get(entry.chain)
    if factory is not None and entry.address.lower() != factory.lower():
        where = _where(index, "address")
        raise ApiError(422, f"{where}: not the factory of chain {entry.chain}", field=where)
    try:
        created = decode_market_created(entry.topics, entry.data)
    except MarketAbiError as exc:
        name = "topics" if "topic" in str(exc) else "data"
        where = _where(index, name)
        raise ApiError(422, f"{where}: {str(exc)[:500]}", field=where) from None
    try:
        return MarketDiscovered(
            key=MarketKey(chain=entry.chain, address=created.market),
            spec=created.spec,
            block_number=entry.block_number,
            block_hash=entry.block_hash,
            tx_hash=entry.transaction_hash,
            log_index=entry.log_index,
            via="webhook",
        )
    except ValidationError as exc:
        where = _where(index, "log")
        raise ApiError(422, f"{where}: {exc.errors()[0]['msg']}", field=where) from None


def _hand_off(ctx: ApiContext, found: list[MarketDiscovered]) -> WebhookResult:
    markets = []
    for message in found:
        ack = ask_scheduler(ctx, message)
        detail = ack.detail if isinstance(ack, Ack) else ""
        if detail not in ("new", "known"):
            raise ApiError(503, f"the scheduler did not take market {message.key}; try again")
        markets.append(WebhookMarket(key=str(message.key), detail=detail))
    return WebhookResult(markets=markets)


def webhooks_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/webhooks/markets",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": BODY_SCHEMA}},
            }
        },
        responses=error_responses(401, 422, 503),
    )
    async def market_webhook(
        request: Request,
        x_signature: Annotated[
            str | None, Header(description="sha256=<hex HMAC-SHA256 of '<X-Timestamp>.<body>'>")
        ] = None,
        x_timestamp: Annotated[str | None, Header(description="Unix seconds")] = None,
    ) -> WebhookResult:
        """Hand signed ``MarketCreated`` logs to the scheduler, as the listener does."""
        if ctx.webhook_secret is None:
            raise ApiError(503, "webhooks are disabled: no webhook secret is configured")
        body = await request.body()
        try:
            verify_webhook(
                ctx.webhook_secret,
                body,
                x_signature,
                x_timestamp,
                now=ctx.clock(),
                tolerance_s=ctx.webhook_tolerance_s,
            )
        except WebhookAuthError as exc:
            raise ApiError(401, str(exc), field=exc.header.lower()) from None
        found = [_discovery(ctx, index, entry) for index, entry in _parse(body)]
        return await run_in_threadpool(_hand_off, ctx, found)

    return router
