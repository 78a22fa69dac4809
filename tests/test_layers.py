"""The package's layers as the architecture draws them, read from the source's import statements.

No cycle between the subpackages of `src/sprout`; the router (the data plane, its own process) imports
only the shared leaves; nothing imports the CLI but `python -m sprout`.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "sprout"
#: What the data plane may import from the rest of Sprout: leaves that import nothing of Sprout's parts.
ROUTER_MAY_IMPORT = {"sprout.accessfiles", "sprout.errors", "sprout.paths", "sprout.spec.rules"}


def imports() -> list[tuple[str, str, str]]:
    """Every `sprout.*` import in src: (importing file, its top-level part, the imported module)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        part = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            found += [(str(rel), part, name) for name in names if name.startswith("sprout.")]
    return found


def part_of(module: str) -> str:
    """`sprout.router.table` → `router`."""
    return module.split(".")[1]


def test_the_scan_sees_the_imports() -> None:
    edges = {(part, part_of(module)) for _, part, module in imports()}
    assert ("cli", "controlplane") in edges and ("controlplane", "router") in edges


def test_no_cycle_between_subpackages() -> None:
    graph: dict[str, set[str]] = {}
    for _, part, module in imports():
        if part_of(module) != part:
            graph.setdefault(part, set()).add(part_of(module))
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    assert cycles == [], "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def test_the_router_imports_only_the_shared_leaves() -> None:
    outside = sorted(
        (file, module)
        for file, part, module in imports()
        if part == "router" and part_of(module) != "router" and module not in ROUTER_MAY_IMPORT
    )
    assert outside == []


def test_nothing_imports_the_cli_but_python_m_sprout() -> None:
    importers = sorted(
        {file for file, part, module in imports() if part_of(module) == "cli" and part != "cli"}
    )
    assert importers == ["__main__.py"]
