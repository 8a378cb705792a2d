"""The REPL's commands against a live runtime and store; every answer is redacted text.

    commands = Commands(runtime, store, redact)
    ok, text = commands.run('state("scheduler")')      # never raises
    ok, text = commands.run('ask("scheduler", {"kind": "get_state"})')

``run`` parses the line (``ops.repl_parse``: a call of one of ``COMMANDS`` with literal
arguments), binds the arguments to the command's signature and runs it. A wrong line, an unknown
actor, a message that does not validate, a slow actor: each is a clear ``(False, text)``, never an
exception out of ``run``. Messages given to ``ask``/``tell`` are dicts whose ``kind`` is one of
``protocol.codec.CODEC.kinds()`` that is an actor message; they are validated by its model.
``ask`` and ``tell`` send only ``OPERATOR_KINDS``: reads, the scheduler's operator commands (audited
there) and recovery. The messages actors send each other (a transaction to sign, data, a receipt, a
resolver's report, a discovered market, a tick) are refused: from a prompt they would commit or
finalize what no data proves, or start a second timer loop. Every ``ask``, ``tell`` and ``inject``
is written to the audit log (``actor`` "repl") before it is sent. An actor crashes on a message it
has no handler for (and its supervisor restarts it).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pykka
from pydantic import BaseModel, ValidationError

from ops.repl_parse import ReplError, parse
from ops.repl_text import pretty, table
from protocol.codec import CODEC
from protocol.messages import CommandResult, Message, OperatorAction, OperatorCommand
from protocol.records import AuditEntry, Job, JobState
from protocol.spec import MarketKey
from protocol.supervision import FaultRule
from storage import Store
from supervision import NotRegistered, Runtime

COMMANDS = {
    "actors": ("actors()", "every actor: type, status, mailbox, restarts, last error"),
    "state": ('state("scheduler")', "an actor's snapshot"),
    "ask": (
        'ask(name, {"kind": ..., ...}, timeout_s=5)',
        "send a message, wait for and show the answer",
    ),
    "tell": ('tell(name, {"kind": ..., ...})', "send a message without waiting"),
    "kinds": ("kinds()", "the message kinds ask() and tell() accept"),
    "jobs": ('jobs(state="dead", limit=50)', "jobs from the store, of any or one state"),
    "dlq": ("dlq()", "the dead-letter queue, with the reasons"),
    "retry": ('retry("chain:0xMarket")', "ask the scheduler to retry a dead or parked market"),
    "inject": ('inject({"actor": "x", "action": "raise"})', "add a fault rule (FaultRule)"),
    "help": ('help() / help("ask")', "this text"),
    "complete": ('complete("sta")', "the candidates TAB offers"),
}
"""Name -> (usage, what it does)."""
log = logging.getLogger(__name__)
MAX_LIMIT = 10_000
OPERATOR_KINDS = frozenset({"get_state", "which_children", "operator_command", "listener_recover"})
"""The message kinds ``ask`` and ``tell`` may send (see the module docstring). Not the ticks
(each actor re-arms its own: one told from here would start a second loop, for good), nor the
supervisors' child commands (a second signer for a chain would own the same nonces; a stopped
child is forgotten)."""
MAX_ASK_TIMEOUT_S = 50.0
"""The longest ``ask(..., timeout_s=...)``: below the client's 60 s wait for an answer."""


def _when(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"field {'.'.join(map(str, e['loc'])) or '(message)'}: {e['msg']}" for e in exc.errors()
    )


