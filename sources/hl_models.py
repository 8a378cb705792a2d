"""Typed Hyperliquid info responses: decimal strings become ``Decimal``, JSON numbers ``int``.

No float ever holds a value: a decimal field accepts only a JSON string (a JSON number there is a
malformed response, not a silently rounded value), and integer fields accept only JSON integers.
Unknown extra fields are ignored (the API grows); a missing field is an error::

    >>> parse_body("allMids", b'{"BTC": "30135.0"}', ALL_MIDS)
    {'BTC': Decimal('30135.0')}
    >>> try:
    ...     parse_body("allMids", b'{"BTC": 30135.0}', ALL_MIDS)
    ... except MalformedResponse as err:
    ...     print(err)
    allMids: malformed response: at BTC: a decimal string is required, got a JSON number
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from sources.http_errors import MalformedResponse

T = TypeVar("T")


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        got = "a JSON number" if number else type(value).__name__
        raise ValueError(f"a decimal string is required, got {got}")
    try:
        dec = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal string: {value!r}") from None
    if not dec.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return dec


def _decimal_or_none(value: Any) -> Decimal | None:
    """``null`` and the API's ``"NaN"`` (no liquidation price) both mean: none."""
    if value is None or value == "NaN":
        return None
    return _decimal(value)


Dec = Annotated[Decimal, BeforeValidator(_decimal)]
"""A decimal that must arrive as a JSON string."""
OptDec = Annotated[Decimal | None, BeforeValidator(_decimal_or_none)]


class HlModel(BaseModel):
    """Base of the response models: immutable, fields by API name or Python name, extras ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class AssetMeta(HlModel):
    name: str
    sz_decimals: StrictInt = Field(alias="szDecimals")
    max_leverage: StrictInt | None = Field(default=None, alias="maxLeverage")


class Meta(HlModel):
    """``{"type": "meta"}``: the perpetuals universe, in asset-index order."""

    universe: list[AssetMeta]


class AssetCtx(HlModel):
    day_ntl_vlm: Dec = Field(alias="dayNtlVlm")
    funding: Dec
    mark_px: Dec = Field(alias="markPx")
    open_interest: Dec = Field(alias="openInterest")
    oracle_px: Dec = Field(alias="oraclePx")
    prev_day_px: Dec = Field(alias="prevDayPx")
    mid_px: OptDec = Field(default=None, alias="midPx")
    premium: OptDec = None


class MetaAndAssetCtxs(HlModel):
    """``{"type": "metaAndAssetCtxs"}``: the universe and, index by index, each asset's context.

    The API sends the pair ``[meta, [ctx, ...]]``; both lists must have the same length.
    """

    meta: Meta
    ctxs: list[AssetCtx]

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, data: Any) -> Any:
        if isinstance(data, list):
            if len(data) != 2:
                raise ValueError(f"expected a [meta, ctxs] pair, got a list of {len(data)}")
            return {"meta": data[0], "ctxs": data[1]}
        return data

    @model_validator(mode="after")
    def _same_length(self) -> MetaAndAssetCtxs:
        if len(self.ctxs) != len(self.meta.universe):
            raise ValueError(
                f"{len(self.meta.universe)} assets in the universe but {len(self.ctxs)} contexts"
            )
        return self

    def ctx(self, coin: str) -> AssetCtx | None:
        """The context of ``coin``, or None when the universe does not list it."""
        for asset, ctx in zip(self.meta.universe, self.ctxs, strict=True):
            if asset.name == coin:
                return ctx
        return None


class L2Level(HlModel):
    px: Dec
    sz: Dec
    n: StrictInt


class L2Book(HlModel):
    """``{"type": "l2Book", "coin": ...}``: ``levels[0]`` bids (best first), ``levels[1]`` asks."""

    coin: str
    time: StrictInt
    levels: tuple[list[L2Level], list[L2Level]]


class Candle(HlModel):
    """One candle: open time ``t`` and close time ``T`` (inclusive, ms), decimal OHLCV."""

    open_time: StrictInt = Field(alias="t")
    close_time: StrictInt = Field(alias="T")
    coin: str = Field(alias="s")
    interval: str = Field(alias="i")
    open: Dec = Field(alias="o")
    high: Dec = Field(alias="h")
    low: Dec = Field(alias="l")
    close: Dec = Field(alias="c")
    volume: Dec = Field(alias="v")
    trades: StrictInt = Field(alias="n")


class FundingRow(HlModel):
    coin: str
    funding_rate: Dec = Field(alias="fundingRate")
    premium: Dec
    time: StrictInt


class Fill(HlModel):
    coin: str
    px: Dec
    sz: Dec
    side: str
    time: StrictInt
    start_position: Dec = Field(alias="startPosition")
    dir: str
    closed_pnl: Dec = Field(alias="closedPnl")
    hash: str
    oid: StrictInt
    crossed: StrictBool
    fee: Dec
    tid: StrictInt | None = None
    fee_token: str | None = Field(default=None, alias="feeToken")


class Leverage(HlModel):
    type: str
    value: StrictInt
    raw_usd: OptDec = Field(default=None, alias="rawUsd")


class Position(HlModel):
    coin: str
    szi: Dec
    entry_px: OptDec = Field(alias="entryPx")
    leverage: Leverage
    liquidation_px: OptDec = Field(alias="liquidationPx")
    margin_used: Dec = Field(alias="marginUsed")
    position_value: Dec = Field(alias="positionValue")
    return_on_equity: Dec = Field(alias="returnOnEquity")
    unrealized_pnl: Dec = Field(alias="unrealizedPnl")


class AssetPosition(HlModel):
    type: str
    position: Position


class MarginSummary(HlModel):
    account_value: Dec = Field(alias="accountValue")
    total_margin_used: Dec = Field(alias="totalMarginUsed")
    total_ntl_pos: Dec = Field(alias="totalNtlPos")
    total_raw_usd: Dec = Field(alias="totalRawUsd")


class ClearinghouseState(HlModel):
    """``{"type": "clearinghouseState", "user": ...}``: a user's perp positions and margin."""

    asset_positions: list[AssetPosition] = Field(alias="assetPositions")
    margin_summary: MarginSummary = Field(alias="marginSummary")
    cross_margin_summary: MarginSummary = Field(alias="crossMarginSummary")
    withdrawable: Dec


