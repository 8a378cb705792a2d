"""The base of every actor in the tree: typed messages in, crashes out to the supervisor.

A subclass implements ``handle`` (a ``match`` over message types reads as its state machine)
and, if it keeps state across restarts, ``checkpoint_type`` + ``restore``::

    class Counter(SupervisedActor):
        checkpoint_type = CounterState

        def restore(self, state: CounterState | None) -> None:
            self.n = state.n if state else 0

        def handle(self, message: Message) -> object:
            match message:
                case Increment():
                    self.n += 1
                    self.checkpoint(CounterState(n=self.n))   # persisted before it is reported
                    return self.n
            return self.unhandled(message)

What pykka leaves to the caller, this class guarantees: an exception in ``handle`` crashes the
actor whether the message came by ``tell`` or ``ask`` (the asker gets the exception too), the
supervisor is told at once, and no message is handled by an instance that has crashed. A failing
``on_start`` (including ``restore``) is a crash as well.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import pykka
from pydantic import BaseModel

from protocol.messages import ChildExited, GetState
from protocol.supervision import ExitReason, FaultAction
from supervision.clock import Clock, Timer
from supervision.dispatcher import Dispatcher, PooledInbox, refuse
from supervision.errors import InjectedFault, UnknownMessage
from supervision.faults import FaultPlan
from supervision.registry import Registry
from supervision.threads import ActorThreads

log = logging.getLogger(__name__)
S = TypeVar("S", bound=BaseModel)

_handling = threading.local()
"""Per actor thread: the actor's name and the message it is handling (an actor's loop has a
thread to itself while it runs; ``supervision.threads`` reuses it afterwards). Two attribute
writes per message; the ids are derived only when a log line is
written (``message_ids``), so a busy actor pays nothing for correlation."""


def message_ids() -> Mapping[str, str]:
    """The actor, market and intent of the message this thread is handling, if any."""
    actor = getattr(_handling, "actor", None)
    if actor is None:
        return {}
    ids = {"actor": actor}
    message = _handling.message
    key = getattr(message, "key", None)
    if key is not None:
        ids["market"] = str(key)
    intent = getattr(message, "intent_id", None)
    if isinstance(intent, str):
        ids["intent"] = intent
    return ids


MAX_ERROR_TEXT = 500
_TIMERS_PRUNED_AT = 64
"""An actor's list of its timers is first cleared of spent ones at this length (then at twice
the length left)."""


class CheckpointStore(Protocol):
    """Where actors keep their state between incarnations (``storage.Checkpoints``)."""

    def save(self, actor_name: str, state: BaseModel) -> None: ...

    def load(self, actor_name: str, expect: type[S]) -> S | None: ...


@dataclass
class Services:
    """Everything shared by the actors of one runtime."""

    registry: Registry
    clock: Clock
    actor_types: Mapping[str, type[SupervisedActor]]
    checkpoints: CheckpointStore | None = None
    faults: FaultPlan | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Named dependencies for actors: clients, config, metrics."""
    on_root_failure: Callable[[str], None] = lambda reason: None
    redact: Callable[[str], str] = lambda text: text
    """Applied to every error text before it is stored, logged or shown."""
    threads: ActorThreads = field(default_factory=ActorThreads)
    """The threads actor loops run on (reused), so a stop can prove none is left."""
    dispatcher: Dispatcher | None = None
    """Where actors with ``pooled = True`` run (on its few threads); ``None``: each on its own."""


@dataclass(frozen=True)
class ActorContext:
    """What one incarnation is told at birth: its name, parent, arguments and the services."""

    name: str
    actor_type: str
    services: Services
    parent: pykka.ActorRef[Any] | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    incarnation: int = 1
    exit_reported: threading.Event = field(default_factory=threading.Event)
    """Set once this incarnation's ``ChildExited`` is in its parent's mailbox: a dead ref whose
    event stays unset died silently."""
    initialized: threading.Event = field(default_factory=threading.Event)
    """Set once this incarnation's ``on_start`` has returned or failed: a supervisor starting
    its static children waits for it before it starts the next one."""


