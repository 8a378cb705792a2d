"""The usage examples in storage's docstrings run and stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

# storage.committer is internal (it runs behind Store.write); its docstring sketches, not runs.
MODULES = [
    "storage",
    "storage.checkpoints",
    "storage.errors",
    "storage.gate",
    "storage.group_commit",
    "storage.indexes",
    "storage.lock",
    "storage.migrate",
    "storage.schema",
    "storage.store",
    "storage.txn",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no usage example"
    assert result.failed == 0