META: TypeAdapter[Meta] = TypeAdapter(Meta)
META_AND_ASSET_CTXS: TypeAdapter[MetaAndAssetCtxs] = TypeAdapter(MetaAndAssetCtxs)
ALL_MIDS: TypeAdapter[dict[str, Decimal]] = TypeAdapter(dict[str, Dec])
L2_BOOK: TypeAdapter[L2Book | None] = TypeAdapter(L2Book | None)
CANDLES: TypeAdapter[list[Candle]] = TypeAdapter(list[Candle])
FUNDING_ROWS: TypeAdapter[list[FundingRow]] = TypeAdapter(list[FundingRow])
FILLS: TypeAdapter[list[Fill]] = TypeAdapter(list[Fill])
CLEARINGHOUSE_STATE: TypeAdapter[ClearinghouseState] = TypeAdapter(ClearinghouseState)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def load_json(request_type: str, body: bytes) -> Any:
    """Parse ``body`` as JSON (numbers with a fraction become ``Decimal``, never float).

    Raises ``MalformedResponse`` naming ``request_type`` when the body is not JSON.
    """
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        excerpt = body[:80].decode("utf-8", "replace")
        raise MalformedResponse(
            request_type, f"body is not JSON ({exc}); {len(body)} bytes: {excerpt!r}"
        ) from None


def validate(request_type: str, payload: Any, shape: TypeAdapter[T]) -> T:
    """Validate parsed JSON against ``shape`` (one of the adapters above); errors are malformed."""
    try:
        return shape.validate_python(payload)
    except ValidationError as exc:
        raise MalformedResponse(request_type, _summarize(exc)) from None


def parse_body(request_type: str, body: bytes, shape: TypeAdapter[T]) -> T:
    """``validate(load_json(body))``: bytes to a typed value, or ``MalformedResponse``."""
    return validate(request_type, load_json(request_type, body), shape)


def _summarize(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "top level"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"at {where}: {msg}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
