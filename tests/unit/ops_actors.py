"""A small runtime for the ops tests: the real Scheduler on a real Store, plus stand-ins.

    with ops_runtime(tmp_path, snapshots={"signer:dev": {"nonce": 7}}) as (rt, store):
        rt.ask("scheduler", discovered(market(1)))

Stand-ins answer ``GetState`` with ``args["snapshot"]`` (a listener, signers, a price cache),
block on ``Hang`` until ``extra["release"]`` is set, and crash on ``Leak`` with its text (or
with their snapshot's ``key``, to test redaction).
Resolvers follow ``extra["script"][market]``: ``finalize`` (default), ``permanent``, ``hold``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from actors.scheduler import Scheduler
from protocol.codec import CODEC, register
from protocol.messages import (
    FailureClass,
    Message,
    ResolutionFailed,
    ResolutionProgress,
)
from protocol.spec import MarketKey
from protocol.supervision import ChildSpec, Intensity, SupervisorSpec
from storage import Store
from supervision import FaultPlan, ManualClock, Runtime, SupervisedActor
from tests.unit.markets import T_END

SETTLE = 60


class Hang(Message):
    kind: Literal["test_ops_hang"] = "test_ops_hang"


class Leak(Message):
    kind: Literal["test_ops_leak"] = "test_ops_leak"
    text: str = ""
    """Empty: the actor leaks its own snapshot's ``key``."""


for _model in (Hang, Leak):
    if _model not in CODEC.kinds().values():
        register(_model)


class Stand(SupervisedActor):
    """Any actor type: a fixed snapshot, ``Hang`` blocks, ``Leak`` crashes with its text."""

    def init(self) -> None:
        self.fixed: dict[str, Any] = dict(self.ctx.args.get("snapshot", {}))

    def handle(self, message: Any) -> Any:
        match message:
            case Hang():
                self.services.extra["release"].wait(30)
                return "released"
            case Leak(text=text):
                raise RuntimeError(f"leaking {text or self.fixed.get('key')}")
        return self.unhandled(message)

    def snapshot(self) -> Any:
        return dict(self.fixed)


class ScriptedResolver(SupervisedActor):
    pooled = True

    def init(self) -> None:
        key = MarketKey.parse(self.ctx.args["key"])
        scheduler = self.ctx.args["scheduler"]
        step = self.services.extra["script"].get(str(key), "finalize")
        if step == "hold":
            return
        if step == "finalize":
            self.registry.tell(scheduler, ResolutionProgress(key=key, state="FINALIZED"))
        else:
            failure = ResolutionFailed(key=key, failure=FailureClass(step), reason=f"{step}!")
            self.registry.tell(scheduler, failure)
        self.finish()


def _type_of(name: str) -> str:
    return name.split(":", 1)[0]


@contextmanager
def ops_runtime(
    tmp_path: Path,
    snapshots: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    faults: FaultPlan | None = None,
    redact: Any = None,
) -> Iterator[tuple[Runtime, Store]]:
    """The scheduler, a resolvers pool and one stand-in per entry of ``snapshots``."""
    stands = tuple(
        ChildSpec(id=name, actor=_type_of(name), args={"snapshot": dict(snap)})
        for name, snap in (snapshots or {}).items()
    )
    tree = SupervisorSpec(
        intensity=Intensity(max_restarts=50, period_s=60),
        children=(
            *stands,
            ChildSpec(
                id="scheduler", actor="scheduler", args={"settle_delay_s": SETTLE, "seed": 1}
            ),
            ChildSpec(
                id="resolvers", actor="supervisor", supervisor=SupervisorSpec(max_children=10)
            ),
        ),
    )
    types: dict[str, type[SupervisedActor]] = {
        "scheduler": Scheduler,
        "resolver": ScriptedResolver,
    }
    types |= {_type_of(name): Stand for name in (snapshots or {})}
    release = threading.Event()
    with Store.open(tmp_path / "data") as store:
        extra = {"store": store, "script": {}, "release": release}
        rt = Runtime(
            tree,
            actor_types=types,
            clock=ManualClock(start=T_END - 100),
            extra=extra,
            faults=faults,
            redact=redact,
            pooled_threads=2,  # resolvers on a dispatcher, as in the daemon
        )
        with rt:
            try:
                yield rt, store
            finally:
                release.set()
