"""Where the recorded Hyperliquid cassettes live.

``ORACLE_RUNNER_FIXTURES`` overrides the default ``<repo root>/../shared/fixtures``; it may name
either that fixtures root (holding ``hyperliquid/cassettes``) or the cassette directory itself::

    ds = Dataset.from_cassettes(cassettes_dir())
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = "ORACLE_RUNNER_FIXTURES"


def cassettes_dir() -> Path:
    """The cassette directory (not checked for existence)."""
    override = os.environ.get(ENV_VAR)
    root = Path(override) if override else REPO_ROOT.parent / "shared" / "fixtures"
    nested = root / "hyperliquid" / "cassettes"
    return nested if nested.is_dir() or not override else root
