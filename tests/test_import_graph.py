"""scripts/import_graph.py finds what it must: cycles, upward imports, lazy string imports."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_graph.py"


@pytest.fixture(scope="module")
def import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["import_graph"]


def make_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "rlreward"
    for name, code in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code))
    return root


def check(import_graph, root: Path, capsys) -> tuple[int, str]:
    rc = import_graph.main(["--root", str(root)])
    return rc, capsys.readouterr().out


def test_a_downward_package_passes(import_graph, tmp_path, capsys):
    root = make_package(
        tmp_path,
        {
            "errors.py": "",
            "schema.py": "from rlreward.errors import x\n",
            "rewards/__init__.py": "",
            "rewards/a.py": "from rlreward import schema\nfrom . import b\n",
            "rewards/b.py": "",
        },
    )
    rc, out = check(import_graph, root, capsys)
    assert rc == 0, out
    assert "rewards       -> schema" in out and "no cycle, no upward import" in out


def test_upward_imports_are_found_in_functions_and_lazy_strings(import_graph, tmp_path, capsys):
    root = make_package(
        tmp_path,
        {
            "errors.py": "",
            "rewards/__init__.py": "",
            "rewards/wrap.py": "def f():\n    from rlreward.graders.base import g\n",
            "rewards/lazy.py": 'TABLE = {"x": "rlreward.training.trainer:Trainer"}\n',
            "graders/__init__.py": "",
            "graders/base.py": "import rlreward.rewards.wrap\n",
            "training/__init__.py": "",
            "training/trainer.py": "def meta():\n    import rlreward\n",
        },
    )
    rc, out = check(import_graph, root, capsys)
    assert rc == 1
    assert "upward import rewards -> graders: rlreward.rewards.wrap:2" in out
    assert "upward import rewards -> training: rlreward.rewards.lazy:1" in out
    assert "upward import training -> __init__" in out
    assert "package cycle: graders -> rewards -> graders" in out


def test_module_cycles_inside_one_package_are_found(import_graph, tmp_path, capsys):
    root = make_package(
        tmp_path,
        {
            "rl/__init__.py": "",
            "rl/config.py": "def check():\n    from rlreward.rl.ppo import S\n",
            "rl/ppo.py": "from rlreward.rl.config import run_args\n",
        },
    )
    rc, out = check(import_graph, root, capsys)
    assert rc == 1
    assert "module cycle: rlreward.rl.config -> rlreward.rl.ppo -> rlreward.rl.config" in out


def test_unknown_top_level_names_must_be_given_a_floor(import_graph, tmp_path, capsys):
    root = make_package(
        tmp_path, {"newthing.py": "from rlreward.errors import x\n", "errors.py": ""}
    )
    rc, out = check(import_graph, root, capsys)
    assert rc == 1 and "'newthing' has no floor in LAYERS" in out
