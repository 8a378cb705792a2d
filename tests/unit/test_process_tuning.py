"""The daemon process's keccak backend and garbage collector settings (ops/process_tuning.py)."""

from __future__ import annotations

import doctest
import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_hash.backends import pycryptodome, pysha3

from ops import process_tuning
from ops.process_tuning import KECCAK_BACKEND_ENV, tune_gc, use_fast_keccak

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def gc_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_tune_gc_freezes_the_heap_and_spaces_young_collections(gc_restored: None) -> None:
    older = gc.get_threshold()[1:]
    assert tune_gc(young=12_345) is True
    assert gc.get_threshold() == (12_345, *older)
    assert gc.get_freeze_count() > 0


def test_tune_gc_zero_leaves_the_collector_alone(gc_restored: None) -> None:
    threshold = gc.get_threshold()
    assert tune_gc(young=0) is False
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0


def test_frozen_objects_are_still_freed_by_reference_counting(gc_restored: None) -> None:
    class Held:
        pass

    held = Held()
    tune_gc(young=50_000)
    freed: list[bool] = []
    ref = weakref.ref(held, lambda _: freed.append(True))
    del held
    assert ref() is None and freed == [True]


def test_a_backend_chosen_by_the_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KECCAK_BACKEND_ENV, "pycryptodome")
    assert use_fast_keccak() == "pycryptodome"
    assert os.environ[KECCAK_BACKEND_ENV] == "pycryptodome"


def test_fast_keccak_is_chosen_when_none_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KECCAK_BACKEND_ENV, "")  # recorded, so the test's choice is undone
    monkeypatch.delenv(KECCAK_BACKEND_ENV)
    assert use_fast_keccak() == "pysha3"
    assert os.environ[KECCAK_BACKEND_ENV] == "pysha3"


def test_the_cli_process_hashes_with_pysha3() -> None:
    """A fresh process that went through ``runner.main``: eth-hash's auto backend is pysha3's."""
    env = {k: v for k, v in os.environ.items() if k != KECCAK_BACKEND_ENV}
    probe = (
        "import contextlib, io, runner\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    runner.main(['--help'])\n"
        "from eth_utils import keccak, to_checksum_address\n"
        "to_checksum_address('0x' + '11' * 20)\n"
        "from eth_hash.auto import keccak as auto\n"
        "print(auto._backend.keccak256.__module__)\n"
    )
    command = [sys.executable, "-c", probe]
    out = subprocess.run(
        command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "eth_hash.backends.pysha3"


DEEP_JSON_PROBE = """
import json, sys, threading
{prepare}
import eth_account  # a keystore is read with it; it imports py_ecc
print(sys.getrecursionlimit())
def parse():
    try:
        json.loads(b"[" * 200_000 + b"]" * 200_000)
    except RecursionError:
        print("RecursionError")
worker = threading.Thread(target=parse)  # as an actor's thread parses a node's reply
worker.start()
worker.join()
"""


@pytest.mark.parametrize("limited", [False, True])
def test_a_deeply_nested_body_is_a_recursion_error_not_a_crash(limited: bool) -> None:
    """Without ``limit_recursion`` (which ``Daemon.start`` calls), py_ecc's limit of 100,000
    lets the json parser overflow a thread's stack: the process dies of SIGSEGV. With it, the
    parser raises ``RecursionError``, which the clients report as a malformed reply."""
    prepare = "from ops.process_tuning import limit_recursion; limit_recursion()" if limited else ""
    out = subprocess.run(
        [sys.executable, "-c", DEEP_JSON_PROBE.format(prepare=prepare)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if limited:
        assert out.returncode == 0, out.stderr[-500:]
        assert out.stdout.split() == ["1000", "RecursionError"]
    else:  # the hazard the limit removes, shown
        assert out.stdout.split()[:1] == ["100000"]
        assert out.returncode == -11  # SIGSEGV


@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 135, 136, 137, 1000, 100_000])
def test_both_backends_hash_alike(size: int) -> None:
    data = bytes((n * 7 + size) % 256 for n in range(size))
    assert pysha3.keccak256(data) == pycryptodome.keccak256(data)


def test_docstring_examples(gc_restored: None) -> None:
    result = doctest.testmod(process_tuning)
    assert result.attempted > 0 and result.failed == 0
