"""Supervision as data: child specs and supervisor specs, in Erlang/OTP's vocabulary.

A tree is plain data, so it can be logged, sent over the REPL and compared in tests::

    >>> tree = SupervisorSpec(
    ...     strategy=Strategy.ONE_FOR_ONE,
    ...     intensity=Intensity(max_restarts=5, period_s=30),
    ...     children=(
    ...         ChildSpec(id="price_cache", actor="price_cache"),
    ...         ChildSpec(id="scheduler", actor="scheduler"),
    ...     ),
    ... )
    >>> [c.id for c in tree.children]
    ['price_cache', 'scheduler']

``actor`` names an actor type known to the runtime; ``args`` are plain data handed to it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from protocol.spec import Frozen

ChildId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")]


class Strategy(StrEnum):
    ONE_FOR_ONE = "one_for_one"
    """Restart only the child that exited."""
    ONE_FOR_ALL = "one_for_all"
    """Stop every other child (in reverse order), then start them all again (in order)."""
    REST_FOR_ONE = "rest_for_one"
    """Stop the children started after the one that exited, then start those again."""


class RestartType(StrEnum):
    PERMANENT = "permanent"
    """Always restarted."""
    TRANSIENT = "transient"
    """Restarted only after an abnormal exit (a crash)."""
    TEMPORARY = "temporary"
    """Never restarted."""


class ExitReason(StrEnum):
    NORMAL = "normal"
    """The child finished its work and stopped itself."""
    SHUTDOWN = "shutdown"
    """Its supervisor stopped it."""
    CRASH = "crash"
    """An exception, a failed start, or a thread found dead."""


class Intensity(Frozen):
    """At most ``max_restarts`` restarts in any ``period_s`` seconds, else the supervisor fails."""

    max_restarts: Annotated[int, Field(ge=0)] = 3
    period_s: Annotated[float, Field(gt=0)] = 5.0


class Backoff(Frozen):
    """Delay before the n-th quick restart of a child: ``min(max_s, initial_s * 2**(n-1))``."""

    initial_s: Annotated[float, Field(ge=0)] = 0.0
    max_s: Annotated[float, Field(ge=0)] = 0.0

    def delay(self, consecutive: int) -> float:
        if consecutive <= 0 or self.initial_s == 0:
            return 0.0
        return float(min(self.max_s, self.initial_s * 2 ** (consecutive - 1)))


class ChildSpec(Frozen):
    """How to start, restart and stop one child."""

    id: ChildId
    actor: str = Field(min_length=1)
    """The actor type, as registered with the runtime (``"supervisor"`` for a nested tree)."""
    args: dict[str, Any] = Field(default_factory=dict)
    restart: RestartType = RestartType.PERMANENT
    shutdown_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    start_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """How long the supervisor waits for a static child's ``init`` before it starts the next
    child anyway (a child that is slow to start delays its siblings, it never blocks them)."""
    supervisor: SupervisorSpec | None = None
    """The subtree, when ``actor == "supervisor"``."""

    @model_validator(mode="after")
    def _supervisor_has_spec(self) -> Self:
        if (self.actor == "supervisor") != (self.supervisor is not None):
            raise ValueError("a supervisor child needs a SupervisorSpec, and only it")
        return self


class SupervisorSpec(Frozen):
    """A supervisor's strategy, restart intensity, backoff and its static children."""

    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: Intensity = Intensity()
    backoff: Backoff = Backoff()
    children: tuple[ChildSpec, ...] = ()
    max_children: Annotated[int, Field(ge=0)] | None = None
    """Limit on children (static and dynamic) alive at once; ``None`` is unbounded."""

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        ids = [child.id for child in self.children]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate child ids: {duplicates}")
        if self.max_children is not None and len(ids) > self.max_children:
            raise ValueError(f"{len(ids)} static children exceed max_children {self.max_children}")
        return self


ChildSpec.model_rebuild()


class FaultAction(StrEnum):
    RAISE = "raise"
    """The handler raises ``InjectedFault``: the actor crashes as if its code had failed."""
    DELAY = "delay"
    """The handler sleeps ``delay_s`` of real time before handling the message."""
    DROP = "drop"
    """The message is not handled; an ``ask`` gets ``InjectedFault`` back, the actor lives on."""
    STOP = "stop"
    """The actor's thread ends without telling anyone: its supervisor must notice the dead ref."""


class FaultRule(Frozen):
    """Crash, delay, drop or stop actors matching ``actor`` on messages matching ``message``.

    Patterns are shell globs (``resolver:*``) over registered names and message kinds. The rule
    lets the first ``skip`` matches pass, then fires with ``probability`` at most ``times`` times
    (``None``: without limit).
    """

    actor: str = Field(min_length=1)
    message: str = "*"
    action: FaultAction
    times: Annotated[int, Field(ge=1)] | None = 1
    skip: Annotated[int, Field(ge=0)] = 0
    probability: Annotated[float, Field(ge=0, le=1)] = 1.0
    delay_s: Annotated[float, Field(ge=0, le=60)] = 0.0
