"""Every fenced block in README.md and docs/ runs in CI as written.

python blocks run in a subprocess, bash blocks in ``bash -euo pipefail``, both from a
temporary working directory holding copies of examples/ and recipes/ (so relative paths
work as in a fresh clone and nothing is written into the repository), offline, with the
local OpenAI-protocol server (tests/openai_server.py) as ``OPENAI_BASE_URL`` for the
blocks marked as needing a judge server (and no judge server for the others), and no
``OPENAI_API_KEY``. yaml blocks are parsed. A block that cannot run here carries a
marker (docs/_hooks/codeblocks.py) and is skipped with its reason printed; an unmarked
block that fails fails the test.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parents[1]
BLOCK_TIMEOUT_S = 300


def _codeblocks() -> ModuleType:
    path = ROOT / "docs" / "_hooks" / "codeblocks.py"
    spec = importlib.util.spec_from_file_location("rlreward_docs_codeblocks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cb = _codeblocks()
DOC_FILES = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").rglob("*.md") if "_hooks" not in p.parts),
]
BLOCKS = [b for f in DOC_FILES for b in cb.blocks(f)]
RUNNABLE = [b for b in BLOCKS if b.lang in cb.EXECUTED or b.lang == "yaml"]


def _workdir(tmp_path: Path) -> Path:
    """A fresh-clone-like working directory: copies of examples/ and recipes/, a bin/."""
    work = tmp_path / "work"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("examples", "recipes"):
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in (("python", ""), ("python3", ""), ("rlreward", " -m rlreward")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}"{target} "$@"\n')
        shim.chmod(0o755)
    (tmp_path / "home").mkdir()
    return work


def _env(tmp_path: Path, server: OpenAIServer | None) -> dict[str, str]:
    """Offline, no key; OPENAI_BASE_URL only for blocks marked as needing a judge server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLREWARD_"))}
    env.update(
        PATH=f"{tmp_path / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path / "home"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
    )
    if server is not None:
        env["OPENAI_BASE_URL"] = server.url
    return env


_SNIPPET = re.compile(r'^--8<-- "(?P<path>[^"]+)"$', re.M)


def _code(block: cb.Block) -> str:
    """The block as rendered: pymdownx.snippets lines replaced by the file they include."""
    return _SNIPPET.sub(lambda m: (ROOT / m["path"]).read_text(), block.code)


