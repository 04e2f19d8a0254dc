"""The client's module-level import graph has no cycle, and every deferred import says why.

The graph is built from the source with ``ast`` (nothing is imported): an edge ``a -> b`` for every import of
a ``ticketclient`` module that runs when ``a`` is imported (module and class bodies; not function bodies,
not ``if TYPE_CHECKING:`` blocks). A function-local import of a ``ticketclient`` module is allowed only to
keep torch, huggingface_hub or another heavy dependency out of a module that must stay free of it, and its
line carries a comment saying so.
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

import ticketclient

PACKAGE = "ticketclient"
ROOT = Path(ticketclient.__file__).resolve().parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom, importer: str) -> list[str]:
    """The ticketclient modules an import statement loads (a package's ``__init__`` for its attributes)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == PACKAGE]
    base = node.module or ""
    if node.level:  # relative: from the importer's package
        package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    if base.split(".")[0] != PACKAGE:
        return []
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append(sub if sub in MODULES else base)
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module) -> tuple[list[ast.Import | ast.ImportFrom], list[ast.Import | ast.ImportFrom]]:
    """(imports run at import time, imports inside functions)."""
    eager: list[ast.Import | ast.ImportFrom] = []
    deferred: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    walk(ast.Module(body=[sub], type_ignores=[]), in_function)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                (deferred if in_function else eager).append(child)
            walk(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    walk(tree, False)
    return eager, deferred


def _comments(source: str) -> dict[int, str]:
    """line number -> the comment on that line."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        eager, _ = _imports(ast.parse(path.read_text(encoding="utf-8")))
        graph[name] = {t for node in eager for t in _targets(node, name) if t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path) per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_within(graph, c) for c in components]


def _path_within(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A cycle through the component's first module, for the failure message."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    return component  # pragma: no cover - a component always has a cycle


def test_the_graph_sees_the_client_modules() -> None:
    graph = _graph()
    assert {"ticketclient", "ticketclient.spec", "ticketclient.format", "ticketclient.pruning"} <= set(graph)
    assert "ticketclient.errors" in graph["ticketclient.spec"]  # a module-level edge is found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_client_has_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "module-level import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_every_deferred_import_of_a_client_module_says_why() -> None:
    bare = []
    for name, path in MODULES.items():
        source = path.read_text(encoding="utf-8")
        comments = _comments(source)
        _, deferred = _imports(ast.parse(source))
        for node in deferred:
            if not _targets(node, name):
                continue
            lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            reasons = [comments[n] for n in lines if n in comments]
            if not any(r.lstrip("#").strip() and not r.lstrip("#").strip().startswith("noqa") for r in reasons):
                bare.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {ast.unparse(node)}")
    assert not bare, "function-local imports without a '# reason' comment:\n" + "\n".join(bare)


def test_the_deferred_imports_keep_what_they_say_out_of_import_ticketclient() -> None:
    code = ("import sys, ticketclient, ticketclient.format, ticketclient.validation, ticketclient.policy\n"
            "print(sorted(m for m in ('torch', 'huggingface_hub', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
