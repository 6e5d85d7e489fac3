"""Every third-party module the code imports directly comes from a distribution pyproject.toml declares:
nothing works only because another package happens to pull it in."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shine_mcp", "agent", "web_shell", "shine_cli")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {normalized(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}


def imported_modules() -> dict[str, set[str]]:
    """Absolute imports of modules outside the standard library and Shine, with the files importing them."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top not in sys.stdlib_module_names and top not in PACKAGES and top != "__future__":
                        found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


@cache
def top_level_providers() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@cache
def providers(module: str) -> frozenset[str]:
    """The installed distributions that ship `module` (narrowed by its path for namespace packages such as
    `google`, which several distributions share)."""
    parts = module.split(".")
    candidates = top_level_providers().get(parts[0], [])
    if len(candidates) <= 1 or len(parts) == 1:
        return frozenset(normalized(c) for c in candidates)
    prefix = "/".join(parts[:2])
    return frozenset(
        normalized(name)
        for name in candidates
        if any(str(f).startswith(prefix) for f in metadata.distribution(name).files or ())
    )


def test_every_directly_imported_third_party_module_is_declared() -> None:
    wanted = declared()
    missing = {
        module: sorted(files)[0]
        for module, files in imported_modules().items()
        if not providers(module) & wanted
    }
    lines = [
        f"{module} (imported in {where}; from {sorted(providers(module)) or 'nothing installed'})"
        for module, where in sorted(missing.items())
    ]
    assert not missing, "imported but not declared in pyproject.toml [project].dependencies:\n" + "\n".join(
        lines
    )


def test_the_check_sees_imports_and_namespace_packages() -> None:
    modules = imported_modules()
    assert "stripe" in modules and "google.oauth2" in modules
    assert providers("google.oauth2") == {"google-auth"}
    assert providers("jwt") == {"pyjwt"}
