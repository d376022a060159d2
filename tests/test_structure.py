"""The package's shape: no module uses another module's private names, b12lab's
modules import each other without a cycle, and the batch side is one package.

Both checks read the source with `ast`; nothing is imported. Both count imports at
any level: a function-level import (the lazy import of a heavy or optional module)
counts the same as a module-level one, since it ties the two modules together just
the same.

- Private names: an underscore name (not a dunder such as `__version__`) belongs to
  the module that defines it. Importing one from another b12lab module
  (`from b12lab.x import _name`) or reaching it through an imported module
  (`x._name`, `b12lab.x._name`) fails.
- Cycles: `import b12lab.x` and `from b12lab.x import name` make an edge to
  `b12lab.x` (to `b12lab.x.name` when that is a module). Imports under
  `if TYPE_CHECKING:` are not run and do not count, and neither do the parent
  packages an import runs first (a package's `__init__` importing its own
  submodules is not a cycle).
- Layout: the batch pipeline's modules live in `b12lab.batch`, and only they, the
  rules' array evaluator and the Parquet/Arrow reader import pyarrow, numpy or
  duckdb when they are imported (anywhere else, only inside the function that
  needs it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "b12lab"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = modules()


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def resolved(node: ast.ImportFrom, here: str) -> str:
    """The absolute module a `from ... import` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = here.split(".")
    is_package = MODULES[here].name == "__init__.py"
    base = package if is_package else package[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(tree: ast.Module, module_level: bool = False) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any level, but those under `if TYPE_CHECKING:`;
    `module_level`: only those run when the module is imported (not inside a function;
    a class body runs at import, so its imports count)."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if module_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def imported_modules(node: ast.stmt, here: str) -> set[str]:
    """The b12lab modules an import statement imports (see the module text)."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        found = {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
        source = resolved(node, here)
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            found.add(submodule if submodule in MODULES else source)
    return {name for name in found if name in MODULES}


def private_uses(source: str, here: str) -> list[tuple[str, str, str, int]]:
    """(this module, the module a private name belongs to, the name, line) for each use of
    another b12lab module's private name in `source`, the text of module `here`."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # a local name -> the b12lab module it is bound to
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = resolved(node, here)
            if source not in MODULES:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in MODULES:
                    aliases[alias.asname or alias.name] = submodule
                elif is_private(alias.name) and source != here:
                    uses.append((here, source, alias.name, node.lineno))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            owner = ast.unparse(node.value)
            target = aliases.get(owner, owner)
            if target in MODULES and target != here:
                uses.append((here, target, node.attr, node.lineno))
    return uses


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in imports(tree):
            edges |= imported_modules(node, name)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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


def test_no_module_uses_another_modules_private_names():
    uses = [
        use
        for name, path in MODULES.items()
        for use in private_uses(path.read_text(encoding="utf-8"), name)
    ]
    unexpected = [f"{here}:{line} uses {owner}.{name}" for here, owner, name, line in uses]
    assert not unexpected, "\n".join(unexpected)


def test_b12lab_modules_import_each_other_without_a_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_derived_values_are_worked_out_in_one_module():
    """Whether a panel gets ANC (from WBC x neutrophil %) or eGFR (from creatinine)
    derived, and the value itself, are b12lab.derived's: no other module names a
    derivation's inputs to test for one (the CLI only names its --neutrophil-pct value,
    the ranges file's loader its equation)."""
    allowed = {
        '"neutrophil_pct"': {"b12lab.derived", "b12lab.cli"},
        '"egfr_from_creatinine"': {"b12lab.derived", "b12lab.ranges"},
    }
    found = {
        (literal, name)
        for name, path in MODULES.items()
        for literal in allowed
        if literal in path.read_text(encoding="utf-8")
    }
    assert {(literal, name) for literal, name in found if name not in allowed[literal]} == set()
    assert ('"neutrophil_pct"', "b12lab.derived") in found


BATCH_MODULES = {
    "options",
    "run",
    "grouping",
    "rows",
    "columnar",
    "blocks",
    "drain",
    "table",
    "plan",
}
HEAVY = {"pyarrow", "numpy", "duckdb"}
# Outside b12lab.batch, only the array evaluator of the rules and the Parquet/Arrow
# reader work on whole columns, so only they may import these when they are imported.
HEAVY_OUTSIDE_BATCH = {"b12lab.rules.arrays", "b12lab.inputs.arrow"}


def heavy_imports(path: Path) -> set[str]:
    """The heavy libraries (`HEAVY`) a module imports at module level."""
    found = set()
    for node in imports(ast.parse(path.read_text(encoding="utf-8")), module_level=True):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            names = [node.module or ""] if not node.level else []
        found |= {name.split(".")[0] for name in names} & HEAVY
    return found


def test_the_batch_modules_live_in_the_batch_package():
    batch = {
        name.removeprefix("b12lab.batch.") for name in MODULES if name.startswith("b12lab.batch.")
    }
    assert batch == BATCH_MODULES
    top_level = {name.removeprefix("b12lab.") for name in MODULES if name.count(".") == 1}
    old_names = {"batch_run", "columnar", "drain", "grouping", "plan", "table", "options"}
    assert top_level & old_names == set()


def test_only_the_batch_package_and_the_array_code_import_arrow_at_module_level():
    importers = {name: heavy_imports(path) for name, path in MODULES.items()}
    importers = {name: found for name, found in importers.items() if found}
    outside = {
        name: sorted(found)
        for name, found in importers.items()
        if not name.startswith("b12lab.batch.") and name not in HEAVY_OUTSIDE_BATCH
    }
    assert outside == {}, f"heavy imports at module level outside b12lab.batch: {outside}"
    # The check sees the imports it is about: the columnar path's and the Arrow reader's.
    assert {"pyarrow", "numpy"} <= importers["b12lab.batch.columnar"]
    assert "pyarrow" in importers["b12lab.inputs.arrow"]
