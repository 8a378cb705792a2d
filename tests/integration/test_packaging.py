"""A non-editable install (the Dockerfile's ``pip install .``) carries every package the
daemon imports. The test suite runs on an editable install, which finds any source file, so
only a built wheel can show a subpackage the packaging config leaves out."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
TOP_LEVEL = ("protocol", "storage", "supervision", "actors", "sources", "ops", "devnet")

# Imported from the unpacked wheel alone: the editable install's finder is taken off first.
IMPORT_CHECK = """
import sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, sys.argv[1])
import runner, protocol.proof, ops.daemon, devnet.hl_sim.server, devnet.environment
for module in (runner, protocol.proof, ops.daemon, devnet.hl_sim.server):
    assert module.__file__.startswith(sys.argv[1]), module.__file__
print("ok")
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of what the Dockerfile copies (pip builds in the source tree, and a
    stale ``build/`` there would hide a missing package)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md", "runner.py"):
        shutil.copy(REPO / name, src / name)
    for top in TOP_LEVEL:
        shutil.copytree(REPO / top, src / top, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [*PIP_WHEEL, "--wheel-dir", str(out), str(src)],
        check=True,
        timeout=180,
        cwd=out,
    )
    (built,) = out.glob("oracle_runner-*.whl")
    return built


@pytest.mark.timeout(240)
def test_the_wheel_holds_every_package_of_the_source_tree(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = sorted(
        str(init.parent.relative_to(REPO))
        for top in TOP_LEVEL
        for init in (REPO / top).rglob("__init__.py")
    )
    assert "protocol/evaluation" in packages  # the subpackage a name list used to leave out
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert missing == []
    assert "runner.py" in names


@pytest.mark.timeout(240)
def test_the_daemon_imports_from_the_wheel_alone(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, str(unpacked)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
