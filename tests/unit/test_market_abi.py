"""protocol.market_abi against the compiled ABI: same types, same topic, exact round trips."""

from __future__ import annotations

import pytest
from eth_abi.abi import decode, encode
from eth_utils.abi import collapse_if_tuple
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.market_abi import (
    CREATE_MARKET_SELECTOR,
    MARKET_CREATED_TOPIC,
    MARKET_PARAMS_TYPE,
    MarketAbiError,
    decode_market_created,
    decode_market_params,
    encode_market_params,
    spec_to_params,
)
from protocol.market_abi_reader import read_canonical
from protocol.spec import (
    Economics,
    MarketSpec,
    OracleSpec,
    Predicate,
    PredicateOp,
    Subject,
    SubjectKind,
    Window,
    WindowKind,
)
from sources.artifacts import load_artifact
from tests.unit.strategies import market_specs

pytestmark = pytest.mark.timeout(10)

CREATOR = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def spec(**over: object) -> MarketSpec:
    fields: dict[str, object] = {
        "title": "Volume of ETH in week 47 ≥ 1.5M — ünïcode",
        "description": "sum of 1h candle volume",
        "subject": Subject(
            kind=SubjectKind.HL_METRIC, metric_id="volume", token_identifier="ETH", value_decimals=6
        ),
        "predicate": Predicate(op=PredicateOp.LTE, threshold=-(2**255)),
        "window": Window(kind=WindowKind.WINDOW_SUM, t_start=1_700_000_000, t_end=2**64 - 1),
        "oracle": OracleSpec(
            primary_source_id="hyperliquid", fallback_source_id="binance", rounding_decimals=4
        ),
        "cutoff_time": 1_699_000_000,
        "creator": CREATOR,
        "economics": Economics(
            collateral_token="0x00000000000000000000000000000000000000aa",
            fee_bps=10_000,
            initial_liquidity=2**256 - 1,
        ),
    }
    fields.update(over)
    return MarketSpec(**fields)


def topics(market: str = MARKET, creator: str = CREATOR) -> list[str]:
    pad = "0x" + "00" * 12
    return [MARKET_CREATED_TOPIC, pad + market[2:].lower(), pad + creator[2:].lower()]


def test_types_match_the_compiled_abi() -> None:
    abi = load_artifact("MarketFactory").abi
    event = next(e for e in abi if e.get("name") == "MarketCreated")
    sig = f"MarketCreated({','.join(collapse_if_tuple(i) for i in event['inputs'])})"
    assert "0x" + keccak(text=sig).hex() == MARKET_CREATED_TOPIC
    assert collapse_if_tuple(event["inputs"][2]) == MARKET_PARAMS_TYPE
    fn = next(e for e in abi if e.get("name") == "createMarket")
    assert keccak(text=f"createMarket({collapse_if_tuple(fn['inputs'][0])})")[:4] == (
        CREATE_MARKET_SELECTOR
    )
    names = [c["name"] for c in event["inputs"][2]["components"]]
    assert names == [
        "title",
        "description",
        "subject",
        "predicate",
        "window",
        "oracle",
        "cutoffTime",
        "creator",
        "economics",
    ]


@pytest.mark.parametrize(
    "s",
    [
        spec(),
        spec(
            subject=Subject(kind=SubjectKind.TOKEN_PRICE, token_identifier="BTC", value_decimals=0),
            predicate=Predicate(op=PredicateOp.GT, threshold=2**255 - 1),
            window=Window(kind=WindowKind.SNAPSHOT_AT, t_start=5, t_end=5),
            cutoff_time=0,
            oracle=OracleSpec(),
            economics=Economics(),
            description="",
        ),
        spec(window=Window(kind=WindowKind.WINDOW_COUNT, t_start=0, t_end=1), cutoff_time=1),
        spec(predicate=Predicate(op=PredicateOp.GTE, threshold=0)),
        spec(predicate=Predicate(op=PredicateOp.LT, threshold=1)),
    ],
)
def test_round_trip_is_exact(s: MarketSpec) -> None:
    assert decode_market_params(encode_market_params(s)) == s
    log = decode_market_created(topics(), "0x" + encode_market_params(s).hex())
    assert (log.market, log.creator, log.spec) == (MARKET, CREATOR, s)


