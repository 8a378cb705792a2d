"""The supervisor: starts children in order, restarts them by strategy, gives up past its intensity.

Erlang/OTP semantics, because operators already know them::

    root = SupervisorSpec(strategy=Strategy.REST_FOR_ONE,
                          intensity=Intensity(max_restarts=5, period_s=30),
                          children=(ChildSpec(id="signer:dev", actor="signer"),
                                    ChildSpec(id="listener:dev", actor="listener")))

- A child exits with ``normal``, ``shutdown`` or ``crash``. ``permanent`` children are always
  restarted, ``transient`` ones only after a crash, ``temporary`` ones never.
- ``one_for_one`` restarts the child alone; ``one_for_all`` stops the others in reverse order and
  starts everyone again in order; ``rest_for_one`` does that for the children started after it.
- More than ``intensity.max_restarts`` restarts within ``intensity.period_s``: the supervisor stops
  all its children (in reverse order) and crashes, so its own supervisor decides. The root's crash
  ends the runtime (the daemon exits non-zero).
- ``backoff`` delays the n-th quick restart of a child by ``initial_s * 2**(n-1)``, up to ``max_s``.
- Static children start one after another, as OTP's ``start_link``: a child's ``init`` has
  returned (or failed, or ``start_timeout_s`` passed) before the next child is started.
- Dynamic children come by ``StartChild`` (answered with ``ChildStarted``), or a batch of them by
  ``StartChildren`` (one answer for all, refused from the first ``full`` on), up to ``max_children``
  alive at once; the answer does not wait for the child's ``init`` (a resolver's first message
  waits in its mailbox instead), so a burst of them costs no round trip each.
- A child whose thread died without telling anyone is found by ``CheckChildren``: the registry
  sends one when a message bounces off a dead ref, and the supervisor checks every
  ``check_interval_s`` of its clock.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import pykka

from protocol.messages import (
    Ack,
    CheckChildren,
    ChildExited,
    ChildInfo,
    ChildrenStarted,
    ChildStarted,
    RestartChild,
    StartChild,
    StartChildren,
    StopChild,
    WhichChildren,
)
from protocol.supervision import ChildSpec, ExitReason, RestartType, Strategy, SupervisorSpec
from supervision.actor import ActorContext, SupervisedActor, describe
from supervision.errors import RestartIntensityExceeded

log = logging.getLogger(__name__)
DEFAULT_CHECK_INTERVAL_S = 1.0
EXIT_REPORT_GRACE_S = 0.5
"""How long a check waits for a dead child's own exit report before calling it a silent death."""


@dataclass
class _Child:
    spec: ChildSpec
    dynamic: bool
    ref: pykka.ActorRef[Any] | None = None
    incarnation: int = 0
    restarts: int = 0
    consecutive: int = 0
    started_at: float = 0.0
    last_error: str = ""
    exit_reported: threading.Event | None = None

    def info(self) -> ChildInfo:
        return ChildInfo(
            child_id=self.spec.id,
            actor=self.spec.actor,
            alive=self.ref is not None and self.ref.is_alive(),
            incarnation=self.incarnation,
            restarts=self.restarts,
            last_error=self.last_error,
        )


def _restarts_after(restart: RestartType, reason: ExitReason) -> bool:
    if restart is RestartType.PERMANENT:
        return True
    if restart is RestartType.TRANSIENT:
        return reason is ExitReason.CRASH
    return False


