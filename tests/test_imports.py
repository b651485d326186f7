"""The import graph of samplenet's modules (read from their source, every import statement,
inside functions too): no cycles, and the layering of DESIGN.md section 2."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "samplenet"


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imported(name, node):
    """samplenet modules an import statement of module ``name`` names."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative import
            package = name.split(".")[:len(name.split(".")) - node.level + 1]
            if MODULES[name].name != "__init__.py":
                package = name.split(".")[:-node.level]
            base = ".".join(package + ([base] if base else []))
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                   for alias in node.names]
    else:
        return []
    return [target for target in targets if target in MODULES]


def import_graph():
    """``{module: set of samplenet modules it imports}``."""
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {target for node in ast.walk(tree) for target in _imported(name, node)
                       if target != name}
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycles_finds_a_cycle_and_only_the_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_samplenet_has_no_import_cycles():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("lower, upper", [
    ("samplenet.layers", "samplenet.models"), ("samplenet.layers", "samplenet.training"),
    ("samplenet.ops", "samplenet.layers"), ("samplenet.ops", "samplenet.models"),
    ("samplenet.config", "samplenet.training"), ("samplenet.config", "samplenet.data"),
    ("samplenet.data", "samplenet.training"), ("samplenet.models", "samplenet.training"),
])
def test_lower_layers_import_nothing_from_upper_ones(lower, upper):
    offending = sorted(f"{name} -> {target}" for name, targets in import_graph().items()
                       if name == lower or name.startswith(lower + ".")
                       for target in targets if target == upper or target.startswith(upper + "."))
    assert offending == []
