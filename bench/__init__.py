"""Benchmarks, run from the repository root as ``python -m bench NAME`` (or ``all``).

Each benchmark is a module ``bench/NAME.py`` with two functions:

- ``run() -> dict``: measure, and return JSON-ready figures;
- ``summary(result: dict) -> str``: one line for the terminal.

``python -m bench NAME`` writes the figures to ``bench/results/NAME.json`` and prints the line.
Speed is measured here, never asserted in tests.
"""
