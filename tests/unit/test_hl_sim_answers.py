"""Simulator answers without HTTP: replay, time filters counted by hand, caps, unknowns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from devnet.hl_sim import Dataset
from devnet.hl_sim.cassettes import DatasetError
from devnet.hl_sim.dataset import Recorded, request_key
from devnet.hl_sim.fixtures import cassettes_dir
from devnet.hl_sim.generate import HOUR_MS
from devnet.hl_sim.handlers import DESERIALIZE_ERROR, answer
from devnet.hl_sim.minutes import MINUTE_MS
from sources.hl_models import CLEARINGHOUSE_STATE, parse_body

pytestmark = pytest.mark.timeout(60)

NOW = 1_800_000_000_000
FILLS_USER = "0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2"


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return Dataset.from_cassettes(cassettes_dir())


def ask(ds: Dataset, body: dict[str, Any], now: int = NOW, **kw: Any) -> Any:
    ans = answer(ds, json.dumps(body).encode(), now, **kw)
    assert ans.status == 200, ans
    return json.loads(ans.body)


def recorded_interactions() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(Path(cassettes_dir()).glob("*.yaml")):
        for it in yaml.safe_load(path.read_text())["interactions"]:
            out.append((path.name, it))
    return out


@pytest.mark.parametrize(("name", "interaction"), recorded_interactions())
def test_recorded_requests_replay_byte_for_byte(
    ds: Dataset, name: str, interaction: dict[str, Any]
) -> None:
    body = interaction["request"]["body"].encode()
    recorded = interaction["response"]["body"]["string"].encode()
    ans = answer(ds, body, NOW)
    assert ans.status == interaction["response"]["status"]["code"]
    if json.loads(body)["type"] == "fundingHistory":
        # recorded before the 500-row cap: the simulator returns the first 500 of those rows
        assert json.loads(ans.body) == json.loads(recorded)[:500]
    else:
        assert ans.body == recorded, name


def candle_req(start: int, end: int, coin: str = "kPEPE", interval: str = "1h") -> dict[str, Any]:
    return {
        "type": "candleSnapshot",
        "req": {"coin": coin, "interval": interval, "startTime": start, "endTime": end},
    }


@pytest.mark.parametrize(
    ("start", "end", "opens"),
    [
        # on hour boundaries: the candle ending just before start is out, t == end is in
        (1684710000000, 1684720000000, [1684710000000, 1684713600000, 1684717200000]),
        # start inside a candle: that candle is in (it overlaps the window)
        (1684711000000, 1684713600000, [1684710000000, 1684713600000]),
        (1684713600000, 1684713600000, [1684713600000]),
        (1684713599999, 1684713599999, [1684710000000]),
        (1684600000000, 1684690000000, []),
    ],
)
def test_candles_overlapping_the_window_by_hand(
    ds: Dataset, start: int, end: int, opens: list[int]
) -> None:
    assert [c["t"] for c in ask(ds, candle_req(start, end))] == opens


def test_candles_only_exist_once_opened(ds: Dataset) -> None:
    rows = ask(ds, candle_req(1684702007000, 1684784807000), now=1684713600000)
    assert [c["t"] for c in rows][-2:] == [1684710000000, 1684713600000]


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (1683878400388, 1684051200271, 7),  # both ends are row times: inclusive
        (1683878400389, 1684051200270, 5),
        (1683849600048, 1683849600048, 1),
        (0, 1683849600047, 0),
    ],
)
def test_funding_time_filter_by_hand(ds: Dataset, start: int, end: int, count: int) -> None:
    rows = ask(ds, {"type": "fundingHistory", "coin": "BTC", "startTime": start, "endTime": end})
    assert len(rows) == count
    assert all(start <= r["time"] <= end for r in rows)


def test_funding_cap_is_the_first_500_from_start(ds: Dataset) -> None:
    rows = ask(ds, {"type": "fundingHistory", "coin": "BTC", "startTime": 0})
    assert len(rows) == 500
    assert (rows[0]["time"], rows[-1]["time"]) == (1683849600048, 1687687200201)
    nxt = ask(ds, {"type": "fundingHistory", "coin": "BTC", "startTime": 1687687200201})
    assert nxt[0] == rows[-1]
    assert len(nxt) == 500  # 1038 - 499 rows are left; capped again


def test_fills_by_time_by_hand(ds: Dataset) -> None:
    body = {"type": "userFillsByTime", "user": FILLS_USER, "startTime": 1683245556598}
    rows = ask(ds, {**body, "endTime": 1683245559334})
    # two fills at 1683245556598, one each at ...7053, ...7507, ...8994, two at ...9334
    assert [r["time"] for r in rows] == [
        1683245556598,
        1683245556598,
        1683245557053,
        1683245557507,
        1683245558994,
        1683245559334,
        1683245559334,
    ]
    assert len(ask(ds, {**body, "startTime": 0})) == 500  # under the 2000 cap: all of them


def test_user_fills_newest_first_and_user_case_does_not_matter(ds: Dataset) -> None:
    rows = ask(ds, {"type": "userFills", "user": FILLS_USER.upper().replace("0X", "0x")})
    times = [r["time"] for r in rows]
    assert len(rows) == 500 and times == sorted(times, reverse=True)


def test_unknowns_answer_like_the_api(ds: Dataset) -> None:
    assert ask(ds, candle_req(0, NOW, coin="NOPE")) == []
    assert ask(ds, {"type": "fundingHistory", "coin": "NOPE", "startTime": 0}) == []
    assert ask(ds, {"type": "userFills", "user": "0x" + "00" * 20}) == []
    assert ask(ds, {"type": "l2Book", "coin": "NOPE"}) is None
    state = answer(ds, b'{"type":"clearinghouseState","user":"0x' + b"11" * 20 + b'"}', NOW)
    parsed = parse_body("clearinghouseState", state.body, CLEARINGHOUSE_STATE)
    assert parsed.asset_positions == [] and parsed.withdrawable == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"type": 5}',
        b'{"type": "noSuchType"}',
        b'{"type": "fundingHistory", "coin": "BTC"}',
        b'{"type": "fundingHistory", "coin": "BTC", "startTime": "0"}',
        b'{"type": "fundingHistory", "coin": "BTC", "startTime": true}',
        b'{"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "7m", "startTime": 0}}',
        b'{"type": "userFills", "user": "bob"}',
    ],
)
def test_bad_requests_are_422_with_the_api_text(ds: Dataset, raw: bytes) -> None:
    ans = answer(ds, raw, NOW)
    assert (ans.status, ans.body) == (422, DESERIALIZE_ERROR)


def test_candle_retention_keeps_the_5000_most_recent() -> None:
    start = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
    gen = Dataset.generate(["BTC"], start, start + 6000 * MINUTE_MS, seed=1)
    body = candle_req(0, 2**50, coin="BTC", interval="1m")
    kept = ask(gen, body)
    assert len(kept) == 5000
    assert kept[0]["t"] == start + 1000 * MINUTE_MS
    unlimited = ask(gen, body, candle_retention=None)
    assert len(unlimited) == 5000 and unlimited[0]["t"] == start  # first 5000 from startTime
    assert len(ask(gen, candle_req(start, 2**50, "BTC", "1h"))) == 100


def test_a_broken_cassette_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("interactions: []\n")
    (tmp_path / "broken.yaml").write_text("interactions:\n- request: {uri: x}\n")
    with pytest.raises(DatasetError, match=r"broken\.yaml"):
        Dataset.from_cassettes(tmp_path)
    with pytest.raises(DatasetError, match="not a directory"):
        Dataset.from_cassettes(tmp_path / "missing")


def test_merge_prefers_the_right_hand_side(ds: Dataset) -> None:
    other = Dataset()
    other.exact[request_key({"type": "allMids"})] = Recorded(200, b'{"BTC":"1.0"}')
    row = {"coin": "BTC", "fundingRate": "0.5", "premium": "0", "time": 1683849600048}
    other.add_funding([row])
    merged = ds.merged(other)
    assert ask(merged, {"type": "allMids"}) == {"BTC": "1.0"}
    rows = ask(merged, {"type": "fundingHistory", "coin": "BTC", "startTime": 0})
    assert rows[0]["fundingRate"] == "0.5" and len(rows) == 500
    assert ask(ds, {"type": "allMids"})["BTC"] == "30135.0", "merging does not change the inputs"


def test_generated_data_extends_meta_and_mids(ds: Dataset) -> None:
    start = 1_700_000_000_000
    merged = ds.merged(Dataset.generate(["BTC", "NEWCOIN"], start, start + 3_600_000, seed=1))
    names = [a["name"] for a in ask(merged, {"type": "meta"})["universe"]]
    assert names[0] == "BTC" and names[-1] == "NEWCOIN" and names.count("BTC") == 1
    mids = ask(merged, {"type": "allMids"})
    assert mids["NEWCOIN"] and mids["APE"] == "1.96595"
    assert mids["BTC"] != "30135.0"  # generated close replaces the recorded mid
    meta, ctxs = ask(merged, {"type": "metaAndAssetCtxs"})
    assert len(meta["universe"]) == len(ctxs)
    book = ask(merged, {"type": "l2Book", "coin": "NEWCOIN"})
    assert len(book["levels"][0]) == len(book["levels"][1]) == 10
