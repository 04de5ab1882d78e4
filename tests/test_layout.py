"""The tree shows the architecture: no import cycles inside the package, no module over 700 lines,
no function over 60 lines."""

import ast

from tests.conftest import REPO

PACKAGE = REPO / "review_scorer"
MAX_LINES = 700
MAX_FUNCTION_LINES = 60
# Modules allowed over MAX_LINES for a while (issue 19 round 2 split the last two): keep empty.
TOO_LONG_FOR_NOW: set = set()


def _module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path, module: str, known: set) -> set:
    """Package modules that `module` imports anywhere (top level or inside a function)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(anchor + ([base] if base else []))
            # `from package import module` imports the module; `from module import name`, the module.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph() -> dict:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def _cycles(graph: dict) -> list:
    """Every strongly connected group of more than one module (Tarjan), as sorted lists."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _package_cycles() -> list:
    graph = _graph()
    # A module importing its own package (`from review_scorer import __version__`) is not a
    # cycle: importing a.b has already run a/__init__.py.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    return _cycles(graph)


def test_layout_has_no_import_cycles_inside_the_package():
    assert _package_cycles() == []


def test_layout_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_layout_reads_lazy_and_package_imports():
    graph = _graph()
    assert "review_scorer.model.fast_lstm" in graph["review_scorer.model.network"]  # inside a function
    assert "review_scorer.report.plots" in graph["review_scorer.report.render"]  # from package import module
    assert "review_scorer.model.layers" in graph["review_scorer.model.fast_lstm"]


def _too_long() -> dict:
    return {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}


def test_layout_no_other_module_is_over_700_lines():
    assert set(_too_long()) <= TOO_LONG_FOR_NOW


def test_layout_no_module_is_over_700_lines():
    assert _too_long() == {}


def _long_functions(sources: dict | None = None) -> dict:
    """Every function and method (nested ones too) longer than MAX_FUNCTION_LINES, counted from
    its `def` line to its last line, signature and docstring included; `sources` maps module
    names to their text (default: the package's modules)."""
    if sources is None:
        sources = {name: path.read_text(encoding="utf-8") for name, path in _modules().items()}
    found = {}
    for name, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found[f"{name}:{node.lineno} {node.name}"] = lines
    return found


def test_layout_no_function_is_over_60_lines():
    assert _long_functions() == {}


def test_layout_finds_a_long_function_or_method():
    body = ["    x = 1"] * MAX_FUNCTION_LINES
    lines = ["def f():", *body, "class C:", "    async def g(self):", *("    " + b for b in body),
             "def short():", *body[1:]]
    found = _long_functions({"m": "\n".join(lines)})
    assert found == {"m:1 f": 61, f"m:{MAX_FUNCTION_LINES + 3} g": 61}
