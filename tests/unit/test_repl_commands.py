"""The REPL's parser (no eval, literals only) and its commands on a real runtime and store."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.redact import Redactor
from ops.repl_commands import COMMANDS, OPERATOR_KINDS, Commands
from ops.repl_parse import Call, ReplError, parse
from protocol.records import AuditEntry
from protocol.supervision import FaultAction
from storage import Store
from supervision import FaultPlan, Runtime
from tests.unit.markets import discovered
from tests.unit.markets import key as market
from tests.unit.ops_actors import SETTLE, ops_runtime

pytestmark = pytest.mark.timeout(60)

SECRET = "c3" * 32
NAMES = set(COMMANDS)


# --- the parser ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "call"),
    [
        ("actors()", Call("actors")),
        ("  actors  ", Call("actors")),
        ('state("scheduler")', Call("state", ("scheduler",))),
        ("jobs(state='dead', limit=5)", Call("jobs", (), {"state": "dead", "limit": 5})),
        (
            'ask("x", {"kind": "tick", "now": 1.5, "l": [1, (2, 3)], "b": b"\\x00", "n": None})',
            Call(
                "ask", ("x", {"kind": "tick", "now": 1.5, "l": [1, (2, 3)], "b": b"\0", "n": None})
            ),
        ),
        ("inject({'actor': 'a', 'action': 'raise', 'times': -1})", None),
    ],
)
def test_accepted_lines(line: str, call: Call | None) -> None:
    parsed = parse(line, NAMES)
    if call is not None:
        assert parsed == call


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("", "empty line"),
        ('__import__("os").system("id")', "only calls of a command"),
        ("state.__class__", "only calls of a command"),
        ("open('/etc/passwd')", "unknown command 'open'"),
        ("exec('1')", "unknown command 'exec'"),
        ("state(name)", "argument 1 of state() must be a literal"),
        ("state(f'{1}')", "must be a literal"),
        ("jobs(limit=10**9)", "argument limit= of jobs() must be a literal"),
        ("ask('x', {'kind': print})", "must be a literal"),
        ("state(*['a'])", "*arguments are not accepted"),
        ("jobs(**{'limit': 1})", "**arguments are not accepted"),
        ("state('a'", "syntax error"),
        ("actors(); actors()", "syntax error"),
        ("x = 1", "syntax error"),
        ("lambda: 1", "only calls of a command"),
        ("[actors() for _ in 'ab']", "only calls of a command"),
        ("state(" * 500 + ")" * 500, "syntax error"),
        ("state('" + "a" * 20_000 + "')", "exceeds"),
    ],
)
def test_refused_lines(line: str, error: str) -> None:
    with pytest.raises(ReplError, match=re.escape(error)):
        parse(line, NAMES)


@given(st.text(max_size=200))
def test_the_parser_never_fails_otherwise(line: str) -> None:
    with contextlib.suppress(ReplError):
        parse(line, NAMES)


# --- the commands --------------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Runtime, Store, Commands]]:
    snapshots = {"signer:dev": {"nonce": 3, "key": "0x" + SECRET}}
    with ops_runtime(tmp_path, snapshots, faults=FaultPlan()) as (rt, store):
        kinds = OPERATOR_KINDS | {"test_ops_leak"}  # the stand-ins' way to crash
        yield (
            rt,
            store,
            Commands(rt, store, Redactor([SECRET]).redact, ask_timeout_s=2, kinds=kinds),
        )


def ok(commands: Commands, line: str) -> str:
    good, text = commands.run(line)
    assert good, text
    return text


def refused(commands: Commands, line: str) -> str:
    good, text = commands.run(line)
    assert not good, text
    return text


def test_actors_and_state_are_redacted(live: tuple[Runtime, Store, Commands]) -> None:
    rt, _, commands = live
    assert '"key": "[REDACTED]"' in ok(commands, 'state("signer:dev")')
    rt.tell("signer:dev", {"kind": "x"})  # not a message: the stand-in crashes on it
    rt.wait_for(lambda: rt.restarts("signer:dev") == 1)
    leak = refused(commands, 'ask("signer:dev", {"kind": "test_ops_leak"})')
    assert "RuntimeError: leaking [REDACTED]" in leak
    rt.wait_for(lambda: SECRET in getattr(rt.registry.entry("signer:dev"), "last_error", ""))
    table = ok(commands, "actors()")
    assert "leaking [REDACTED]" in table and SECRET not in table
    assert "no actor named 'ghost'" in refused(commands, 'state("ghost")')
    assert "actor's name" in refused(commands, "state(3)")


def test_messages_are_validated_by_their_model(live: tuple[Runtime, Store, Commands]) -> None:
    _, _, commands = live
    assert "told scheduler: get_state" in ok(commands, 'tell("scheduler", {"kind": "get_state"})')
    assert "a second timer loop" in refused(
        commands, 'tell("scheduler", {"kind": "tick", "now": 0})'
    )
    assert '"jobs"' in ok(commands, 'ask("scheduler", {"kind": "get_state"})')
    assert "unknown message kind 'job'" in refused(
        commands, 'ask("scheduler", {"kind": "job"})'
    )  # a stored record, not a message
    assert 'has no "kind"' in refused(commands, 'tell("scheduler", {"now": 1})')
    assert 'a dict with a "kind"' in refused(commands, 'tell("scheduler", "tick")')
    bad = refused(
        commands,
        'ask("scheduler", {"kind": "operator_command", "action": "retry", '
        '"key": {"chain": "dev", "address": "0x12"}, "operator": "me"})',
    )
    assert "invalid operator_command message: field key.address" in bad
    assert "field action" in refused(
        commands,
        'ask("scheduler", {"kind": "operator_command", "action": "explode", '
        '"key": {"chain": "dev", "address": "0x' + "1" * 40 + '"}, "operator": "me"})',
    )
    assert "test_ops_leak" in ok(commands, "kinds()")
    assert "listener_recover" in ok(commands, "kinds()")  # operations.md's recovery
    assert '"jobs"' in ok(commands, 'ask("scheduler", {"kind": "get_state"}, timeout_s=20)')
    for wrong in ("0", "-1", "51", '"5"', "True"):
        assert "timeout_s" in refused(
            commands, f'ask("scheduler", {{"kind": "get_state"}}, timeout_s={wrong})'
        )
    assert "no actor named 'nobody'" in refused(commands, 'tell("nobody", {"kind": "get_state"})')


@pytest.mark.parametrize(
    "message",
    [
        '{"kind": "submit_tx", "intent_id": "x", "chain": "dev", "to": "0x' + "11" * 20 + '", '
        '"data": b"", "value": 1000000000000000000, "reply_to": "scheduler"}',
        '{"kind": "resolution_progress", "key": {"chain": "dev", "address": "0x'
        + "11" * 20
        + '"}, "state": "FINALIZED"}',
        '{"kind": "tx_confirmed", "intent_id": "x", "tx_hash": "0x' + "22" * 32 + '"}',
        '{"kind": "data_answer", "query_id": "q", "responses": [], "value": "1"}',
    ],
)
def test_messages_between_actors_are_refused(
    live: tuple[Runtime, Store, Commands], message: str
) -> None:
    """From a prompt they would sign, commit or finalize what no data proves."""
    _, store, commands = live
    for verb in ("ask", "tell"):
        text = refused(commands, f'{verb}("signer:dev", {message})')
        assert "is a message between actors, not for the REPL" in text
    assert "submit_tx" not in ok(commands, "kinds()")
    assert [e for _, e in store.items("audit", expect=AuditEntry) if e.actor == "repl"] == []


def test_every_ask_tell_and_inject_is_audited_first(live: tuple[Runtime, Store, Commands]) -> None:
    _, store, commands = live
    ok(commands, 'ask("scheduler", {"kind": "get_state"})')
    ok(commands, 'tell("scheduler", {"kind": "get_state"})')
    ok(commands, 'inject({"actor": "signer:dev", "message": "get_state", "action": "drop"})')
    refused(commands, 'tell("nobody", {"kind": "get_state"})')  # no such actor: not sent
    entries = [e for _, e in store.items("audit", expect=AuditEntry) if e.actor == "repl"]
    assert [(e.action, e.subject) for e in entries] == [
        ("repl_ask", "scheduler"),
        ("repl_tell", "scheduler"),
        ("repl_inject", "signer:dev"),
    ]
    assert entries[0].detail["kind"] == "get_state" and entries[2].detail["action"] == "drop"


def test_jobs_dlq_and_retry(live: tuple[Runtime, Store, Commands]) -> None:
    rt, _, commands = live
    rt.services.extra["script"][str(market(2))] = "permanent"
    for n in (1, 2, 3):
        rt.ask("scheduler", discovered(market(n)))
    rt.clock.advance(100 + SETTLE)
    rt.wait_for(
        lambda: (
            {k: v for k, v in rt.state("scheduler")["jobs"].items() if v}
            == {"finalized": 2, "dead": 1}
        )
    )
    assert "3 of 3 jobs" in ok(commands, "jobs()")
    assert "1 of 2 finalized jobs" in ok(commands, 'jobs(state="finalized", limit=1)')
    assert "unknown job state 'lost'" in refused(commands, 'jobs(state="lost")')
    assert "limit must be" in refused(commands, "jobs(limit=0)")
    assert "too many positional arguments" in refused(commands, "jobs(None, 1, 2)")
    dlq = ok(commands, "dlq()")
    assert "1 jobs in the dead-letter queue" in dlq and "permanent!" in dlq
    assert str(market(2)) in dlq
    accepted = ok(commands, f'retry("{market(2)}")')
    assert accepted == f"retry of {market(2)} accepted: now waiting"
    assert "refused: cannot retry a finalized market" in refused(commands, f'retry("{market(1)}")')
    assert "not a market key 'nope'" in refused(commands, 'retry("nope")')
    assert "unknown market" in refused(commands, f'retry("{market(9)}")')


def test_inject_adds_a_fault_rule(live: tuple[Runtime, Store, Commands]) -> None:
    rt, _, commands = live
    text = ok(commands, 'inject({"actor": "signer:dev", "message": "get_state", "action": "drop"})')
    assert "fault rule added (1 in the plan)" in text
    assert rt.faults is not None and rt.faults.rules()[0].action is FaultAction.DROP
    assert ok(commands, 'ask("signer:dev", {"kind": "get_state"})') == "(no answer)"  # dropped
    assert "field action" in refused(commands, 'inject({"actor": "x", "action": "melt"})')
    assert "field actor" in refused(commands, 'inject({"action": "raise"})')


def test_inject_without_a_fault_plan_says_so(tmp_path: Path) -> None:
    with ops_runtime(tmp_path) as (rt, store):
        commands = Commands(rt, store, Redactor().redact)
        text = refused(commands, 'inject({"actor": "x", "action": "raise"})')
    assert "no fault plan" in text


def test_help_and_completion(live: tuple[Runtime, Store, Commands]) -> None:
    _, _, commands = live
    assert all(usage in ok(commands, "help()") for usage, _ in COMMANDS.values())
    assert ok(commands, 'help("dlq")').startswith("dlq()")
    assert ok(commands, 'complete("sta")') == "state("
    assert ok(commands, 'complete("j")') == "jobs("
    assert ok(commands, "complete('\"sig')") == '"signer:dev"'
    assert ok(commands, 'complete("\'get_st")') == "'get_state'"
    assert '"dead"' in ok(commands, "complete('\"de')").splitlines()
    assert ok(commands, 'complete("zz")') == ""
