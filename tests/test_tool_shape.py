"""Tools stay thin: no function in `shine_mcp/tools/` runs past 80 lines, and a family's tools are methods
of its class (or top-level functions), never closures inside `register`, so each can be read, found by name
and tested alone. The files not restructured yet are listed below with their sizes today: they may shrink,
never grow, and an entry must go once its function fits."""

from __future__ import annotations

import ast
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent / "shine_mcp" / "tools"
MAX_LINES = 80

# (file, function) -> its length in lines when it was allowed past the limit. Empty: every family is
# restructured (issue 19, "thin tools"). An entry may only shrink, never grow, and goes once its function fits.
TOO_LONG_TODAY: dict[tuple[str, str], int] = {}
# Files whose `register` may still hold its tools as closures. Empty: every family's tools are methods of its
# class. Take a file off once its tools are methods of its class.
CLOSURES_TODAY: frozenset[str] = frozenset()


def function_lengths(source: str, filename: str) -> dict[str, int]:
    """Every function at any depth (methods, closures), by dotted name, to its length in lines."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    assert child.end_lineno is not None
                    lengths[name] = child.end_lineno - child.lineno + 1
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source, filename), "")
    return lengths


def all_lengths() -> dict[tuple[str, str], int]:
    return {
        (path.name, name): length
        for path in sorted(TOOLS.glob("*.py"))
        for name, length in function_lengths(path.read_text("utf-8"), str(path)).items()
    }


def test_no_tool_function_is_longer_than_80_lines() -> None:
    too_long = {
        key: length
        for key, length in all_lengths().items()
        if length > MAX_LINES and length > TOO_LONG_TODAY.get(key, 0)
    }
    assert not too_long, (
        f"split these so each is at most {MAX_LINES} lines (a tool parses, calls the domain and shapes the "
        f"answer; the logic lives in shine_mcp/advice, store, models, orders…): {too_long}"
    )


def test_the_allowlist_of_long_functions_only_shrinks() -> None:
    lengths = all_lengths()
    stale = [key for key in TOO_LONG_TODAY if lengths.get(key, 0) <= MAX_LINES]
    assert not stale, (
        f"these now fit in {MAX_LINES} lines (or are gone): remove them from TOO_LONG_TODAY: {stale}"
    )


def test_tools_are_not_closures_inside_register() -> None:
    nested = [
        f"{path.name}: {name}"
        for path in sorted(TOOLS.glob("*.py"))
        if path.name not in CLOSURES_TODAY
        for name in function_lengths(path.read_text("utf-8"), str(path))
        if name.startswith("register.")
    ]
    assert not nested, (
        "define tools as methods of the family's class (or top-level functions) and let register only "
        f"register them: {nested}"
    )


def test_long_and_nested_functions_are_measured() -> None:
    source = "class A:\n    async def tool(self) -> None:\n" + "        x = 1\n" * 90
    source += "def register() -> None:\n    def inner() -> None:\n        pass\n"
    lengths = function_lengths(source, "example.py")
    assert lengths["A.tool"] == 91
    assert lengths["register.inner"] == 2 and "register" in lengths