class Supervisor(SupervisedActor):
    """A supervised actor whose job is other actors. Its args: ``spec`` (a ``SupervisorSpec``)."""

    # --- start-up ------------------------------------------------------------------------

    def init(self) -> None:
        spec = self.ctx.args["spec"]
        self.spec = (
            spec if isinstance(spec, SupervisorSpec) else SupervisorSpec.model_validate(spec)
        )
        self.check_interval_s = float(
            self.ctx.args.get("check_interval_s", DEFAULT_CHECK_INTERVAL_S)
        )
        self.children: dict[str, _Child] = {}
        self.restart_times: deque[float] = deque()
        self.pending_restarts: dict[int, list[str]] = {}
        self.generation = 0
        for child_spec in self.spec.children:
            self.children[child_spec.id] = _Child(child_spec, dynamic=False)
        for child_id in list(self.children):
            child = self.children.get(child_id)
            if child is not None and child.ref is None:
                self._start(child)
        self._arm_check()

    # --- messages ------------------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        match message:
            case ChildExited():
                self._on_exit(message)
                return None
            case StartChild(spec=spec):
                return self._start_dynamic(spec)
            case StartChildren(specs=specs):
                return ChildrenStarted(results=self._start_all(specs))
            case StopChild(child_id=child_id):
                self._stop_and_forget(child_id)
                return Ack(detail=child_id)
            case RestartChild(generation=generation):
                self._restart_group(self.pending_restarts.pop(generation, []))
                return None
            case CheckChildren(periodic=periodic):
                self._check_children()
                if periodic:
                    self._arm_check()
                return None
            case WhichChildren():
                return tuple(child.info() for child in self.children.values())
        return self.unhandled(message)

    def snapshot(self) -> Any:
        return {
            "strategy": self.spec.strategy.value,
            "children": [child.info().model_dump() for child in self.children.values()],
            "recent_restarts": len(self.restart_times),
        }

    def terminate(self) -> None:
        for child in reversed(list(getattr(self, "children", {}).values())):
            self._shutdown(child)
            self.registry.gone(child.spec.id)

    # --- exits and restarts --------------------------------------------------------------

    def _on_exit(self, exited: ChildExited) -> None:
        child = self.children.get(exited.child_id)
        if child is None or child.ref is None or exited.incarnation != child.incarnation:
            return  # stale news of an incarnation already dealt with
        child.ref = None
        if exited.error:
            child.last_error = exited.error
        self.registry.down(exited.child_id, None, exited.error)
        if not _restarts_after(child.spec.restart, exited.reason):
            del self.children[exited.child_id]
            if child.dynamic:
                self.registry.forget(exited.child_id)
            else:
                self.registry.gone(exited.child_id)
            return
        log.warning(
            "%s: child %s exited (%s) %s",
            self.name,
            exited.child_id,
            exited.reason.value,
            exited.error,
        )
        self._count_restart(exited)
        group = self._group(exited.child_id)
        for other_id in reversed(group):
            if other_id != exited.child_id:
                self._shutdown(self.children[other_id])
        now = self.clock.now()
        quick = now - child.started_at < self.spec.intensity.period_s
        child.consecutive = child.consecutive + 1 if quick else 1
        delay = self.spec.backoff.delay(child.consecutive)
        if delay <= 0:
            self._restart_group(group)
            return
        self.generation += 1
        self.pending_restarts[self.generation] = group
        self.send_later(
            delay, self.name, RestartChild(child_id=exited.child_id, generation=self.generation)
        )

    def _count_restart(self, exited: ChildExited) -> None:
        now = self.clock.now()
        period = self.spec.intensity.period_s
        self.restart_times.append(now)
        while self.restart_times and self.restart_times[0] <= now - period:
            self.restart_times.popleft()
        if len(self.restart_times) > self.spec.intensity.max_restarts:
            reason = (
                f"{self.name}: {len(self.restart_times)} restarts in {period:g}s exceed "
                f"{self.spec.intensity.max_restarts}; last: {exited.child_id}: {exited.error}"
            )
            self.terminate()
            raise RestartIntensityExceeded(reason)

    def _group(self, child_id: str) -> list[str]:
        ids = list(self.children)
        match self.spec.strategy:
            case Strategy.ONE_FOR_ONE:
                return [child_id]
            case Strategy.ONE_FOR_ALL:
                return ids
            case Strategy.REST_FOR_ONE:
                return ids[ids.index(child_id) :]

    def _restart_group(self, group: list[str]) -> None:
        for child_id in group:
            child = self.children.get(child_id)
            if child is not None and child.ref is None:
                child.restarts += 1
                self._start(child)

    # --- starting and stopping -----------------------------------------------------------

    def _start(self, child: _Child) -> None:
        spec = child.spec
        child.incarnation += 1
        child.started_at = self.clock.now()
        args: dict[str, Any] = dict(spec.args)
        if spec.supervisor is not None:
            args["spec"] = spec.supervisor
        ctx = ActorContext(
            name=spec.id,
            actor_type=spec.actor,
            services=self.services,
            parent=self.actor_ref,
            args=args,
            incarnation=child.incarnation,
        )
        child.exit_reported = ctx.exit_reported
        self.registry.expect(spec.id, spec.actor, self.actor_ref)
        try:
            actor_class = self.services.actor_types[spec.actor]
            ref = actor_class.start(ctx)
        except Exception as exc:  # a constructor that fails is a crash like any other
            error = describe(exc, self.services.redact)
            log.error("%s: could not start %s: %s", self.name, spec.id, error)
            child.ref = _NOT_STARTED
            self._on_exit(
                ChildExited(
                    child_id=spec.id,
                    incarnation=child.incarnation,
                    reason=ExitReason.CRASH,
                    error=error,
                )
            )
            return
        child.ref = ref
        self.registry.register(spec.id, ref, spec.actor, self.actor_ref, child.incarnation)
        if not child.dynamic and not ctx.initialized.wait(spec.start_timeout_s):
            log.warning(
                "%s: %s still starting after %gs; starting the next child",
                self.name,
                spec.id,
                spec.start_timeout_s,
            )

    def _start_dynamic(self, spec: ChildSpec) -> ChildStarted:
        existing = self.children.get(spec.id)
        if existing is not None:
            return ChildStarted(child_id=spec.id, started=False, reason="already_running")
        limit = self.spec.max_children
        if limit is not None and len(self.children) >= limit:
            return ChildStarted(child_id=spec.id, started=False, reason="full")
        child = _Child(spec, dynamic=True)
        self.children[spec.id] = child
        self._start(child)
        return ChildStarted(child_id=spec.id, started=True)

    def _start_all(self, specs: tuple[ChildSpec, ...]) -> tuple[ChildStarted, ...]:
        results: list[ChildStarted] = []
        for spec in specs:
            full = bool(results) and results[-1].reason == "full"
            results.append(
                ChildStarted(child_id=spec.id, started=False, reason="full")
                if full
                else self._start_dynamic(spec)
            )
        return tuple(results)

    def _stop_and_forget(self, child_id: str) -> None:
        child = self.children.pop(child_id, None)
        if child is None:
            return
        self._shutdown(child)
        if child.dynamic:
            self.registry.forget(child_id)
        else:
            self.registry.gone(child_id)

    def _shutdown(self, child: _Child) -> None:
        ref, child.ref = child.ref, None
        if ref is None or ref is _NOT_STARTED:
            return
        try:
            ref.stop(block=True, timeout=child.spec.shutdown_timeout_s)
        except pykka.Timeout:
            child.last_error = f"did not stop within {child.spec.shutdown_timeout_s:g}s; abandoned"
            log.error("%s: %s %s", self.name, child.spec.id, child.last_error)
        self.registry.down(child.spec.id, ref)

    def _check_children(self) -> None:
        for child in list(self.children.values()):
            ref = child.ref
            if ref is None or ref is _NOT_STARTED or ref.is_alive():
                continue
            # A child stopping normally is dead to pykka a moment before it reports its exit.
            reported = child.exit_reported
            if reported is not None and reported.wait(EXIT_REPORT_GRACE_S):
                continue  # its ChildExited is in this mailbox, behind this message
            self._on_exit(
                ChildExited(
                    child_id=child.spec.id,
                    incarnation=child.incarnation,
                    reason=ExitReason.CRASH,
                    error="actor thread found dead",
                )
            )

    def _arm_check(self) -> None:
        if self.check_interval_s > 0:
            self.send_later(self.check_interval_s, self.name, CheckChildren(periodic=True))


class _NeverStarted:
    """Stands in for the ref of a child whose constructor failed, until its restart."""

    def is_alive(self) -> bool:
        return False


_NOT_STARTED: Any = _NeverStarted()
