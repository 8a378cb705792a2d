"""The embedded runtime: a whole supervisor tree in-process, for tests, the demo and the daemon.

    with Runtime(tree, actor_types={"counter": Counter}, clock=ManualClock(),
                 faults=FaultPlan([...], seed=1), checkpoints=Checkpoints(store)) as rt:
        rt.tell("counter", Increment())
        rt.wait_for(lambda: rt.state("counter")["n"] == 1, timeout=5)
        rt.clock.advance(30)              # a ManualClock: timers fire now, in this thread
        assert rt.restarts("counter") == 0

``pooled_threads=N`` runs the actors whose class says ``pooled = True`` on a ``Dispatcher`` of
``N`` threads instead of a thread each (ADR 0015).

Leaving the block stops the tree in reverse start order and proves that no actor thread is left;
``Runtime.failed`` is set when the root supervisor gives up (the daemon then exits non-zero).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import pykka

from protocol.messages import GetState, WhichChildren
from protocol.supervision import SupervisorSpec
from supervision.actor import ActorContext, CheckpointStore, Services, SupervisedActor
from supervision.clock import Clock, SystemClock
from supervision.dispatcher import Dispatcher
from supervision.errors import SupervisionError
from supervision.faults import FaultPlan
from supervision.registry import Registry
from supervision.supervisor import Supervisor

T = TypeVar("T")
ROOT = "root"


class Runtime:
    """Starts a tree on ``start()`` (or ``with``) and stops it cleanly on ``stop()``."""

    def __init__(
        self,
        tree: SupervisorSpec,
        *,
        actor_types: Mapping[str, type[SupervisedActor]],
        clock: Clock | None = None,
        faults: FaultPlan | None = None,
        checkpoints: CheckpointStore | None = None,
        extra: Mapping[str, Any] | None = None,
        redact: Callable[[str], str] | None = None,
        check_interval_s: float = 1.0,
        pooled_threads: int = 0,
    ) -> None:
        self.tree = tree
        self.clock: Any = clock if clock is not None else SystemClock()
        self.faults = faults
        self.registry = Registry()
        self.failed = threading.Event()
        self.failure = ""
        types: dict[str, type[SupervisedActor]] = {"supervisor": Supervisor, **actor_types}
        self.services = Services(
            registry=self.registry,
            clock=self.clock,
            actor_types=types,
            checkpoints=checkpoints,
            faults=faults,
            extra=dict(extra or {}),
            on_root_failure=self._root_failed,
        )
        if redact is not None:
            self.services.redact = redact
        if pooled_threads > 0:
            self.services.dispatcher = Dispatcher(
                self.services.threads, size=pooled_threads, name="pooled"
            )
        self._check_interval_s = check_interval_s
        self._root: pykka.ActorRef[Any] | None = None

    # --- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Runtime:
        """Start the root; returns once every static child of the tree is started (as OTP's
        ``start_link``), so names can be used at once."""
        ctx = ActorContext(
            name=ROOT,
            actor_type="supervisor",
            services=self.services,
            parent=None,
            args={"spec": self.tree, "check_interval_s": self._check_interval_s},
        )
        self.registry.expect(ROOT, "supervisor", None)
        self._root = Supervisor.start(ctx)
        self.registry.register(ROOT, self._root, "supervisor", None, 1)
        self._await_tree(ROOT, deadline=time.monotonic() + timeout)
        return self

    def _await_tree(self, name: str, deadline: float) -> None:
        children = self.registry.ask(name, WhichChildren(), timeout=deadline - time.monotonic())
        for child in children:
            if child.actor == "supervisor":
                self._await_tree(child.child_id, deadline)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the tree (children in reverse order) and check that no actor thread is left."""
        deadline = time.monotonic() + timeout
        root, self._root = self._root, None
        if root is not None and root.is_alive():
            with contextlib.suppress(pykka.Timeout):
                root.stop(block=True, timeout=timeout)
        self.clock.stop()
        if self.services.dispatcher is not None:
            self.services.dispatcher.close()  # its actors have stopped with the tree
        left = self.services.threads.close(timeout=max(0.0, deadline - time.monotonic()))
        if left:
            raise SupervisionError(f"actor threads still alive after stop: {left}")

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _root_failed(self, reason: str) -> None:
        self.failure = reason
        self.failed.set()

    # --- talking to actors ---------------------------------------------------------------

    def tell(self, name: str, message: Any) -> bool:
        return self.registry.tell(name, message)

    def ask(self, name: str, message: Any, timeout: float = 5.0) -> Any:
        return self.registry.ask(name, message, timeout=timeout)

    def state(self, name: str, timeout: float = 5.0) -> Any:
        """The actor's ``snapshot()``, asked of its current incarnation."""
        return self.ask(name, GetState(), timeout=timeout)

    def restarts(self, name: str) -> int:
        entry = self.registry.entry(name)
        return entry.restarts if entry is not None else 0

    def alive(self, name: str) -> bool:
        entry = self.registry.entry(name)
        return entry is not None and entry.ref is not None and entry.ref.is_alive()

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.005
    ) -> T:
        """Poll ``predicate`` until it returns a truthy value, and return that value (see
        the module function ``wait_for``)."""
        return wait_for(predicate, timeout=timeout, interval=interval)


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.005) -> T:
    """Poll ``predicate`` until it returns a truthy value, and return that value.

    An exception from the predicate counts as "not yet" (an actor may be restarting); if
    time runs out, ``TimeoutError`` names the last exception or value seen::

        wait_for(lambda: threads.idle() == 1, timeout=5)
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout:g}s; last: {last!r}")
        time.sleep(interval)
