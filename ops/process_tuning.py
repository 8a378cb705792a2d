"""Settings of the Python process that owns a daemon: its keccak backend, garbage collector
and recursion limit.

    use_fast_keccak()             # first thing: before anything has hashed
    ...                           # load the config, start the daemon (it calls limit_recursion)
    tune_gc(young=200_000)        # once the daemon's tree is up

The first two only change speed, never a result; the CLI (``runner.py``) and ``bench.burst``
call them, while a process that merely embeds a ``Daemon`` (the tests) keeps its own settings.
Why each (measured under a burst of due markets): docs/adr/0009-process-tuning.md.
``limit_recursion`` is safety, not speed: ``Daemon.start`` calls it in every process.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import sys

KECCAK_BACKEND_ENV = "ETH_HASH_BACKEND"
FAST_KECCAK = "pysha3"
"""eth-hash's backend for safe-pysha3's C keccak (the module ``sha3``)."""


def use_fast_keccak() -> str:
    """Have eth-hash hash with safe-pysha3 unless the environment chose a backend already.

    eth-hash reads ``ETH_HASH_BACKEND`` once, at the first hash of the process; without it, it
    takes pycryptodome, which eth-keyfile always installs, and whose Python wrapper makes a
    keccak of a hundred bytes cost about 8 µs against 1.4 µs. Returns the backend the
    environment names now ("" when eth-hash will choose)::

        use_fast_keccak()   # "pysha3"; or what ETH_HASH_BACKEND already said
    """
    if KECCAK_BACKEND_ENV not in os.environ and importlib.util.find_spec("sha3") is not None:
        os.environ[KECCAK_BACKEND_ENV] = FAST_KECCAK
    return os.environ.get(KECCAK_BACKEND_ENV, "")


SAFE_RECURSION_LIMIT = 1000
"""CPython's own default: the depth at which ``json`` raises ``RecursionError``, well inside
the C stack of any thread."""


def limit_recursion() -> int:
    """Set the interpreter's recursion limit back to ``SAFE_RECURSION_LIMIT`` if a module raised
    it; the limit now.

    py_ecc, which eth-account and web3 import, sets it to 100,000 at import. At that depth the
    ``json`` module's C parser overflows a thread's stack on a deeply nested body (a node, the
    Hyperliquid API or a webhook sending ``[[[[...``) and the process dies of a segmentation
    fault instead of raising ``RecursionError``, which the clients turn into a malformed-reply
    error. py_ecc is imported here first, so its import cannot raise the limit again later::

        >>> limit_recursion() <= SAFE_RECURSION_LIMIT
        True
    """
    if importlib.util.find_spec("py_ecc") is not None:
        import py_ecc  # noqa: F401  (its import-time setrecursionlimit happens now, not later)
    if sys.getrecursionlimit() > SAFE_RECURSION_LIMIT:
        sys.setrecursionlimit(SAFE_RECURSION_LIMIT)
    return sys.getrecursionlimit()


def tune_gc(young: int) -> bool:
    """Freeze the heap as it is and collect the young generation every ``young`` new objects;
    whether anything changed (``young`` 0: nothing).

    CPython's defaults (a young collection every 700 new container objects, a full one each time
    the long-lived heap has grown by a quarter) suit short scripts. In a daemon holding
    thousands of specs, jobs and cached pages, every full collection walks all of them. Frozen
    objects (``gc.freeze``) are never scanned again and are still freed by reference counting;
    garbage cycles are still collected, a little later::

        >>> before = gc.get_threshold()
        >>> tune_gc(young=50_000), gc.get_threshold()[0]
        (True, 50000)
        >>> gc.unfreeze(); gc.set_threshold(*before)   # (undone: this is a doctest)
    """
    if young <= 0:
        return False
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young, older, oldest)
    return True