def _with(index: int, value: object, inner: int | None = None) -> bytes:
    params = list(spec_to_params(spec()))
    if inner is None:
        params[index] = value
    else:
        part = list(params[index])
        part[inner] = value
        params[index] = tuple(part)
    return encode([MARKET_PARAMS_TYPE], [tuple(params)])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_with(2, 2, inner=0), "unknown subject kind code 2"),
        (_with(3, 4, inner=0), "unknown predicate op code 4"),
        (_with(4, 3, inner=0), "unknown window kind code 3"),
        (_with(2, "", inner=2), "token_identifier"),
        (_with(2, 37, inner=3), "value_decimals"),
        (_with(4, 1_600_000_000, inner=2), "before t_start"),
        (b"\x00" * 31, "not an ABI-encoded MarketParams"),
        (b"", "not an ABI-encoded MarketParams"),
    ],
)
def test_invalid_params_raise_market_abi_error(data: bytes, reason: str) -> None:
    with pytest.raises(MarketAbiError, match=reason):
        decode_market_params(data)


def test_invalid_utf8_string_is_a_market_abi_error() -> None:
    good = encode_market_params(spec(title="AAAA"))
    bad = good.replace(b"AAAA", b"\xff\xfe\xfd\xfc")
    with pytest.raises(MarketAbiError):
        decode_market_params(bad)


def test_log_checks() -> None:
    data = encode_market_params(spec())
    with pytest.raises(MarketAbiError, match="not a MarketCreated"):
        decode_market_created(["0x" + "11" * 32, *topics()[1:]], data)
    with pytest.raises(MarketAbiError, match="not a MarketCreated"):
        decode_market_created(topics()[:2], data)
    with pytest.raises(MarketAbiError, match="differs"):
        decode_market_created(topics(creator=MARKET), data)
    with pytest.raises(MarketAbiError, match="not an address"):
        decode_market_created([topics()[0], "0x" + "ff" * 32, topics()[2]], data)
    with pytest.raises(MarketAbiError, match="not hex"):
        decode_market_created(topics(), "0xzz")


# --- the fast reader against eth_abi (ADR 0016) ------------------------------------------------


def eth_abi_params(data: bytes) -> object:
    (params,) = decode([MARKET_PARAMS_TYPE], data, strict=True)
    return params


@pytest.mark.timeout(60)
@settings(max_examples=200, deadline=None)
@given(s=market_specs())
def test_the_reader_gives_what_eth_abi_gives_for_every_encoded_spec(s: MarketSpec) -> None:
    data = encode_market_params(s)
    assert read_canonical(data) == eth_abi_params(data)


@pytest.mark.timeout(60)
@settings(max_examples=500, deadline=None)
@given(s=market_specs(), edit=st.data())
def test_bytes_the_reader_accepts_are_decoded_alike_by_eth_abi(
    s: MarketSpec, edit: st.DataObject
) -> None:
    """Flipped bytes, cut or added tails: whatever the reader still accepts, eth_abi decodes
    to the same value; everything else the reader leaves to eth_abi."""
    data = bytearray(encode_market_params(s))
    for _ in range(edit.draw(st.integers(1, 3))):
        at = edit.draw(st.integers(0, len(data) - 1))
        data[at] = edit.draw(st.integers(0, 255))
    tail = edit.draw(st.sampled_from(["keep", "cut", "add"]))
    if tail == "cut":
        del data[edit.draw(st.integers(0, len(data) - 1)) :]
    elif tail == "add":
        data += edit.draw(st.binary(min_size=1, max_size=64))
    read = read_canonical(bytes(data))
    if read is not None:
        assert read == eth_abi_params(bytes(data))


def test_a_valid_layout_the_reader_declines_is_decoded_by_eth_abi() -> None:
    """Trailing bytes are not the encoder's layout but are valid ABI: the slow path reads it."""
    data = encode_market_params(spec()) + b"\x00" * 32
    assert read_canonical(data) is None
    assert decode_market_params(data) == spec()
