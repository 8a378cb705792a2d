"""``python -m bench NAME`` runs ``bench/NAME.py``; ``python -m bench all`` runs every one listed.

    $ python -m bench storage
    storage: checkpoint 3100/s vs raw LMDB 3300/s (ratio 0.94); ...

The figures go to ``bench/results/NAME.json`` (pretty JSON), the summary line to stdout.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from ops.process_tuning import use_fast_keccak

BENCHMARKS: tuple[str, ...] = ("runtime", "storage", "pricecache", "signer", "recovery", "burst")
"""What ``all`` runs, in order; add a module's name here when adding a benchmark."""

RESULTS = Path(__file__).resolve().parent / "results"


def run_one(name: str) -> dict[str, Any]:
    """Run ``bench.NAME``, write its JSON result, print its summary line; return the result."""
    if not name.isidentifier():
        raise SystemExit(f"not a benchmark name: {name!r}")
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"bench.{name}":
            raise
        raise SystemExit(f"no benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None
    result: dict[str, Any] = module.run()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(module.summary(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    use_fast_keccak()  # as the CLI does, before any benchmark's imports hash
    if len(args) != 1:
        print(f"usage: python -m bench NAME|all   (NAME: {', '.join(BENCHMARKS)})", file=sys.stderr)
        return 2
    for name in BENCHMARKS if args[0] == "all" else (args[0],):
        run_one(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
