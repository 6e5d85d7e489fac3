"""`shine chat`: the terminal advisor over this machine's Shine, typed at like a person would."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from shine_cli.cli import app
from shine_mcp.config import Settings
from tests.models.conftest import ASTRONAUT
from tests.support.postgres import free_port


def test_shine_chat_answers_reads_a_product_and_analyses_a_photo(settings: Settings, tmp_path: Path) -> None:
    typed = "\n".join(
        [
            "find a fragrance-free moisturiser under $25",
            "what's in the first one?",
            f"/photo {ASTRONAUT} here's my selfie",
            "/photo /nowhere/selfie.jpg",
            "/quit",
        ]
    )

    result = CliRunner().invoke(
        app, ["chat"], input=typed + "\n", env={"SHINE_DATA_DIR": str(tmp_path), "ANTHROPIC_API_KEY": ""}
    )

    assert result.exit_code == 0, result.output
    out = result.output
    assert "simple requests" in out  # the advisor's first words
    assert "1. " in out and "moisturiser" in out.lower()  # the product cards, as a numbered list
    assert "Searching the catalog" in out and "moisturisers under $25" in out
    assert "Reading the product details" in out and "Ingredients:" in out
    assert "Analysing your photo" in out and "Your skin report (rep_" in out
    assert "nowhere" in out and "No such file" in out  # a bad path is reported, the chat goes on


def test_shine_chat_explains_its_commands(tmp_path: Path, settings: Settings) -> None:
    result = CliRunner().invoke(
        app,
        ["chat"],
        input="/help\n/frobnicate\n",
        env={"SHINE_DATA_DIR": str(tmp_path), "ANTHROPIC_API_KEY": ""},
    )

    assert result.exit_code == 0
    assert "/photo PATH" in result.output and "Unknown command /frobnicate" in result.output


def test_shine_chat_says_plainly_when_the_server_is_unreachable(tmp_path: Path, settings: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"

    result = CliRunner().invoke(
        app, ["chat", "--url", url], input="hi\n", env={"SHINE_DATA_DIR": str(tmp_path)}
    )

    assert result.exit_code == 1
    assert f"The chat with {url} stopped" in result.output
    assert "Traceback" not in result.output
