"""Hypothesis strategies for protocol models, shared by the property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from protocol.spec import (
    INT256_MAX,
    INT256_MIN,
    MAX_DECIMALS,
    Economics,
    MarketKey,
    MarketSpec,
    OracleSpec,
    Predicate,
    PredicateOp,
    Subject,
    SubjectKind,
    Window,
    WindowKind,
)

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
hashes = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
decimals = st.integers(min_value=0, max_value=MAX_DECIMALS)
times = st.integers(min_value=0, max_value=2**40)
text = st.text(max_size=40)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=20)


@st.composite
def subjects(draw: st.DrawFn) -> Subject:
    kind = draw(st.sampled_from(SubjectKind))
    metric = draw(names) if kind is SubjectKind.HL_METRIC else ""
    return Subject(
        kind=kind,
        metric_id=metric,
        token_identifier=draw(st.text(min_size=1, max_size=20)),
        value_decimals=draw(decimals),
    )


@st.composite
def windows(draw: st.DrawFn) -> Window:
    kind = draw(st.sampled_from(WindowKind))
    start = draw(times)
    length = draw(
        st.integers(min_value=0 if kind is WindowKind.SNAPSHOT_AT else 1, max_value=10**7)
    )
    return Window(kind=kind, t_start=start, t_end=start + length)


@st.composite
def market_specs(draw: st.DrawFn) -> MarketSpec:
    window = draw(windows())
    return MarketSpec(
        title=draw(st.text(min_size=1, max_size=40)),
        description=draw(text),
        subject=draw(subjects()),
        predicate=Predicate(
            op=draw(st.sampled_from(PredicateOp)),
            threshold=draw(st.integers(min_value=INT256_MIN, max_value=INT256_MAX)),
        ),
        window=window,
        oracle=OracleSpec(
            primary_source_id=draw(names),
            fallback_source_id=draw(st.one_of(st.just(""), names)),
            rounding_decimals=draw(decimals),
        ),
        cutoff_time=draw(st.integers(min_value=0, max_value=window.t_end)),
        creator=draw(addresses),
        economics=Economics(
            collateral_token=draw(addresses),
            fee_bps=draw(st.integers(min_value=0, max_value=10_000)),
            initial_liquidity=draw(st.integers(min_value=0, max_value=2**256 - 1)),
        ),
    )


market_keys = st.builds(MarketKey, chain=names, address=addresses)
