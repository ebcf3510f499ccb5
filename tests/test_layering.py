"""The import contract covers the whole package: a module left out of ``[tool.importlinter]`` could import anything.

``nox -s lint`` runs the contract itself (``lint-imports``); this test keeps it complete.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")


def _layered_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [name.strip() for layer in contract["layers"] for name in layer.split("|")]


def _top_level_modules() -> set[str]:
    package = ROOT / "portable_nn"
    names = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    names |= {p.parent.name for p in package.glob("*/__init__.py")}
    return {f"portable_nn.{name}" for name in names}


def test_every_module_of_the_package_is_in_one_layer():
    layered = _layered_modules()
    assert len(layered) == len(set(layered)), "a module is listed in two layers"
    missing = sorted(_top_level_modules() - set(layered))
    assert not missing, f"modules outside the import contract (add them to [tool.importlinter]): {missing}"
    stale = sorted(set(layered) - _top_level_modules())
    assert not stale, f"the import contract names modules that do not exist: {stale}"
