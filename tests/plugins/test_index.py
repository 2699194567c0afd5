"""docs/plugins.md, the plugin index, is what docs/plugin_index.py writes: current, and complete for lab's own."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from lab.core.loading import load_registry, make_plugin_manager

DOCS = Path(__file__).parents[2] / "docs"


def index_script():
    spec = importlib.util.spec_from_file_location("plugin_index", DOCS / "plugin_index.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_index_is_what_the_script_writes_for_lab_itself():
    page = index_script().index(load_registry(make_plugin_manager(entry_points=False)))
    assert (DOCS / "plugins.md").read_text() == page, "run: python docs/plugin_index.py"


def test_the_index_lists_every_plugin_lab_plugins_lists(lab, tmp_path):
    rows = json.loads(lab("plugins", "--json").out)
    assert index_script().main(["--output", str(tmp_path / "plugins.md")]) == 0
    page = (tmp_path / "plugins.md").read_text()
    assert all(f"| `{row['name']}` | {row['kind']} |" in page for row in rows)
    assert all(f"## {row['package']} {row['version']}" in page for row in rows)
