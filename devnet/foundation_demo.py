"""The foundation demo: a small supervised tree on LMDB, a crash, a restart from the checkpoint.

It runs until the end-to-end daemon exists, and shows the parts every later actor stands on:
a heartbeat actor that checkpoints each beat, a fault plan that crashes it, the supervisor that
restarts it from its checkpoint, a dynamic pool that refuses work past its maximum, and a clean
stop that leaves no thread behind.
"""

from __future__ import annotations

import tempfile
import threading
from typing import Any, Literal

from protocol.codec import register
from protocol.messages import Message, StartChild
from protocol.spec import Frozen
from protocol.supervision import (
    ChildSpec,
    FaultAction,
    FaultRule,
    Intensity,
    RestartType,
    SupervisorSpec,
)
from storage import Checkpoints, Store
from supervision import FaultPlan, Runtime, SupervisedActor, SystemClock


class Beat(Message):
    kind: Literal["demo_beat"] = "demo_beat"


class HeartbeatState(Frozen):
    beats: int


register(HeartbeatState, kind="demo_heartbeat_state")


class Heartbeat(SupervisedActor):
    """Counts beats; each one is checkpointed before it is acknowledged."""

    checkpoint_type = HeartbeatState

    def restore(self, state: Any) -> None:
        self.beats = state.beats if state is not None else 0

    def handle(self, message: Any) -> Any:
        match message:
            case Beat():
                self.checkpoint(HeartbeatState(beats=self.beats + 1))
                self.beats += 1
                return self.beats
        return self.unhandled(message)

    def snapshot(self) -> Any:
        return {"beats": self.beats, "incarnation": self.ctx.incarnation}


class Idle(SupervisedActor):
    """A dynamic child that just lives until it is stopped."""


TREE = SupervisorSpec(
    intensity=Intensity(max_restarts=5, period_s=30),
    children=(
        ChildSpec(id="heartbeat", actor="heartbeat"),
        ChildSpec(
            id="workers",
            actor="supervisor",
            supervisor=SupervisorSpec(max_children=2),
        ),
    ),
)


def _table(rt: Runtime) -> str:
    rows = [f"  {'actor':<12} {'status':<8} {'incarnation':>11} {'restarts':>8}  last error"]
    for entry in sorted(rt.registry.entries(), key=lambda e: e.name):
        rows.append(
            f"  {entry.name:<12} {entry.status.value:<8} {entry.incarnation:>11} "
            f"{entry.restarts:>8}  {entry.last_error or '-'}"
        )
    return "\n".join(rows)


def main(data_dir: str | None = None) -> int:
    directory = data_dir or tempfile.mkdtemp(prefix="oracle-runner-demo-")
    print(f"data directory: {directory}")
    faults = FaultPlan(seed=1)
    before = set(threading.enumerate())
    with Store.open(directory) as store:
        types: dict[str, type[SupervisedActor]] = {"heartbeat": Heartbeat, "idle": Idle}
        runtime = Runtime(
            TREE,
            actor_types=types,
            clock=SystemClock(),
            faults=faults,
            checkpoints=Checkpoints(store),
        )
        with runtime as rt:
            for _ in range(5):
                rt.ask("heartbeat", Beat())
            print(f"1. five beats, each checkpointed in LMDB: {rt.state('heartbeat')}")

            faults.add(FaultRule(actor="heartbeat", message="demo_beat", action=FaultAction.RAISE))
            try:
                rt.ask("heartbeat", Beat())
            except Exception as exc:
                print(f"2. injected fault on the sixth beat reached the asker: {exc}")
            state = rt.wait_for(lambda: rt.state("heartbeat"), timeout=10)
            print(f"3. restarted from its checkpoint: {state}")
            print(f"4. the beat after the restart: {rt.ask('heartbeat', Beat())}")

            for n in (1, 2, 3):
                spec = ChildSpec(id=f"worker-{n}", actor="idle", restart=RestartType.TRANSIENT)
                answer = rt.ask("workers", StartChild(spec=spec))
                print(f"5. start worker-{n}: {answer.reason}")
            print("6. the tree now:\n" + _table(rt))
        left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
        print(f"7. stopped in reverse order; actor threads left: {len(left)}")
        stats = store.stats()
        print(
            f"8. LMDB: {stats.entries.get('checkpoints', 0)} checkpoint(s), "
            f"{stats.used_bytes} bytes used of a {stats.map_size}-byte map"
        )
    return 0 if not left and not rt.failed.is_set() else 1
