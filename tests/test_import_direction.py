"""The packages depend one way: the server (`shine_mcp`) knows none of its users; the agent reaches tools
only over MCP, so it imports no Shine package; the web shell serves the server and the agent; the command
line (`shine_cli`) sits on top and nothing imports it. Every import counts, including those inside
functions and under `TYPE_CHECKING`, so a late import cannot hide an arrow pointing the wrong way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> the Shine packages it must never import
FORBIDDEN: dict[str, frozenset[str]] = {
    "shine_mcp": frozenset({"agent", "web_shell", "shine_cli"}),
    "agent": frozenset({"shine_mcp", "web_shell", "shine_cli"}),
    "web_shell": frozenset({"shine_cli"}),
    "shine_cli": frozenset(),
}


def imported_modules(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in `source`, at any depth (functions, classes, ifs)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def wrong_way_imports(package: str) -> list[str]:
    forbidden = FORBIDDEN[package]
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path.read_text("utf-8"), str(path)):
            if module.split(".")[0] in forbidden:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    return wrong


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_downwards(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file(), (
        f"{package} is not a package any more: update this test"
    )
    wrong = wrong_way_imports(package)
    assert not wrong, (
        f"{package} must not import {', '.join(sorted(FORBIDDEN[package]))} (shine_mcp <- agent, web_shell, "
        "shine_cli):\n" + "\n".join(wrong)
    )


def test_function_level_and_type_checking_imports_are_seen() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from agent.events import Event\n"
        "def serve() -> None:\n    import web_shell.app\n    from shine_cli import cli\n"
    )
    modules = [module for _, module in imported_modules(source, "example.py")]
    assert modules == ["typing.TYPE_CHECKING", "agent.events.Event", "web_shell.app", "shine_cli.cli"]


# Inside the server, imports point one way too: no module reaches itself through others, and no two parts of
# `shine_mcp` (its subpackages and top-level modules: `auth`, `store`, `clock`, ...) import each other. Every
# import counts here as well: a function-level import only hides a cycle, it does not remove it.
SERVER = "shine_mcp"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolved_imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The Shine modules `module` imports (relative imports resolved), each named as the module file."""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = node.module or ""
            if node.level:  # `from .face import Face`, `from . import face`
                parent = ".".join(
                    [*base[: len(base) - node.level + 1], *([node.module] if node.module else [])]
                )
            found.update(
                f"{parent}.{a.name}" if f"{parent}.{a.name}" in known else parent for a in node.names
            )
    modules = set()
    for name in found:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            modules.add(name)
    return modules


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    paths = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    return {name: resolved_imports(name, path, set(paths)) for name, path in paths.items()}


def part_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between the parts of the package: `shine_mcp.store.users` counts as `shine_mcp.store`."""

    def part(name: str) -> str:
        return ".".join(name.split(".")[:2])

    parts: dict[str, set[str]] = {}
    for name, imports in graph.items():
        parts.setdefault(part(name), set()).update(part(i) for i in imports if part(i) != part(name))
    return parts


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of two or more nodes that reach each other (Tarjan's strongly connected components)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in order:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            if group:
                found.append(sorted([*group, node]))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return found


def test_no_server_module_imports_itself_through_others() -> None:
    found = cycles(import_graph(ROOT, SERVER))
    assert not found, (
        "import cycles inside shine_mcp (split the shared part into its own module):\n"
        + "\n".join(" <-> ".join(group) for group in found)
    )


def test_no_two_parts_of_the_server_import_each_other() -> None:
    found = cycles(part_graph(import_graph(ROOT, SERVER)))
    assert not found, (
        "parts of shine_mcp that import each other (move the piece to the part it belongs to):\n"
        + ("\n".join(" <-> ".join(group) for group in found))
    )


def test_cycles_are_found_through_function_level_and_relative_imports(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/store/__init__.py": "",
        "pkg/store/rows.py": "def read() -> None:\n    from pkg.store.shop import parse\n",
        "pkg/store/shop.py": "from .rows import read\n",
        "pkg/auth/__init__.py": "",
        "pkg/auth/guard.py": "from pkg import identity\n",
        "pkg/identity.py": "from pkg.auth.keys import Keys\n",
        "pkg/auth/keys.py": "Keys = bytes\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, "pkg")
    assert cycles(graph) == [["pkg.store.rows", "pkg.store.shop"]]
    assert cycles(part_graph(graph)) == [["pkg.auth", "pkg.identity"]]
