"""Import graph of rlreward/: prints the package-level graph, fails on cycles and upward imports.

Every import counts, wherever it sits (module top, inside a function, under
``TYPE_CHECKING``), and so does a lazy one: ``importlib.import_module("rlreward....")`` or a
``"rlreward.pkg.module[:name]"`` string constant in a lazy-export table, since each loads
that module at run time all the same.

Nodes are the first level under ``rlreward`` (``graders``, ``schema``, ``runner``, ...).
``LAYERS`` below declares the floors, bottom first: a node may import its own floor's
modules and anything below, never above. The package ``__init__`` (the public API) and
``__main__`` sit on top and are left out of the graph. Exit status: 0 when clean, 1 on a
cycle (package level or module level) or an upward import.

    python scripts/import_graph.py            # graph + verdict
    python scripts/import_graph.py --modules  # also every module-level edge
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "rlreward"
PACKAGE = "rlreward"

#: floors, bottom first (shared/DESIGN.md "Layers"); a node may import only its floor and below.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "_version"),
    ("schema", "messages", "checks", "callables"),
    ("results", "usage", "models", "cache", "dataset", "embedded", "data", "monitoring"),
    ("rewards",),
    ("graders",),
    ("aggregators", "runner", "reward"),
    ("training",),
    ("integrations",),
    ("rl", "cli"),
]
TOP = {"__init__", "__main__"}

_MODULE_STRING = re.compile(rf"^{PACKAGE}(\.\w+)+(:[\w.]+)?$")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (a module or module.attribute) refers to."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join([*anchor, base] if base else anchor)
            # "from pkg import mod" imports pkg.mod when mod is a module, else pkg itself
            # (``_resolve`` keeps the longest known module of "pkg.name")
            targets = [
                f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names
            ]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _MODULE_STRING.match(node.value)
        ):
            targets = [node.value.split(":")[0]]
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != module:
                    yield resolved, getattr(node, "lineno", 0)


def node_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def floor_of(node: str) -> int | None:
    for index, floor in enumerate(LAYERS):
        if node in floor:
            return index
    return None


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The shortest cycle through each node that lies on one, without repeats."""
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in sorted(graph):
        cycle = _shortest_cycle(graph, start)
        if cycle is not None and frozenset(cycle) not in seen:
            seen.add(frozenset(cycle))
            cycles.append(cycle)
    return cycles


def _shortest_cycle(graph: dict[str, set[str]], start: str) -> list[str] | None:
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        next_frontier: list[str] = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if w not in parent:
                    parent[w] = v
                    next_frontier.append(w)
        frontier = next_frontier
    return None


def _add(edges: dict[tuple[str, str], list[str]], key: tuple[str, str], where: str) -> None:
    found = edges.setdefault(key, [])
    if where not in found:
        found.append(where)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="print module-level edges too")
    parser.add_argument("--root", type=Path, default=ROOT, help="the package directory to check")
    args = parser.parse_args(argv)

    modules = all_modules(args.root)
    module_graph: dict[str, set[str]] = {m: set() for m in modules}
    package_edges: dict[tuple[str, str], list[str]] = {}
    for module, path in modules.items():
        for target, line in _imports(module, path, modules):
            module_graph[module].add(target)
            src, dst = node_of(module), node_of(target)
            # the public API (``rlreward/__init__``) may import anything; nothing imports it
            if src not in TOP and src != dst:
                _add(package_edges, (src, dst), f"{module}:{line} -> {target}")

    package_graph: dict[str, set[str]] = {}
    for src, dst in package_edges:
        package_graph.setdefault(src, set()).add(dst)
        package_graph.setdefault(dst, set())

    problems: list[str] = []
    print("package-level import graph (node -> nodes it imports), floors bottom first:")
    nodes = sorted(package_graph, key=lambda n: (floor_of(n) is None, floor_of(n) or 0, n))
    for node in nodes:
        floor = floor_of(node)
        label = "?" if floor is None else str(floor)
        print(f"  [{label}] {node:13s} -> {', '.join(sorted(package_graph[node])) or '-'}")
        if floor is None and node not in TOP:
            problems.append(f"{node!r} has no floor in LAYERS: add it to scripts/import_graph.py")

    for (src, dst), where in sorted(package_edges.items()):
        src_floor, dst_floor = floor_of(src), floor_of(dst)
        if dst == "__init__" or (
            src_floor is not None and dst_floor is not None and dst_floor > src_floor
        ):
            problems.append(f"upward import {src} -> {dst}: " + "; ".join(where))

    for cycle in find_cycles(package_graph):
        problems.append("package cycle: " + " -> ".join(cycle))
    for cycle in find_cycles(module_graph):
        problems.append("module cycle: " + " -> ".join(cycle))

    if args.modules:
        print("module-level edges:")
        for module in sorted(module_graph):
            for target in sorted(module_graph[module]):
                print(f"  {module} -> {target}")

    if problems:
        print(f"\n{len(problems)} problem(s):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("\nno cycle, no upward import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
