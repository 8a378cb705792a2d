"""Load vcrpy YAML cassettes of ``POST /info`` into a ``Dataset``.

Each interaction's request body names the type; candle, funding and fill answers become rows,
everything else an exact recorded answer. Interactions that are not ``POST .../info`` are
skipped; a cassette that is not vcrpy YAML raises ``DatasetError`` naming the file::

    ds = load_cassettes(Path("../shared/fixtures/hyperliquid/cassettes"))
"""

from __future__ import annotations

import gzip
import json
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import yaml

from devnet.hl_sim.dataset import Dataset, Recorded, request_key

ROW_TYPES = frozenset({"candleSnapshot", "fundingHistory", "userFills", "userFillsByTime"})


class DatasetError(ValueError):
    """A cassette could not be read."""


def load_cassettes(directory: Path) -> Dataset:
    if not directory.is_dir():
        raise DatasetError(f"{directory}: not a directory")
    ds = Dataset()
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            interactions = doc["interactions"]
            for interaction in interactions:
                _add(ds, interaction)
        except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: not a vcrpy cassette of /info: {exc!r}") from exc
    return ds


def _add(ds: Dataset, interaction: dict[str, Any]) -> None:
    request, response = interaction["request"], interaction["response"]
    if request.get("method", "POST").upper() != "POST" or not str(request["uri"]).endswith("/info"):
        return
    body = json.loads(request["body"])
    status = int(response["status"]["code"])
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    raw = _body_bytes(response["body"]["string"], headers)
    rtype = body.get("type")
    if status != 200 or rtype not in ROW_TYPES:
        ds.exact[request_key(body)] = Recorded(status, raw)
        return
    rows = json.loads(raw)
    if rtype == "candleSnapshot":
        req = body["req"]
        as_of = _recorded_at(headers) or max((r["T"] for r in rows), default=0)
        ds.add_candles(req["coin"], req["interval"], rows, as_of)
    elif rtype == "fundingHistory":
        ds.add_funding(rows)
    else:
        ds.add_fills(body["user"], rows)


def _body_bytes(value: str | bytes, headers: dict[str, Any]) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    encoding = _first(headers.get("content-encoding"))
    if encoding == "gzip" and raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw


def _recorded_at(headers: dict[str, Any]) -> int | None:
    date = _first(headers.get("date"))
    if not date:
        return None
    try:
        return int(parsedate_to_datetime(date).timestamp()) * 1000
    except (TypeError, ValueError):
        return None


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)