def describe(exc: BaseException, redact: Callable[[str], str] = lambda t: t) -> str:
    """``"TypeName: message"``, redacted and bounded, for registries and ``ChildExited``."""
    text = redact(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


class _Dropped(Exception):
    """Internal: the fault plan dropped the message (a tell is ignored, an ask gets None)."""


class SupervisedActor(pykka.ThreadingActor):
    """A pykka actor that reports its exits to its supervisor and obeys the fault plan."""

    use_daemon_thread = True
    checkpoint_type: ClassVar[type[BaseModel] | None] = None
    pooled: ClassVar[bool] = False
    """Run on the runtime's ``Dispatcher`` if it has one (ADR 0015): for actors that are many,
    mostly idle, and never ``ask`` one another."""

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__()
        self._dispatcher = ctx.services.dispatcher if self.pooled else None
        if self._dispatcher is not None:
            inbox = self._dispatcher.inbox(self)
            self.actor_inbox = self._actor_ref.actor_inbox = inbox
            self._loop_started = False
        self.ctx = ctx
        self.name = ctx.name
        self.services = ctx.services
        self.clock = ctx.services.clock
        self.registry = ctx.services.registry
        self._faults = ctx.services.faults
        self._exit_reported = False
        self._finishing = False
        self._timers: list[Timer] = []
        """This incarnation's ``send_later`` timers (some may have run), cancelled when it
        stops."""
        self._timers_pruned_at = _TIMERS_PRUNED_AT

    # --- hooks for subclasses ------------------------------------------------------------

    def restore(self, state: Any) -> None:
        """Rebuild state from the last checkpoint (``None`` on the first start)."""

    def init(self) -> None:
        """Start-up work after ``restore``, in the actor's own thread."""

    def handle(self, message: Any) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        return self.unhandled(message)

    def snapshot(self) -> Any:
        """What ``GetState`` answers: a model or plain data describing the state now."""
        return {}

    def terminate(self) -> None:
        """Release resources; called once on every kind of exit."""

    # --- helpers for subclasses ----------------------------------------------------------

    def unhandled(self, message: Any) -> Any:
        raise UnknownMessage(f"{self.name} has no handler for {type(message).__name__}")

    def checkpoint(self, state: BaseModel) -> None:
        """Persist ``state`` durably under this actor's name before acting on it."""
        store = self.services.checkpoints
        if store is None:
            raise RuntimeError(f"{self.name} checkpoints but the runtime has no store")
        store.save(self.name, state)

    def finish(self) -> None:
        """Stop normally after the messages already queued (a transient child is then done)."""
        self._finishing = True
        self.stop()

    def send_later(self, delay_s: float, name: str, message: Any) -> None:
        """Deliver ``message`` to ``name`` after ``delay_s`` seconds of the runtime's clock.

        Timers still waiting when this incarnation stops are cancelled: a deadline or a nudge
        it set itself means nothing to its successor, which sets its own (and a finished
        resolver's messages are let go at once, not after their deadlines)."""
        registry = self.registry

        def deliver() -> None:
            registry.tell(name, message)

        timers = self._timers
        if len(timers) >= self._timers_pruned_at:  # a long-lived actor's ticks: keep the waiting
            timers[:] = [timer for timer in timers if timer.active()]
            self._timers_pruned_at = max(_TIMERS_PRUNED_AT, 2 * len(timers))
        timers.append(self.clock.call_later(delay_s, deliver))

    def _cancel_timers(self) -> None:
        timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()

    # --- pykka hooks ---------------------------------------------------------------------

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        # pykka's backend hook: a C queue hands a message over with one lock, where
        # ``queue.Queue`` takes a mutex and a Condition in Python (about half the CPU per
        # hand-off between two threads: ADR 0011)
        return queue.SimpleQueue()

    def _start_actor_loop(self) -> None:
        # pykka's backend hook: the loop runs on a reused thread instead of a new one, or
        # in slices on the dispatcher
        try:
            if self._dispatcher is not None:
                self._dispatcher.submit(self)
            else:
                self.services.threads.run(self._actor_loop, self.name)
        except BaseException:  # no thread: pykka registered an actor that will never run
            self.actor_stopped.set()
            pykka.ActorRegistry.unregister(self.actor_ref)
            raise

    def run_slice(self, budget: int) -> bool:
        """On a dispatcher: start if new, then handle up to ``budget`` messages as pykka's own
        loop would. Returns True when more messages wait (the actor is queued again)."""
        if not self._loop_started:
            self._loop_started = True
            self._actor_loop_setup()
        inbox = self.actor_inbox
        assert isinstance(inbox, PooledInbox)
        for _ in range(budget):
            if self.actor_stopped.is_set():
                self._actor_loop_teardown()  # asks left get ActorDeadError
                for envelope in inbox.close():  # since, and from now on: the same
                    refuse(envelope)
                return False
            envelope = inbox.take()
            if envelope is None:
                return False
            self._handle_envelope(envelope)
        return True

    def _handle_envelope(self, envelope: Any) -> None:
        """One turn of pykka's actor loop, for an actor on a dispatcher."""
        reply_to = envelope.reply_to
        try:
            response = self._handle_receive(envelope.message)
        except Exception:
            if reply_to is not None:
                reply_to.set_exception()
                return
            self._handle_failure(*sys.exc_info())
            try:
                self.on_failure(*sys.exc_info())
            except Exception:
                self._handle_failure(*sys.exc_info())
            return
        except BaseException:  # as pykka: an interpreter exit stops every actor
            self._stop()
            pykka.ActorRegistry.stop_all()
            return
        if reply_to is not None:
            reply_to.set(response)

    def on_start(self) -> None:
        try:
            state = None
            if self.checkpoint_type is not None and self.services.checkpoints is not None:
                state = self._load_checkpoint()
            self.restore(state)
            self.init()
        except Exception as exc:
            self._crashed(exc)
            raise
        finally:
            self.ctx.initialized.set()

    def on_receive(self, message: Any) -> Any:
        if self._faults is not None:
            try:
                self._apply_fault(message)
            except _Dropped:
                return None
        if type(message) is GetState:
            return self.snapshot()
        _handling.actor, _handling.message = self.name, message
        try:
            return self.handle(message)
        except Exception as exc:
            self._crashed(exc)
            raise
        finally:
            _handling.actor = None

    def on_stop(self) -> None:
        self._cancel_timers()
        try:
            self.terminate()
        finally:
            self._report_exit(ExitReason.NORMAL, "")

    def on_failure(self, *exc_info: Any) -> None:
        """pykka calls this after a crash in a ``tell``; ``_crashed`` has done the work."""

    # --- internals -----------------------------------------------------------------------

    def _load_checkpoint(self) -> Any:
        assert self.checkpoint_type is not None
        store = self.services.checkpoints
        assert store is not None
        try:
            return store.load(self.name, expect=self.checkpoint_type)
        except Exception as exc:  # a bad stored value must not become a restart loop
            text = describe(exc, self.services.redact)
            log.error("%s: checkpoint unreadable, restoring without it: %s", self.name, text)
            self.registry.note_error(
                self.name, f"checkpoint unreadable: {text}", self.ctx.actor_type
            )
            return None

    def _crashed(self, exc: BaseException) -> None:
        """Stop taking messages at once, clean up, and tell the supervisor."""
        self.actor_stopped.set()
        pykka.ActorRegistry.unregister(self.actor_ref)
        text = describe(exc, self.services.redact)
        log.error("%s crashed: %s", self.name, text)
        self._cancel_timers()
        try:
            self.terminate()
        except Exception as cleanup:
            log.error("%s: terminate failed: %s", self.name, describe(cleanup))
        self._report_exit(ExitReason.CRASH, text)

    def _report_exit(self, reason: ExitReason, error: str) -> None:
        if self._exit_reported:
            return
        self._exit_reported = True
        self.registry.down(self.name, self.actor_ref, error)
        parent = self.ctx.parent
        exited = ChildExited(
            child_id=self.name, incarnation=self.ctx.incarnation, reason=reason, error=error
        )
        if parent is None:
            if reason is ExitReason.CRASH:
                self.services.on_root_failure(error)
            return
        try:
            parent.tell(exited)
        except pykka.ActorDeadError:
            log.debug("%s exited (%s) while its supervisor stops", self.name, reason.value)
        self.ctx.exit_reported.set()

    def _apply_fault(self, message: Any) -> None:
        assert self._faults is not None
        kind = getattr(message, "kind", type(message).__name__)
        rule = self._faults.decide(self.name, str(kind))
        if rule is None:
            return
        match rule.action:
            case FaultAction.RAISE:
                exc = InjectedFault(f"injected crash of {self.name} on {kind}")
                self._crashed(exc)
                raise exc
            case FaultAction.DELAY:
                time.sleep(rule.delay_s)
            case FaultAction.DROP:
                raise _Dropped
            case FaultAction.STOP:
                # Die silently: no report, so the supervisor must find the dead ref itself.
                self._exit_reported = True
                self.actor_stopped.set()
                pykka.ActorRegistry.unregister(self.actor_ref)
                raise InjectedFault(f"injected silent stop of {self.name}")
