"""Text for REPL answers: tables through ``rich`` and readable nested data, both redacted.

    table(["name", "status"], [["scheduler", "running"]], redact)   # aligned columns
    pretty({"jobs": {"waiting": 1}}, redact)                         # indented JSON

Values are redacted *before* they are laid out, so a secret cannot be split across wrapped
lines where a redaction of the finished text would no longer see it whole.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from typing import Any

from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ops.redact import scrub

PLAIN_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
"""Rich's SIMPLE_HEAD in ASCII: a dashed rule under the header, nothing else."""
WIDTH = 160
CELL = 120
"""Longest text shown in one table cell; longer ones end with an ellipsis."""


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready data: models dumped, keys as strings, enums as their value."""
    if depth > 32:
        return "..."
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="python"), depth + 1)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {
            k if isinstance(k, str) else str(plain(k, depth + 1)): plain(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v, depth + 1) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    return str(value)


def pretty(value: Any, redact: Callable[[str], str]) -> str:
    """Indented JSON of ``value`` after ``plain`` and redaction (bytes shown as their repr)."""
    clean = scrub(plain(value), redact)
    return json.dumps(clean, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _cell(value: Any, redact: Callable[[str], str]) -> Text:
    text = redact("" if value is None else str(value))
    text = " ".join(text.split())
    return Text(text if len(text) <= CELL else text[: CELL - 3] + "...")


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    redact: Callable[[str], str],
    title: str = "",
) -> str:
    """``title`` then aligned columns; cells are plain text (no markup), redacted one by one."""
    grid = Table(box=PLAIN_HEAD)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(_cell(value, redact) for value in row))
    out = io.StringIO()
    console = Console(
        file=out,
        width=WIDTH,
        color_system=None,
        force_terminal=False,
        highlight=False,
        markup=False,
        emoji=False,
    )
    console.print(grid)
    lines = [line.rstrip() for line in out.getvalue().splitlines() if line.strip()]
    return redact("\n".join([title, *lines] if title else lines))
