"""The package's modules form layers: no module imports one that (directly or through others) imports it back.

Read with `ast`, never by importing, so every import statement counts: at module level, inside functions, under
`if TYPE_CHECKING:`. An edge A -> B means a statement in A names B: `import transformers.B`, `from .B import x`,
`from . import B` (B a submodule), or `from . import x` (x defined in the package's __init__, so the edge goes to
that __init__). Python also runs every parent package's __init__ on the way to a submodule; those implicit edges are
left out: every submodule has them to its own package, which is how packages work, not a loop between layers.
"""
import ast
from pathlib import Path

PACKAGE = "transformers"
ROOT = Path(__file__).resolve().parent.parent / "src" / PACKAGE

# The LoRA layer module must stay readable on its own: it may not reach adapters or any module that reads or
# writes weight files (checked on the transitive closure, so a detour through a third module is caught too).
FILE_FORMAT_MODULES = ("lora_interop", "method_loading", "modeling_utils", "safe_loading", "file_utils",
                       "trainable_checkpoint")


def _module_names():
    """dotted module name -> (file, is a package __init__)"""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = (PACKAGE,) + path.relative_to(ROOT).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _owner(dotted, modules):
    """The longest prefix of `dotted` that is a module of the package (import a.b.c names module a.b.c, or a.b when
    c is an attribute), or None when it is outside the package."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def _imports(name, path, is_package, modules):
    """The package modules that the statements of one file name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = name if is_package else name.rpartition(".")[0]  # the package relative imports start from
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    found.add(_owner(alias.name, modules))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = here.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                base = node.module
            else:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else _owner(base, modules))
    found.discard(None)
    found.discard(name)
    return found


def import_graph():
    modules = _module_names()
    return {name: _imports(name, path, is_package, modules) for name, (path, is_package) in modules.items()}


def _short(name):
    return name[len(PACKAGE) + 1:] if name.startswith(PACKAGE + ".") else name


def find_cycles(graph):
    """The cycles a depth-first search closes, one per edge that leads back to a module still on its path (a list
    of modules, first == last); an empty list when the graph has none."""
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_walker_sees_every_kind_of_import(tmp_path):
    modules = {f"{PACKAGE}.{name}": (None, False) for name in ("b", "c", "d", "g", "sub.a", "sub.e", "sub.f")}
    modules[PACKAGE] = modules[f"{PACKAGE}.sub"] = (None, True)
    source = tmp_path / "f.py"
    source.write_text(
        "import os\n"
        "from . import a\n"  # a submodule, through `from . import`
        "from . import defined_in_init\n"  # a name of the package's __init__
        "from ..b import thing\n"  # relative, one package up
        "import transformers.c\n"
        "from transformers.d import x as y\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from .e import Z\n"
        "def later():\n"
        "    from transformers import g\n"  # inside a function
        "    import torch\n")
    found = _imports(f"{PACKAGE}.sub.f", source, False, modules)
    assert found == {f"{PACKAGE}.{name}" for name in ("sub.a", "sub", "b", "c", "d", "sub.e", "g")}
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_one_that_imports_it_back():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(_short(m) for m in c) for c in cycles)


def test_lora_layer_module_sits_below_adapters_and_file_formats():
    graph = import_graph()
    below_lora = {_short(m) for m in reachable(graph, f"{PACKAGE}.lora")}
    forbidden = sorted(below_lora.intersection(("adapters",) + FILE_FORMAT_MODULES))
    assert not forbidden, f"lora imports (directly or through others) {forbidden}; it must stay the bottom layer"


def test_modeling_utils_does_not_import_adapters():
    below = {_short(m) for m in reachable(import_graph(), f"{PACKAGE}.modeling_utils")}
    assert "adapters" not in below, "modeling_utils imports adapters (directly or through others)"
