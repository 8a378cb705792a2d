"""The Hyperliquid client against the real simulator over HTTP (no mocks of httpx)."""

from __future__ import annotations

import json
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devnet.hl_sim import DEMO_USER, Dataset, HlSimulator, ManualClock
from devnet.hl_sim.cli import main as sim_main
from devnet.hl_sim.fixtures import REPO_ROOT, cassettes_dir
from devnet.hl_sim.generate import HOUR_MS
from devnet.hl_sim.minutes import MINUTE_MS
from protocol.hyperliquid import InfoRequest
from sources.hl_retry import RetryPolicy
from sources.http_errors import (
    MalformedResponse,
    PagingError,
    PermanentSourceError,
    TransientSourceError,
)
from sources.hyperliquid import HyperliquidClient, Timeouts

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DAY_MS = 24 * HOUR_MS
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
FILLS_USER = "0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2"
STATE_USER = "0x5e9ee1089755c3435139848e47e6635505d5a13a"


class FakeTime:
    """The client's sleep and monotonic clock: sleeping only moves the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def make_client(
    url: str,
    *,
    attempts: int = 5,
    total_s: float = 30.0,
    fake: FakeTime | None = None,
    **kw: Any,
) -> HyperliquidClient:
    fake = fake or FakeTime()
    policy = RetryPolicy(
        max_attempts=attempts, max_total_s=total_s, base_s=0.01, retry_after_cap_s=2.0
    )
    return HyperliquidClient(
        url, retry=policy, sleep=fake.sleep, monotonic=fake.monotonic, rng=random.Random(0), **kw
    )


@pytest.fixture(scope="module")
def generated() -> Dataset:
    return Dataset.generate(["BTC", "ETH"], T0, T0 + 30 * DAY_MS, seed=11)


@pytest.fixture
def gen_sim(generated: Dataset) -> Iterator[HlSimulator]:
    """Generated data, seen after it ends, with unlimited candle history (5000 per page)."""
    sim = HlSimulator(generated, clock=ManualClock(T0 + 31 * DAY_MS), candle_retention=None)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def clocked_sim(hl_cassettes: Dataset) -> Iterator[tuple[HlSimulator, ManualClock]]:
    clock = ManualClock(1_800_000_000_000)
    sim = HlSimulator(hl_cassettes, clock=clock)
    sim.start()
    try:
        yield sim, clock
    finally:
        sim.stop()


def recorded_body(cassette: str, index: int = 0) -> bytes:
    doc = yaml.safe_load((cassettes_dir() / cassette).read_text())
    return str(doc["interactions"][index]["response"]["body"]["string"]).encode()


# -- recorded data ---------------------------------------------------------------------------


def test_every_typed_method_parses_the_recorded_data(hl_sim: HlSimulator) -> None:
    with make_client(hl_sim.url) as hl:
        assert [a.name for a in hl.meta().universe][:3] == ["BTC", "ETH", "ATOM"]
        assert hl.all_mids()["BTC"] == Decimal("30135.0")
        book = hl.l2_book("DYDX")
        assert book is not None and book.time == 1689630203930
        assert book.levels[0][0].px == Decimal("2.111") and len(book.levels[1]) == 20
        assert hl.l2_book("NOPE") is None
        state = hl.clearinghouse_state(STATE_USER)
        assert state.withdrawable == Decimal("1010.57173") and len(state.asset_positions) == 12
        fills = hl.user_fills(FILLS_USER)
        assert len(fills) == 500 and fills[0].time >= fills[-1].time
        candles = hl.candle_snapshot("kPEPE", "1h", 1684702007000, 1684784807000)
        assert len(candles) == 24 and candles[0].close == Decimal("0.001604")
        funding = hl.funding_history("BTC", 1683878400388, 1684051200271)
        assert len(funding) == 7  # counted by hand in the cassette
        assert funding[0].funding_rate == Decimal("-0.00074503")
        by_time = hl.user_fills_by_time(FILLS_USER, 1683245556598, 1683245559334)
        assert len(by_time) == 7
        ctxs = hl.meta_and_asset_ctxs()
        ctx = ctxs.ctx("APE")
        assert ctx is not None and ctx.mark_px == Decimal("1.96595")
        assert len(ctxs.ctxs) == len(ctxs.meta.universe)


def test_fetch_keeps_exact_bytes_url_time_and_status(hl_sim: HlSimulator) -> None:
    with make_client(hl_sim.url, clock_ms=lambda: 1234) as hl:
        raw = hl.fetch(InfoRequest(body={"type": "allMids"}))
    assert raw.body == recorded_body("test_get_all_mids.yaml")
    assert (raw.url, raw.status, raw.fetched_at_ms) == (f"{hl_sim.url}/info", 200, 1234)
    assert raw.request.body == {"type": "allMids"}


def test_fetch_pages_follows_next_page_and_refuses_loops(hl_sim: HlSimulator) -> None:
    def next_funding(req: InfoRequest, body: bytes) -> InfoRequest | None:
        rows = json.loads(body)
        if len(rows) < 500:
            return None
        return InfoRequest(body={**req.body, "startTime": rows[-1]["time"] + 1})

    first = InfoRequest(body={"type": "fundingHistory", "coin": "BTC", "startTime": 0})
    with make_client(hl_sim.url, max_pages=5) as hl:
        pages = hl.fetch_pages(first, next_funding)
        assert [len(json.loads(p.body)) for p in pages] == [500, 500, 38]
        with pytest.raises(PagingError, match="asked twice"):
            hl.fetch_pages(first, lambda req, body: req)
        with pytest.raises(PagingError, match="5 pages"):
            hl.fetch_pages(
                first,
                lambda req, body: InfoRequest(
                    body={**req.body, "startTime": req.body["startTime"] + 1}
                ),
            )


# -- paging over generated data ---------------------------------------------------------------


def test_paging_returns_every_generated_row_exactly_once(
    gen_sim: HlSimulator, generated: Dataset
) -> None:
    end = T0 + 30 * DAY_MS
    with make_client(gen_sim.url) as hl:
        funding = hl.funding_history("BTC", T0, end)
        expected = sorted(generated.funding["BTC"])
        assert [r.time for r in funding] == expected and len(expected) == 720

        fills = hl.user_fills_by_time(DEMO_USER, T0, end)
        held = generated.fills[DEMO_USER]
        assert len(held) > 2000
        assert Counter((f.time, f.tid) for f in fills) == Counter(
            (r["time"], r["tid"]) for r in held
        )

        candles = hl.candle_snapshot("BTC", "1m", T0, T0 + 6000 * MINUTE_MS)
        assert [c.open_time for c in candles] == list(range(T0, T0 + 6001 * MINUTE_MS, MINUTE_MS))
        series = generated.minutes["BTC"]
        assert [c.close for c in candles] == [Decimal(series.c[i]).scaleb(-1) for i in range(6001)]
        requests = hl.stats.snapshot().requests
    assert requests[("fundingHistory", "200")] == 2
    assert requests[("userFillsByTime", "200")] == 2
    assert requests[("candleSnapshot", "200")] == 2


# -- retries, budgets, errors -------------------------------------------------------------------


def test_injected_5xx_and_429_are_retried_within_budget(hl_sim: HlSimulator) -> None:
    hl_sim.set_faults(script=["5xx", "429", "5xx"])
    fake = FakeTime()
    with make_client(hl_sim.url, fake=fake) as hl:
        assert hl.all_mids()["BTC"] == Decimal("30135.0")
        snap = hl.stats.snapshot()
    assert snap.requests == {("allMids", "503"): 2, ("allMids", "429"): 1, ("allMids", "200"): 1}
    assert snap.retries == 3
    assert len(fake.sleeps) == 3
    assert all(0 <= s <= 0.01 * 2**i for i, s in enumerate(fake.sleeps))

    # seed 1 at these odds: at most 3 faults in a row over the first 100 requests
    hl_sim.set_faults(p_5xx=0.2, p_429=0.1, seed=1)
    with make_client(hl_sim.url, attempts=5) as hl:
        for _ in range(20):
            hl.l2_book("DYDX")
        snap = hl.stats.snapshot()
    assert snap.retries > 0
    assert snap.requests[("l2Book", "200")] == 20
    assert snap.requests[("l2Book", "429")] > 0 and snap.requests[("l2Book", "503")] > 0


def test_budget_exhaustion_raises_the_transient_error(hl_sim: HlSimulator) -> None:
    hl_sim.set_faults(p_5xx=1.0)
    with make_client(hl_sim.url, attempts=4) as hl, pytest.raises(TransientSourceError) as info:
        hl.meta()
    assert info.value.attempts == 4 and "HTTP 503" in str(info.value)
    assert str(info.value).startswith("meta: gave up after 4 attempts")
    assert hl_sim.stats()["requests"]["meta"] == {"503": 4}

    fake = FakeTime()
    client = make_client(hl_sim.url, attempts=100, total_s=0.05, fake=fake)
    with client as hl, pytest.raises(TransientSourceError) as info:
        hl.meta()
    assert info.value.attempts < 100
    assert fake.now <= 0.05


def test_retry_after_is_honoured_but_capped(
    clocked_sim: tuple[HlSimulator, ManualClock], hl_cassettes: Dataset
) -> None:
    sim, clock = clocked_sim
    sim.limiter.limit = 4  # two allMids per minute
    fake = FakeTime()
    with make_client(sim.url, attempts=3, fake=fake) as hl:
        hl.all_mids()
        hl.all_mids()
        with pytest.raises(TransientSourceError, match="HTTP 429"):
            hl.all_mids()
        assert fake.sleeps == [2.0, 2.0]  # Retry-After: 60, capped at 2 s
        clock.advance(60_000)
        assert hl.all_mids()


@pytest.mark.parametrize("fault", ["malformed", "truncated"])
def test_bad_bodies_raise_one_clear_error_naming_the_request(
    hl_sim: HlSimulator, fault: str
) -> None:
    with make_client(hl_sim.url) as hl:
        hl_sim.set_faults(script=[fault])
        with pytest.raises(MalformedResponse) as info:
            hl.candle_snapshot("kPEPE", "1h", 1684702007000, 1684784807000)
        assert str(info.value).startswith("candleSnapshot: malformed response: body is not JSON")
        hl_sim.set_faults(script=[fault])
        with pytest.raises(MalformedResponse, match=r"^l2Book: malformed response"):
            hl.fetch(InfoRequest(body={"type": "l2Book", "coin": "DYDX"}))
        assert hl.stats.snapshot().retries == 0, "a malformed body is permanent: no retry"


def test_a_4xx_is_permanent_with_its_status(hl_sim: HlSimulator) -> None:
    with make_client(hl_sim.url) as hl, pytest.raises(PermanentSourceError) as info:
        hl.fetch(InfoRequest(body={"type": "noSuchType"}))
    assert info.value.status == 422 and not isinstance(info.value, MalformedResponse)
    assert "Failed to deserialize" in str(info.value)


def test_timeouts_and_refused_connections_are_transient(hl_sim: HlSimulator) -> None:
    hl_sim.set_faults(latency_ms=2000)
    timeouts = Timeouts(connect_s=1.0, read_s=0.05, write_s=1.0, pool_s=1.0)
    with make_client(hl_sim.url, attempts=2, timeouts=timeouts) as hl:
        with pytest.raises(TransientSourceError, match="ReadTimeout"):
            hl.all_mids()
        assert hl.stats.snapshot().requests == {("allMids", "error"): 2}
    gone = HlSimulator(Dataset())
    url = gone.start()
    gone.stop()
    with make_client(url, attempts=2) as hl, pytest.raises(TransientSourceError, match="Connect"):
        hl.all_mids()


# -- weight and rate limit ----------------------------------------------------------------------


def test_client_and_simulator_count_the_same_weight(hl_sim: HlSimulator) -> None:
    hl_sim.set_faults(script=["ok", "5xx", "ok", "429", "ok", "malformed"])
    with make_client(hl_sim.url, headers={"X-Sim-Client": "agree"}) as hl:
        hl.meta()
        hl.all_mids()  # one 503 then a 200
        hl.l2_book("DYDX")  # one 429 then a 200
        with pytest.raises(MalformedResponse):
            hl.user_fills(FILLS_USER)
        hl.user_fills(FILLS_USER)  # 500 items: 20 + 25
        hl.funding_history("BTC", 0, 2_000_000_000_000)  # 3 pages
        hl.candle_snapshot("kPEPE", "1h", 1684702007000, 1684784807000)
        with pytest.raises(PermanentSourceError):
            hl.fetch(InfoRequest(body={"type": "noSuchType"}))
        spent = hl.stats.snapshot().weight_spent
    assert spent == hl_sim.stats()["weight_by_client"]["agree"]
    # meta 20; allMids 503 + 200 = 2 + 2; l2Book 429 + 200 = 0 + 2; malformed userFills 20 (no
    # items seen); userFills 500 items 45; funding pages of 500, 500 and 40 + 1 overlap rows
    # 45 + 45 + 22; 24 candles 20; the 422 20
    assert spent == 20 + 4 + 2 + 20 + 45 + 112 + 20 + 20


def test_429_past_1200_weight_per_minute_and_not_before(
    clocked_sim: tuple[HlSimulator, ManualClock],
) -> None:
    sim, clock = clocked_sim
    with make_client(sim.url, attempts=1, headers={"X-Sim-Client": "mids"}) as hl:
        for _ in range(600):  # 600 x 2 = 1200: all allowed
            hl.all_mids()
        with pytest.raises(TransientSourceError, match="HTTP 429"):
            hl.all_mids()
        clock.advance(59_999)
        with pytest.raises(TransientSourceError, match="HTTP 429"):
            hl.all_mids()
        clock.advance(1)  # the first minute's weight rolls out
        hl.all_mids()
    with make_client(sim.url, attempts=1, headers={"X-Sim-Client": "funding"}) as hl:
        body = InfoRequest(body={"type": "fundingHistory", "coin": "BTC", "startTime": 0})
        for _ in range(27):  # 26 x 45 = 1170; the 27th is admitted at 1190 and ends at 1215
            hl.fetch(body)
        with pytest.raises(TransientSourceError, match="HTTP 429"):
            hl.fetch(body)
    weights = sim.stats()["weight_by_client"]
    assert weights["funding"] == 27 * 45
    assert sim.stats()["requests"]["allMids"] == {"200": 601, "429": 2}


def test_fault_knobs_over_http_are_seeded(hl_sim: HlSimulator) -> None:
    def outcomes() -> list[str]:
        out = []
        with make_client(hl_sim.url, attempts=1) as hl:
            for _ in range(40):
                try:
                    hl.all_mids()
                    out.append("ok")
                except (TransientSourceError, MalformedResponse) as exc:
                    out.append(type(exc).__name__)
        return out

    knobs = {"p_5xx": 0.2, "p_429": 0.1, "p_malformed": 0.1, "p_truncated": 0.1, "seed": 9}
    assert httpx.post(f"{hl_sim.url}/_sim/faults", json=knobs).json()["seed"] == 9
    first = outcomes()
    httpx.post(f"{hl_sim.url}/_sim/faults", json={"seed": 9})
    assert outcomes() == first
    assert {"ok", "TransientSourceError", "MalformedResponse"} <= set(first)
    assert httpx.post(f"{hl_sim.url}/_sim/faults", json={"p_bogus": 1}).status_code == 400
    stats = httpx.get(f"{hl_sim.url}/_sim/stats").json()
    assert sum(stats["requests"]["allMids"].values()) == 80
    assert set(stats["faults_injected"]) == {"5xx", "429", "malformed", "truncated"}


# -- life cycle ------------------------------------------------------------------------------------


def test_stop_returns_with_a_client_still_connected(hl_cassettes: Dataset) -> None:
    sim = HlSimulator(hl_cassettes)
    url = sim.start()
    hl = make_client(url)
    try:
        hl.all_mids()  # leaves a keep-alive connection open
        sim.stop()
        assert not [t for t in threading.enumerate() if t.name == f"hl-sim {url}"]
    finally:
        hl.close()
        sim.stop()


def test_a_request_cut_short_by_its_client_is_neither_answered_nor_counted(
    hl_sim: HlSimulator,
) -> None:
    """A client killed while sending its body (the chaos test's SIGKILL) sent no request."""
    host, port = hl_sim.url.removeprefix("http://").split(":")
    body = json.dumps({"type": "allMids"}).encode()
    before = hl_sim.stats()
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        head = f"POST /info HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body) + 40}\r\n\r\n"
        conn.sendall(head.encode() + body)
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1024) == b""  # closed without an answer
    after = hl_sim.stats()
    assert after["bodies_cut_short"] == before["bodies_cut_short"] + 1
    assert after["requests"] == before["requests"]
    hl = make_client(hl_sim.url)
    try:
        assert hl.all_mids()  # and the server still answers the next one
    finally:
        hl.close()


