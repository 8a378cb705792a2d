"""A running API over a real runtime, for the API tests.

    with api_daemon(tmp_path) as d:          # scheduler + resolvers + stub listener, real LMDB
        d.client.get("/markets")             # httpx against HttpServer on 127.0.0.1:<free>
        d.seed(3)                            # three markets, via the scheduler
        d.rt.wait_for(...)

The runtime runs on a ``ManualClock`` so no market falls due unless a test says so. Every answer
of ``d.client`` is checked for the API token and the fake private key (neither may appear).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from actors.scheduler import Scheduler
from ops.api import create_app
from ops.auth import sign_webhook
from ops.http_server import HttpServer
from protocol.market_abi import MARKET_CREATED_TOPIC, encode_market_params
from protocol.messages import (
    Ack,
    FailureClass,
    MarketDiscovered,
    Message,
    ResolutionFailed,
)
from protocol.spec import MarketKey, MarketSpec
from protocol.supervision import Backoff, ChildSpec, Intensity, SupervisorSpec
from storage import Store
from supervision import ManualClock, Runtime, SupervisedActor

TOKEN = "api-token-7f3a9c2e51d8b406"
WEBHOOK_SECRET = "hook-secret-0c1d2e3f"
FAKE_PRIVATE_KEY = "0x" + hashlib.sha256(b"oracle-runner test key").hexdigest()
CHAIN = "dev"
T_END = 1_700_000_000
NOW = float(T_END - 100)
H = "0x" + "ab" * 32
CREATOR = "0x" + "11" * 20
FACTORY = "0x" + "fa" * 20


class Boom(Message):
    kind: Literal["api_test_boom"] = "api_test_boom"


class Probe(SupervisedActor):
    """An actor to kill: crashes on ``Boom``."""

    def handle(self, message: Any) -> Any:
        if isinstance(message, Boom):
            raise RuntimeError("probe killed by the test")
        return self.unhandled(message)


class StubListener(SupervisedActor):
    """Reports a healthy chain: head 120, cursor 118 (``args`` may say otherwise)."""

    def snapshot(self) -> Any:
        args = self.ctx.args
        return {
            "chain": CHAIN,
            "head": args.get("head", 120),
            "cursor": args.get("cursor", 118),
            "halted": args.get("halted", ""),
        }


class FailingResolver(SupervisedActor):
    """Reports a permanent failure at once: its market goes to the dead-letter queue."""

    def init(self) -> None:
        key = MarketKey.parse(self.ctx.args["key"])
        reason = "no data for the window"
        failed = ResolutionFailed(key=key, failure=FailureClass.PERMANENT, reason=reason)
        self.registry.tell(self.ctx.args["scheduler"], failed)
        self.finish()


def market_key(n: int) -> MarketKey:
    return MarketKey(chain=CHAIN, address=f"0x{n:040x}")


def spec(t_end: int = T_END + 10_000, title: str = "BTC above 300") -> MarketSpec:
    return MarketSpec.model_validate(
        {
            "title": title,
            "subject": {"kind": "TOKEN_PRICE", "token_identifier": "BTC", "value_decimals": 2},
            "predicate": {"op": "GT", "threshold": 30_000},
            "window": {"kind": "SNAPSHOT_AT", "t_start": t_end, "t_end": t_end},
            "cutoff_time": t_end,
            "creator": CREATOR,
        }
    )


def discovered(key: MarketKey, t_end: int = T_END + 10_000) -> MarketDiscovered:
    return MarketDiscovered(
        key=key, spec=spec(t_end), block_number=1, block_hash=H, tx_hash=H, log_index=0
    )


def market_log(market: str, chain: str = CHAIN, **overrides: Any) -> dict[str, Any]:
    """A ``MarketCreated`` log as a webhook sends it."""
    topics = [
        MARKET_CREATED_TOPIC,
        "0x" + "00" * 12 + market.removeprefix("0x").lower(),
        "0x" + "00" * 12 + CREATOR.removeprefix("0x"),
    ]
    log = {
        "chain": chain,
        "address": FACTORY,
        "topics": topics,
        "data": "0x" + encode_market_params(spec()).hex(),
        "block_number": 42,
        "block_hash": H,
        "transaction_hash": "0x" + "cd" * 32,
        "log_index": 3,
    }
    log.update(overrides)
    return log


def tree() -> SupervisorSpec:
    return SupervisorSpec(
        intensity=Intensity(max_restarts=10, period_s=60),
        children=(
            ChildSpec(id="scheduler", actor="scheduler", args={"tick_s": 1, "seed": 7}),
            ChildSpec(
                id="resolvers", actor="supervisor", supervisor=SupervisorSpec(max_children=10)
            ),
            ChildSpec(id=f"listener:{CHAIN}", actor="listener", args={"chain": CHAIN}),
            ChildSpec(
                id="extras",
                actor="supervisor",
                # a crashed child waits an hour of the manual clock: it stays down
                supervisor=SupervisorSpec(
                    backoff=Backoff(initial_s=3600, max_s=3600),
                    children=(ChildSpec(id="probe", actor="probe"),),
                ),
            ),
        ),
    )


def _no_secrets(response: httpx.Response) -> None:
    response.read()
    text = response.content.decode("latin-1") + json.dumps(dict(response.headers))
    assert TOKEN not in text, f"the API token leaked in {response.request.url}"
    assert FAKE_PRIVATE_KEY not in text, f"the private key leaked in {response.request.url}"
    assert FAKE_PRIVATE_KEY.removeprefix("0x") not in text


@dataclass
class Daemon:
    rt: Runtime
    store: Store
    url: str
    client: httpx.Client
    now: list[float] = field(default_factory=lambda: [NOW])
    """The API's clock (webhook timestamps, rate limit); set ``now[0]`` to move it."""

    def seed(self, n: int, start: int = 1) -> list[MarketKey]:
        keys = [market_key(i) for i in range(start, start + n)]
        for key in keys:
            assert self.rt.ask("scheduler", discovered(key)).detail == "new"
        return keys

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def post_webhook(
        self, payload: Any, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        ts = int(self.now[0]) if timestamp is None else timestamp
        headers = {"Content-Type": "application/json", **sign_webhook(secret, body, ts)}
        return self.client.post("/webhooks/markets", content=body, headers=headers)

    def dead_market(self, key: MarketKey) -> None:
        """Discover ``key`` already due and let its resolver fail: it ends in the DLQ."""
        ack = self.rt.ask("scheduler", discovered(key, t_end=T_END - 1000))
        assert isinstance(ack, Ack) and ack.detail == "new"
        clock: ManualClock = self.rt.clock
        clock.advance(1)  # one scheduler tick: the job is due, its resolver fails
        self.rt.wait_for(lambda: self.job_state(key) == "dead", timeout=10)

    def job_state(self, key: MarketKey) -> str:
        from protocol.records import Job

        job = self.store.get("jobs", key.db_key(), Job)
        return job.state.value if job is not None else ""


@contextmanager
def api_daemon(tmp_path: Path, **app_kwargs: Any) -> Iterator[Daemon]:
    """The runtime, the store and the API on a free port; all stopped afterwards."""
    now = [NOW]
    settings: dict[str, Any] = {
        "token": TOKEN,
        "webhook_secret": WEBHOOK_SECRET,
        "chains": [CHAIN],
        "metrics_renderer": lambda: b"# TYPE oracle_runner_up gauge\noracle_runner_up 1\n",
        "clock": lambda: now[0],
        "factories": {CHAIN: FACTORY},
        **app_kwargs,
    }
    types: dict[str, type[SupervisedActor]] = {
        "scheduler": Scheduler,
        "resolver": FailingResolver,
        "listener": StubListener,
        "probe": Probe,
    }
    with Store.open(tmp_path / "data") as store:
        extra = {"store": store, "private_key": FAKE_PRIVATE_KEY}
        with Runtime(tree(), actor_types=types, clock=ManualClock(start=NOW), extra=extra) as rt:
            app = create_app(rt, store, **settings)
            server = HttpServer(app)
            url = server.start()
            hooks = {"response": [_no_secrets]}
            try:
                with httpx.Client(base_url=url, timeout=10.0, event_hooks=hooks) as client:
                    yield Daemon(rt=rt, store=store, url=url, client=client, now=now)
            finally:
                server.stop()
