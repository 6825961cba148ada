"""Imports only point down: each part of salal_core imports parts at or below its own layer,
no module imports itself back through others, and the app's screens reach the core's run only
through desk.py. Imports under `if TYPE_CHECKING:` are annotations, not arrows, and are allowed
to point up (docs/architecture.md, Imports point down)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# salal_core's parts from the ground up; a part imports only parts on its own row or below.
# A new module or package of salal_core takes its row here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors", "files", "json_text"),
    ("config", "events", "selection", "distributed"),
    ("config_io", "data", "runtime"),
    ("backbones", "learn"),
    ("config_checks", "settings"),
    ("run",),
    ("parallel",),
    ("team",),
    ("cli",),
)
# What a screen of the app may import of the core itself: the shared vocabulary. The rest of
# the core (the run, the team) it takes from desk.py, the app's one door into the core.
SCREENS_MAY_IMPORT = {"salal_core.errors", "salal_core.events"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def typing_only_nodes(tree: ast.Module) -> set[int]:
    """The nodes under `if TYPE_CHECKING:`, by id."""
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes.update(id(inner) for inner in ast.walk(node))
    return nodes


def imported_modules(path: Path, root: Path, known: set[str]) -> Iterator[str]:
    """The modules of `known` that the file at `path` imports at run time (relative imports
    resolved; `from package import module` names the module)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = typing_only_nodes(tree)
    here = module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from nearest(alias.name, known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield from nearest(full if full in known else base, known)


def nearest(name: str, known: set[str]) -> Iterator[str]:
    """`name`, or the nearest of its parents that is a module here; nothing if none is."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in known:
            yield ".".join(parts)
            return
        parts.pop()


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports at run time."""
    files = {module_name(path, root): path for path in (root / package).rglob("*.py")}
    known = set(files)
    return {
        name: {target for target in imported_modules(path, root, known) if target != name}
        for name, path in files.items()
    }


def part_of(module: str) -> str:
    """The part of salal_core a module belongs to: its first name after salal_core."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward_imports(graph: dict[str, set[str]], layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """Every import from a part to a part on a higher row, as 'a -> b'."""
    row = {part: index for index, parts in enumerate(layers) for part in parts}
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if row[part_of(target)] > row[part_of(module)]
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules that import themselves back through others, one loop each."""
    found: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                found.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_every_part_of_salal_core_has_a_row() -> None:
    graph = import_graph(ROOT, "salal_core")
    placed = {part for parts in LAYERS for part in parts}
    assert {part_of(module) for module in graph} == placed


def test_salal_core_imports_point_down() -> None:
    assert upward_imports(import_graph(ROOT, "salal_core"), LAYERS) == []


def test_no_module_imports_itself_back() -> None:
    assert circles(import_graph(ROOT, "salal_core")) == []
    assert circles(import_graph(ROOT, "salal_tui")) == []


def test_the_screens_reach_the_core_only_through_the_desk() -> None:
    known = set(import_graph(ROOT, "salal_core"))
    direct = {
        f"{path.name} -> {target}"
        for path in (ROOT / "salal_tui" / "screens").glob("*.py")
        for target in imported_modules(path, ROOT, known)
        if target not in SCREENS_MAY_IMPORT
    }
    assert direct == set()


def test_an_upward_import_or_a_circle_is_caught(tmp_path: Path) -> None:
    package = tmp_path / "salal_core"
    (package / "run").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "run" / "__init__.py").write_text("")
    (package / "errors.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from salal_core.run import store\n"  # an annotation: allowed
    )
    (package / "config.py").write_text("from salal_core.run.store import RunStore\n")
    (package / "run" / "store.py").write_text("from . import journal\n")
    (package / "run" / "journal.py").write_text("from salal_core.run import store\n")
    graph = import_graph(tmp_path, "salal_core")
    layers = (("__init__", "errors"), ("config",), ("run",))
    assert upward_imports(graph, layers) == ["salal_core.config -> salal_core.run.store"]
    assert circles(graph) == [
        ["salal_core.run.store", "salal_core.run.journal", "salal_core.run.store"]
    ]
