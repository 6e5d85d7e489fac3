"""The README is the front door: its configuration table is generated from Settings and must match."""

from __future__ import annotations

from pathlib import Path

from scripts.config_table import config_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_configuration_table_lists_every_setting() -> None:
    assert config_table() in README.read_text(), "regenerate with: .venv/bin/python scripts/config_table.py"


def test_readme_names_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text and "make test" in text
