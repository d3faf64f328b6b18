"""No import circle in labkit, counting module-level and in-function imports alike: a circle hidden inside a
function still ties the modules together (neither can be understood, tested or moved without the other)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules() -> dict[str, Path]:
    mods = {}
    for p in (ROOT / "labkit").rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    def owner(name: str) -> str | None:  # the module a dotted name lives in
        while name not in mods and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in mods else None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text())):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [owner(a.name) for a in node.names if a.name.startswith("labkit")]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up) + (f".{node.module}" if node.module else "")
                if base.startswith("labkit"):
                    # `from labkit.jobs import resume` is the submodule; `from labkit.jobs import Job`, the package
                    targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else owner(base) for a in node.names]
            graph[m] |= {t for t in targets if t and t != m}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_labkit_has_no_import_circle():
    assert _circles(_graph(_modules())) == []


def test_the_finder_finds_a_circle_through_an_in_function_import():
    """The check itself can fail: two modules that import each other, one of them inside a function."""
    graph = {"labkit.a": {"labkit.b"}, "labkit.b": {"labkit.a"}, "labkit.c": {"labkit.a"}}
    assert _circles(graph) == [["labkit.a", "labkit.b"]]
    mods = _modules()
    real = _graph(mods)
    assert "labkit.restore_points" in real["labkit.stack.local"]  # an in-function import is an edge
    real["labkit.restore_points"] = real["labkit.restore_points"] | {"labkit.stack.local"}
    assert any("labkit.stack.local" in c for c in _circles(real))
