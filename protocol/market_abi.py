"""ABI form of a ``MarketSpec``: the ``MarketParams`` struct of ``contracts/src/MarketTypes.sol``.

Pure: encodes and decodes bytes, no IO. The listener turns a ``MarketCreated`` log into a spec::

    >>> from protocol.spec import MarketSpec, Predicate, PredicateOp, Subject, SubjectKind
    >>> from protocol.spec import Window, WindowKind
    >>> spec = MarketSpec(
    ...     title="BTC above 30k",
    ...     subject=Subject(kind=SubjectKind.TOKEN_PRICE, token_identifier="BTC", value_decimals=2),
    ...     predicate=Predicate(op=PredicateOp.GT, threshold=3_000_000),
    ...     window=Window(kind=WindowKind.SNAPSHOT_AT, t_start=1_700_000_000, t_end=1_700_000_000),
    ...     cutoff_time=1_699_990_000,
    ...     creator="0x0000000000000000000000000000000000000001",
    ... )
    >>> decode_market_params(encode_market_params(spec)) == spec
    True

Enumerations travel as ``uint8`` codes (the contract does not check them, the decoder does):
``SubjectKind`` HL_METRIC=0, TOKEN_PRICE=1; ``PredicateOp`` GT=0, GTE=1, LT=2, LTE=3;
``WindowKind`` SNAPSHOT_AT=0, WINDOW_SUM=1, WINDOW_COUNT=2. Anything that does not decode to a
valid ``MarketSpec`` raises ``MarketAbiError`` (a ``ValueError``) with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak
from pydantic import ValidationError

from protocol.market_abi_reader import read_canonical
from protocol.spec import (
    Address,
    Economics,
    Frozen,
    MarketSpec,
    OracleSpec,
    Predicate,
    PredicateOp,
    Subject,
    SubjectKind,
    Window,
    WindowKind,
    checksum_address,
)

SUBJECT_KIND_CODES: dict[SubjectKind, int] = {SubjectKind.HL_METRIC: 0, SubjectKind.TOKEN_PRICE: 1}
PREDICATE_OP_CODES: dict[PredicateOp, int] = {
    PredicateOp.GT: 0,
    PredicateOp.GTE: 1,
    PredicateOp.LT: 2,
    PredicateOp.LTE: 3,
}
WINDOW_KIND_CODES: dict[WindowKind, int] = {
    WindowKind.SNAPSHOT_AT: 0,
    WindowKind.WINDOW_SUM: 1,
    WindowKind.WINDOW_COUNT: 2,
}

SUBJECT_TYPE = "(uint8,string,string,uint8)"
PREDICATE_TYPE = "(uint8,int256)"
WINDOW_TYPE = "(uint8,uint64,uint64)"
ORACLE_SPEC_TYPE = "(string,string,uint8)"
ECONOMICS_TYPE = "(address,uint16,uint256)"
MARKET_PARAMS_TYPE = (
    f"(string,string,{SUBJECT_TYPE},{PREDICATE_TYPE},{WINDOW_TYPE},{ORACLE_SPEC_TYPE},"
    f"uint64,address,{ECONOMICS_TYPE})"
)
"""The canonical ABI type of ``MarketParams``, as used in selectors and event signatures."""

MARKET_CREATED_SIGNATURE = f"MarketCreated(address,address,{MARKET_PARAMS_TYPE})"
MARKET_CREATED_TOPIC = "0x" + keccak(text=MARKET_CREATED_SIGNATURE).hex()
"""topic0 of ``MarketFactory.MarketCreated``, 0x-prefixed lowercase hex."""

CREATE_MARKET_SIGNATURE = f"createMarket({MARKET_PARAMS_TYPE})"
CREATE_MARKET_SELECTOR = keccak(text=CREATE_MARKET_SIGNATURE)[:4]


class MarketAbiError(ValueError):
    """Bytes that are not a valid ``MarketParams`` or ``MarketCreated`` log."""


class MarketCreatedLog(Frozen):
    """A decoded ``MarketCreated(market, creator, params)``."""

    market: Address
    creator: Address
    spec: MarketSpec


def _code(codes: dict[Any, int], code: int, what: str) -> Any:
    for member, value in codes.items():
        if value == code:
            return member
    raise MarketAbiError(f"unknown {what} code {code}")


def spec_to_params(spec: MarketSpec) -> tuple[Any, ...]:
    """The Python value of ``MarketParams`` for ``eth_abi.encode`` or a web3 contract call."""
    s, p, w, o, e = spec.subject, spec.predicate, spec.window, spec.oracle, spec.economics
    return (
        spec.title,
        spec.description,
        (SUBJECT_KIND_CODES[s.kind], s.metric_id, s.token_identifier, s.value_decimals),
        (PREDICATE_OP_CODES[p.op], p.threshold),
        (WINDOW_KIND_CODES[w.kind], w.t_start, w.t_end),
        (o.primary_source_id, o.fallback_source_id, o.rounding_decimals),
        spec.cutoff_time,
        spec.creator,
        (e.collateral_token, e.fee_bps, e.initial_liquidity),
    )


def params_to_spec(params: Sequence[Any]) -> MarketSpec:
    """The inverse of ``spec_to_params``; raises ``MarketAbiError`` for an invalid spec."""
    try:
        title, description, s, p, w, o, cutoff, creator, e = params
        return MarketSpec(
            title=title,
            description=description,
            subject=Subject(
                kind=_code(SUBJECT_KIND_CODES, s[0], "subject kind"),
                metric_id=s[1],
                token_identifier=s[2],
                value_decimals=s[3],
            ),
            predicate=Predicate(op=_code(PREDICATE_OP_CODES, p[0], "predicate op"), threshold=p[1]),
            window=Window(
                kind=_code(WINDOW_KIND_CODES, w[0], "window kind"), t_start=w[1], t_end=w[2]
            ),
            oracle=OracleSpec(
                primary_source_id=o[0], fallback_source_id=o[1], rounding_decimals=o[2]
            ),
            cutoff_time=cutoff,
            creator=creator,
            economics=Economics(collateral_token=e[0], fee_bps=e[1], initial_liquidity=e[2]),
        )
    except ValidationError as exc:
        raise MarketAbiError(f"invalid market spec: {exc}") from exc
    except (TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, MarketAbiError):
            raise
        raise MarketAbiError(f"malformed MarketParams value: {exc}") from exc


def encode_market_params(spec: MarketSpec) -> bytes:
    """ABI-encode ``spec`` as a single ``MarketParams`` argument (the ``MarketCreated`` data)."""
    return encode([MARKET_PARAMS_TYPE], [spec_to_params(spec)])


def encode_create_market(spec: MarketSpec) -> bytes:
    """Calldata of ``MarketFactory.createMarket(spec)``."""
    return CREATE_MARKET_SELECTOR + encode_market_params(spec)


def decode_market_params(data: bytes) -> MarketSpec:
    """Decode ABI bytes holding one ``MarketParams``; raises ``MarketAbiError``.

    The encoder's own layout is read by ``read_canonical`` (a tenth of the time); anything
    else goes to ``eth_abi``, which decodes a valid other layout or says what is wrong."""
    params = read_canonical(data)
    if params is None:
        try:
            (params,) = decode([MARKET_PARAMS_TYPE], data, strict=True)
        except Exception as exc:  # eth_abi raises several unrelated types for bad input
            raise MarketAbiError(f"data is not an ABI-encoded MarketParams: {exc}") from exc
    return params_to_spec(params)


def _bytes(value: bytes | str) -> bytes:
    if isinstance(value, bytes):
        return value
    text = value[2:] if value.startswith(("0x", "0X")) else value
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise MarketAbiError(f"not hex: {value[:20]!r}") from exc


def _topic_address(topic: bytes) -> str:
    if len(topic) != 32 or any(topic[:12]):
        raise MarketAbiError(f"topic is not an address: 0x{topic.hex()}")
    return checksum_address("0x" + topic[12:].hex())


def decode_market_created(topics: Sequence[bytes | str], data: bytes | str) -> MarketCreatedLog:
    """Decode a ``MarketCreated`` log from its topics and data (bytes or 0x-hex).

    Raises ``MarketAbiError`` when the log is not a ``MarketCreated``, does not decode, or holds
    an invalid spec.
    """
    raw_topics = [_bytes(t) for t in topics]
    if len(raw_topics) != 3 or "0x" + raw_topics[0].hex() != MARKET_CREATED_TOPIC:
        raise MarketAbiError("not a MarketCreated log (topic0 or topic count differs)")
    market = _topic_address(raw_topics[1])
    creator = _topic_address(raw_topics[2])
    spec = decode_market_params(_bytes(data))
    if spec.creator != creator:
        raise MarketAbiError(
            f"indexed creator {creator} differs from params.creator {spec.creator}"
        )
    return MarketCreatedLog(market=market, creator=creator, spec=spec)