def _script(block: cb.Block) -> str:
    if block.lang != "console":
        return _code(block)
    return "\n".join(line[2:] for line in block.code.splitlines() if line.startswith("$ "))


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_block_runs_as_written(
    block: cb.Block, _openai_server_session: OpenAIServer, tmp_path: Path
) -> None:
    if block.marker is not None and not block.marker.runs:
        pytest.skip(f"{block.id}: {block.marker.describe()}")
    server = block.marker is not None and block.marker.kind == "server"
    if block.lang == "yaml":
        assert isinstance(yaml.safe_load(_code(block)), dict), f"{block.id}: not a YAML mapping"
        return
    work = _workdir(tmp_path)
    kind = cb.EXECUTED[block.lang]
    script = work / ("block.py" if kind == "python" else "block.sh")
    script.write_text(_script(block))
    cmd = (
        [sys.executable, script.name]
        if kind == "python"
        else ["bash", "-euo", "pipefail", script.name]
    )
    try:
        run = subprocess.run(
            cmd,
            cwd=work,
            env=_env(tmp_path, _openai_server_session if server else None),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{block.id}: still running after {BLOCK_TIMEOUT_S} s: {exc}")
    written = sorted(
        str(p.relative_to(work))
        for folder in ("examples", "recipes")
        for p in (work / folder).rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not (ROOT / p.relative_to(work)).exists()
    )
    assert run.returncode == 0, (
        f"{block.id} failed (exit {run.returncode}):\n{block.code}\n"
        f"--- stdout ---\n{run.stdout[-4000:]}\n--- stderr ---\n{run.stderr[-6000:]}"
    )
    assert not written, f"{block.id} wrote into tracked folders (use outputs/): {written}"


def test_every_block_has_a_known_language() -> None:
    unknown = [b.id + f" ({b.lang!r})" for b in BLOCKS if b.lang not in {*cb.EXECUTED, *cb.SHOWN}]
    assert not unknown, f"blocks in a language the runner neither runs nor shows: {unknown}"


def test_text_blocks_are_not_commands() -> None:
    """A shell or Python snippet hidden in a text block would escape the runner."""
    looks_runnable = re.compile(r"^\s*(\$ |pip |python |import |from \w+ import |rlreward )", re.M)
    hidden = [b.id for b in BLOCKS if b.lang in ("", "text") and looks_runnable.search(b.code)]
    assert not hidden, f"text blocks that look like code (give them a language): {hidden}"


def test_readme_markers_have_a_visible_note() -> None:
    """GitHub does not render the marker comment, so README says it in a visible line."""
    bad = [
        b.id
        for b in BLOCKS
        if b.path.name == "README.md" and b.marker is not None and not b.above.startswith(">")
    ]
    assert not bad, f"README blocks whose marker has no visible '> ...' note above it: {bad}"


def test_by_markers_name_existing_tests() -> None:
    for b in BLOCKS:
        if b.marker is None or b.marker.kind != "by":
            continue
        path, _, name = b.marker.reason.partition("::")
        file = ROOT / path
        assert file.is_file(), f"{b.id}: marker names {path}, which does not exist"
        assert re.search(rf"^def {re.escape(name)}\(", file.read_text(), re.M), (
            f"{b.id}: {path} has no test named {name!r}"
        )


def test_skipped_blocks_are_few_and_say_why() -> None:
    for b in BLOCKS:
        if b.marker is not None and b.marker.kind in ("skip", "no", "server"):
            assert len(b.marker.reason) >= 8, f"{b.id}: say why it is not run: {b.marker}"


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    i = ci.index("# --- the README test command (keep identical to README.md) ---")
    ci_command = ci[i + 1]
    readme_commands = [
        b.code.strip() for b in BLOCKS if b.path.name == "README.md" and b.lang == "bash"
    ]
    assert ci_command in readme_commands, (
        f"README.md must show .ci/run's command exactly:\n{ci_command}"
    )
    block = next(b for b in BLOCKS if b.path.name == "README.md" and b.code.strip() == ci_command)
    assert block.marker is not None and block.marker.kind == "no"
    # the main job's fresh-machine command installs the same way, then runs the recipe
    install = ci_command.split(" && pip install -e")[0]
    main_job = [c for c in readme_commands if c.endswith("python recipes/ppo_unsloth.py")]
    assert main_job and main_job[0].startswith(install + " && pip install -e '.["), main_job


def test_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; keep it a front page (<= 200)"
    links = re.findall(r"\]\((docs/[^)#]+)", "\n".join(lines))
    assert links, "README.md links to no docs pages"
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert not missing, f"README.md links to missing pages: {missing}"


_FIGURE = re.compile(
    r"\b\d[\d,.]*\s?(s|min|minutes|seconds|ms)\b(?!\w)|\b\d[\d,.]*\s?(texts|calls|samples|tokens)/s\b"
    r"|\b\d+-(second|minute)\b"
)


def test_time_figures_state_machine_load_and_source() -> None:
    """A measured time or rate names the machine and load and points at BENCHMARKS.md."""
    bad, checked = [], 0
    for path in DOC_FILES:
        if path.name == "benchmarks.md":
            continue
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for para in re.split(r"\n\s*\n", text):
            if not _FIGURE.search(para) or "timeout" in para:
                continue
            checked += 1
            machine = "machine" in para or "core" in para
            source = "BENCHMARKS" in para.replace("benchmarks.md", "BENCHMARKS")
            if not (machine and "load" in para and source):
                bad.append(f"{path.relative_to(ROOT)}: {para.strip()[:100]!r}")
    assert checked >= 4, f"only {checked} paragraphs with time figures: is _FIGURE still right?"
    assert not bad, "time figures without machine, load and BENCHMARKS.md:\n" + "\n".join(bad)