class Commands:
    """One instance per server; methods named in ``COMMANDS`` are what a line may call."""

    def __init__(
        self,
        runtime: Runtime,
        store: Store | None,
        redact: Callable[[str], str],
        *,
        ask_timeout_s: float = 5.0,
        scheduler: str = "scheduler",
        kinds: frozenset[str] = OPERATOR_KINDS,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.redact = redact
        self.ask_timeout_s = ask_timeout_s
        self.scheduler = scheduler
        self.allowed_kinds = kinds
        self._table: dict[str, Callable[..., str]] = {
            name: getattr(self, name) for name in COMMANDS
        }

    def run(self, line: str) -> tuple[bool, str]:
        """``(ok, text)`` for one line; the text is redacted."""
        try:
            call = parse(line, self._table)
            command = self._table[call.name]
            try:
                bound = inspect.signature(command).bind(*call.args, **call.kwargs)
            except TypeError as exc:
                raise ReplError(f"{call.name}(): {exc}; usage: {COMMANDS[call.name][0]}") from None
            return True, self.redact(command(*bound.args, **bound.kwargs))
        except ReplError as exc:
            return False, self.redact(str(exc))
        except Exception as exc:
            return False, self.redact(f"{type(exc).__name__}: {exc}")

    # --- actors --------------------------------------------------------------------------

    def actors(self) -> str:
        entries = sorted(self.runtime.registry.entries(), key=lambda e: e.name)
        rows = [
            (
                e.name,
                e.actor_type,
                e.status.value,
                e.mailbox_depth(),
                e.incarnation,
                e.restarts,
                e.last_error,
            )
            for e in entries
        ]
        columns = ["name", "type", "status", "mailbox", "incarnation", "restarts", "last error"]
        return table(columns, rows, self.redact, title=f"{len(rows)} actors")

    def state(self, name: str) -> str:
        self._name(name)
        return pretty(
            self._ask(name, "get_state", lambda: self.runtime.state(name, self._t)), self.redact
        )

    def ask(self, name: str, message: dict[str, Any], timeout_s: float | None = None) -> str:
        self._name(name)
        msg = self._message(message)
        wait = self._t if timeout_s is None else self._timeout(timeout_s)
        self._audit("repl_ask", name, msg)
        answer = self._ask(name, msg.kind, lambda: self.runtime.ask(name, msg, wait), wait)
        return "(no answer)" if answer is None else pretty(answer, self.redact)

    def tell(self, name: str, message: dict[str, Any]) -> str:
        self._name(name)
        msg = self._message(message)
        self._audit("repl_tell", name, msg)
        if self.runtime.tell(name, msg):
            return f"told {name}: {msg.kind}"
        raise ReplError(f"dropped: no actor named {name!r} (unknown or stopped for good)")

    def kinds(self) -> str:
        return "\n".join(sorted(self._kinds()))

    # --- jobs ----------------------------------------------------------------------------

    def jobs(self, state: str | None = None, limit: int = 50) -> str:
        wanted = self._state(state)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ReplError(f"limit must be an integer from 1 to {MAX_LIMIT}")
        shown, total = self._jobs(wanted, limit)
        rows = [
            (
                str(j.key),
                j.state.value,
                j.stage,
                j.attempts,
                _when(j.due_at),
                _when(j.next_attempt_at),
                j.last_error,
            )
            for j in shown
        ]
        columns = ["market", "state", "stage", "attempts", "due", "next attempt", "last error"]
        what = f"{wanted.value} jobs" if wanted else "jobs"
        return table(columns, rows, self.redact, title=f"{len(rows)} of {total} {what}")

    def dlq(self) -> str:
        shown, total = self._jobs(JobState.DEAD, MAX_LIMIT)
        rows = [
            (str(j.key), j.failure.value if j.failure else "", j.attempts, j.last_error)
            for j in shown
        ]
        title = f'{total} jobs in the dead-letter queue; retry("chain:0x...") to try one again'
        return table(["market", "failure", "attempts", "reason"], rows, self.redact, title=title)

    def retry(self, market: str) -> str:
        if not isinstance(market, str):
            raise ReplError('retry() takes a market key, e.g. retry("hyperevm:0xAbc...")')
        try:
            key = MarketKey.parse(market)
        except (ValueError, ValidationError) as exc:
            text = _problems(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ReplError(f"not a market key {market!r}: {text}") from None
        command = OperatorCommand(action=OperatorAction.RETRY, key=key, operator="repl")
        result = self._ask(
            self.scheduler, command.kind, lambda: self.runtime.ask(self.scheduler, command, self._t)
        )
        if not isinstance(result, CommandResult):
            raise ReplError(f"unexpected answer from {self.scheduler}: {result!r}")
        if not result.ok:
            raise ReplError(f"retry of {key} refused: {result.error}")
        return f"retry of {key} accepted: now {result.state}"

    # --- faults and help -----------------------------------------------------------------

    def inject(self, rule: dict[str, Any]) -> str:
        if not isinstance(rule, dict):
            raise ReplError(
                'inject() takes a dict, e.g. {"actor": "listener:*", "action": "raise"}'
            )
        faults = self.runtime.faults
        if faults is None:
            raise ReplError("this runtime has no fault plan: fault injection is off")
        try:
            parsed = FaultRule.model_validate(rule)
        except ValidationError as exc:
            raise ReplError(f"invalid fault rule: {_problems(exc)}") from None
        self._audit("repl_inject", parsed.actor, parsed)
        faults.add(parsed)
        fields = ", ".join(f"{k}={v}" for k, v in parsed.model_dump(mode="json").items())
        return f"fault rule added ({len(faults.rules())} in the plan): {fields}"

    def help(self, command: str | None = None) -> str:
        if command is None:
            width = max(len(usage) for usage, _ in COMMANDS.values())
            lines = [f"{usage:<{width}}  {what}" for usage, what in COMMANDS.values()]
            return "\n".join([*lines, "exit or Ctrl-D leaves; TAB completes names and kinds."])
        if command not in COMMANDS:
            raise ReplError(f"no command {command!r}")
        return "  ".join(COMMANDS[command])

    def complete(self, prefix: str = "") -> str:
        """Candidates for TAB: command names, or inside a quote actor names, kinds, states."""
        if not isinstance(prefix, str):
            raise ReplError("complete() takes a string")
        if prefix[:1] in ("'", '"'):
            quote, body = prefix[0], prefix[1:]
            words = {e.name for e in self.runtime.registry.entries()}
            words |= set(self._kinds()) | {s.value for s in JobState}
            return "\n".join(quote + w + quote for w in sorted(words) if w.startswith(body))
        return "\n".join(f"{name}(" for name in sorted(COMMANDS) if name.startswith(prefix))

    # --- helpers -------------------------------------------------------------------------

    @property
    def _t(self) -> float:
        return self.ask_timeout_s

    def _name(self, name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ReplError('the first argument is an actor\'s name, e.g. "scheduler"')
        if self.runtime.registry.entry(name) is None:  # a restarting one is waited for
            raise ReplError(f"no actor named {name!r}; actors() lists them")

    def _kinds(self) -> dict[str, type[Message]]:
        return {
            kind: model
            for kind, model in CODEC.kinds().items()
            if isinstance(model, type) and issubclass(model, Message) and kind in self.allowed_kinds
        }

    def _audit(self, action: str, subject: str, what: BaseModel) -> None:
        """The act, in the audit log, before it takes effect (a REPL without a store: logged)."""
        detail = {k: self.redact(str(v))[:200] for k, v in what.model_dump(mode="json").items()}
        entry = AuditEntry(
            ts=self.runtime.clock.now(), actor="repl", action=action, subject=subject, detail=detail
        )
        if self.store is None:
            log.warning("repl %s %s: %s", action, subject, detail)
            return
        self.store.audit(entry)

    def _message(self, data: Any) -> Message:
        if not isinstance(data, dict):
            raise ReplError('a message is a dict with a "kind", e.g. {"kind": "get_state"}')
        kind = data.get("kind")
        if not isinstance(kind, str):
            raise ReplError('the message has no "kind"; kinds() lists them')
        model = self._kinds().get(kind)
        known = CODEC.kinds().get(kind)
        if model is None and isinstance(known, type) and issubclass(known, Message):
            raise ReplError(
                f"{kind!r} is a message between actors, not for the REPL (it could commit what "
                "no data proves, or start a second timer loop); kinds() lists what may be sent"
            )
        if model is None:
            raise ReplError(f"unknown message kind {kind!r}; kinds() lists them")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise ReplError(f"invalid {kind} message: {_problems(exc)}") from None

    def _timeout(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ReplError(f"timeout_s is a number of seconds, not {value!r}")
        if not 0 < value <= MAX_ASK_TIMEOUT_S:
            raise ReplError(f"timeout_s must be above 0 and at most {MAX_ASK_TIMEOUT_S:g}")
        return float(value)

    def _ask(
        self, name: str, what: str, fn: Callable[[], Any], timeout_s: float | None = None
    ) -> Any:
        try:
            return fn()
        except NotRegistered as exc:
            raise ReplError(str(exc)) from None
        except pykka.Timeout:
            waited = self._t if timeout_s is None else timeout_s
            raise ReplError(f"{name} did not answer {what} within {waited:g} s") from None
        except Exception as exc:
            raise ReplError(f"{name} failed on {what}: {type(exc).__name__}: {exc}") from None

    def _state(self, state: Any) -> JobState | None:
        if state is None:
            return None
        try:
            return JobState(state)
        except ValueError:
            known = ", ".join(s.value for s in JobState)
            raise ReplError(f"unknown job state {state!r}; the states are: {known}") from None

    def _jobs(self, state: JobState | None, limit: int) -> tuple[list[Job], int]:
        if self.store is None:
            raise ReplError("this REPL has no store")
        shown: list[Job] = []
        total = 0
        for _, job in self.store.items("jobs", expect=Job):
            if state is None or job.state is state:
                total += 1
                if len(shown) < limit:
                    shown.append(job)
        return shown, total
