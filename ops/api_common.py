"""What the API's routers share: their context, JSON errors, path parameters, scheduler asks.

Every error answer is ``{"error": "...", "field": "..." | null}``::

    raise ApiError(409, "cannot pause a dead market", field="state")

``install_error_handlers(app)`` turns request validation errors, Starlette's own 404/405 and any
unexpected exception into that shape too; an unexpected exception's text is logged by type only
and never sent, since it might hold anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from ops.api_models import ADDRESS_PATTERN, CHAIN_PATTERN, ErrorBody
from protocol.spec import MarketKey
from storage import Store
from supervision import Runtime

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"
RETRY_AFTER_S = "5"


@dataclass
class ApiContext:
    """The daemon's parts and the API's settings, handed to every router."""

    runtime: Runtime
    store: Store
    chains: list[str]
    token: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    factories: Mapping[str, str] = field(default_factory=dict)
    """Chain -> factory address; when set for a chain, webhook logs must come from it."""
    clock: Callable[[], float] = time.time
    ask_timeout_s: float = 5.0
    webhook_tolerance_s: float = 300.0


class ApiError(HTTPException):
    """An HTTP error with the request field it concerns."""

    def __init__(
        self,
        status_code: int,
        error: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=error, headers=headers)
        self.field = field


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for ``codes`` (plus 400, 413 and 429, which any route may answer)."""
    described = {
        400: "Malformed request (bad Content-Length or body encoding)",
        401: "Missing or wrong credentials",
        404: "Unknown market or resource",
        409: "Not allowed in the market's current state",
        413: "Request body too large",
        422: "Invalid request; `field` names the offending field",
        429: "Rate limited; see Retry-After",
        503: "Unavailable: disabled by configuration, or the scheduler did not answer",
    }
    wanted = sorted({400, 413, 429, *codes})
    return {code: {"model": ErrorBody, "description": described[code]} for code in wanted}


ChainPath = Annotated[str, Path(pattern=CHAIN_PATTERN, description="configured chain name")]
AddressPath = Annotated[str, Path(pattern=ADDRESS_PATTERN, description="market address")]


def market_key(chain: str, address: str) -> MarketKey:
    try:
        return MarketKey(chain=chain, address=address)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "address"
        raise ApiError(422, f"{name}: {first['msg']}", field=name) from None


def ask_scheduler(ctx: ApiContext, message: Any) -> Any:
    """Ask the scheduler; 503 (with Retry-After) if it does not answer in time or fails."""
    try:
        return ctx.runtime.ask(SCHEDULER, message, timeout=ctx.ask_timeout_s)
    except Exception as exc:
        log.warning("api: the scheduler did not answer %s: %s", message.kind, type(exc).__name__)
        raise ApiError(
            503,
            f"the scheduler did not answer ({type(exc).__name__}); try again",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from None


def _body(error: str, field: str | None = None) -> dict[str, Any]:
    return ErrorBody(error=error, field=field).model_dump()


def _field_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or (str(loc[0]) if loc else None)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if not errors:
        return JSONResponse(_body("invalid request"), status_code=422)
    first = errors[0]
    where = _field_of(tuple(first.get("loc", ())))
    if first.get("type") == "json_invalid":
        return JSONResponse(_body("body is not valid JSON", "body"), status_code=422)
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    message = f"{where}: {first.get('msg', 'invalid')}{more}" if where else first.get("msg", "")
    return JSONResponse(_body(message, where), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    field_name = exc.field if isinstance(exc, ApiError) else None
    return JSONResponse(
        _body(str(exc.detail), field_name), status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("api: %s %s failed: %s", request.method, request.url.path, type(exc).__name__)
    return JSONResponse(_body("internal error; see the daemon's log"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
