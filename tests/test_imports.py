"""The package layering: no import cycles in autodiff/ or hyperopt/, core imports
none of the numpy vocabulary, and every module imports on its own."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("autodiff", "hyperopt")


def _modules() -> dict:
    """Module name -> path, for every .py file under the packages."""
    mods = {}
    for pkg in PACKAGES:
        for d, _, files in os.walk(os.path.join(ROOT, pkg)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(d, f)
                    name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    mods[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return mods


def _imported(mod: str, is_package: bool, node, mods: dict) -> set:
    """The package modules an import statement names (``from . import x`` names x)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            parts = (mod if is_package else mod.rsplit(".", 1)[0]).split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            full = base + ("." + node.module if node.module else "")
        else:
            full = node.module
        names = [full] + [f"{full}.{a.name}" for a in node.names]
    return {n for n in names if n in mods}


def import_graph() -> dict:
    """Module -> the package modules it imports anywhere in its body (imports
    inside functions count: a lazy import is still a dependency).  A submodule's
    import of its own package's ``__init__`` is left out."""
    mods = _modules()
    graph = {}
    for mod, path in mods.items():
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _imported(mod, path.endswith("__init__.py"), node, mods)
        graph[mod] = {d for d in deps if d != mod and not mod.startswith(d + ".")}
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    graph = import_graph()
    assert "autodiff.core" in graph and "hyperopt.hypergrad" in graph
    found = [c for c in cycles(graph) if c[0].split(".")[0] == package]
    detail = "; ".join(" <-> ".join(c) + " (" + ", ".join(f"{m} imports {sorted(graph[m] & set(c))}" for m in c) + ")"
                       for c in found)
    assert not found, f"import cycles: {detail}"


def test_core_imports_no_vocabulary():
    deps = import_graph()["autodiff.core"]
    assert not deps & {"autodiff.ops", "autodiff.numpy_api", "autodiff.arraybox"}, deps


@pytest.mark.parametrize("package", PACKAGES)
def test_each_module_imports_on_its_own(package):
    """Each module imported first, in a process where nothing of the packages is loaded."""
    names = sorted(m for m in _modules() if m.split(".")[0] == package and not m.endswith("__main__"))
    script = (
        "import importlib, sys, traceback\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    for m in [m for m in sys.modules if m.split('.')[0] in ('autodiff', 'hyperopt')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed.append(name + ': ' + traceback.format_exc().splitlines()[-1])\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n")
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
