"""Small actors and messages for the supervision tests and the runtime benchmark."""

from __future__ import annotations

import threading
from typing import Any, Literal

from protocol.codec import register
from protocol.messages import Message
from protocol.spec import Frozen
from protocol.supervision import ChildSpec, RestartType
from supervision import SupervisedActor


class Ping(Message):
    kind: Literal["test_ping"] = "test_ping"
    n: int = 0


class Boom(Message):
    kind: Literal["test_boom"] = "test_boom"
    text: str = "boom"


class Done(Message):
    kind: Literal["test_done"] = "test_done"


class Increment(Message):
    kind: Literal["test_increment"] = "test_increment"


class CounterState(Frozen):
    n: int


register(CounterState, kind="test_counter_state")


class Worker(SupervisedActor):
    """Answers ``Ping`` with its incarnation, crashes on ``Boom``, finishes on ``Done``.

    Records ``("start", name, incarnation)`` and ``("stop", name)`` in ``extra["events"]``;
    with ``args["fail_start"]`` it fails in ``init`` that many times (counted in ``extra``);
    with ``args["slow_start_s"]`` its ``init`` takes that long;
    an event in ``extra["stop_gates"][name]`` holds its ``terminate`` until set.
    """

    def init(self) -> None:
        failures = self.services.extra.setdefault("start_failures", {})
        if failures.get(self.name, 0) < int(self.ctx.args.get("fail_start", 0)):
            failures[self.name] = failures.get(self.name, 0) + 1
            raise RuntimeError(f"{self.name} refuses to start")
        threading.Event().wait(float(self.ctx.args.get("slow_start_s", 0)))  # a slow start-up
        self.seen: list[int] = []
        self.services.extra.setdefault("events", []).append(
            ("start", self.name, self.ctx.incarnation)
        )

    def handle(self, message: Any) -> Any:
        match message:
            case Ping(n=n):
                self.seen.append(n)
                return self.ctx.incarnation
            case Boom(text=text):
                raise RuntimeError(text)
            case Done():
                self.finish()
                return None
        return self.unhandled(message)

    def snapshot(self) -> Any:
        return {"incarnation": self.ctx.incarnation, "seen": list(self.seen)}

    def terminate(self) -> None:
        gate = self.services.extra.get("stop_gates", {}).get(self.name)
        if gate is not None:  # a slow clean-up: wait until the test opens the gate
            gate.wait(5)
        self.services.extra.setdefault("events", []).append(("stop", self.name))


class Counter(SupervisedActor):
    """Counts ``Increment``s; the count survives restarts through its checkpoint."""

    checkpoint_type = CounterState

    def restore(self, state: Any) -> None:
        self.n = state.n if state is not None else 0

    def handle(self, message: Any) -> Any:
        match message:
            case Increment():
                self.checkpoint(CounterState(n=self.n + 1))
                self.n += 1
                return self.n
            case Boom(text=text):
                raise RuntimeError(text)
        return self.unhandled(message)

    def snapshot(self) -> Any:
        return {"n": self.n}


TYPES: dict[str, type[SupervisedActor]] = {"worker": Worker, "counter": Counter}


def worker(child_id: str, restart: RestartType = RestartType.PERMANENT, **args: Any) -> ChildSpec:
    return ChildSpec(id=child_id, actor="worker", restart=restart, args=args)


class EarlyBird(SupervisedActor):
    """Tells itself a Ping from ``init``, before its supervisor may have registered it."""

    def init(self) -> None:
        self.seen: list[int] = []
        self.registry.tell(self.name, Ping(n=self.ctx.incarnation))

    def handle(self, message: Any) -> Any:
        match message:
            case Ping(n=n):
                self.seen.append(n)
                return None
        return self.unhandled(message)

    def snapshot(self) -> Any:
        return {"seen": list(self.seen)}


TYPES["early"] = EarlyBird
