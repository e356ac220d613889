"""The house rules of src/, read from the code itself (imports and signatures, parsed, nothing run).

- Layers: a module imports only from its own package or from packages on lower floors
  (docs/architecture.md draws them); two packages on one floor know nothing of each other. Imports inside functions count: a late import is still a dependency.
- No import cycle between modules.
- No function takes more than six parameters unless the rest are keyword-only with defaults.
- No module is much over 400 lines.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "crossrank"

# floor of each top-level package: lower floors never import higher ones
FLOORS = {
    "data": 1,
    "losses": 1,
    "model": 2,
    "retrieval": 2,
    "evaluation": 3,
    "pipeline": 4,
    "serving": 4,
    "training": 5,
    "workflows": 6,
    "cli": 7,
}
MAX_PARAMETERS = 6
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module a dotted name lands in (the longest prefix that is a module of the project)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        for name in names:
            if name.split(".")[0] != PACKAGE:
                continue
            target = _resolve(name)
            if target and target != module:
                found.add(target)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _floor(module: str) -> int | None:
    parts = module.split(".")
    return FLOORS.get(parts[1]) if len(parts) > 1 else None


def test_every_package_has_a_floor():
    packages = {m.split(".")[1] for m in MODULES if m.count(".") >= 1 and (SRC / PACKAGE / m.split(".")[1]).is_dir()}
    assert packages <= set(FLOORS), f"packages without a floor in FLOORS (add them and to docs/architecture.md): {packages - set(FLOORS)}"


def test_no_import_runs_up_the_layers():
    upward = []
    for module, targets in GRAPH.items():
        here = _floor(module)
        for target in targets:
            there = _floor(target)
            other_package = module.split(".")[:2] != target.split(".")[:2]
            if here is not None and there is not None and other_package and there >= here:
                upward.append(f"{module} (floor {here}) -> {target} (floor {there})")
    assert not upward, "imports that do not run down the floors:\n" + "\n".join(sorted(upward))


def _package_init_edge(module: str, target: str) -> bool:
    # a package's __init__ re-exporting its own submodules, and a submodule taking a sibling's name
    # through the package, are one package's inside, not a dependency between concepts
    return target.startswith(module + ".") or module.startswith(target + ".")


def test_no_import_cycle():
    graph = {m: {t for t in ts if not _package_init_edge(m, t)} for m, ts in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def _too_many_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = node.args
    positional = [a.arg for a in args.posonlyargs + args.args if a.arg not in ("self", "cls")]
    required_keywords = [a.arg for a, default in zip(args.kwonlyargs, args.kw_defaults) if default is None]
    return len(positional) + len(required_keywords) > MAX_PARAMETERS


@pytest.mark.parametrize("module", sorted(MODULES))
def test_functions_take_at_most_six_parameters(module):
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    offenders = [
        f"{node.name} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _too_many_parameters(node)
    ]
    assert not offenders, f"{module}: more than {MAX_PARAMETERS} parameters that are not keyword-only with defaults: {offenders}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (> {MAX_LINES}): split it by concept"


def test_the_rules_see_a_violation():
    """The checks above read real code: a made-up upward import and a seven-parameter function are caught."""
    tree = ast.parse("def f(a, b, c, d, e, f, g): pass\ndef g(a, b, c, d, e, f, *, g=1): pass")
    flagged = [n.name for n in tree.body if _too_many_parameters(n)]
    assert flagged == ["f"]
    assert _floor("crossrank.model.cross_encoder") < _floor("crossrank.pipeline.rerank")
    assert _floor("crossrank.model.cross_encoder") < _floor("crossrank.evaluation.evaluate")
    assert "crossrank.data.candidates" in GRAPH["crossrank.pipeline.rerank"]
