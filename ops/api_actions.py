"""Operator routes: each asks the scheduler an ``OperatorCommand``, which it audits.

    POST /markets/{chain}/{address}/retry          optional body: {"operator": "ana", "reason": ""}
    POST /markets/{chain}/{address}/cancel         (same optional body)
    POST /markets/{chain}/{address}/resolve-now
    POST /markets/{chain}/{address}/pause
    POST /markets/{chain}/{address}/unpause
    POST /markets/{chain}/{address}/override       body: {"outcome": 1, "reason": "why"}

All need ``Authorization: Bearer <token>`` (401 without; 503 if the daemon has no token). The
answer is 200 with the job's new state, 404 for an unknown market, 409 when the action is not
allowed in the market's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ops.api_common import (
    AddressPath,
    ApiContext,
    ApiError,
    ChainPath,
    ask_scheduler,
    error_responses,
    market_key,
)
from ops.api_models import ActionRequest, ActionResult, OverrideRequest
from ops.auth import token_matches
from protocol.messages import CommandResult, OperatorAction, OperatorCommand
from protocol.records import Job
from protocol.spec import MarketKey

bearer = HTTPBearer(
    auto_error=False,
    description="the API token (`api.token_env`, by default ORACLE_RUNNER_API_TOKEN)",
)

ROUTES: dict[OperatorAction, str] = {
    OperatorAction.RETRY: "retry",
    OperatorAction.CANCEL: "cancel",
    OperatorAction.RESOLVE_NOW: "resolve-now",
    OperatorAction.PAUSE: "pause",
    OperatorAction.UNPAUSE: "unpause",
    OperatorAction.OVERRIDE: "override",
}
SUMMARIES: dict[OperatorAction, str] = {
    OperatorAction.RETRY: "Retry a dead or parked market from scratch",
    OperatorAction.CANCEL: "Cancel a market: the runner will not resolve it",
    OperatorAction.RESOLVE_NOW: "Make a waiting market due now",
    OperatorAction.PAUSE: "Pause a waiting market",
    OperatorAction.UNPAUSE: "Unpause a paused market",
    OperatorAction.OVERRIDE: "Emergency: commit this outcome instead of the measured one",
}


def operator_guard(ctx: ApiContext) -> Callable[..., None]:
    """A dependency that lets a request through only with the right bearer token."""

    def require_token(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> None:
        if ctx.token is None:
            raise ApiError(
                503,
                "mutating routes are disabled: the daemon has no API token "
                "(set the variable named by api.token_env)",
            )
        if not token_matches(ctx.token, request.headers.get("authorization")):
            raise ApiError(
                401,
                "missing or wrong bearer token",
                field="authorization",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token


def _act(ctx: ApiContext, action: OperatorAction, key: MarketKey, **fields: Any) -> ActionResult:
    if ctx.store.get("jobs", key.db_key(), Job) is None:
        raise ApiError(404, f"unknown market {key}", field="address")
    command = OperatorCommand(action=action, key=key, **fields)
    result = ask_scheduler(ctx, command)
    if not isinstance(result, CommandResult):
        raise ApiError(503, "the scheduler gave no command result; try again")
    if result.ok:
        return ActionResult(key=str(key), action=action.value, state=result.state)
    if not result.state:
        raise ApiError(404, result.error or f"unknown market {key}", field="address")
    raise ApiError(409, result.error or f"not allowed in state {result.state}", field="state")


def _plain_action(ctx: ApiContext, action: OperatorAction) -> Callable[..., ActionResult]:
    def endpoint(
        chain: ChainPath, address: AddressPath, body: ActionRequest | None = None
    ) -> ActionResult:
        request = body or ActionRequest()
        key = market_key(chain, address)
        return _act(ctx, action, key, operator=request.operator, reason=request.reason)

    endpoint.__name__ = f"{action.value}_market"
    return endpoint


def _override(ctx: ApiContext) -> Callable[..., ActionResult]:
    def override_market(
        chain: ChainPath, address: AddressPath, body: OverrideRequest
    ) -> ActionResult:
        key = market_key(chain, address)
        return _act(
            ctx,
            OperatorAction.OVERRIDE,
            key,
            operator=body.operator,
            reason=body.reason,
            outcome=body.outcome,
        )

    return override_market


def actions_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["operator"], dependencies=[Depends(operator_guard(ctx))])
    for action, path in ROUTES.items():
        endpoint = (
            _override(ctx) if action is OperatorAction.OVERRIDE else _plain_action(ctx, action)
        )
        router.add_api_route(
            f"/markets/{{chain}}/{{address}}/{path}",
            endpoint,
            methods=["POST"],
            response_model=ActionResult,
            summary=SUMMARIES[action],
            operation_id=f"{action.value}_market",
            responses=error_responses(401, 404, 409, 422, 503),
        )
    return router
