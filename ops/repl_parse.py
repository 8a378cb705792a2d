"""The REPL's language: one call of a known command, with literal arguments only.

    >>> parse('state("scheduler")', {"state"})
    Call(name='state', args=('scheduler',), kwargs={})
    >>> parse("jobs(state='dead', limit=5)", {"jobs"})
    Call(name='jobs', args=(), kwargs={'state': 'dead', 'limit': 5})
    >>> parse("actors", {"actors"})                     # a bare name is a call without arguments
    Call(name='actors', args=(), kwargs={})
    >>> try:
    ...     parse('__import__("os").system("id")', {"state"})
    ... except ReplError as exc:
    ...     print(exc)
    only calls of a command are accepted, e.g. state("scheduler")

Nothing is evaluated: the line is parsed with ``ast.parse(mode="eval")`` and each argument read
with ``ast.literal_eval`` (strings, bytes, numbers, tuples, lists, dicts, sets, booleans, None).
Every refusal is a ``ReplError`` whose message says what was wrong and where.
"""

from __future__ import annotations

import ast
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

MAX_LINE = 16 * 1024


class ReplError(ValueError):
    """A line the REPL will not run; the message is meant for the operator."""


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def _literal(node: ast.expr, where: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        shown = ast.unparse(node)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ReplError(
            f"{where} must be a literal (a string, number, list, dict, ...), not {shown}"
        ) from None


def parse(line: str, commands: Collection[str]) -> Call:
    """The command call on ``line``; ``ReplError`` for anything else."""
    text = line.strip()
    if not text:
        raise ReplError("empty line; help() lists the commands")
    if len(text) > MAX_LINE:
        raise ReplError(f"line of {len(text)} characters exceeds {MAX_LINE}")
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise ReplError(f"syntax error at column {exc.offset}: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise ReplError(f"cannot parse the line: {type(exc).__name__}") from None
    if isinstance(node, ast.Name):
        name, arg_nodes, keywords = node.id, [], []
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name, arg_nodes, keywords = node.func.id, node.args, node.keywords
    else:
        raise ReplError('only calls of a command are accepted, e.g. state("scheduler")')
    if name not in commands:
        known = ", ".join(sorted(commands))
        raise ReplError(f"unknown command {name!r}; the commands are: {known}")
    args = []
    for index, arg in enumerate(arg_nodes, start=1):
        if isinstance(arg, ast.Starred):
            raise ReplError(f"{name}(): *arguments are not accepted")
        args.append(_literal(arg, f"argument {index} of {name}()"))
    kwargs = {}
    for keyword in keywords:
        if keyword.arg is None:
            raise ReplError(f"{name}(): **arguments are not accepted")
        kwargs[keyword.arg] = _literal(keyword.value, f"argument {keyword.arg}= of {name}()")
    return Call(name, tuple(args), kwargs)
