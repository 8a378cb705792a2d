"""DESIGN §2: dependencies flow one way, ``protocol`` <- ``storage`` <- ``supervision`` <-
``sources`` <- ``actors`` <- ``ops`` <- ``runner``; an actor never imports another actor. Every
import statement counts, the lazy ones inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)
REPO = Path(__file__).resolve().parents[2]
LAYERS = ("protocol", "storage", "supervision", "sources", "actors", "ops", "runner")
TOOLING = ("devnet", "bench", "tests")
"""The project's other packages: they may import the layers; no layer imports them, but for
the CLI's ``demo`` and ``hl-sim`` commands, which run the devnet."""
CLI_TOOLING = {"runner": {"devnet"}}


def _imported(path: Path) -> set[str]:
    """Top-level project packages imported by the module at ``path``, with the actor modules
    named (``actors.signer``) so that actor-to-actor imports show."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "actors":
                names += [f"actors.{alias.name}" for alias in node.names]
        for name in names:
            top = name.split(".")[0]
            if top in LAYERS + TOOLING:
                found.add(".".join(name.split(".")[:2]) if top == "actors" else top)
    return found


def _modules(layer: str) -> list[Path]:
    root = REPO / layer
    return [REPO / "runner.py"] if layer == "runner" else sorted(root.rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(layer) + 1]) | CLI_TOOLING.get(layer, set())
    wrong = {
        str(path.relative_to(REPO)): sorted(bad)
        for path in _modules(layer)
        if (bad := {name.split(".")[0] for name in _imported(path)} - allowed)
    }
    assert wrong == {}


def test_an_actor_never_imports_another_actor() -> None:
    wrong = {}
    for path in _modules("actors"):
        own = f"actors.{path.stem}"
        others = {n for n in _imported(path) if n.startswith("actors.") and n != own}
        if others:
            wrong[path.name] = sorted(others)
    assert wrong == {}


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from devnet.environment import Devnet\n    import ops.api\n")
    assert _imported(module) == {"devnet", "ops"}
