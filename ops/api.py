"""The daemon's HTTP API (DESIGN.md section 9): health, metrics, markets, proofs, operator acts.

    app = create_app(runtime, store, token=os.environ.get("ORACLE_RUNNER_API_TOKEN"),
                     webhook_secret=os.environ.get("ORACLE_RUNNER_WEBHOOK_SECRET"),
                     chains=list(config.chains), metrics_renderer=metrics.render)
    server = HttpServer(app, host=config.api.host, port=config.api.port)   # ops.http_server
    url = server.start()

Routes (the OpenAPI document is served at ``/openapi.json`` and kept in ``docs/openapi.json``):

    GET  /livez   /readyz   /metrics
    GET  /markets   /markets/{chain}/{address}   /markets/{chain}/{address}/proof   /dlq
    POST /markets/{chain}/{address}/{retry|cancel|resolve-now|pause|unpause|override}  (token)
    POST /webhooks/markets                                                      (HMAC signature)

Every error is ``{"error": ..., "field": ...}``. Requests pass a per-client rate limit (429 with
Retry-After; ``/livez`` is exempt) and a body size limit (413) before routing. Read routes read
LMDB directly; operator acts and webhooks go through the scheduler, which audits them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response

from ops.api_actions import actions_router
from ops.api_common import ApiContext, ApiError, error_responses, install_error_handlers
from ops.api_markets import markets_router
from ops.api_models import Liveness, Readiness
from ops.api_webhooks import webhooks_router
from ops.limits import BodyLimit, RateLimit, RateLimiter
from ops.readiness import ReadinessChecker
from storage import Store
from supervision import Runtime

API_VERSION = "1.0.0"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def create_app(
    runtime: Runtime,
    store: Store,
    *,
    token: str | None,
    webhook_secret: str | None,
    chains: list[str],
    metrics_renderer: Callable[[], bytes] | None = None,
    max_body_bytes: int = 64 * 1024,
    rate_limit_per_s: float = 20.0,
    rate_limit_burst: int = 40,
    clock: Callable[[], float] = time.time,
    factories: Mapping[str, str] | None = None,
    webhook_tolerance_s: float = 300.0,
    ask_timeout_s: float = 5.0,
    readiness: ReadinessChecker | None = None,
) -> FastAPI:
    """The API over ``runtime`` and ``store``.

    ``token`` None disables the operator routes (503); ``webhook_secret`` None disables the
    webhook (503). ``clock`` (seconds) drives the rate limiter and the webhook timestamp check.
    ``factories`` (chain -> factory address) makes webhooks reject logs of other contracts.
    """
    ctx = ApiContext(
        runtime=runtime,
        store=store,
        chains=list(chains),
        token=token or None,
        webhook_secret=webhook_secret or None,
        factories=dict(factories or {}),
        clock=clock,
        ask_timeout_s=ask_timeout_s,
        webhook_tolerance_s=webhook_tolerance_s,
    )
    checker = readiness or ReadinessChecker(runtime, store, ctx.chains, clock=clock)
    app = FastAPI(
        title="oracle-runner",
        version=API_VERSION,
        description="Health, metrics, markets, proofs and operator actions of the oracle runner.",
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(_health_router(ctx, checker, metrics_renderer))
    app.include_router(markets_router(ctx))
    app.include_router(actions_router(ctx))
    app.include_router(webhooks_router(ctx))
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    limiter = RateLimiter(rate_per_s=rate_limit_per_s, burst=rate_limit_burst, clock=clock)
    app.add_middleware(RateLimit, limiter=limiter)  # outermost: refuse before reading bodies
    return app


def _health_router(
    ctx: ApiContext, checker: ReadinessChecker, metrics_renderer: Callable[[], bytes] | None
) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/livez", response_model=Liveness, responses={503: {"model": Liveness}})
    def livez() -> JSONResponse:
        """The process is alive and its supervisor tree has not given up."""
        if ctx.runtime.failed.is_set():
            body = Liveness(status="failed", detail=ctx.runtime.failure[:300])
            return JSONResponse(body.model_dump(), status_code=503)
        return JSONResponse(Liveness(status="ok").model_dump())

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready"}, **error_responses()},
    )
    def readyz() -> JSONResponse:
        """Each component's status; 503 when any fails."""
        verdict = checker.check()
        return JSONResponse(
            verdict.model_dump(mode="json"), status_code=200 if verdict.ready else 503
        )

    @router.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text format",
                "content": {METRICS_TYPE: {"schema": {"type": "string"}}},
            },
            **error_responses(404),
        },
    )
    def metrics() -> Response:
        """Prometheus metrics (``oracle_runner_*``)."""
        if metrics_renderer is None:
            raise ApiError(404, "metrics are not configured")
        return Response(metrics_renderer(), media_type=METRICS_TYPE)

    return router


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document (it does not depend on the runtime, store or settings)."""
    app = create_app(
        cast(Runtime, None), cast(Store, None), token=None, webhook_secret=None, chains=[]
    )
    return app.openapi()


def render_openapi() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def export_openapi(path: str | Path = OPENAPI_PATH) -> Path:
    """Write the OpenAPI document to ``path`` (default ``docs/openapi.json``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_openapi(), encoding="utf-8")
    return target


if __name__ == "__main__":
    print(f"wrote {export_openapi()}")
