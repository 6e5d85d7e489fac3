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
