"""A writable copy of the bundled knowledge data, for tests that break it on purpose."""

import shutil
from importlib import resources
from pathlib import Path

import pytest


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    bundled = resources.files("shine_mcp.knowledge").joinpath("data")
    with resources.as_file(bundled) as folder:
        shutil.copytree(folder, tmp_path / "data")
    return tmp_path / "data"