def test_refuses_to_listen_on_every_interface() -> None:
    with pytest.raises(ValueError, match="loopback"):
        HlSimulator(Dataset(), host="0.0.0.0")
    assert sim_main(["--host", "0.0.0.0"]) == 2


def test_runs_as_a_subprocess_until_sigterm(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "devnet.hl_sim", "--data", str(cassettes_dir()), "--port", "0"]
    cmd += ["--generate", "BTC", "--seed", "3", "--fault-seed", "1"]
    stderr = (tmp_path / "stderr").open("w")  # a file: a full pipe would block the simulator
    proc = subprocess.Popen(
        cmd, cwd=Path(REPO_ROOT), stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    try:
        out = proc.stdout
        assert out is not None
        reader = threading.Thread(target=lambda: lines.put(out.readline()), daemon=True)
        reader.start()
        url = lines.get(timeout=30).strip()  # its first line says where it listens
        assert url.startswith("http://127.0.0.1:")
        with make_client(url) as hl:
            mids = hl.all_mids()
            assert "BTC" in mids and mids["APE"] == Decimal("1.96595")
            assert httpx.post(f"{url}/_sim/faults", json={"p_5xx": 1.0}).status_code == 200
            with pytest.raises(TransientSourceError):
                hl.meta()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        stderr.close()
