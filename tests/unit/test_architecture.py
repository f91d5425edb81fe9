"""The house plan (docs/architecture.md) held against the code: what each part may
import, no import cycle (between parts, nor between the modules of a package),
and modules small enough to read in one sitting.

Imports are read from the source with ``ast`` (module level and function level
alike), so a lazy import counts as much as a top-level one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support import ROOT

PACKAGE = ROOT / "procmaster"
MAX_LINES = 520
# pure data allowed to be longer (the issue: "the option table's data aside")
DATA_MODULES = {"procmaster.options.table"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The procmaster modules ``name`` imports (resolved to modules that exist)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for target in targets:
            if not target.startswith("procmaster"):
                continue
            # the longest existing module prefix of the target
            parts = target.split(".")
            while parts and ".".join(parts) not in MODULES:
                parts.pop()
            if parts and ".".join(parts) != name:
                found.add(".".join(parts))
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _reach(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in GRAPH.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _part(name: str) -> str:
    return ".".join(name.split(".")[:2])


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges`` (its nodes, the first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if not state.get(nxt):
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if not state.get(node):
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_between_parts():
    """Parts (a top-level module or package) import each other in one direction only.
    (Inside a package, an ``__init__`` re-exporting its modules is not a cycle.)"""
    edges: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        for target in targets:
            a, b = _part(name), _part(target)
            if a != b:
                edges.setdefault(a, set()).add(b)
    cycle = _find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_no_import_cycle_between_modules():
    """Modules import each other in one direction only, inside a package too, and
    counting the imports made for type hints alone (``if TYPE_CHECKING:``): a
    module further down is typed by a narrow Protocol, never by the class above
    it. (A package's ``__init__`` re-exporting its own modules is not a cycle.)"""
    edges: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        is_package = MODULES[name].name == "__init__.py"
        edges[name] = {t for t in targets if not (is_package and t.startswith(name + "."))}
    cycle = _find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


@pytest.mark.parametrize(
    "part, forbidden",
    [
        (
            "procmaster.master",
            (
                "procmaster.worker",
                "procmaster.protocols",
                "procmaster.wsgi",
                "procmaster.static",
                "procmaster.appthreads",
            ),
        ),
        (
            "procmaster.emperor",
            (
                "procmaster.worker",
                "procmaster.protocols",
                "procmaster.wsgi",
                "procmaster.static",
                "procmaster.master",
            ),
        ),
        (
            "procmaster.protocols",
            (
                "procmaster.worker",
                "procmaster.wsgi",
                "procmaster.master",
                "procmaster.logs",
                "procmaster.sockets",
            ),
        ),
        (
            "procmaster.options",
            ("procmaster.config", "procmaster.sockets", "procmaster.master", "procmaster.worker"),
        ),
        ("procmaster.ipc", ("procmaster.",)),
        # transport layers are sans-IO: bytes and facts, tested without sockets
        ("procmaster.transports", ("procmaster.",)),
        ("procmaster.worker", ("procmaster.master", "procmaster.emperor", "procmaster.config")),
    ],
)
def test_what_a_part_must_not_know(part, forbidden):
    """Transitively: nothing a part's modules import reaches a forbidden part."""
    modules = [m for m in MODULES if m == part or m.startswith(part + ".")]
    assert modules, f"{part} does not exist"
    reached: set[str] = set()
    for module in modules:
        reached |= _reach(module)
    bad = sorted(
        m
        for m in reached
        if any(m == f or m.startswith(f if f.endswith(".") else f + ".") for f in forbidden)
        and not (m == part or m.startswith(part + "."))
    )
    assert not bad, f"{part} reaches {bad}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small_enough_to_read_in_one_sitting(name):
    if name in DATA_MODULES:
        return
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (split it along its responsibilities)"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_says_what_it_owns(name):
    tree = ast.parse(MODULES[name].read_text())
    assert ast.get_docstring(tree), f"{name} has no module docstring"


# docs/architecture.md, "The layers": a part imports parts on its own floor or below
FLOORS = {
    4: "cli __main__",
    3: "master worker emperor",
    2: "sockets watch app static appthreads guards stats control daemons privileges check helpdoc "
    "hooks routing api",
    1: "options config ipc protocols transports wsgi scoreboard pidfile process logs systemd "
    "daemonize",
}
FLOOR_OF = {f"procmaster.{p}": floor for floor, parts in FLOORS.items() for p in parts.split()}


def test_every_part_has_a_floor():
    parts = {_part(name) for name in GRAPH} - {"procmaster"}
    assert sorted(parts - set(FLOOR_OF)) == [], "add the new part to docs/architecture.md"


def test_imports_never_run_up_the_floors():
    up = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if FLOOR_OF.get(_part(target), 0) > FLOOR_OF.get(_part(name), 0)
    )
    assert up == []
