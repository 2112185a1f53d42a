"""The import graph of the project (docs/ARCHITECTURE.md): no circle anywhere, the apps import
one way (sessions_app -> billing -> mk0r), and billing's packages import only the packages
below them. Every `import` statement counts, also the ones inside functions."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mk0r", "billing", "sessions_app", "web", "vm_bridge", "devstack")
# billing's packages, lowest first: each may import only the ones before it (and models).
BILLING_LAYERS = ("money", "models", "catalog", "subscriptions", "caps", "quotes", "usage")
# What sits on top of billing's packages and may import any of them.
BILLING_TOP = {"admin", "apps", "management", "migrations", "tasks", "templatetags", "urls"}
# mk0r mounts the apps' URLs.
MK0R_MAY_IMPORT_APPS = {"mk0r.urls"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        deps.add(f"{target}.{alias.name}")
                    elif target in modules:
                        deps.add(target)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names if alias.name in modules)
        graph[name] = deps - {name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index, low, on_stack, stack, circles = {}, {}, set(), [], []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


@pytest.fixture(scope="module")
def graph():
    return _graph()


def test_no_import_circle(graph):
    assert _circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _edges(graph, source_prefix: str, target_prefix: str) -> list[tuple[str, str]]:
    return sorted(
        (source, target)
        for source, targets in graph.items()
        if source.split(".")[0] == source_prefix
        for target in targets
        if target.split(".")[0] == target_prefix
    )


def test_the_apps_import_one_way(graph):
    assert _edges(graph, "billing", "sessions_app") == []
    for app in ("billing", "sessions_app"):
        assert [edge for edge in _edges(graph, "mk0r", app) if edge[0] not in MK0R_MAY_IMPORT_APPS] == []
    for standalone in ("vm_bridge", "devstack"):
        for app in ("mk0r", "billing", "sessions_app", "web"):
            assert _edges(graph, standalone, app) == []


def test_billing_packages_import_only_the_ones_below(graph):
    wrong = []
    for source, targets in graph.items():
        parts = source.split(".")
        if parts[0] != "billing" or len(parts) < 2 or parts[1] in BILLING_TOP:
            continue
        assert parts[1] in BILLING_LAYERS, f"{source}: put it in one of {BILLING_LAYERS} or on top"
        below = BILLING_LAYERS[: BILLING_LAYERS.index(parts[1]) + 1]
        for target in targets:
            tparts = target.split(".")
            if tparts[0] == "billing" and (len(tparts) < 2 or tparts[1] not in below):
                wrong.append((source, target))
    assert wrong == []
