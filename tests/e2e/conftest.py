"""The browser the end-to-end tests share, one per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.browser import ARGS, CHROMIUM, playwright_api


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():  # `make test` installs it: a missing browser is a broken set-up, not a pass
        pytest.fail("Debian's chromium is not installed: run `make test` (it runs `make browser-tools`)")
    with playwright_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()
