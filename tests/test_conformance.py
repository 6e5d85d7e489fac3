"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in package.json, run with
the pinned Node 22) against `shine serve`: every scenario that applies to a server without the suite's own
test tools, prompts and resources passes. The ones that do not apply are listed here and in the README."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import free_port
from tests.test_transports import NODE_BIN, ROOT, SHINE, _wait_healthy, data_dir, shine_env

__all__ = ["data_dir"]  # the fixture, shared with tests/test_transports.py

pytestmark = pytest.mark.slow

CONFORMANCE = ROOT / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"

# Scenarios of the suite's active server set that call what only the suite's reference server has (tools,
# prompts and resources named test_* or test://...), or a capability Shine does not offer. Keep in step
# with the README section "MCP conformance".
DOES_NOT_APPLY = {
    "completion-complete": "completes an argument of the suite's prompt test_prompt_with_arguments",
    "tools-call-image": "calls the suite's tool test_image_content",
    "tools-call-audio": "calls the suite's tool test_audio_content",
    "tools-call-embedded-resource": "calls the suite's tool test_embedded_resource",
    "tools-call-mixed-content": "calls the suite's tool test_multiple_content_types",
    "tools-call-with-logging": "calls the suite's tool test_tool_with_logging",
    "tools-call-with-progress": "calls the suite's tool test_tool_with_progress",
    "tools-call-sampling": "calls the suite's tool test_sampling; Shine never asks the client's model",
    "tools-call-elicitation": "calls the suite's tool test_elicitation",
    "elicitation-sep1034-defaults": "calls the suite's tool test_elicitation_sep1034_defaults",
    "elicitation-sep1330-enums": "calls the suite's tool test_elicitation_sep1330_enums",
    "resources-read-text": "reads the suite's resource test://static-text",
    "resources-read-binary": "reads the suite's resource test://static-binary",
    "resources-templates-read": "reads the suite's template test://template/{id}/data",
    "resources-subscribe": "Shine does not offer resources/subscribe (its capability says so)",
    "resources-unsubscribe": "Shine does not offer resources/subscribe (its capability says so)",
    "prompts-get-simple": "gets the suite's prompt test_simple_prompt",
    "prompts-get-with-args": "gets the suite's prompt test_prompt_with_arguments",
    "prompts-get-embedded-resource": "gets the suite's prompt test_prompt_with_embedded_resource",
    "prompts-get-with-image": "gets the suite's prompt test_prompt_with_image",
}


@pytest.fixture
def shine_serve(data_dir: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [SHINE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=shine_env(data_dir),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, process)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=20)


def test_shine_serve_passes_every_conformance_scenario_that_applies(shine_serve: str, tmp_path: Path) -> None:
    if not CONFORMANCE.exists():
        pytest.fail("the conformance suite is not installed: run `npm ci` (package.json pins it)")
    out = tmp_path / "conformance"
    env = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run(
        [str(NODE_BIN / "node"), str(CONFORMANCE), "server", "--url", f"{shine_serve}/mcp", "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    outcomes: dict[str, list[str]] = {}
    for checks in sorted(out.glob("server-*/checks.json")):
        scenario = re.sub(r"-\d{4}-\d\d-\d\dT[\d-]+Z$", "", checks.parent.name.removeprefix("server-"))
        failed = [
            f"{check.get('name')}: {check.get('errorMessage') or check.get('description')}"
            for check in json.loads(checks.read_text())
            if check.get("status") == "FAILURE"
        ]
        outcomes[scenario] = failed
    assert len(outcomes) >= 30, run.stdout[-3000:] + run.stderr[-3000:]

    applies = {name: failed for name, failed in outcomes.items() if name not in DOES_NOT_APPLY}
    assert {
        "server-initialize",
        "ping",
        "logging-set-level",
        "tools-list",
        "resources-list",
        "prompts-list",
        "server-sse-multiple-streams",
        "dns-rebinding-protection",
    } <= set(applies)
    assert {name: failed for name, failed in applies.items() if failed} == {}
    assert set(DOES_NOT_APPLY) <= set(outcomes)  # a scenario renamed or gone upstream: update the list
    readme = (ROOT / "README.md").read_text()
    assert [name for name in DOES_NOT_APPLY if f"`{name}`" not in readme] == []
