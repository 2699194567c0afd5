"""The layers of lab/ (pyproject.toml [tool.importlinter], docs/architecture.md) are enforced: the test command runs
`lint-imports` on the checkout, and here each contract is shown to fail on a copy of the code with one import that
breaks it, naming the contract and the import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """lab/, plugins/ and envs/ with the contracts, in a folder of their own."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for folder in ("lab", "plugins", "envs"):
        shutil.copytree(CHECKOUT / folder, tmp_path / folder, ignore=ignore)
    shutil.copy(CHECKOUT / "pyproject.toml", tmp_path)
    return tmp_path


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(str(root / folder) for folder in ("", "plugins", "envs"))
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path})


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}  # noqa: E402, F401\n")


def test_the_copy_keeps_every_contract(copy: Path) -> None:
    result = lint(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract", "shown"), [
    ("lab/core/errors.py", "from lab.training import checkpoints", "lab's layers",
     "lab.core.errors -> lab.training.checkpoints"),
    ("lab/tracking/runs.py", "from lab.commands import common", "Nothing but the command line imports lab.commands",
     "lab.tracking.runs -> lab.commands.common"),
    ("plugins/lab_agents/spaces.py", "from lab.core import config", "Built-in plugins and envs import only lab.api",
     "lab_agents.spaces -> lab.core.config"),
    ("lab/training/checkpoints.py", "from lab.training import runner", "No import cycle", "lab.training"),
])
def test_an_import_that_breaks_a_contract_fails_it(copy: Path, module: str, line: str, contract: str,
                                                   shown: str) -> None:
    add_import(copy / module, line)
    result = lint(copy)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken and shown in broken, result.stdout


def test_no_module_of_lab_is_in_an_import_cycle() -> None:
    """Module by module (the contract above looks at siblings, packages squashed), type-only imports and imports
    inside functions included: no strongly connected set of modules, and no module that imports itself."""
    import grimp

    graph = grimp.build_graph("lab", include_external_packages=False)
    imports = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    assert all(module not in imported for module, imported in imports.items()), "a module imports itself"
    for module in imports:
        for imported in imports[module]:
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            assert chain is None, f"import cycle: {module} -> {' -> '.join(chain)}"
