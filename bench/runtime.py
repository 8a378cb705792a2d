"""Messages per second through the typed, supervised path vs raw pykka ``tell``, same run.

Both sides send the same pre-built pydantic message N times to one actor that counts it, then
ask for the count (so every message was handled). The supervised side goes through the
registry by name, the fault-plan check and the base class's dispatch; the raw side is a plain
``pykka.ThreadingActor`` ref. Goal: ``ratio >= 0.5``.
"""

from __future__ import annotations

import platform
import time
from importlib.metadata import version
from typing import Any, Literal

import pykka

from protocol.messages import Message
from protocol.supervision import ChildSpec, SupervisorSpec
from supervision import ManualClock, Runtime, SupervisedActor

MESSAGES = 100_000
ROUNDS = 3


class Hit(Message):
    kind: Literal["bench_hit"] = "bench_hit"
    n: int = 0


class Count(Message):
    kind: Literal["bench_count"] = "bench_count"


class RawCounter(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def on_receive(self, message: Any) -> Any:
        if type(message) is Hit:
            self.n += 1
            return None
        return self.n


class TypedCounter(SupervisedActor):
    def init(self) -> None:
        self.n = 0

    def handle(self, message: Any) -> Any:
        match message:
            case Hit():
                self.n += 1
                return None
            case Count():
                return self.n
        return self.unhandled(message)


def _raw(messages: int) -> float:
    ref = RawCounter.start()
    hit = Hit()
    try:
        began = time.perf_counter()
        for _ in range(messages):
            ref.tell(hit)
        assert ref.ask(Count(), timeout=120) == messages
        return messages / (time.perf_counter() - began)
    finally:
        ref.stop()


def _runtime(messages: int) -> float:
    tree = SupervisorSpec(children=(ChildSpec(id="counter", actor="counter"),))
    with Runtime(tree, actor_types={"counter": TypedCounter}, clock=ManualClock()) as rt:
        hit = Hit()
        tell = rt.registry.tell
        began = time.perf_counter()
        for _ in range(messages):
            tell("counter", hit)
        assert rt.ask("counter", Count(), timeout=120) == messages
        return messages / (time.perf_counter() - began)


def run() -> dict[str, Any]:
    raw = max(_raw(MESSAGES) for _ in range(ROUNDS))
    typed = max(_runtime(MESSAGES) for _ in range(ROUNDS))
    return {
        "messages": MESSAGES,
        "rounds": ROUNDS,
        "raw_per_s": round(raw),
        "runtime_per_s": round(typed),
        "ratio": round(typed / raw, 3),
        "goal_ratio": 0.5,
        "python": platform.python_version(),
        "pykka": version("pykka"),
    }


def summary(result: dict[str, Any]) -> str:
    return (
        f"runtime: {result['runtime_per_s']:,} msg/s supervised vs {result['raw_per_s']:,} raw "
        f"pykka tell: ratio {result['ratio']} (goal >= {result['goal_ratio']})"
    )
