"""Recorded Hyperliquid responses (vcrpy cassettes, read in place) and market specs for tests.

    from tests.fixtures import cassette, raw_response
    hit = cassette("test_get_candles_snapshot")[1]          # an Interaction
    resp = raw_response("test_get_candles_snapshot", "candleSnapshot")   # a RawResponse

The directory is ``$ORACLE_RUNNER_FIXTURES`` when set, else
``<repo>/../shared/fixtures/hyperliquid`` (it holds ``cassettes/`` and ``api/``). A missing
directory fails loudly: the tests that use it are about real data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from protocol.hyperliquid import InfoRequest, RawResponse
from protocol.spec import (
    MarketSpec,
    OracleSpec,
    Predicate,
    PredicateOp,
    Subject,
    SubjectKind,
    Window,
    WindowKind,
)

ENV = "ORACLE_RUNNER_FIXTURES"
REPO = Path(__file__).resolve().parent.parent


def fixtures_dir() -> Path:
    """The Hyperliquid fixtures directory (``cassettes/`` and ``api/`` inside)."""
    configured = os.environ.get(ENV)
    path = Path(configured) if configured else REPO.parent / "shared" / "fixtures" / "hyperliquid"
    if not (path / "cassettes").is_dir():
        raise FileNotFoundError(f"no Hyperliquid cassettes under {path} (set {ENV})")
    return path


@dataclass(frozen=True)
class Interaction:
    """One recorded request and its response."""

    request_body: dict[str, Any]
    uri: str
    status: int
    body: bytes
    date_ms: int
    """The response's ``date`` header, in milliseconds: when it was fetched."""

    @property
    def type(self) -> str:
        return str(self.request_body.get("type", ""))

    def raw(
        self, *, fetched_at_ms: int | None = None, request: InfoRequest | None = None
    ) -> RawResponse:
        """As a ``RawResponse``, optionally as if fetched at another time or for another request."""
        return RawResponse(
            request=request or InfoRequest(body=self.request_body),
            url=self.uri,
            fetched_at_ms=self.date_ms if fetched_at_ms is None else fetched_at_ms,
            status=self.status,
            body=self.body,
        )


def _header(headers: dict[str, Any], name: str) -> str:
    value = headers[name]
    return str(value[0] if isinstance(value, list) else value)


@cache
def cassette(name: str) -> tuple[Interaction, ...]:
    """Every interaction of ``cassettes/<name>.yaml``."""
    data = yaml.safe_load((fixtures_dir() / "cassettes" / f"{name}.yaml").read_text())
    out = []
    for item in data["interactions"]:
        request, response = item["request"], item["response"]
        date = parsedate_to_datetime(_header(response["headers"], "date"))
        out.append(
            Interaction(
                request_body=json.loads(request["body"]),
                uri=request["uri"],
                status=int(response["status"]["code"]),
                body=response["body"]["string"].encode(),
                date_ms=int(date.timestamp()) * 1000,
            )
        )
    return tuple(out)


def interaction(name: str, request_type: str) -> Interaction:
    """The first interaction of ``name`` whose request has ``type == request_type``."""
    for hit in cassette(name):
        if hit.type == request_type:
            return hit
    raise LookupError(f"no {request_type} request in cassette {name}")


def raw_response(name: str, request_type: str, **kwargs: Any) -> RawResponse:
    """``interaction(name, request_type).raw(**kwargs)``."""
    return interaction(name, request_type).raw(**kwargs)


def rows(name: str, request_type: str) -> list[dict[str, Any]]:
    """The JSON rows of that response (for tests that look at the data itself)."""
    body = json.loads(interaction(name, request_type).body)
    assert isinstance(body, list)
    return body


def market(
    token: str,
    window: tuple[str, int, int],
    *,
    metric: str = "",
    op: str = "GT",
    threshold: int = 0,
    value_decimals: int = 6,
    rounding_decimals: int = 36,
) -> MarketSpec:
    """A market spec for tests: ``market("BTC", ("SNAPSHOT_AT", t, t), threshold=...)``."""
    kind, t_start, t_end = window
    return MarketSpec(
        title=f"{metric or 'price'} of {token}",
        subject=Subject(
            kind=SubjectKind.HL_METRIC if metric else SubjectKind.TOKEN_PRICE,
            metric_id=metric,
            token_identifier=token,
            value_decimals=value_decimals,
        ),
        predicate=Predicate(op=PredicateOp(op), threshold=threshold),
        window=Window(kind=WindowKind(kind), t_start=t_start, t_end=t_end),
        oracle=OracleSpec(rounding_decimals=rounding_decimals),
        cutoff_time=t_start,
        creator="0x0000000000000000000000000000000000000001",
    )
