"""The usage examples in the project's docstrings run and stay true.

Every module of the project's packages whose source holds a ``>>>`` example is collected, so
a new example is tested the day it is written. (``storage.committer`` and the actors sketch
their flow in indented pseudo-code, not ``>>>``, because it cannot run alone.)
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("actors", "devnet", "ops", "protocol", "sources", "storage", "supervision")


def modules_with_examples() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " not in path.read_text(encoding="utf-8"):
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append(".".join(parts))
    return found


MODULES = modules_with_examples()


def test_the_examples_are_found() -> None:
    assert {"storage.store", "sources.weight_budget", "ops.redact", "protocol.codec"} <= set(
        MODULES
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has a '>>> ' outside its docstrings' examples"
    assert result.failed == 0
